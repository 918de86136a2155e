"""The agent as its users run it: ``publisher-hls-agent run`` taking JT_PUBLISHER jobs
from a real LiveKit server, for rooms created with ``dispatch-job``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path

import aiohttp
import pytest
from livekit import api, rtc
from testbed.agent_process import AgentProcess
from testbed.browser_publisher import browser_publishing
from testbed.livekit_server import LiveKitServer, free_port, running_server

from publisher_hls_agent.hls.check import check_recording

from ..bench.support import publisher_process
from .support import agent, dispatch_job, publishing, recordings, token, wait_for

pytestmark = pytest.mark.integration


async def get_json(url: str, token: str | None = None) -> tuple[int, object]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as reply:
        body = await reply.text()
        return reply.status, (json.loads(body) if reply.content_type == "application/json"
                              else body)


async def test_three_publishers_three_independent_recordings(
        livekit_server: LiveKitServer, tmp_path: Path) -> None:
    async with agent(livekit_server, tmp_path, "worker-three") as worker:
        created = await dispatch_job(livekit_server, "worker-three", "three")
        assert created["room"] == "three" and created["agent_name"] == "worker-three"
        async with publishing(livekit_server, "three", "alice"), \
                publishing(livekit_server, "three", "bob"), \
                publishing(livekit_server, "three", "carol"):
            status, listing = await get_json(f"{worker.http_url}/v1/recordings",
                                             worker.control_token())
            await wait_for(lambda: len(list((tmp_path / "out").glob("*/segment00002.ts"))) == 3,
                           30, "three recordings with three segments each")
            # The listing comes from the recording processes' progress reports (every
            # second): held media can reach the disk before the next report says so.
            for _ in range(20):
                status, listing = await get_json(f"{worker.http_url}/v1/recordings",
                                                 worker.control_token())
                assert status == 200
                assert isinstance(listing, dict)
                listed = {r["participant"]: r for r in listing["recordings"]}
                if {r["state"] for r in listed.values()} == {"recording"}:
                    break
                await asyncio.sleep(0.5)
            assert set(listed) == {"alice", "bob", "carol"}
            assert {r["state"] for r in listed.values()} == {"recording"}
            assert len({r["process"] for r in listed.values()}) == 2  # spread over processes
        await wait_for(lambda: len(recordings(tmp_path / "out")) == 3, 30,
                       "three finalized recordings")
        await asyncio.sleep(1.5)  # a progress report
        status, metrics = await get_json(f"{worker.http_url}/metrics")
        assert "hls_recordings_active 0.0" in str(metrics)
        assert 'hls_jobs_total{outcome="success"} 3.0' in str(metrics)
        assert "hls_segments_written_total" in str(metrics)
        await wait_for(lambda: worker.log().count("job ended after 1 recordings") == 3, 10,
                       "the jobs to end with their publishers")
        assert "hls_jobs_active 0.0" in (await get_json(f"{worker.http_url}/metrics"))[1]
    for participant, folder in recordings(tmp_path / "out").items():
        report = check_recording(folder)
        assert report.ok, (participant, report)


def playlist_ended(folder: Path) -> bool:
    playlist = folder / "playlist.m3u8"
    return playlist.exists() and "#EXT-X-ENDLIST" in playlist.read_text()


def recording_folders(output: Path) -> dict[str, Path]:
    """Recording folders (finished or not) by participant, from their names."""
    return {folder.name.split("_")[1]: folder for folder in output.glob("*_*_*")}


async def test_a_vanished_publisher_ends_only_its_own_recording(
        livekit_server: LiveKitServer, tmp_path: Path) -> None:
    output = tmp_path / "out"
    async with agent(livekit_server, tmp_path, "worker-vanish"):
        await dispatch_job(livekit_server, "worker-vanish", "vanish")
        async with publishing(livekit_server, "vanish", "steady"), \
                publisher_process(livekit_server, "vanish", "doomed", 120,
                                  width=320, height=240) as doomed:
            await wait_for(lambda: len(list(output.glob("*/segment00001.ts"))) == 2, 30,
                           "both recordings under way")
            doomed.kill()  # no leave, no goodbye: the process is simply gone
            await wait_for(lambda: "doomed" in recordings(output), 60,
                           "the vanished publisher's recording to be finalized")
            steady = recording_folders(output)["steady"]
            assert not playlist_ended(steady)
            before = len(list(steady.glob("segment*.ts")))
            await asyncio.sleep(2.5)
            assert len(list(steady.glob("segment*.ts"))) > before, "the other recording stalled"
        await wait_for(lambda: len(recordings(output)) == 2, 30, "both recordings finalized")
    for participant, folder in recordings(output).items():
        assert check_recording(folder).ok, participant


async def test_a_stopped_recording_process_is_killed_and_only_its_job_fails(
        livekit_server: LiveKitServer, tmp_path: Path) -> None:
    """A recording process that stops answering its pings (SIGSTOP: its event loop no
    longer runs, its pipe still looks open) is killed and its job reported failed; the
    recording in the other process goes on, and a fresh process takes the next job."""
    output, loop = tmp_path / "out", asyncio.get_running_loop()
    async with agent(livekit_server, tmp_path, "worker-stop") as worker:
        await dispatch_job(livekit_server, "worker-stop", "stop")

        async def processes(wanted: set[str]) -> dict[str, int]:  # once listed (reported)
            for _ in range(60):
                _, listing = await get_json(f"{worker.http_url}/v1/recordings",
                                            worker.control_token())
                assert isinstance(listing, dict)
                found = {r["participant"]: r["process"] for r in listing["recordings"]
                         if r["state"] == "recording"}
                if set(found) == wanted:
                    return found
                await asyncio.sleep(0.5)
            raise AssertionError(f"listed {found}, not {wanted}")

        async with publishing(livekit_server, "stop", "frozen"), \
                publishing(livekit_server, "stop", "going"):
            await wait_for(lambda: len(list(output.glob("*/segment00001.ts"))) == 2, 30,
                           "both recordings under way")
            pids = await processes({"frozen", "going"})
            assert pids["frozen"] != pids["going"]  # the least busy takes the second job
            going = recording_folders(output)["going"]
            os.kill(pids["frozen"], signal.SIGSTOP)
            stopped_at, before = loop.time(), len(list(going.glob("segment*.ts")))
            try:
                await wait_for(lambda: f"job failed: recording process {pids['frozen']} "
                               "stopped answering" in worker.log(), 30, "the job to fail")
                print(f"\nthe job failed {loop.time() - stopped_at:.1f} s after the stop")
                await wait_for(lambda: len(list(going.glob("segment*.ts"))) > before + 2, 10,
                               "the other recording to go on")
            finally:
                with contextlib.suppress(ProcessLookupError):  # never left stopped
                    os.kill(pids["frozen"], signal.SIGCONT)
            with pytest.raises(ProcessLookupError):
                os.kill(pids["frozen"], 0)  # killed, and reaped
            assert 'hls_jobs_total{outcome="failed"} 1.0' in \
                str((await get_json(f"{worker.http_url}/metrics"))[1])
            async with publishing(livekit_server, "stop", "later", width=320, height=240):
                later = (await processes({"going", "later"}))["later"]
                assert later not in pids.values()  # the fresh process took it
        await wait_for(lambda: set(recordings(output)) == {"going", "later"}, 30,
                       "the other recordings finalized")
        _, library = await get_json(f"{worker.http_url}/v1/library", worker.control_token())
    assert isinstance(library, dict)
    states = {e["folder"].split("_")[1]: e["state"] for e in library["recordings"]}
    assert states == {"frozen": "interrupted", "going": "finished", "later": "finished"}
    assert all(check_recording(folder).ok for folder in recordings(output).values())


async def test_manual_activation_over_http(livekit_server: LiveKitServer,
                                           tmp_path: Path) -> None:
    output = tmp_path / "out"
    async with agent(livekit_server, tmp_path, "worker-manual",
                     AUTO_ACTIVATE_RECORDING="false") as worker:
        await dispatch_job(livekit_server, "worker-manual", "manual")
        async with publishing(livekit_server, "manual", "speaker"), aiohttp.ClientSession() as http:
            activate = f"{worker.http_url}/v1/recordings/manual/speaker/activate"

            async def post(url: str, token: str | None) -> int:
                headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
                async with http.post(url, headers=headers) as reply:
                    return reply.status

            listing: object = {}

            async def listed_states() -> set[str]:
                nonlocal listing
                _, listing = await get_json(f"{worker.http_url}/v1/recordings",
                                            worker.control_token())
                assert isinstance(listing, dict)
                return {r["state"] for r in listing["recordings"]}

            for _ in range(100):
                if await listed_states() & {"buffering", "handshake_ready"}:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(3)  # media flows, and nothing may be recorded
            assert not list(output.glob("*")), "recorded before activation"

            forged = worker.control_token().rsplit(".", 1)[0] + ".forged-signature"
            assert await post(activate, None) == 401
            assert await post(activate, "not-a-token") == 401
            assert await post(activate, forged) == 401
            assert await post(activate, worker.control_token(room="elsewhere")) == 403
            status, _ = await get_json(f"{worker.http_url}/v1/recordings")
            assert status == 401
            await asyncio.sleep(1)
            assert not list(output.glob("*")), "a refused request changed something"

            assert await post(f"{worker.http_url}/v1/recordings/manual/nobody/activate",
                              worker.control_token()) == 404
            assert await post(activate, worker.control_token(room="manual")) == 202
            await wait_for(lambda: len(list(output.glob("*/segment00001.ts"))) == 1, 20,
                           "the recording to start after activation")
            stop = f"{worker.http_url}/v1/recordings/manual/speaker/stop"
            assert await post(stop, "not-a-token") == 401
            assert await post(stop, worker.control_token()) == 202
            await wait_for(lambda: "speaker" in recordings(output), 20,
                           "the recording to be finalized by the stop request")
            # The job stays: the same participant can be recorded again.
            await asyncio.sleep(1.5)
            assert len(list(output.glob("*"))) == 1, "recorded again without activation"
            assert await post(activate, worker.control_token()) == 202
            await wait_for(lambda: len(list(output.glob("*/segment00001.ts"))) == 2, 20,
                           "a second recording after the second activation")
        # The publisher has left: its recording ends on that news, not on the agent's
        # shutdown when this block exits.
        await wait_for(lambda: len(list(output.glob("*/recording.json"))) == 2, 30,
                       "the second recording finalized when the publisher left")
    folders = sorted(output.glob("manual_speaker_*"))
    assert len(folders) == 2
    summaries = [json.loads((f / "recording.json").read_text()) for f in folders]
    assert summaries[0]["ended_because"] == "stopped by request"
    # the publisher left the room, and the server closed it: either news may come first
    assert summaries[1]["ended_because"] in ("participant left", "job terminated by the server")
    for folder in folders:
        assert check_recording(folder).ok


async def test_sigterm_finalizes_every_recording(livekit_server: LiveKitServer,
                                                 tmp_path: Path) -> None:
    output = tmp_path / "out"
    async with agent(livekit_server, tmp_path, "worker-term", SHUTDOWN_TIMEOUT="20") as worker:
        await dispatch_job(livekit_server, "worker-term", "term")
        async with publishing(livekit_server, "term", "p1"), \
                publishing(livekit_server, "term", "p2"), \
                publishing(livekit_server, "term", "p3"):
            await wait_for(lambda: len(list(output.glob("*/segment00001.ts"))) == 3, 30,
                           "three recordings under way")
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await worker.stop(signal.SIGTERM, within=25) == 0
            took = loop.time() - started
    folders = recording_folders(output)
    assert set(folders) == {"p1", "p2", "p3"}
    for participant, folder in folders.items():
        assert playlist_ended(folder), participant
        assert check_recording(folder).ok, participant
        summary = json.loads((folder / "recording.json").read_text())
        assert summary["ended_because"] == "agent shutting down"
    assert took < 20, f"shutdown took {took:.1f} s"


async def test_worker_registers_again_after_a_server_restart(tmp_path: Path) -> None:
    output = tmp_path / "out"
    port = free_port()
    with contextlib.ExitStack() as first_server:
        server = first_server.enter_context(running_server(log_dir=tmp_path, http_port=port))
        async with agent(server, tmp_path, "worker-restart") as worker:
            first_server.close()  # the server goes away while the worker waits for jobs
            await wait_until_status(worker, "/readyz", 503)
            with running_server(log_dir=tmp_path, http_port=port) as restarted:
                await worker.wait_ready()
                await dispatch_job(restarted, "worker-restart", "after-restart")
                async with publishing(restarted, "after-restart", "late"):
                    await wait_for(lambda: any(output.glob("*/segment00001.ts")), 30,
                                   "a recording taken after the restart")
                await wait_for(lambda: "late" in recordings(output), 30, "its finalization")
    assert worker.log().count("registered with") == 2


async def wait_until_status(worker: AgentProcess, path: str, status: int) -> None:
    for _ in range(100):
        got, _ = await get_json(f"{worker.http_url}{path}")
        if got == status:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never answered {status}")


async def test_two_full_workers_share_four_publishers(livekit_server: LiveKitServer,
                                                      tmp_path: Path) -> None:
    output = tmp_path / "out"
    async with agent(livekit_server, tmp_path / "a", "worker-pair", MAX_RECORDINGS="2",
                     RECORDING_PROCESSES="1", OUTPUT_DIR=str(output)) as first, \
            agent(livekit_server, tmp_path / "b", "worker-pair", MAX_RECORDINGS="2",
                  RECORDING_PROCESSES="1", OUTPUT_DIR=str(output)) as second:
        await dispatch_job(livekit_server, "worker-pair", "pair")
        async with contextlib.AsyncExitStack() as publishers:
            for name in ("q1", "q2", "q3", "q4"):
                await publishers.enter_async_context(
                    publishing(livekit_server, "pair", name, width=320, height=240))
            await wait_for(lambda: len(list(output.glob("*/segment00001.ts"))) == 4, 40,
                           "four recordings")
            counts = []
            for worker in (first, second):
                _, listing = await get_json(f"{worker.http_url}/v1/recordings",
                                            worker.control_token())
                assert isinstance(listing, dict)
                counts.append(len(listing["recordings"]))
            assert counts == [2, 2]
        await wait_for(lambda: len(recordings(output)) == 4, 30, "four finalized recordings")


async def test_manual_activation_by_rpc(livekit_server: LiveKitServer, tmp_path: Path) -> None:
    """A participant of the room (here the publisher itself, through the official SDK)
    calls ``activate_recording`` and later ``stop_recording`` on the agent participant."""
    output = tmp_path / "out"
    async with agent(livekit_server, tmp_path, "worker-rpc", AUTO_ACTIVATE_RECORDING="false"):
        await dispatch_job(livekit_server, "worker-rpc", "rpc")
        async with publishing(livekit_server, "rpc", "host") as publisher:
            participant = publisher.room.local_participant
            recorder = "worker-rpc-host"
            await wait_for(lambda: recorder in publisher.room.remote_participants, 20,
                           "the agent participant to join")
            await asyncio.sleep(3)  # media flows, and nothing may be recorded
            assert not list(output.glob("*")), "recorded before activation"
            with pytest.raises(rtc.RpcError) as refused:
                await participant.perform_rpc(destination_identity=recorder,
                                              method="format_disk", payload="")
            assert refused.value.code == rtc.RpcError.ErrorCode.UNSUPPORTED_METHOD
            answer = json.loads(await participant.perform_rpc(
                destination_identity=recorder, method="activate_recording", payload=""))
            assert answer["participant"] == "host"
            assert answer["state"] == "recording_pending"
            await wait_for(lambda: len(list(output.glob("*/segment00001.ts"))) == 1, 20,
                           "the recording to start after activation")
            answer = json.loads(await participant.perform_rpc(
                destination_identity=recorder, method="stop_recording", payload=""))
            assert answer["state"] == "stopped" and answer["folder"]
            assert "host" in recordings(output), "not finalized by the stop call"
    folder = recordings(output)["host"]
    assert check_recording(folder).ok
    assert json.loads((folder / "recording.json").read_text())["ended_because"] == \
        "stopped by request"


async def test_job_metadata_chooses_what_is_recorded(livekit_server: LiveKitServer,
                                                     tmp_path: Path) -> None:
    output = tmp_path / "out"
    async with agent(livekit_server, tmp_path, "worker-meta", LOG_FORMAT="json") as worker:
        await dispatch_job(livekit_server, "worker-meta", "video-only",
                           json.dumps({"record_audio": False, "color": "ignored"}))
        # dispatch-job refuses metadata that is not JSON; other tools may not
        async with api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key,
                                  livekit_server.api_secret) as lk:
            await lk.room.create_room(api.CreateRoomRequest(name="garbled", agents=[
                api.RoomAgentDispatch(agent_name="worker-meta", metadata="{not json")]))
        async with publishing(livekit_server, "video-only", "silent-film"), \
                publishing(livekit_server, "garbled", "talkie"):
            await wait_for(lambda: len(list(output.glob("*/segment00001.ts"))) == 2, 30,
                           "both recordings under way")
        await wait_for(lambda: len(recordings(output)) == 2, 30, "both finalized")
        lines = [json.loads(line) for line in worker.log().splitlines()]
    assert any(line["message"].startswith("job metadata is not JSON") and
               line["room"] == "garbled" and line["participant"] == "talkie" for line in lines)
    about_recordings = [line for line in lines if line["logger"].startswith(
        ("publisher_hls_agent.recorder", "publisher_hls_agent.room"))]
    assert about_recordings
    assert all({"room", "participant"} <= set(line) for line in about_recordings)
    summaries = {p: json.loads((f / "recording.json").read_text())
                 for p, f in recordings(output).items()}
    assert summaries["silent-film"]["audio"] is None
    assert summaries["silent-film"]["video"]["codec"] == "h264"
    assert summaries["talkie"]["audio"]["codec"] == "aac"
    assert summaries["talkie"]["video"]["codec"] == "h264"
    for folder in recordings(output).values():
        assert check_recording(folder).ok


async def test_a_publisher_who_comes_back_is_recorded_again(livekit_server: LiveKitServer,
                                                          tmp_path: Path) -> None:
    """LiveKit dispatches a job each time a participant starts publishing in a room
    (livekit-server forgets who has published when they leave): each visit is a job
    and a recording."""
    output = tmp_path / "out"

    def count(pattern: str) -> int:
        return len(list(output.glob(pattern)))

    async with agent(livekit_server, tmp_path, "worker-return") as worker:
        await dispatch_job(livekit_server, "worker-return", "return")
        async with publishing(livekit_server, "return", "keeper"):  # keeps the room open
            for visit in (1, 2):
                async with publishing(livekit_server, "return", "visitor",
                                      width=320, height=240):
                    await wait_for(lambda n=visit: count("return_visitor_*/segment00001.ts") == n,
                                   30, f"visit {visit}")
                await wait_for(lambda n=visit: count("return_visitor_*/recording.json") == n,
                               30, f"end of visit {visit}")
        assert worker.log().count("job taken") == 3  # the keeper's, and one a visit
    visits = sorted(output.glob("return_visitor_*"))
    assert len(visits) == 2
    for folder in visits:
        assert check_recording(folder).ok


async def test_a_worker_its_transcoding_fills_passes_the_next_jobs_on(
        livekit_server: LiveKitServer, tmp_path: Path) -> None:
    """The load a worker reports is the CPU its processes use: a browser's VP8,
    transcoded, fills worker A (its threshold set to what one such recording costs), so
    the server sends the next publishers to B, also once A's first job is old enough
    for its load to be measured rather than expected. By count (1 of MAX_RECORDINGS),
    A would look nearly idle and take its share of them."""
    output = tmp_path / "out"
    room = "cpu-load"
    async with agent(livekit_server, tmp_path / "a", "cpu-load", LOAD_THRESHOLD="0.05",
                     RECORDING_PROCESSES="1", OUTPUT_DIR=str(output)) as first:
        await dispatch_job(livekit_server, "cpu-load", room)
        async with browser_publishing(livekit_server.url,
                                      token(livekit_server, room, "browser-vp8"), "vp8",
                                      width=1280, height=720, scratch=tmp_path):
            await wait_for(lambda: bool(list(output.glob("*/segment00001.ts"))), 40,
                           "the browser's recording")
            await asyncio.sleep(18)  # past the first job's expected cost: measured now
            load = await metric(first, "hls_worker_load")
            print("worker A, one VP8 720p recording: load", load,
                  "cores", await metric(first, "hls_worker_cpu_cores"))
            assert load >= 0.05, load
            async with agent(livekit_server, tmp_path / "b", "cpu-load",
                             RECORDING_PROCESSES="1", OUTPUT_DIR=str(output)) as second, \
                    contextlib.AsyncExitStack() as publishers:
                for name in ("sdk-1", "sdk-2", "sdk-3"):
                    await publishers.enter_async_context(
                        publishing(livekit_server, room, name, width=320, height=240))
                await wait_for(lambda: len(list(output.glob("*/segment00001.ts"))) == 4, 40,
                               "four recordings")
                counts = [len(await listed(worker)) for worker in (first, second)]
                assert counts == [1, 3], counts
    await wait_for(lambda: len(recordings(output)) == 4, 30, "four finalized recordings")
    report = check_recording(recordings(output)["browser-vp8"])
    assert report.ok, report.render()


async def metric(worker: AgentProcess, name: str) -> float:
    _, text = await get_json(f"{worker.http_url}/metrics")
    return float(next(line.split()[1] for line in str(text).splitlines()
                      if line.startswith(f"{name} ")))


async def listed(worker: AgentProcess) -> list[object]:
    _, listing = await get_json(f"{worker.http_url}/v1/recordings", worker.control_token())
    assert isinstance(listing, dict)
    recordings_now: list[object] = listing["recordings"]
    return recordings_now
