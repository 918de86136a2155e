"""A real LiveKit publisher built on the official SDK: pre-encoded H.264 and Opus.

Video goes through ``EncodedVideoSource`` untouched, so what the recorder receives can
be compared byte for byte with ``published_hashes``. Keyframe requests that reach the
source (PLIs forwarded by the SFU, and libwebrtc's own) are honoured on the next frame.

Both loops run on one monotonic clock started when both tracks are published: video
frame ``n`` is sent at ``t0 + n / fps`` and audio sample ``s`` leaves the SDK's queue at
``t0 + s / 48000``, so flash ``k`` and beep ``k`` are captured at the same instant.
Measured through the sender reports a subscriber gets, the video capture times are
those scheduled; libwebrtc dates audio ~20 ms late (it stamps a 20 ms Opus frame when
the frame is complete) plus up to 10 ms (the phase of the SDK's 10 ms audio timer).

Run standalone::

    python -m testbed.publisher --url ws://127.0.0.1:7880 \\
        --api-key devkey --api-secret secret --room demo --identity cam --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Coroutine
from typing import Any

from livekit import api, rtc

from publisher_hls_agent.room.ice import is_loopback_url

from .synthetic_media import (
    LoopedVideo,
    SyntheticAccessUnit,
    SyntheticAudio,
    SyntheticVideo,
    access_unit_digest,
)

logger = logging.getLogger(__name__)

AUDIO_SAMPLE_RATE = 48_000
AUDIO_CHANNELS = 1
AUDIO_FRAME_SAMPLES = AUDIO_SAMPLE_RATE // 100  # 10 ms: what libwebrtc consumes per tick
# The SDK's audio queue. capture_frame returns once the queue is at most this full, and
# a native 10 ms timer drains it, so audio leaves on the real-time clock whatever the
# queue size; the queue only absorbs event-loop stalls (an x264 encode, a GC pause).
AUDIO_QUEUE_MS = 200
# A late video tick is sent at once; beyond this many periods late, missed ticks are
# dropped (as a camera drops frames) instead of being sent in a burst.
MAX_LATE_PERIODS = 2
# x264's VBV holds the stream to its bitrate over a second; single frames (an IDR)
# burst above it, so the rate declared to libwebrtc leaves room for them.
BITRATE_HEADROOM = 1.5


SOURCE_CLOSE_WAIT = 10.0


async def _close_sources(sources: list[Any]) -> None:
    """Close the SDK's native sources off the event loop, waiting at most
    ``SOURCE_CLOSE_WAIT``: their ``aclose`` drops the native handle synchronously, and in
    a fresh-clone run that drop never returned, holding the loop (and the test) for good.
    A daemon thread that hangs is left behind; the loop goes on."""
    done = threading.Event()

    def close() -> None:
        for source in sources:
            asyncio.run(source.aclose())
        done.set()

    threading.Thread(target=close, name="close-sdk-sources", daemon=True).start()
    if not await asyncio.to_thread(done.wait, SOURCE_CLOSE_WAIT):
        logger.warning("the SDK's sources did not close within %.0f s; left to the process's "
                       "end", SOURCE_CLOSE_WAIT)


class SyntheticPublisher:
    """One LiveKit participant publishing synthetic pre-encoded H.264 and Opus."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        width: int = 1280,
        height: int = 720,
        fps: int = 30,
        bitrate: int = 2_000_000,
        keyframe_interval_s: float = 2.0,
        flash_period_s: float = 2.0,
        video: bool = True,
        audio: bool = True,
        red: bool = False,
        looped: bool = False,
        shared_key: bytes | None = None,
        keyframe_answer_delay_s: float = 0.0,
    ) -> None:
        """``keyframe_answer_delay_s``: requests are honoured that late, as by a browser
        whose encoder is starved or a publisher whose pacer holds a queue."""
        self._url = url
        self._answer_delay = keyframe_answer_delay_s
        # End-to-end encryption with the room's shared key, as the SDK does it.
        self._encryption = (rtc.E2EEOptions(rtc.KeyProviderOptions(shared_key=shared_key))
                            if shared_key is not None else None)
        self._token = token
        self.width = width
        self.height = height
        self.fps = fps
        self._bitrate = bitrate
        self._video: SyntheticVideo | LoopedVideo | None = None
        if video:
            # looped: encoded once and replayed, for benchmarks that run many publishers
            self._video = (LoopedVideo(width, height, fps, bitrate) if looped else
                           SyntheticVideo(width, height, fps, bitrate, keyframe_interval_s,
                                          flash_period_s))
        self._audio = (
            SyntheticAudio(AUDIO_SAMPLE_RATE, AUDIO_CHANNELS, beep_period_s=flash_period_s)
            if audio
            else None
        )
        self._red = red
        self.room = rtc.Room()
        self._video_source: rtc.EncodedVideoSource | None = None
        self._audio_source: rtc.AudioSource | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._video_paused = False
        self._started_at: float | None = None  # t0 of both loops, time.monotonic()
        self._running = False
        self.video_track_sid: str | None = None
        self.audio_track_sid: str | None = None
        # What was sent, for the tests to compare against what was received.
        self.frames_sent = 0
        self.frames_dropped = 0  # ticks skipped because the loop was late
        self.frames_rejected = 0  # capture_frame returned False (native queue full)
        self.audio_frames_sent = 0
        self.audio_underruns = 0  # times the SDK's audio queue must have run dry
        self.audio_behind = 0.0  # seconds the beeps left late for it, at most
        # (index, keyframe, access_unit_digest): what the recorder must receive unchanged.
        self.published_hashes: list[tuple[int, bool, str]] = []
        # Keyframe requests honoured; several before the next frame count once.
        self.keyframe_requests = 0
        # (requested_at, sent_at), time.monotonic(): from the tick that saw a request to
        # its keyframe handed to the SDK. Requests are polled once per frame, so one may
        # have reached the source up to a frame period before requested_at.
        self.keyframe_latencies: list[tuple[float, float]] = []
        self.rate_control: rtc.EncodedRateControl | None = None  # latest target from WebRTC

    @property
    def started_at(self) -> float | None:
        """The monotonic time of video frame 0 and audio sample 0, once started."""
        return self._started_at

    async def start(self) -> None:
        """Connect, publish the tracks and start sending; leave the room if that fails."""
        # A publisher needs nothing from the room: not subscribing spares it decoding
        # other participants' media (tests put several publishers in one room).
        options = rtc.RoomOptions(auto_subscribe=False, rtc_config=rtc_configuration(self._url),
                                  encryption=self._encryption)
        await self.room.connect(self._url, self._token, options)
        self._running = True
        logger.info(
            "connected to room %s as %s", self.room.name, self.room.local_participant.identity
        )
        try:
            if self._video is not None:
                self._video_source = await self._publish_video()
            if self._audio is not None:
                self._audio_source = await self._publish_audio()
        except BaseException:
            await self.stop()
            raise
        # One t0 for both loops: frame n is due at t0 + n/fps, sample s at t0 + s/48000.
        self._started_at = time.monotonic()
        if self._audio is not None and self._audio_source is not None:
            await self._prime_audio(self._audio_source, self._audio)
            self._spawn(self._send_audio(self._audio_source, self._audio, self._started_at))
        if self._video is not None and self._video_source is not None:
            self._spawn(self._send_video(self._video_source, self._video, self._started_at))

    async def _publish_video(self) -> rtc.EncodedVideoSource:
        source = rtc.EncodedVideoSource(self.width, self.height)
        track = rtc.LocalVideoTrack.create_video_track("camera", source)
        options = rtc.TrackPublishOptions(
            source=rtc.TrackSource.SOURCE_CAMERA,
            video_codec=rtc.VideoCodec.H264,
            # One layer: the access units are ours, the SDK cannot make simulcast layers.
            simulcast=False,
            video_encoder=rtc.VideoEncoderBackend.ENCODER_BACKEND_PRE_ENCODED,
            # Declare the rate x264 actually makes. Left to the SDK's default for the
            # resolution, a 2 Mbit/s stream at 320x180 overran libwebrtc's pacer and
            # reached a subscriber ~450 ms late at first (~45 ms with this).
            video_encoding=rtc.VideoEncoding(
                max_bitrate=round(self._bitrate * BITRATE_HEADROOM), max_framerate=self.fps
            ),
        )
        publication = await self.room.local_participant.publish_track(track, options)
        self.video_track_sid = publication.sid
        logger.info("published video %s (%dx%d H.264)", publication.sid, self.width, self.height)
        return source

    async def _publish_audio(self) -> rtc.AudioSource:
        source = rtc.AudioSource(AUDIO_SAMPLE_RATE, AUDIO_CHANNELS, queue_size_ms=AUDIO_QUEUE_MS)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
        # The SDK publishes RED (audio/red, Opus with redundancy) by default; plain
        # Opus unless asked is what the recorder tests expect to see in the room.
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE, red=self._red)
        publication = await self.room.local_participant.publish_track(track, options)
        self.audio_track_sid = publication.sid
        logger.info("published audio %s (%s)", publication.sid, "RED" if self._red else "Opus")
        return source

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        task.add_done_callback(_log_failure)
        self._tasks.append(task)

    def set_video_paused(self, paused: bool) -> None:
        """Stop or resume sending video frames: a camera that stops sending.

        The picture keeps following the clock while paused (frame numbers are skipped),
        so flashes and beeps stay aligned after resuming.
        """
        if paused != self._video_paused:
            logger.info("video %s", "paused" if paused else "resumed")
        self._video_paused = paused

    def set_audio_silent(self, silent: bool) -> None:
        """Send silence instead of the tone and beeps (the SDK then sends only the few
        bytes a second of Opus DTX)."""
        if self._audio is not None:
            self._audio.silent = silent

    async def _send_video(
        self, source: rtc.EncodedVideoSource, video: SyntheticVideo | LoopedVideo,
        started_at: float
    ) -> None:
        period = 1.0 / video.fps
        tick = 0
        pending_request: float | None = None  # when the oldest unanswered request came
        while True:
            # A fixed schedule, not sleep(period): sleep drift would lower the frame rate.
            due = started_at + tick * period
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > MAX_LATE_PERIODS * period:
                missed = int(-delay / period)
                self.frames_dropped += missed
                tick += missed
                logger.warning("video loop %.0f ms late: dropped %d frames", -delay * 1e3, missed)
                continue
            pending_request = self._poll_feedback(source, video, pending_request)
            if pending_request is not None and (
                    time.monotonic() - pending_request >= self._answer_delay):
                video.request_keyframe()
            if not self._video_paused:
                # Frame numbers follow the clock: ticks not sent are frames not shown.
                video.skip(tick - video.next_index)
                unit = video.next_access_unit()
                self._capture(source, video, unit, due)
                if unit.keyframe and pending_request is not None:
                    self.keyframe_latencies.append((pending_request, time.monotonic()))
                    pending_request = None
            tick += 1

    def _poll_feedback(
        self,
        source: rtc.EncodedVideoSource,
        video: SyntheticVideo | LoopedVideo,
        pending_request: float | None,
    ) -> float | None:
        """Forward WebRTC's encoder feedback to x264; return the pending request time."""
        feedback = source.take_feedback()
        if feedback.rate_control is not None and feedback.rate_control != self.rate_control:
            # Only recorded: the synthetic stream keeps its bitrate so tests are stable.
            logger.debug(
                "rate control: %d bps, %.1f fps",
                feedback.rate_control.target_bitrate_bps,
                feedback.rate_control.framerate_fps,
            )
            self.rate_control = feedback.rate_control
        if not feedback.keyframe_requested:
            return pending_request
        if pending_request is None:
            self.keyframe_requests += 1
            pending_request = time.monotonic()
            logger.debug("keyframe requested")
        return pending_request

    def _capture(
        self,
        source: rtc.EncodedVideoSource,
        video: SyntheticVideo | LoopedVideo,
        unit: SyntheticAccessUnit,
        due: float,
    ) -> None:
        frame = rtc.EncodedVideoFrame(
            data=unit.data,
            width=video.width,
            height=video.height,
            codec=rtc.VideoCodec.H264,
            frame_type=(
                rtc.EncodedFrameType.ENCODED_FRAME_KEY
                if unit.keyframe
                else rtc.EncodedFrameType.ENCODED_FRAME_DELTA
            ),
            # The capture time sender reports map RTP time to: the tick's scheduled time
            # on the monotonic clock (libwebrtc's clock too), the same clock the audio
            # queue drains on, so flash k and beep k get the same wall-clock time.
            timestamp_us=round(due * 1_000_000),
        )
        if not source.capture_frame(frame):
            self.frames_rejected += 1
            logger.warning("the SDK rejected video frame %d", unit.index)
            return
        self.frames_sent += 1
        self.published_hashes.append((unit.index, unit.keyframe, access_unit_digest(unit.data)))

    async def _prime_audio(self, source: rtc.AudioSource, audio: SyntheticAudio) -> None:
        """Fill the SDK's audio queue before the first x264 encode can block the loop.

        The queue drains from the first 10 ms it holds, in real time; if it ran dry once
        (a 720p IDR takes ~20 ms to encode), every later beep would leave that much late.
        """
        while audio.position < (AUDIO_QUEUE_MS - 10) * audio.sample_rate // 1000:
            await self._capture_audio(source, audio)

    async def _send_audio(
        self, source: rtc.AudioSource, audio: SyntheticAudio, started_at: float
    ) -> None:
        underrun = False
        while True:
            await self._capture_audio(source, audio)  # returns once the queue has room
            # The queue drains in real time; if fewer samples were produced than that,
            # it ran dry and the beeps now leave late relative to the flashes.
            behind = (time.monotonic() - started_at) - audio.position / audio.sample_rate
            self.audio_behind = max(self.audio_behind, behind)
            if behind > 0.010 and not underrun:
                self.audio_underruns += 1
                logger.warning("audio queue ran dry: %.0f ms behind the clock", behind * 1e3)
            underrun = behind > 0.010

    async def _capture_audio(self, source: rtc.AudioSource, audio: SyntheticAudio) -> None:
        pcm = audio.next_frame(AUDIO_FRAME_SAMPLES)
        frame = rtc.AudioFrame(
            pcm.tobytes(), audio.sample_rate, audio.channels, AUDIO_FRAME_SAMPLES
        )
        await source.capture_frame(frame)
        self.audio_frames_sent += 1

    async def stop(self) -> None:
        """Stop sending, unpublish both tracks and leave the room. Idempotent."""
        if not self._running:
            return
        self._running = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.room.isconnected():
            for sid in (self.video_track_sid, self.audio_track_sid):
                if sid is not None:
                    try:
                        await self.room.local_participant.unpublish_track(sid)
                    except Exception:  # leaving the room unpublishes it anyway
                        logger.warning("could not unpublish %s", sid, exc_info=True)
            await self.room.disconnect()
        sources = [s for s in (self._video_source, self._audio_source) if s is not None]
        self._video_source = self._audio_source = None
        await _close_sources(sources)
        logger.info(
            "stopped: %d video frames (%d dropped late), %d audio frames, %d keyframe requests",
            self.frames_sent,
            self.frames_dropped,
            self.audio_frames_sent,
            self.keyframe_requests,
        )


