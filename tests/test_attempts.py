"""The failed-attempts guard: slowed, then refused, then forgiven; per address group;
bounded memory. Time is a fake clock: nothing here waits."""

from __future__ import annotations

import pytest

from live.attempts import AttemptGuard, GuardSettings, Verdict, address_group, peer_address


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SETTINGS = GuardSettings(
    slow_after=3, refuse_after=6, window_s=60, refuse_for_s=30, delay_s=0.5, max_delay_s=2
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guard(clock) -> AttemptGuard:
    return AttemptGuard(SETTINGS, clock=clock)


def test_a_fresh_address_goes_ahead(guard):
    assert guard.check("192.0.2.1:5000") == Verdict()
    assert guard.remembered == 0  # looking remembers nothing


def test_failures_are_free_then_slowed_doubling_then_refused(guard, clock):
    delays = []
    for _ in range(5):
        guard.failed("192.0.2.1:5000")
        verdict = guard.check("192.0.2.1:5001")  # another port: the same client
        assert not verdict.refused
        delays.append(verdict.delay_s)
    assert delays == [0.0, 0.0, 0.5, 1.0, 2.0]
    refused = guard.failed("192.0.2.1:5002")
    assert refused.refused and refused.retry_after_s == 30
    clock.now += 29
    verdict = guard.check("192.0.2.1:5003")
    assert verdict.refused and verdict.retry_after_s == pytest.approx(1)
    assert verdict.retry_after_whole_s == 1


def test_the_delay_is_capped(clock):
    guard = AttemptGuard(
        GuardSettings(slow_after=1, refuse_after=100, delay_s=1, max_delay_s=4), clock=clock
    )
    for _ in range(60):
        guard.failed("192.0.2.1")
    assert guard.check("192.0.2.1").delay_s == 4


def test_a_refusal_ends_and_the_address_starts_afresh(guard, clock):
    for _ in range(6):
        guard.failed("192.0.2.1")
    assert guard.check("192.0.2.1").refused
    clock.now += 30
    assert guard.check("192.0.2.1") == Verdict()
    assert guard.failed("192.0.2.1") == Verdict()  # the first failure of a new round


def test_other_addresses_are_untouched(guard):
    for _ in range(6):
        guard.failed("192.0.2.1:1")
    assert guard.check("192.0.2.1:2").refused
    assert guard.check("192.0.2.2:1") == Verdict()
    assert guard.check("[2001:db8::1]:1") == Verdict()


def test_failures_leave_the_window(guard, clock):
    for _ in range(5):
        guard.failed("192.0.2.1")
        clock.now += 20
    # 100 s later only the failures of the last 60 s count: two of them.
    assert guard.check("192.0.2.1") == Verdict()
    guard.failed("192.0.2.1")
    assert guard.check("192.0.2.1").delay_s == 0.5


def test_slow_failures_never_lead_to_a_refusal(guard, clock):
    for _ in range(50):
        guard.failed("192.0.2.1")
        clock.now += 25  # at most three in any 60 s
    assert not guard.check("192.0.2.1").refused


def test_expired_entries_are_forgotten(guard, clock):
    for index in range(50):
        guard.failed(f"192.0.2.{index}")
    assert guard.remembered == 50
    clock.now += 61
    guard.check("198.51.100.1")
    assert guard.remembered == 0


def test_a_refused_entry_is_kept_until_its_refusal_ends(guard, clock):
    for _ in range(6):
        guard.failed("192.0.2.1")
    clock.now += 29
    guard.check("198.51.100.1")
    assert guard.remembered == 1
    clock.now += 1
    guard.check("198.51.100.1")
    assert guard.remembered == 0


def test_memory_is_bounded_by_dropping_the_least_recent(clock):
    guard = AttemptGuard(GuardSettings(max_addresses=100, slow_after=1), clock=clock)
    guard.failed("192.0.2.1")
    for index in range(200):
        guard.failed(f"10.0.{index // 256}.{index % 256}")
    assert guard.remembered == 100
    assert guard.check("192.0.2.1") == Verdict()  # the oldest went first
    assert guard.check("10.0.0.199").delay_s > 0


def test_ipv6_clients_are_grouped_by_their_64(guard):
    for index in range(6):
        guard.failed(f"[2001:db8:1:2::{index + 1}]:4000")  # a new address each time
    assert guard.check("[2001:db8:1:2:ffff::9]:1").refused
    assert guard.check("[2001:db8:1:3::1]:1") == Verdict()


@pytest.mark.parametrize(
    ("address", "group"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7:5000", "203.0.113.7"),
        ("[2001:db8:1:2:3:4:5:6]:5000", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("[::ffff:203.0.113.7]:5000", "203.0.113.7"),  # a dual-stack socket's IPv4 peer
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("[fe80::1%eth0]:5000", "fe80::/64"),
        ("::1", "::/64"),
        ("?", "?"),
        ("/run/live.sock", "/run/live.sock"),
    ],
)
def test_address_groups(address, group):
    assert address_group(address) == group


def test_peer_addresses_bracket_ipv6_so_ports_are_never_read_as_part_of_it():
    assert peer_address("203.0.113.7", 5000) == "203.0.113.7:5000"
    assert peer_address("2001:db8::1:2:3:4", 5000) == "[2001:db8::1:2:3:4]:5000"
    # Unbracketed, the port would move the address into another /64.
    assert address_group(peer_address("2001::1:2:3:4:5:6", 5555)) == "2001:0:1:2::/64"


@pytest.mark.parametrize(
    "values",
    [
        {"slow_after": 5, "refuse_after": 4},
        {"refuse_after": 0, "slow_after": 0},
        {"window_s": 0},
        {"refuse_for_s": -1},
        {"delay_s": 3, "max_delay_s": 2},
        {"max_addresses": 0},
    ],
)
def test_settings_that_make_no_sense_are_refused(values):
    with pytest.raises(ValueError):
        GuardSettings(**values)
