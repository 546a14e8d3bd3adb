"""Failed attempts per client address: the brake on guessing secrets.

A publisher that sends a wrong stream key (or SRT passphrase) again and again from
one address is first slowed, then refused for a while, without touching any other
address. Sans-I/O: `check` says what to do with an attempt before its secret is
looked at (go ahead, wait first, or refuse), `failed` records a wrong one; the
caller does the waiting. The delay applies to every attempt from a suspicious
address, right or wrong, so that a guesser cannot stop waiting early and conclude
"wrong" from the silence.

Addresses are grouped the way one client holds them: an IPv4 address alone, an
IPv6 address by its /64 (one host usually gets a whole /64 and may pick any address
in it), an IPv4-mapped IPv6 address as the IPv4 one. Memory is bounded: an entry
whose failures left the window and whose refusal ended is dropped, and beyond
`max_addresses` the least recently seen go first.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """Within `window_s`, the first `slow_after` failures cost nothing; from then on
    each attempt waits `delay_s`, doubling with every further failure up to
    `max_delay_s`; at `refuse_after` failures the address is refused for
    `refuse_for_s`, after which it starts afresh."""

    slow_after: int = 5
    refuse_after: int = 10
    window_s: float = 600.0
    refuse_for_s: float = 300.0
    delay_s: float = 1.0
    max_delay_s: float = 8.0
    max_addresses: int = 100_000

    def __post_init__(self) -> None:
        if not 0 <= self.slow_after <= self.refuse_after or self.refuse_after < 1:
            raise ValueError("need 0 <= slow_after <= refuse_after and refuse_after >= 1")
        if self.window_s <= 0 or self.refuse_for_s <= 0 or self.max_addresses < 1:
            raise ValueError("window_s, refuse_for_s and max_addresses must be positive")
        if not 0 <= self.delay_s <= self.max_delay_s:
            raise ValueError("need 0 <= delay_s <= max_delay_s")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with an attempt: refuse it (and when to try again), or go ahead
    after `delay_s` (0: at once)."""

    refused: bool = False
    delay_s: float = 0.0
    retry_after_s: float = 0.0

    @property
    def retry_after_whole_s(self) -> int:
        """`retry_after_s` rounded up, as a Retry-After header wants it."""
        return max(1, math.ceil(self.retry_after_s))


GO_AHEAD = Verdict()


@dataclass(slots=True)
class _Entry:
    failures: deque[float] = field(default_factory=deque)  # times, oldest first
    refused_until: float = 0.0


class AttemptGuard:
    def __init__(
        self, settings: GuardSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    @property
    def remembered(self) -> int:
        """Addresses held now (for tests of the bound)."""
        return len(self._entries)

    def check(self, address: str) -> Verdict:
        """Before the secret is looked at: refuse, delay, or go ahead."""
        now = self.clock()
        self._expire(now)
        entry = self._entries.get(address_group(address))
        if entry is None:
            return GO_AHEAD
        if entry.refused_until > now:
            return Verdict(refused=True, retry_after_s=entry.refused_until - now)
        self._forget_old(entry, now)
        return Verdict(delay_s=self._delay(len(entry.failures)))

    def failed(self, address: str) -> Verdict:
        """A wrong secret from `address`; the answer is what its next attempt gets."""
        now = self.clock()
        self._expire(now)
        group = address_group(address)
        entry = self._entries.get(group)
        if entry is None:
            entry = self._entries[group] = _Entry()
            while len(self._entries) > self.settings.max_addresses:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(group)
        self._forget_old(entry, now)
        entry.failures.append(now)
        if len(entry.failures) >= self.settings.refuse_after:
            entry.failures.clear()
            entry.refused_until = now + self.settings.refuse_for_s
            return Verdict(refused=True, retry_after_s=self.settings.refuse_for_s)
        return Verdict(delay_s=self._delay(len(entry.failures)))

    def _delay(self, failures: int) -> float:
        settings = self.settings
        beyond = failures - settings.slow_after
        if beyond < 0:
            return 0.0
        return min(settings.max_delay_s, settings.delay_s * 2.0 ** min(beyond, 32))

    def _forget_old(self, entry: _Entry, now: float) -> None:
        horizon = now - self.settings.window_s
        while entry.failures and entry.failures[0] <= horizon:
            entry.failures.popleft()

    def _expire(self, now: float) -> None:
        """Drop the least recently failed entries that have nothing left to hold
        against their address (they are in the order of their last failure)."""
        horizon = now - self.settings.window_s
        while self._entries:
            entry = next(iter(self._entries.values()))
            last = entry.failures[-1] if entry.failures else -math.inf
            if last > horizon or entry.refused_until > now:
                return
            self._entries.popitem(last=False)


def address_group(address: str) -> str:
    """The client an address stands for: "203.0.113.7", "2001:db8:1:2::/64".
    Takes a bare IP address, "V4:PORT" or "[V6]:PORT" (as `peer_address` writes
    them); what is not an IP address (a Unix socket, "?") stands for itself."""
    ip = _parse_ip(address)
    if ip is None:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def peer_address(host: str, port: int) -> str:
    """A client's address as logs and sessions show it: "203.0.113.7:5000",
    "[2001:db8::7]:5000" (brackets, so that the port is never read as part of it)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _parse_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if address.startswith("["):
        host = address[1:].partition("]")[0]
    elif address.count(":") == 1:
        host = address.partition(":")[0]
    else:
        host = address
    try:
        return ipaddress.ip_address(host.partition("%")[0])  # no zone: fe80::1%eth0
    except ValueError:
        return None
