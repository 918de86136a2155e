"""A real LiveKit publisher built on the official SDK: pre-encoded H.264 and Opus.

Video goes through ``EncodedVideoSource`` untouched, so what the recorder receives can
be compared byte for byte with ``published_hashes``. Keyframe requests that reach the
source (PLIs forwarded by the SFU) are honoured on the next frame.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time

from livekit import api, rtc

from .synthetic_media import SyntheticAudio, SyntheticVideo, access_unit_digest

logger = logging.getLogger(__name__)

AUDIO_FRAME_SAMPLES = 480  # 10 ms at 48 kHz


class SyntheticPublisher:
    def __init__(self, url: str, token: str, *, width: int = 1280, height: int = 720,
                 fps: int = 30, bitrate: int = 2_000_000, keyframe_interval_s: float = 2.0,
                 flash_period_s: float = 2.0, video: bool = True, audio: bool = True) -> None:
        self._url, self._token = url, token
        self.width, self.height, self.fps = width, height, fps
        self._video = (SyntheticVideo(width, height, fps, bitrate, keyframe_interval_s,
                                      flash_period_s) if video else None)
        self._audio = SyntheticAudio(beep_period_s=flash_period_s) if audio else None
        self.room = rtc.Room()
        self._tasks: list[asyncio.Task[None]] = []
        self._video_paused = False
        self.frames_sent = 0
        self.audio_frames_sent = 0
        self.keyframe_requests = 0
        self.keyframe_latencies: list[tuple[float, float]] = []  # (requested_at, sent_at)
        # (index, keyframe, access_unit_digest): what the recorder must receive unchanged
        self.published_hashes: list[tuple[int, bool, str]] = []
        self.video_track_sid: str | None = None
        self.audio_track_sid: str | None = None

    async def start(self) -> None:
        await self.room.connect(self._url, self._token)
        participant = self.room.local_participant
        if self._video is not None:
            source = rtc.EncodedVideoSource(self.width, self.height)
            track = rtc.LocalVideoTrack.create_video_track("camera", source)
            publication = await participant.publish_track(track, rtc.TrackPublishOptions(
                source=rtc.TrackSource.SOURCE_CAMERA, video_codec=rtc.VideoCodec.H264,
                simulcast=False, video_encoder=rtc.VideoEncoderBackend.ENCODER_BACKEND_PRE_ENCODED,
            ))
            self.video_track_sid = publication.sid
            self._tasks.append(asyncio.create_task(self._send_video(source, self._video)))
        if self._audio is not None:
            audio_source = rtc.AudioSource(self._audio.sample_rate, self._audio.channels)
            audio_track = rtc.LocalAudioTrack.create_audio_track("microphone", audio_source)
            publication = await participant.publish_track(audio_track, rtc.TrackPublishOptions(
                source=rtc.TrackSource.SOURCE_MICROPHONE))
            self.audio_track_sid = publication.sid
            self._tasks.append(asyncio.create_task(self._send_audio(audio_source, self._audio)))

    def set_video_paused(self, paused: bool) -> None:
        """Stop or resume sending video frames: a camera that stops sending."""
        self._video_paused = paused

    async def _send_video(self, source: rtc.EncodedVideoSource, video: SyntheticVideo) -> None:
        period = 1.0 / video.fps
        next_due = time.monotonic()
        pending_request: float | None = None
        while True:
            # A fixed schedule, not sleep(period): drift would change the frame rate.
            next_due += period
            await asyncio.sleep(max(0.0, next_due - time.monotonic()))
            if source.take_feedback().keyframe_requested:
                self.keyframe_requests += 1
                pending_request = time.monotonic()
                video.request_keyframe()
            if self._video_paused:
                continue
            unit = video.next_access_unit()
            source.capture_frame(rtc.EncodedVideoFrame(
                data=unit.data, width=video.width, height=video.height,
                codec=rtc.VideoCodec.H264,
                frame_type=(rtc.EncodedFrameType.ENCODED_FRAME_KEY if unit.keyframe
                            else rtc.EncodedFrameType.ENCODED_FRAME_DELTA),
                timestamp_us=unit.timestamp_us,
            ))
            self.frames_sent += 1
            self.published_hashes.append(
                (unit.index, unit.keyframe, access_unit_digest(unit.data)))
            if unit.keyframe and pending_request is not None:
                self.keyframe_latencies.append((pending_request, time.monotonic()))
                pending_request = None

    async def _send_audio(self, source: rtc.AudioSource, audio: SyntheticAudio) -> None:
        while True:
            pcm = audio.next_frame(AUDIO_FRAME_SAMPLES)
            frame = rtc.AudioFrame(pcm.tobytes(), audio.sample_rate, audio.channels,
                                   AUDIO_FRAME_SAMPLES)
            await source.capture_frame(frame)  # paces itself: it waits for room in its queue
            self.audio_frames_sent += 1

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.room.disconnect()


def _token(args: argparse.Namespace) -> str:
    return (api.AccessToken(args.api_key, args.api_secret).with_identity(args.identity)
            .with_grants(api.VideoGrants(room_join=True, room=args.room)).to_jwt())


async def _main(args: argparse.Namespace) -> None:
    publisher = SyntheticPublisher(args.url, _token(args), width=args.width,
                                   height=args.height, fps=args.fps,
                                   keyframe_interval_s=args.keyframe_interval,
                                   bitrate=args.bitrate)
    await publisher.start()
    print(f"publishing as {args.identity!r} in {args.room!r}", flush=True)
    try:
        await asyncio.sleep(args.duration)
    finally:
        await publisher.stop()
    print(f"sent {publisher.frames_sent} video frames, {publisher.audio_frames_sent} "
          f"audio frames, honoured {publisher.keyframe_requests} keyframe requests")


def main() -> None:
    parser = argparse.ArgumentParser(description="Publish synthetic H.264 + Opus to LiveKit.")
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--api-secret", required=True)
    parser.add_argument("--room", required=True)
    parser.add_argument("--identity", default="synthetic-publisher")
    parser.add_argument("--duration", type=float, default=3600.0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=2_000_000)
    parser.add_argument("--keyframe-interval", type=float, default=2.0)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
