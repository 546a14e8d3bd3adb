"""`_total` counters never go down when the sessions they sum end or start over."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

from live.broadcast.health import IngestHealth
from live.stats.metrics import Metrics
from live.stats.running_total import RunningTotal


class _Source:
    """Something with a count of its own, like a session's packager."""

    def __init__(self, count: int) -> None:
        self.count = count


def test_running_total_keeps_what_ended_and_what_started_over():
    total: RunningTotal[_Source] = RunningTotal(lambda s: s.count)
    a, b = _Source(10), _Source(5)
    assert total.update([a, b]) == 15
    a.count, b.count = 12, 6
    assert total.update([a]) == 18  # b ended at 6
    a.count = 3  # a started over from zero
    assert total.update([a]) == 6 + 12 + 3
    del a
    assert total.update([]) == 21  # gone: what it had at the last look
    assert total.update([_Source(1)]) == 22


class _Packager:
    def __init__(self, parts: int) -> None:
        self.parts_produced = parts
        self.stream = None
        self.ladder = None


def _broadcast(bytes_in: int, parts: int) -> SimpleNamespace:
    health = IngestHealth(1.0)
    health.bytes_in = bytes_in
    return SimpleNamespace(publisher=None, health=health, packager=_Packager(parts))


def _sample(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, name
    return value


def test_ingest_bytes_and_parts_counters_survive_the_end_of_a_session():
    manager = SimpleNamespace(broadcasts={}, refusals={}, throttled=Counter())
    metrics = Metrics()
    metrics.bind(manager, hls=None)
    manager.broadcasts["ls_1"] = first = _broadcast(1000, 7)
    assert _sample(metrics, "live_ingest_bytes_total") == 1000
    assert _sample(metrics, "live_hls_parts_total") == 7
    first.health.bytes_in, first.packager.parts_produced = 1500, 9
    del manager.broadcasts["ls_1"]  # the session ends
    assert _sample(metrics, "live_ingest_bytes_total") == 1500
    assert _sample(metrics, "live_hls_parts_total") == 9
    manager.broadcasts["ls_1"] = _broadcast(200, 1)  # the next one starts from zero
    assert _sample(metrics, "live_ingest_bytes_total") == 1700
    assert _sample(metrics, "live_hls_parts_total") == 10
