"""Recordings uploaded to a real MinIO by the agent worker, in real time and in batch,
through outages, restarts and refusals."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from pathlib import Path

import aiohttp
import av
import pytest
from aiobotocore.session import get_session
from testbed.livekit_server import LiveKitServer
from testbed.minio import ACCESS_KEY, SECRET_KEY, MinIO, read_then_list, running_minio

from publisher_hls_agent.config import Config
from publisher_hls_agent.hls.check import check_recording
from publisher_hls_agent.storage.s3 import UploadError
from publisher_hls_agent.storage.storage import Storage

from .support import agent, dispatch_job, publishing, recordings, wait_for

pytestmark = pytest.mark.integration

SMALL = {"width": 320, "height": 240}


def names_in(playlist: bytes) -> list[str]:
    """The files a playlist names: its segments and its EXT-X-MAP."""
    text = playlist.decode()
    return (re.findall(r'URI="([^"]+)"', text)
            + [line for line in text.splitlines() if line and not line.startswith("#")])


async def download(minio: MinIO, bucket: str, prefix: str, into: Path) -> Path:
    objects = await minio.objects(bucket, prefix)
    for key, data in objects.items():
        path = into / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return into / prefix


def only_prefix(keys: list[str]) -> str:
    prefixes = {key.rsplit("/", 1)[0] + "/" for key in keys}
    assert len(prefixes) == 1, prefixes
    return prefixes.pop()


async def test_realtime_upload_keeps_the_bucket_playable_at_every_instant(
        livekit_server: LiveKitServer, minio: MinIO, tmp_path: Path) -> None:
    bucket = "realtime"
    await minio.create_bucket(bucket)
    output = tmp_path / "out"
    closed: dict[str, float] = {}  # segment -> when the local playlist first named it
    in_bucket: dict[str, float] = {}  # segment -> when it appeared in the bucket
    polls = 0
    async with agent(livekit_server, tmp_path, "upload-rt", KEEP_OPUS="true",
                     **minio.environment(bucket, S3_REALTIME_UPLOAD="true",
                                         S3_PREFIX="meetings/")) as worker:
        await dispatch_job(livekit_server, "upload-rt", "room one")
        async with publishing(livekit_server, "room one", "ana/../../etc", **SMALL), \
                minio.client() as s3:
            started = time.monotonic()
            # At least 10 s, and until six segments were named (a busy machine starts
            # later), within a deadline.
            while (time.monotonic() - started < 10 or len(closed) < 6) \
                    and time.monotonic() - started < 40:
                now = time.monotonic()
                for path in output.glob("*/playlist.m3u8"):  # names a segment once closed
                    for name in names_in(path.read_bytes()):
                        closed.setdefault(name, now)
                # The playlists first, then what the bucket holds: every segment a
                # playlist named when it was read must be there by then (a listing
                # taken before the playlist is read may miss what was uploaded since).
                playlists, keys = await read_then_list(s3, bucket, "playlist.m3u8")
                polls += 1
                for key in keys:
                    in_bucket.setdefault(key.rsplit("/", 1)[-1], now)
                for key, body in playlists.items():
                    folder = key.rsplit("/", 1)[0] + "/"
                    for name in names_in(body):
                        assert folder + name in keys, f"{key} names missing {name}"
                await asyncio.sleep(0.2)
        await wait_for(lambda: bool(recordings(output)), 20, "the recording's end")
        await asyncio.sleep(2)  # the last segment, recording.json, the final playlist
    assert polls >= 20
    keys = await minio.keys(bucket)
    prefix = only_prefix(keys)
    assert prefix.startswith("meetings/room_one-") and "/ana_.._.._etc-" in prefix
    delays = []
    for segment, seen_locally in closed.items():
        assert segment in in_bucket, f"{segment} never uploaded"
        delays.append(in_bucket[segment] - seen_locally)
    assert len(delays) >= 6
    print(f"\nreal-time upload: {len(delays)} segments in the bucket at most "
          f"{max(delays):.2f} s after they closed, {polls} bucket polls")
    assert max(delays) <= 1.0 + 0.3  # a poll of the bucket and of the disk's slack
    local = next(iter(recordings(output).values()))
    assert not list(local.glob("segment*.m4s")), "uploaded segments were kept on disk"
    assert (local / "output.mp4").stat().st_size > 0
    state = json.loads((local / ".upload.json").read_text())
    assert state["complete"] and not state.get("error")
    assert "uploaded to s3://realtime/meetings/" in worker.log()
    downloaded = await download(minio, bucket, prefix, tmp_path / "bucket")
    assert check_recording(downloaded).ok, check_recording(downloaded).render()


async def test_batch_upload_happens_after_the_recording(
        livekit_server: LiveKitServer, minio: MinIO, tmp_path: Path) -> None:
    bucket = "batch"
    await minio.create_bucket(bucket)
    output = tmp_path / "out"
    async with agent(livekit_server, tmp_path, "upload-batch", **minio.environment(bucket)):
        await dispatch_job(livekit_server, "upload-batch", "batch")
        async with publishing(livekit_server, "batch", "bo", **SMALL):
            await wait_for(lambda: any(output.glob("*/segment00003.ts")), 20, "segments")
            assert await minio.keys(bucket) == [], "uploaded before the end"
        await wait_for(lambda: bool(recordings(output)), 20, "the recording's end")
        folder = recordings(output)["bo"]
        await wait_for(lambda: json.loads((folder / ".upload.json").read_text())["complete"],
                       20, "the upload")
    keys = await minio.keys(bucket)
    local_files = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
    assert {k.rsplit("/", 1)[-1] for k in keys} == local_files - {"output.ts"}
    downloaded = await download(minio, bucket, only_prefix(keys), tmp_path / "bucket")
    assert check_recording(downloaded).ok


async def test_a_store_outage_loses_nothing(livekit_server: LiveKitServer, minio: MinIO,
                                            tmp_path: Path) -> None:
    bucket = "outage"
    await minio.create_bucket(bucket)
    output = tmp_path / "out"
    async with agent(livekit_server, tmp_path, "upload-outage",
                     **minio.environment(bucket, S3_REALTIME_UPLOAD="true")) as worker:
        await dispatch_job(livekit_server, "upload-outage", "outage")
        async with publishing(livekit_server, "outage", "olga", **SMALL):
            await wait_for(lambda: any(output.glob("*/playlist.m3u8")), 20, "a recording")
            await asyncio.sleep(2)
            await asyncio.to_thread(minio.stop)
            try:
                await asyncio.sleep(20)
            finally:
                await asyncio.to_thread(minio.start)
            await asyncio.sleep(2)
        await wait_for(lambda: bool(recordings(output)), 20, "the recording's end")
        folder = recordings(output)["olga"]
        await wait_for(lambda: json.loads((folder / ".upload.json").read_text())["complete"],
                       60, "the upload to catch up")
        assert "retrying" in worker.log()
    summary = json.loads((folder / "recording.json").read_text())
    keys = await minio.keys(bucket)
    names = {k.rsplit("/", 1)[-1] for k in keys}
    assert {s["name"] for s in summary["segments"]} <= names
    assert summary["duration"] > 22
    downloaded = await download(minio, bucket, only_prefix(keys), tmp_path / "bucket")
    report = check_recording(downloaded)
    assert report.ok, report.render()
    assert len(report.segments) == len(summary["segments"])


async def test_an_upload_cut_short_by_sigkill_is_finished_after_a_restart(
        livekit_server: LiveKitServer, minio: MinIO, tmp_path: Path) -> None:
    bucket = "restart"
    await minio.create_bucket(bucket)
    output = tmp_path / "out"
    environment = minio.environment(bucket)
    await asyncio.to_thread(minio.stop)  # the upload cannot finish while the store is away
    try:
        async with agent(livekit_server, tmp_path, "upload-kill", **environment) as worker:
            await dispatch_job(livekit_server, "upload-kill", "kill")
            async with publishing(livekit_server, "kill", "kim", **SMALL):
                await wait_for(lambda: any(output.glob("*/segment00002.ts")), 20, "segments")
            await wait_for(lambda: bool(recordings(output)), 20, "the recording's end")
            await asyncio.sleep(1)
            await worker.kill_all()
    finally:
        await asyncio.to_thread(minio.start)
    folder = recordings(output)["kim"]
    assert not json.loads((folder / ".upload.json").read_text())["complete"]
    assert await minio.keys(bucket) == []
    async with agent(livekit_server, tmp_path, "upload-kill", **environment) as worker:
        await wait_for(lambda: json.loads((folder / ".upload.json").read_text())["complete"],
                       30, "the recovered upload")
        assert "recovered the upload of" in worker.log()
    keys = await minio.keys(bucket)
    downloaded = await download(minio, bucket, only_prefix(keys), tmp_path / "bucket")
    assert check_recording(downloaded).ok


async def test_a_recording_cut_short_by_sigkill_is_closed_and_uploaded_after_a_restart(
        livekit_server: LiveKitServer, minio: MinIO, tmp_path: Path) -> None:
    """The agent and its recording processes SIGKILLed mid-recording: nothing finalized
    (no ENDLIST, no recording.json). The next start closes the recording from what is
    on disk, losing at most the segment in progress, and uploads it."""
    bucket = "cut-short"
    await minio.create_bucket(bucket)
    output = tmp_path / "out"
    environment = minio.environment(bucket)
    async with agent(livekit_server, tmp_path, "cut-short", **environment) as worker:
        await dispatch_job(livekit_server, "cut-short", "cut")
        async with publishing(livekit_server, "cut", "carl", **SMALL):
            await wait_for(lambda: any(output.glob("*/segment00003.ts")), 30, "segments")
            await worker.kill_all()
    [folder] = [path.parent for path in output.glob("*/playlist.m3u8")]
    assert not (folder / "recording.json").exists()
    assert "#EXT-X-ENDLIST" not in (folder / "playlist.m3u8").read_text()
    on_disk = sorted(path.name for path in folder.glob("segment*.ts"))
    async with agent(livekit_server, tmp_path, "cut-short", **environment) as worker:
        await wait_for(lambda: (folder / ".upload.json").exists() and json.loads(
            (folder / ".upload.json").read_text())["complete"], 30, "the closed recording's upload")
        assert "cut short by an earlier run" in worker.log()
    summary = json.loads((folder / "recording.json").read_text())
    assert summary["state"] == "interrupted" and summary["participant"] == "carl"
    assert [segment["name"] for segment in summary["segments"]] == on_disk
    assert check_recording(folder).ok
    keys = await minio.keys(bucket)
    downloaded = await download(minio, bucket, only_prefix(keys), tmp_path / "bucket")
    report = check_recording(downloaded)
    assert report.ok, report.render()
    assert len(report.segments) == len(on_disk)


async def test_refused_credentials_fail_the_job_and_keep_the_recording(
        livekit_server: LiveKitServer, minio: MinIO, tmp_path: Path) -> None:
    bucket = "refused"
    await minio.create_bucket(bucket)
    output = tmp_path / "out"
    secret = "not-the-secret-at-all"
    async with agent(livekit_server, tmp_path, "upload-refused",
                     **minio.environment(bucket, S3_SECRET_KEY=secret)) as worker:
        await dispatch_job(livekit_server, "upload-refused", "refused")
        async with publishing(livekit_server, "refused", "rex", **SMALL):
            await wait_for(lambda: any(output.glob("*/segment00002.ts")), 20, "segments")
        await wait_for(lambda: "job failed" in worker.log(), 30, "the job's failure")
        log = worker.log()
        await asyncio.sleep(1.5)  # the next progress report carries the failure count
        async with aiohttp.ClientSession() as http, \
                http.get(f"{worker.http_url}/metrics") as reply:
            metrics = await reply.text()
    assert "job failed: upload failed: credentials" in log
    assert secret not in log
    assert 'hls_upload_failures_total{cause="credentials"} 1.0' in metrics
    folder = recordings(output)["rex"]
    assert check_recording(folder).ok  # everything is still on disk
    assert await minio.keys(bucket) == []


async def test_upload_command_with_virtual_hosted_style_addressing(
        livekit_server: LiveKitServer, minio: MinIO, tmp_path: Path) -> None:
    """A recording made without S3, uploaded by hand: ``bucket.host`` addressing
    (S3_FORCE_PATH_STYLE=false; scripts/netns-run resolves vhost.minio.test), a canned
    ACL, a progress bar, the right content types."""
    bucket = "vhost"
    await minio.create_bucket(bucket)
    output = tmp_path / "out"
    async with agent(livekit_server, tmp_path, "upload-cli"):
        await dispatch_job(livekit_server, "upload-cli", "cli")
        async with publishing(livekit_server, "cli", "cleo", **SMALL):
            await wait_for(lambda: any(output.glob("*/segment00002.ts")), 20, "segments")
        await wait_for(lambda: bool(recordings(output)), 20, "the recording's end")
    folder = recordings(output)["cleo"]
    environment = {**os.environ, **minio.environment(
        bucket, S3_ENDPOINT=f"minio.test:{minio.port}", S3_FORCE_PATH_STYLE="false",
        S3_OBJECT_ACL="public-read", S3_PREFIX="by-hand"),
        "LIVEKIT_API_KEY": "unused", "LIVEKIT_API_SECRET": "unused"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "publisher_hls_agent", "upload", str(folder), env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert "[##############################]" in err.decode()
    keys = await minio.keys(bucket)
    prefix = only_prefix(keys)
    assert prefix.startswith("by-hand/cli/cleo/")
    async with minio.client() as client:
        types = {key.rsplit(".", 1)[-1]: (await client.head_object(Bucket=bucket, Key=key))
                 ["ContentType"] for key in keys}
    assert types == {"ts": "video/mp2t", "json": "application/json",
                     "m3u8": "application/vnd.apple.mpegurl"}
    downloaded = await download(minio, bucket, prefix, tmp_path / "bucket")
    assert check_recording(downloaded).ok
    assert (folder / "segment00000.ts").exists(), "a batch upload keeps the local files"


def finished_recording(tmp_path: Path) -> Path:
    """The files of a finished recording, for tests of the upload alone."""
    folder = tmp_path / "room_ana_20261124-101500.250"
    folder.mkdir()
    (folder / "segment00000.ts").write_bytes(b"\x47" * 188)
    (folder / "recording.json").write_text('{"room": "room", "participant": "ana"}')
    (folder / "playlist.m3u8").write_text("#EXTM3U\n#EXTINF:1.0,\nsegment00000.ts\n")
    return folder


async def test_temporary_credentials_with_a_session_token(minio: MinIO, tmp_path: Path) -> None:
    """S3_SESSION_TOKEN: credentials from MinIO's STS (AssumeRole), as AWS would issue."""
    bucket = "sts"
    await minio.create_bucket(bucket)
    async with get_session().create_client(
            "sts", endpoint_url=minio.endpoint, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY) as sts:
        issued = (await sts.assume_role(RoleArn="arn:minio:iam:::role/recorder",
                                        RoleSessionName="recorder"))["Credentials"]
    folder = finished_recording(tmp_path)
    temporary = minio.s3_config(bucket, access_key=issued["AccessKeyId"],
                                secret_key=issued["SecretAccessKey"],
                                session_token=issued["SessionToken"])
    async with Storage(temporary) as storage:
        state = await storage.upload_finished(folder)
    assert state.complete
    assert sorted(await minio.keys(bucket)) == [
        "room/ana/20261124-101500.250/playlist.m3u8",
        "room/ana/20261124-101500.250/recording.json",
        "room/ana/20261124-101500.250/segment00000.ts"]
    (folder / ".upload.json").unlink()
    forged = minio.s3_config(bucket, access_key=issued["AccessKeyId"],
                             secret_key=issued["SecretAccessKey"], session_token="forged")
    async with Storage(forged) as storage:
        with pytest.raises(UploadError) as refused:
            await storage.upload_finished(folder)
    assert refused.value.cause == "credentials"


