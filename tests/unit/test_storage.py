"""The pure parts of the upload: object keys, content types, failure causes, state."""

from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from publisher_hls_agent.storage.keys import content_type, recording_prefix
from publisher_hls_agent.storage.s3 import _mapped
from publisher_hls_agent.storage.uploader import UploadState

pytestmark = pytest.mark.unit

FOLDER = Path("/out/room_alice_20261124-101500.250")


def test_a_recording_has_a_folder_of_its_own_under_room_and_participant() -> None:
    assert recording_prefix("", "room", "alice", FOLDER) == "room/alice/20261124-101500.250/"
    assert recording_prefix("rec/", "room", "alice", FOLDER.with_name(FOLDER.name + "-1")) \
        == "rec/room/alice/20261124-101500.250-1/"


@pytest.mark.parametrize("room", ["../..", "a/../../b", "/etc", "..", ".", "", "ä ö/ü"])
@pytest.mark.parametrize("participant", ["../../x", "..", "a/b", "\x00", " "])
def test_hostile_names_never_climb_out_of_the_prefix(room: str, participant: str) -> None:
    prefix = recording_prefix("tenant/", room, participant, FOLDER)
    parts = prefix.split("/")
    assert prefix.startswith("tenant/") and len(parts) == 5 and parts[-1] == ""
    assert all(part not in ("", ".", "..") for part in parts[:-1])


def test_content_types() -> None:
    assert content_type("playlist.m3u8") == "application/vnd.apple.mpegurl"
    assert content_type("segment00001.ts") == "video/mp2t"
    assert content_type("segment00001.m4s") == "video/iso.segment"
    assert content_type("init.mp4") == "video/mp4"
    assert content_type("recording.json") == "application/json"


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


@pytest.mark.parametrize(("error", "cause", "retried"), [
    (client_error("InvalidAccessKeyId", 403), "credentials", False),
    (client_error("SignatureDoesNotMatch", 403), "credentials", False),
    (client_error("NoSuchBucket", 404), "bucket", False),
    (client_error("SlowDown", 503), "server", True),
    (client_error("InternalError", 500), "server", True),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "network", True),
    (TimeoutError(), "network", True),
    (client_error("InvalidArgument", 400), "other", False),
])
def test_failures_are_sorted_by_what_can_be_done(error: Exception, cause: str,
                                                 retried: bool) -> None:
    mapped = _mapped(error)
    assert (mapped.cause, mapped.retried) == (cause, retried)


def test_upload_state_round_trip_and_result(tmp_path: Path) -> None:
    state = UploadState("bucket", "room/alice/x/", {"segment00000.ts": 10})
    state.save(tmp_path)
    loaded = UploadState.load(tmp_path)
    assert loaded == state
    assert loaded.result() == {"bucket": "bucket", "prefix": "room/alice/x/", "complete": False,
                               "objects": ["room/alice/x/segment00000.ts"]}
    (tmp_path / ".upload.json").write_text("{broken")
    assert UploadState.load(tmp_path) is None


@pytest.mark.parametrize("summary", ['{"participant": "p"}', '{"room": 7, "participant": "p"}',
                                     '["room"]', "not json"])
async def test_upload_of_a_summary_without_names_is_a_clear_error(
        tmp_path: Path, summary: str) -> None:
    from publisher_hls_agent.config import Config
    from publisher_hls_agent.storage.s3 import UploadError
    from publisher_hls_agent.storage.storage import Storage

    (tmp_path / "recording.json").write_text(summary)
    config = Config.from_mapping({"LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s",
                                  "S3_BUCKET": "b", "S3_ENDPOINT": "127.0.0.1:9",
                                  "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "s"}).s3
    assert config is not None
    with pytest.raises(UploadError, match=r"recording\.json"):
        await Storage(config).upload_finished(tmp_path)  # before any request is made
