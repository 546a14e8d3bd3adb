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
        ('https = "127.0.0.1:8443"\n', "https needs tls_cert"),
        ('https = "nowhere"\n', "https must be HOST:PORT"),
        ('redis = "memcached://x"\n', "redis must be a redis://"),
        ('cluster_playback = "teleport"\n', "cluster_playback"),
        ("vod_url_expiry_s = 10\n", "vod_url_expiry_s"),
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
    both = load_settings(
        None, environ={"LIVE_RECORDINGS_DIR": "/old", "LIVE_STORAGE": "/new"}
    )
    url, warning = storage_url(both)
    assert url == "/new" and "ignored" in warning


def test_the_storage_flag():
    from live.cli import _parser

    args = _parser().parse_args(["serve", "--storage", "s3://b/p"])
    assert args.storage == "s3://b/p"
