import pytest

from live.config import ConfigError, load_settings, split_address


def test_defaults_file_environment_and_flags_in_that_order(tmp_path):
    config = tmp_path / "live.toml"
    config.write_text(
        '[listen]\nhttp = "127.0.0.1:9001"\nrtmp = "127.0.0.1:9002"\n'
        "[hls]\npart_target_s = 0.5\nsegment_target_s = 2.0\n"
    )
    settings = load_settings(
        config,
        overrides={"rtmp": "127.0.0.1:0", "data_dir": None},
        environ={"LIVE_HTTP": "127.0.0.1:9100", "LIVE_WINDOW_SEGMENTS": "9"},
    )
    assert settings.http == "127.0.0.1:9100"  # environment beats the file
    assert settings.rtmp == "127.0.0.1:0"  # a flag beats both
    assert settings.part_target_s == 0.5 and settings.segment_target_s == 2.0  # from the file
    assert settings.window_segments == 9  # environment, converted to int
    assert settings.data_dir == "./data"  # an unset flag leaves the default


def test_the_shipped_config_is_the_defaults():
    from pathlib import Path

    shipped = Path(__file__).parent.parent / "configs" / "live.toml"
    assert load_settings(shipped, environ={}) == load_settings(None, environ={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nonsense = 1\n", "unknown settings"),
        ('http = "nowhere"\n', "HOST:PORT"),
        ('publisher_takeover = "maybe"\n', "publisher_takeover"),
        ("part_target_s = 5.0\n", "part_target_s"),
        ('window_segments = "many"\n', "window_segments"),
        ('tls_cert = "a.pem"\n', "tls_cert and tls_key"),
        ('event_loop = "trio"\n', "event_loop"),
        ("rtmp_read_coalesce_ms = 500\n", "rtmp_read_coalesce_ms"),
        ('viewer_stats = "sometimes"\n', "viewer_stats"),
        ('storage = "ftp://host/x"\n', "storage must be a directory or s3://"),
        ('storage = "s3://bucket/../x"\n', "storage must be"),
        ('vod_delivery = "teleport"\n', "vod_delivery"),
        ("import_max_redirects = 99\n", "import_max_redirects"),
        ("import_connect_timeout_s = 0\n", "import_connect_timeout_s"),
        ('https = "127.0.0.1:8443"\n', "https needs tls_cert"),
        ('https = "nowhere"\n', "https must be HOST:PORT"),
        ('redis = "memcached://x"\n', "redis must be a redis://"),
        ('cluster_playback = "teleport"\n', "cluster_playback"),
        ("vod_url_expiry_s = 10\n", "vod_url_expiry_s"),
        ("max_publishers = 0\n", "max_publishers must be at least 1"),
        ("max_viewers_per_stream = 0\n", "max_viewers_per_stream"),
        ("srt_max_handshakes = -1\n", "srt_max_handshakes"),
        ("hls_max_blocking_per_address = 0\n", "hls_max_blocking_per_address"),
        ("rtmp_max_message_bytes = 100\n", "rtmp_max_message_bytes"),
        ("rtmp_max_chunk_size = 64\n", "rtmp_max_chunk_size"),
        ("max_publisher_bitrate_kbps = -5\n", "max_publisher_bitrate_kbps"),
        ("publisher_bitrate_window_s = 0.1\n", "publisher_bitrate_window_s"),
        ("http_header_timeout_s = 0\n", "http_header_timeout_s"),
        ("rtmp_handshake_timeout_s = 0\n", "rtmp_handshake_timeout_s"),
        ("whip_connect_timeout_s = 0\n", "whip_connect_timeout_s"),
        ("auth_slow_after = 20\n", "auth_"),  # beyond auth_refuse_after
        ("auth_max_delay_s = 0.5\n", "auth_"),  # below auth_delay_s
        ("this is not toml", "cannot read"),
    ],
)
def test_bad_settings_name_the_setting(tmp_path, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, environ={})


def test_addresses():
    assert split_address("0.0.0.0:1935") == ("0.0.0.0", 1935)
    assert split_address("[::1]:8080") == ("::1", 8080)
    assert split_address(":0") == ("0.0.0.0", 0)
    with pytest.raises(ConfigError):
        split_address("localhost:99999")


def test_storage_replaces_recordings_dir_which_still_works_with_a_warning():
    from live.config import storage_url

    default = load_settings(None, overrides={"data_dir": "/srv/live"}, environ={})
    assert storage_url(default) == ("/srv/live/recordings", None)
    bucket = load_settings(None, environ={"LIVE_STORAGE": "s3://media/rec"})
    assert storage_url(bucket) == ("s3://media/rec", None)
    old = load_settings(None, environ={"LIVE_RECORDINGS_DIR": "/old/place"})
    url, warning = storage_url(old)
    assert url == "/old/place" and "deprecated" in warning and "storage" in warning
    both = load_settings(None, environ={"LIVE_RECORDINGS_DIR": "/old", "LIVE_STORAGE": "/new"})
    url, warning = storage_url(both)
    assert url == "/new" and "ignored" in warning


def test_the_storage_flag():
    from live.cli import _parser

    args = _parser().parse_args(["serve", "--storage", "s3://b/p"])
    assert args.storage == "s3://b/p"


def test_limits_from_the_environment():
    settings = load_settings(environ={
        "LIVE_MAX_PUBLISHERS": "3",
        "LIVE_MAX_VIEWERS_PER_STREAM": "10",
        "LIVE_MAX_VIEWERS": "20",
        "LIVE_RTMP_MAX_MESSAGE_BYTES": "1048576",
        "LIVE_RTMP_MAX_CHUNK_SIZE": "4096",
        "LIVE_RTMP_HANDSHAKE_TIMEOUT_S": "2.5",
        "LIVE_SRT_MAX_HANDSHAKES": "5",
        "LIVE_MAX_PUBLISHER_BITRATE_KBPS": "0",
        "LIVE_PUBLISHER_BITRATE_WINDOW_S": "2",
        "LIVE_HTTP_HEADER_TIMEOUT_S": "1",
        "LIVE_WHIP_CONNECT_TIMEOUT_S": "3",
        "LIVE_HLS_MAX_BLOCKING_PER_ADDRESS": "4",
    })  # fmt: skip
    assert (settings.max_publishers, settings.max_viewers_per_stream, settings.max_viewers) == (
        3, 10, 20,
    )  # fmt: skip
    assert (settings.rtmp_max_message_bytes, settings.rtmp_max_chunk_size) == (1048576, 4096)
    assert settings.rtmp_handshake_timeout_s == 2.5 and settings.srt_max_handshakes == 5
    assert settings.max_publisher_bitrate_kbps == 0  # no limit
    assert settings.publisher_bitrate_window_s == 2.0
    assert settings.http_header_timeout_s == 1.0 and settings.whip_connect_timeout_s == 3.0
    assert settings.hls_max_blocking_per_address == 4
