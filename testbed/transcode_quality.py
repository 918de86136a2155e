"""What transcoding a browser's VP8 to H.264 costs, and what it keeps: for each x264
preset and quality setting, the CPU per second of 720p30 video (as a share of a core)
and the SSIM and PSNR of the H.264 against the VP8 it came from, decoded.

The sources are VP8 as a browser sends it (libvpx in its real-time mode, 2 Mbit/s),
from two clips FFmpeg draws: ``moving`` (testsrc2: fine detail and text in motion) and
``camera`` (the same with a sensor's grain, which costs an encoder most). Each is run
through the agent's own ``VideoTranscoder`` with one keyframe (the recorder asks for
one per segment: every 2 s here), and the H.264 is compared frame by frame by FFmpeg's
ssim and psnr filters. CPU is the process's (every thread's) during the transcoding,
decoding included; decoding alone is measured apart.

    scripts/bench-transcode              # the table (about two minutes)
    scripts/bench-transcode --seconds 5 --presets ultrafast,superfast
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import tempfile
from pathlib import Path

import av

from publisher_hls_agent.media.transcode import EncoderSettings, VideoTranscoder

CLIPS = {
    "moving": "testsrc2=size=1280x720:rate=30",
    "camera": "testsrc2=size=1280x720:rate=30,noise=alls=10:allf=t",
}
FPS = 30


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def vp8_source(clip: str, seconds: float, folder: Path) -> Path:
    """The clip as a browser's VP8 (IVF), and its frames decoded (Y4M) beside it."""
    out = folder / f"{clip}.ivf"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", CLIPS[clip],
                    "-t", str(seconds), "-c:v", "libvpx", "-deadline", "realtime",
                    "-cpu-used", "8", "-b:v", "2M", "-lag-in-frames", "0",
                    "-g", "100000", str(out)], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(out), "-pix_fmt", "yuv420p",
                    str(folder / f"{clip}.y4m")], check=True)
    return out


def vp8_frames(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(packet) for packet in container.demux(video=0) if packet.size]


def decode_cost(frames: list[bytes]) -> float:
    decoder = av.CodecContext.create("libvpx", "r")
    before = cpu_seconds()
    for frame in frames:
        decoder.decode(av.Packet(frame))
    return cpu_seconds() - before


def transcode_clip(frames: list[bytes], settings: EncoderSettings, out: Path) -> float:
    """CPU seconds to transcode ``frames`` with ``settings``; the H.264 goes to ``out``."""
    transcoder = VideoTranscoder("vp8", (1280, 720), settings)
    before = cpu_seconds()
    with out.open("wb") as sink:
        for index, frame in enumerate(frames):
            if index % (2 * FPS) == 0:
                transcoder.force_keyframe()
            for picture in transcoder.transcode(frame, index * 3000):
                sink.write(picture.data)
    return cpu_seconds() - before


def compare(h264: Path, reference: Path) -> tuple[float, float]:
    """(SSIM, PSNR in dB) of ``h264`` against ``reference``, over all frames."""
    scores = []
    for metric, pattern in (("ssim", r"All:([\d.]+)"), ("psnr", r"average:([\d.inf]+)")):
        log = subprocess.run(
            ["ffmpeg", "-v", "info", "-r", str(FPS), "-i", str(h264), "-i", str(reference),
             "-lavfi", f"[0:v][1:v]{metric}", "-f", "null", "-"],
            capture_output=True, text=True, check=True).stderr
        found = re.findall(pattern, log)
        scores.append(float(found[-1]) if found else float("nan"))
    return scores[0], scores[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--presets", default="ultrafast,superfast,veryfast,faster")
    parser.add_argument("--crf", default="23,27")
    parser.add_argument("--threads", default="1,auto",
                        help="x264 threads to try (auto: x264's own choice)")
    arguments = parser.parse_args()
    presets = arguments.presets.split(",")
    rates = arguments.crf.split(",")
    threads = arguments.threads.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for clip in CLIPS:
            frames = vp8_frames(vp8_source(clip, arguments.seconds, folder))
            seconds = len(frames) / FPS
            decoding = decode_cost(frames) / seconds
            print(f"{clip}: {len(frames)} VP8 frames, decoding alone {decoding:.0%} of a core",
                  flush=True)
            for preset in presets:
                for crf in rates:
                    for thread_count in threads:
                        settings = EncoderSettings(preset, int(crf), 0 if thread_count == "auto"
                                                   else int(thread_count))
                        out = folder / f"{clip}-{preset}-{crf}-{thread_count}.h264"
                        cpu = transcode_clip(frames, settings, out) / seconds
                        ssim, psnr = compare(out, folder / f"{clip}.y4m")
                        kbps = out.stat().st_size * 8 / seconds / 1000
                        rows.append((clip, preset, crf, thread_count, cpu, ssim, psnr, kbps))
                        print(f"  {preset:9} crf {crf} threads {thread_count:4}: "
                              f"{cpu:4.0%} of a core, SSIM {ssim:.4f}, PSNR {psnr:.2f} dB, "
                              f"{kbps:.0f} kbit/s", flush=True)
    print("\n| clip | preset | crf | threads | CPU (720p30, % of a core) | SSIM | PSNR | "
          "kbit/s |\n|---|---|---|---|---|---|---|---|")
    for clip, preset, crf, thread_count, cpu, ssim, psnr, kbps in rows:
        print(f"| {clip} | {preset} | {crf} | {thread_count} | {cpu:.0%} | {ssim:.4f} | "
              f"{psnr:.2f} | {kbps:.0f} |")


if __name__ == "__main__":
    main()