def rtc_configuration(url: str) -> rtc.RtcConfiguration | None:
    """For a server on loopback, ICE servers that keep every packet on this machine.

    livekit-server without STUN/TURN configured hands clients Google's public STUN
    servers; libwebrtc then makes DNS queries and STUN requests through the network
    interface. A non-empty list replaces the server's; nothing listens on port 9
    (discard), so the one STUN server given fails at once, on loopback.
    """
    if not is_loopback_url(url):
        return None  # a real deployment: the server's ICE servers are the right ones
    return rtc.RtcConfiguration(ice_servers=[rtc.IceServer(urls=["stun:127.0.0.1:9"])])


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("publisher loop failed", exc_info=task.exception())


def make_token(api_key: str, api_secret: str, room: str, identity: str) -> str:
    """A join token for ``identity`` in ``room``."""
    return (
        api.AccessToken(api_key, api_secret)
        .with_identity(identity)
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .to_jwt()
    )


async def _run(args: argparse.Namespace) -> None:
    identities = ([args.identity] if args.count == 1 else
                  [f"{args.identity}-{n}" for n in range(args.count)])
    publishers = [SyntheticPublisher(
        args.url, make_token(args.api_key, args.api_secret, args.room, identity),
        width=args.width, height=args.height, fps=args.fps, bitrate=args.bitrate,
        keyframe_interval_s=args.keyframe_interval, flash_period_s=args.flash_period,
        looped=args.looped, red=args.red) for identity in identities]
    for publisher in publishers:
        await publisher.start()
    print(
        f"publishing {args.width}x{args.height} {args.fps} fps H.264 + Opus as "
        f"{', '.join(identities)} in {args.room!r}",
        flush=True,
    )
    # SIGTERM (a benchmark ending its publisher) leaves the room cleanly, like the end.
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    cpu, wall = time.process_time(), time.monotonic()
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.duration)
    finally:
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        for publisher in publishers:
            await publisher.stop()
    for identity, publisher in zip(identities, publishers, strict=True):
        print(
            f"{identity}: sent {publisher.frames_sent} video frames "
            f"({publisher.frames_dropped} dropped late), {publisher.audio_frames_sent} audio "
            f"frames, honoured {publisher.keyframe_requests} keyframe requests",
            flush=True,
        )
    print(f"CPU {cpu / wall:.3f} s per s over {wall:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Publish synthetic H.264 + Opus to LiveKit.")
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--api-secret", required=True)
    parser.add_argument("--room", required=True)
    parser.add_argument("--identity", default="synthetic-publisher")
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=2_000_000, help="bits per second")
    parser.add_argument("--keyframe-interval", type=float, default=2.0, help="seconds")
    parser.add_argument("--flash-period", type=float, default=2.0, help="seconds")
    parser.add_argument("--count", type=int, default=1,
                        help="publishers in this process, named IDENTITY-0, IDENTITY-1, ...")
    parser.add_argument("--looped", action="store_true",
                        help="encode a few seconds once and loop them (cheap; benchmarks)")
    parser.add_argument("--red", action="store_true",
                        help="publish audio as RED (Opus with redundancy), as browsers do")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
