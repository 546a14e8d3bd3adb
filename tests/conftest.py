import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "e2e"))

from media_fixtures import Clip, make_clip
from redis_service import redis_client, redis_server, redis_url  # noqa: F401 - fixtures for every test

pytest_plugins = ["s3_service"]  # the s3_server and s3_bucket fixtures (moto)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip(media_dir) -> Clip:
    """3 s of 320x180 H.264 (1 s GOP, no B-frames) + AAC, 30 fps."""
    return make_clip(media_dir)


@pytest.fixture(scope="session")
def bframe_clip(media_dir) -> Clip:
    return make_clip(media_dir, bframes=2)