async def test_https_with_s3_use_ssl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """S3_USE_SSL=true with a host:port endpoint speaks HTTPS; a certificate nobody
    trusts is a clear failure, not a retry loop; AWS_CA_BUNDLE trusts it."""
    with running_minio(tmp_path / "tls", tls=True) as store:
        await store.create_bucket("tls")
        config = Config.from_mapping({
            "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s",
            **store.environment("tls", S3_ENDPOINT=f"127.0.0.1:{store.port}",
                                S3_USE_SSL="true")}).s3
        assert config is not None and config.endpoint.startswith("https://")
        folder = finished_recording(tmp_path)
        monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
        async with Storage(config) as storage:
            with pytest.raises(UploadError) as untrusted:
                await storage.upload_finished(folder)
        assert untrusted.value.cause == "tls"
        assert store.certs is not None
        monkeypatch.setenv("AWS_CA_BUNDLE", str(store.certs / "public.crt"))
        async with Storage(config) as storage:
            assert (await storage.upload_finished(folder)).complete
        assert len(await store.keys("tls")) == 3


async def test_thumbnails_are_made_while_recording_and_uploaded_as_made(
        livekit_server: LiveKitServer, minio: MinIO, tmp_path: Path) -> None:
    bucket = "thumbs"
    await minio.create_bucket(bucket)
    output = tmp_path / "out"
    async with agent(livekit_server, tmp_path, "thumbs", THUMBNAILS_ENABLED="true",
                     THUMBNAIL_INTERVAL_SECS="2", THUMBNAIL_WIDTH="160",
                     **minio.environment(bucket, S3_REALTIME_UPLOAD="true")):
        await dispatch_job(livekit_server, "thumbs", "thumbs")
        async with publishing(livekit_server, "thumbs", "tess", **SMALL):
            await wait_for(lambda: any(output.glob("*/thumbnails/thumb00002.jpg")), 30,
                           "three thumbnails")
            for _ in range(100):  # in real time: in the bucket while still recording
                uploaded = [k for k in await minio.keys(bucket) if "/thumbnails/" in k]
                if any(k.endswith("thumb00001.jpg") for k in uploaded):
                    break
                await asyncio.sleep(0.2)
            assert any(k.endswith("/thumbnails/thumbnails.m3u8") for k in uploaded), uploaded
        await wait_for(lambda: bool(recordings(output)), 30, "the recording's end")
        folder = recordings(output)["tess"]
        await wait_for(lambda: json.loads((folder / ".upload.json").read_text())["complete"],
                       30, "the upload")
    summary = json.loads((folder / "recording.json").read_text())
    made = summary["thumbnails"]
    assert made["playlist"] == "thumbnails/thumbnails.m3u8" and made["format"] == "jpg"
    assert len(made["images"]) >= 3
    assert [image["at"] for image in made["images"]][:3] == pytest.approx([0, 2, 4], abs=0.5)
    for image in made["images"]:
        with av.open(str(folder / image["name"])) as opened:
            picture = next(opened.decode(video=0))
            assert (picture.width, picture.height) == (160, 120)
    keys = await minio.keys(bucket)
    [prefix] = [key.removesuffix("playlist.m3u8") for key in keys
                if key.endswith("/playlist.m3u8")]
    assert {prefix + image["name"] for image in made["images"]} <= set(keys)
    assert prefix + "thumbnails/thumbnails.m3u8" in keys
