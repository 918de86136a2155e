import pytest

from publisher_hls_agent.config import Config, ConfigError
from publisher_hls_agent.media.codecs import DEFAULT_X264_PRESET

pytestmark = pytest.mark.unit

BASE = {"LIVEKIT_API_KEY": "key", "LIVEKIT_API_SECRET": "very-secret-value"}
S3 = {"S3_BUCKET": "recordings", "S3_ENDPOINT": "minio:9000",
      "S3_ACCESS_KEY": "AKIAEXAMPLE", "S3_SECRET_KEY": "s3-secret-value"}


def config(**env: str) -> Config:
    return Config.from_mapping({**BASE, **env})


def error(**env: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        Config.from_mapping(env)
    return caught.value


def test_defaults() -> None:
    cfg = config()
    assert cfg.livekit_url == "ws://localhost:7880"
    assert cfg.agent_name == "publisher-hls-recorder"
    assert str(cfg.output_dir) == "publisher-hls-output"
    assert cfg.auto_activate is False
    assert cfg.segment_duration == 2.0
    assert cfg.max_segments == 0
    assert cfg.keep_opus is False
    assert cfg.s3 is None


@pytest.mark.parametrize("name", ["LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"])
def test_livekit_credentials_are_required(name: str) -> None:
    env = dict(BASE)
    del env[name]
    assert error(**env).variable == name
    assert error(**{**env, name: "   "}).variable == name


@pytest.mark.parametrize("value", ["localhost:7880", "ftp://host", "ws://", "just words"])
def test_livekit_url_must_be_ws_or_http(value: str) -> None:
    err = error(**BASE, LIVEKIT_URL=value)
    assert err.variable == "LIVEKIT_URL"
    assert "ws://, wss://, http:// or https://" in str(err)


@pytest.mark.parametrize("value", ["wss://lk.example.com", "https://lk.example.com/base",
                                   "http://127.0.0.1:7880"])
def test_livekit_url_accepts_ws_and_http(value: str) -> None:
    assert config(LIVEKIT_URL=value).livekit_url == value


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", "inf", "1e999"])
def test_segment_duration_must_be_positive(value: str) -> None:
    err = error(**BASE, HLS_SEGMENT_DURATION=value)
    assert err.variable == "HLS_SEGMENT_DURATION"
    assert "positive number" in str(err)


def test_segment_duration_accepts_fractions() -> None:
    assert config(HLS_SEGMENT_DURATION="1.5").segment_duration == 1.5


@pytest.mark.parametrize("value", ["-1", "2.5", "many"])
def test_max_segments_must_be_a_whole_number(value: str) -> None:
    assert error(**BASE, HLS_MAX_SEGMENTS=value).variable == "HLS_MAX_SEGMENTS"


@pytest.mark.parametrize("name", ["AUTO_ACTIVATE_RECORDING", "KEEP_OPUS"])
@pytest.mark.parametrize(("raw", "value"), [("true", True), ("YES", True), ("1", True),
                                            ("false", False), ("no", False), ("0", False)])
def test_booleans(name: str, raw: str, value: bool) -> None:
    cfg = config(**{name: raw})
    assert getattr(cfg, {"AUTO_ACTIVATE_RECORDING": "auto_activate",
                         "KEEP_OPUS": "keep_opus"}[name]) is value


@pytest.mark.parametrize("name", ["AUTO_ACTIVATE_RECORDING", "KEEP_OPUS", "S3_USE_SSL",
                                  "S3_FORCE_PATH_STYLE", "S3_REALTIME_UPLOAD"])
def test_invalid_booleans(name: str) -> None:
    err = error(**BASE, **S3, **{name: "maybe"})
    assert err.variable == name
    assert "true/false/1/0/yes/no" in str(err)


def test_s3_is_off_without_bucket_and_on_with_it() -> None:
    assert config(S3_ENDPOINT="ignored:9000").s3 is None
    s3 = config(**S3).s3
    assert s3 is not None
    assert s3.endpoint == "http://minio:9000"
    assert (s3.region, s3.use_ssl, s3.force_path_style, s3.realtime_upload) == (
        "us-east-1", False, True, False)
    assert s3.prefix == "" and s3.object_acl is None and s3.session_token is None


@pytest.mark.parametrize("name", ["S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY"])
def test_s3_requires_endpoint_and_keys(name: str) -> None:
    env = {**BASE, **S3}
    del env[name]
    assert error(**env).variable == name


def test_s3_endpoint_forms() -> None:
    assert config(**S3, S3_USE_SSL="true").s3.endpoint == "https://minio:9000"  # type: ignore[union-attr]
    assert config(**{**S3, "S3_ENDPOINT": "https://s3.eu-west-1.amazonaws.com"}).s3.endpoint == (  # type: ignore[union-attr]
        "https://s3.eu-west-1.amazonaws.com")
    for bad in ("ftp://x", "http://", "host:port", "http://h/path"):
        assert error(**{**BASE, **S3, "S3_ENDPOINT": bad}).variable == "S3_ENDPOINT"


def test_s3_prefix_is_normalised_and_cannot_climb() -> None:
    assert config(**S3, S3_PREFIX="/a//b").s3.prefix == "a/b/"  # type: ignore[union-attr]
    assert error(**BASE, **S3, S3_PREFIX="a/../../b").variable == "S3_PREFIX"


def test_s3_acl_must_be_canned() -> None:
    assert config(**S3, S3_OBJECT_ACL="public-read").s3.object_acl == "public-read"  # type: ignore[union-attr]
    assert error(**BASE, **S3, S3_OBJECT_ACL="everyone").variable == "S3_OBJECT_ACL"


def test_secrets_never_appear_in_repr_or_errors() -> None:
    cfg = config(**S3, S3_SESSION_TOKEN="session-token-value")
    text = repr(cfg)
    for secret in ("very-secret-value", "s3-secret-value", "AKIAEXAMPLE", "session-token-value",
                   "key'"):
        assert secret not in text
    err = error(**{**S3, "LIVEKIT_API_KEY": "key"})
    assert "very-secret-value" not in str(err)


def test_segment_format_follows_the_audio_codec() -> None:
    assert config().segment_format == "ts"
    assert config(KEEP_OPUS="true").segment_format == "fmp4"
    assert config(KEEP_OPUS="true", HLS_SEGMENT_FORMAT="FMP4").segment_format == "fmp4"
    assert config(HLS_SEGMENT_FORMAT="ts").segment_format == "ts"
    assert error(**BASE, HLS_SEGMENT_FORMAT="mkv").variable == "HLS_SEGMENT_FORMAT"
    err = error(**BASE, KEEP_OPUS="true", HLS_SEGMENT_FORMAT="ts")
    assert err.variable == "HLS_SEGMENT_FORMAT" and "not supported yet" in str(err)


def test_recorder_options_follow_the_configuration() -> None:
    from publisher_hls_agent.recorder.options import RecorderOptions

    options = RecorderOptions.from_config(config(
        OUTPUT_DIR="/rec", HLS_SEGMENT_DURATION="4", HLS_MAX_SEGMENTS="5",
        AUTO_ACTIVATE_RECORDING="yes", KEEP_OPUS="1"))
    assert (str(options.output_dir), options.segment_duration, options.max_segments,
            options.auto_activate, options.keep_opus) == ("/rec", 4.0, 5, True, True)


def test_worker_defaults() -> None:
    worker = config().worker
    assert worker.max_recordings == 16
    assert worker.processes >= 1
    assert worker.shutdown_timeout == 60.0
    assert (worker.http_host, worker.http_port) == ("0.0.0.0", 8080)
    assert config().log_format == "text"


@pytest.mark.parametrize(("name", "raw"), [
    ("MAX_RECORDINGS", "0"), ("MAX_RECORDINGS", "many"), ("RECORDING_PROCESSES", "-1"),
    ("SHUTDOWN_TIMEOUT", "0"), ("HTTP_PORT", "70000"), ("HTTP_PORT", "http"),
    ("LOG_FORMAT", "xml"),
])
def test_invalid_worker_settings_name_their_variable(name: str, raw: str) -> None:
    assert error(**BASE, **{name: raw}).variable == name


def test_worker_settings() -> None:
    cfg = config(MAX_RECORDINGS="4", RECORDING_PROCESSES="3", SHUTDOWN_TIMEOUT="7.5",
                 HTTP_HOST="127.0.0.1", HTTP_PORT="0", LOG_FORMAT="JSON")
    assert (cfg.worker.max_recordings, cfg.worker.processes) == (4, 3)
    assert cfg.worker.shutdown_timeout == 7.5
    assert (cfg.worker.http_host, cfg.worker.http_port) == ("127.0.0.1", 0)
    assert cfg.log_format == "json"


@pytest.mark.parametrize(("env", "variable"), [
    ({"S3_ENDPOINT": "http://[::1"}, "S3_ENDPOINT"),  # was a traceback
    ({"LIVEKIT_URL": "ws://[::1"}, "LIVEKIT_URL"),
    ({"PREVIEW_PLAYER_URL": "https://[x"}, "PREVIEW_PLAYER_URL"),
    ({"HLS_SEGMENT_DURATION": "1e-300"}, "HLS_SEGMENT_DURATION"),
    ({"HLS_SEGMENT_DURATION": "1e9"}, "HLS_SEGMENT_DURATION"),
    ({"S3_REGION": "eu\r\nX-Injected: 1"}, "S3_REGION"),
    ({"AGENT_NAME": "recorder\nforged log line"}, "AGENT_NAME"),
    ({"OUTPUT_DIR": "out\x00put"}, "OUTPUT_DIR"),
])
def test_malformed_values_are_one_clear_error(env: dict[str, str], variable: str) -> None:
    assert error(**{**BASE, **S3, **env}).variable == variable


@pytest.mark.parametrize("env", [{"S3_REALTIME_UPLOAD": "maybe"}, {"S3_USE_SSL": "perhaps"},
                                 {"S3_OBJECT_ACL": "world-writable"}, {"S3_PREFIX": "a/../b"},
                                 {"S3_ENDPOINT": "ftp://host"}])
def test_upload_variables_are_checked_even_with_upload_off(env: dict[str, str]) -> None:
    assert error(**BASE, **env).variable == next(iter(env))


def test_secrets_lose_surrounding_whitespace_and_are_never_shown() -> None:
    cfg = config(LIVEKIT_API_KEY=" key\n", LIVEKIT_API_SECRET="very-secret-value\n")
    assert (cfg.api_key, cfg.api_secret) == ("key", "very-secret-value")
    caught = error(**{**BASE, "LIVEKIT_API_SECRET": "very\nsecret"})
    assert caught.variable == "LIVEKIT_API_SECRET" and "very" not in str(caught)


def test_urls_are_shown_without_their_credentials() -> None:
    caught = error(**BASE, LIVEKIT_URL="ftp://admin:hunter2@livekit.example.com/x")
    assert "hunter2" not in str(caught) and "admin" not in str(caught)
    assert "livekit.example.com" in str(caught)
    caught = error(**BASE, **{**S3, "S3_ENDPOINT": "http://AKIA:s3cret@minio:9000"})
    assert caught.variable == "S3_ENDPOINT" and "s3cret" not in str(caught)


def test_transcode_preset_is_one_of_x264s() -> None:
    assert config().transcode_preset == DEFAULT_X264_PRESET
    assert config(TRANSCODE_PRESET="ultrafast").transcode_preset == "ultrafast"
    err = error(**BASE, TRANSCODE_PRESET="placebo")
    assert err.variable == "TRANSCODE_PRESET" and "superfast" in str(err)


def test_webhook_urls_are_http_urls_without_credentials() -> None:
    assert config().webhook_urls == ()
    urls = config(WEBHOOK_URLS=" https://a.example/hook , http://b:8080/x?k=1").webhook_urls
    assert urls == ("https://a.example/hook", "http://b:8080/x?k=1")
    assert error(**BASE, WEBHOOK_URLS="ftp://a/b").variable == "WEBHOOK_URLS"
    err = error(**BASE, WEBHOOK_URLS="https://user:hunter2@a.example/hook")
    assert err.variable == "WEBHOOK_URLS" and "hunter2" not in str(err)


def test_thumbnail_values_are_checked_even_when_off() -> None:
    assert config().thumbnails is None
    on = config(THUMBNAILS_ENABLED="true", THUMBNAIL_FORMAT="JPEG", THUMBNAIL_HEIGHT="90")
    assert on.thumbnails is not None
    assert (on.thumbnails.interval, on.thumbnails.width, on.thumbnails.height,
            on.thumbnails.image_format) == (5.0, 320, 90, "jpg")
    assert error(**BASE, THUMBNAIL_FORMAT="gif").variable == "THUMBNAIL_FORMAT"
    assert error(**BASE, THUMBNAIL_INTERVAL_SECS="0").variable == "THUMBNAIL_INTERVAL_SECS"
    assert error(**BASE, THUMBNAIL_WIDTH="-1").variable == "THUMBNAIL_WIDTH"


def test_the_e2ee_passphrase_is_taken_exactly_and_never_shown() -> None:
    assert config().e2ee is None
    e2ee = config(E2EE_PASSPHRASE=" two words ").e2ee
    assert e2ee is not None
    assert (e2ee.passphrase, e2ee.ratchet_salt, e2ee.key_derivation) == (
        " two words ", "LKFrameEncryptionKey", "pbkdf2")  # spaces are part of it
    from publisher_hls_agent.recorder.options import RecorderOptions
    shown = repr(config(E2EE_PASSPHRASE="hunter2-passphrase"))
    assert "hunter2-passphrase" not in shown
    assert "hunter2" not in repr(RecorderOptions.from_config(
        config(E2EE_PASSPHRASE="hunter2-passphrase")))
    err = error(**BASE, E2EE_PASSPHRASE="hunter2\nx")
    assert err.variable == "E2EE_PASSPHRASE" and "hunter2" not in str(err)


def test_e2ee_values_are_checked_even_without_a_passphrase() -> None:
    assert config(E2EE_KEY_DERIVATION="HKDF", E2EE_PASSPHRASE="p").e2ee.key_derivation == "hkdf"
    assert error(**BASE, E2EE_KEY_DERIVATION="scrypt").variable == "E2EE_KEY_DERIVATION"
