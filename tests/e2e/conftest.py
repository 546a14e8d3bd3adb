import pytest
from harness import LiveProcess, Processes


@pytest.fixture
def processes():
    tracker = Processes()
    yield tracker
    tracker.end_all()


@pytest.fixture
def live(processes, tmp_path) -> LiveProcess:
    """A fresh server for one test (its own ports and data dir)."""
    server = LiveProcess(processes, tmp_path / "data", env={"LIVE_ENDED_PLAYLIST_LINGER_S": "30"})
    yield server
    server.stop()
