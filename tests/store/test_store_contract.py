"""The Store contract: every implementation (SQLite, Redis) must pass it.

Add an implementation by adding a factory to STORE_FACTORIES. The Redis one runs
against a real redis-server (`tests/redis_service.py`), started only when needed.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from live.store import SqliteStore, Store
from live.store.models import Session
from live.store.times import utcnow


async def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return await SqliteStore.open(tmp_path / "data")


async def _redis(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    from live.store.redis import RedisStore

    return await RedisStore.open(request.getfixturevalue("redis_url"))


STORE_FACTORIES: dict[str, Callable[[pytest.FixtureRequest, Path], Awaitable[Store]]] = {
    "sqlite": _sqlite,
    "redis": _redis,
}


@pytest.fixture(params=sorted(STORE_FACTORIES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    instance = await STORE_FACTORIES[request.param](request, tmp_path)
    try:
        yield instance
    finally:
        await instance.close()


# -- livestreams ---------------------------------------------------------------


async def test_create_livestream_defaults(store: Store) -> None:
    before = utcnow()
    ls = await store.create_livestream(name="Main stage")
    assert ls.id.startswith("ls_")
    assert ls.name == "Main stage"
    assert ls.stream_key.startswith("sk_")
    assert ls.playback_id.startswith("pb_")
    assert (ls.record, ls.latency_mode, ls.transcode) == (True, "low", "auto")
    assert (ls.reconnect_window_s, ls.max_duration_s) == (10, 43200)
    assert ls.srt_passphrase is None
    assert ls.live is False
    assert ls.banned_at is None and ls.ban_until is None and ls.ban_reason is None
    assert ls.created_at.tzinfo is not None
    assert before <= ls.created_at <= utcnow()
    assert ls.updated_at == ls.created_at
    assert await store.get_livestream(ls.id) == ls


async def test_create_livestream_with_settings(store: Store) -> None:
    ls = await store.create_livestream(
        name="x",
        record=False,
        latency_mode="standard",
        transcode="ladder",
        reconnect_window_s=0,
        max_duration_s=60,
        srt_passphrase="0123456789abc",
    )
    got = await store.get_livestream(ls.id)
    assert got is not None
    assert (got.record, got.latency_mode, got.transcode) == (False, "standard", "ladder")
    assert (got.reconnect_window_s, got.max_duration_s) == (0, 60)
    assert got.srt_passphrase == "0123456789abc"


async def test_secrets_are_long_and_independent(store: Store) -> None:
    streams = [await store.create_livestream(name=f"s{i}") for i in range(20)]
    keys = {ls.stream_key for ls in streams}
    playback_ids = {ls.playback_id for ls in streams}
    assert len(keys) == len(playback_ids) == 20
    assert not keys & playback_ids
    for ls in streams:
        # >= 128 bits: at least 22 base64url characters after the prefix
        assert len(ls.stream_key) - 3 >= 22
        assert len(ls.playback_id) - 3 >= 22
        assert ls.stream_key[3:] not in ls.playback_id
        assert ls.playback_id[3:] not in ls.stream_key


async def test_lookups(store: Store) -> None:
    ls = await store.create_livestream(name="a")
    await store.create_livestream(name="b")
    assert await store.get_livestream_by_stream_key(ls.stream_key) == ls
    assert await store.get_livestream_by_playback_id(ls.playback_id) == ls
    assert await store.get_livestream("ls_nope") is None
    assert await store.get_livestream_by_stream_key("sk_nope") is None
    assert await store.get_livestream_by_playback_id("pb_nope") is None
    assert await store.get_livestream_by_stream_key(ls.playback_id) is None


async def test_list_newest_first_with_pages(store: Store) -> None:
    created = [await store.create_livestream(name=f"s{i}") for i in range(7)]
    newest_first = [ls.id for ls in reversed(created)]
    items, total = await store.list_livestreams(1, 3)
    assert total == 7
    assert [ls.id for ls in items] == newest_first[:3]
    items, total = await store.list_livestreams(3, 3)
    assert total == 7
    assert [ls.id for ls in items] == newest_first[6:]
    items, total = await store.list_livestreams(4, 3)
    assert (items, total) == ([], 7)
    items, _ = await store.list_livestreams(1, 100)
    assert [ls.id for ls in items] == newest_first


async def test_list_empty(store: Store) -> None:
    assert await store.list_livestreams() == ([], 0)


async def test_list_rejects_bad_paging_and_status(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.list_livestreams(0, 20)
    with pytest.raises(ValueError):
        await store.list_livestreams(1, 0)
    with pytest.raises(ValueError):
        await store.list_livestreams(1, 20, "bogus")  # type: ignore[arg-type]


async def test_list_status_filter(store: Store) -> None:
    idle = await store.create_livestream(name="idle")
    live = await store.create_livestream(name="live")
    banned = await store.create_livestream(name="banned")
    banned_live = await store.create_livestream(name="banned and still flagged live")
    await store.set_live(live.id, True)
    await store.set_live(banned_live.id, True)
    await store.ban(banned.id, "spam")
    await store.ban(banned_live.id, None)

    async def ids(status: str | None) -> set[str]:
        items, total = await store.list_livestreams(1, 100, status)  # type: ignore[arg-type]
        assert total == len(items)
        return {ls.id for ls in items}

    assert await ids("idle") == {idle.id}
    assert await ids("live") == {live.id}
    assert await ids("banned") == {banned.id, banned_live.id}
    assert len(await ids(None)) == 4


async def test_status_filter_pages_agree_with_status(store: Store) -> None:
    now = utcnow()
    streams = [await store.create_livestream(name=f"s{n}") for n in range(17)]
    for n, ls in enumerate(streams):
        if n % 3 == 0 or n % 7 == 0:
            await store.set_live(ls.id, True)
        if n % 4 == 0:
            await store.ban(ls.id, None, None if n % 8 else now - timedelta(seconds=1))
        if n % 5 == 0:
            await store.ban(ls.id, None, now + timedelta(hours=1))
    await store.set_live(streams[3].id, False)
    await store.unban(streams[5].id)
    await store.delete_livestream(streams[6].id)
    everything, _ = await store.list_livestreams(1, 100)
    for status in ("idle", "live", "banned"):
        expected = [ls.id for ls in everything if ls.status(now) == status]
        for page_size in (1, 2, 5):
            seen, page = [], 1
            while True:
                items, total = await store.list_livestreams(page, page_size, status, now=now)  # type: ignore[arg-type]
                assert total == len(expected)
                if not items:
                    break
                seen += [ls.id for ls in items]
                page += 1
            assert seen == expected, (status, page_size)
        assert len(expected) >= 3


async def test_ban_expiry(store: Store) -> None:
    ls = await store.create_livestream(name="x")
    now = utcnow()
    banned = await store.ban(ls.id, "cool down", now + timedelta(hours=1))
    assert banned is not None
    assert banned.ban_reason == "cool down"
    assert banned.ban_until == now + timedelta(hours=1)
    assert banned.banned_at is not None and banned.banned_at >= now
    assert banned.is_banned(now)
    assert banned.status(now) == "banned"
    later = now + timedelta(hours=2)
    assert not banned.is_banned(later)
    assert banned.status(later) == "idle"
    assert (await store.list_livestreams(1, 20, "banned", now=now))[1] == 1
    assert (await store.list_livestreams(1, 20, "banned", now=later))[1] == 0
    assert (await store.list_livestreams(1, 20, "idle", now=later))[1] == 1


async def test_ban_forever_and_unban(store: Store) -> None:
    ls = await store.create_livestream(name="x")
    banned = await store.ban(ls.id)
    assert banned is not None and banned.ban_until is None and banned.ban_reason is None
    assert banned.is_banned(utcnow() + timedelta(days=3650))
    assert banned.updated_at > ls.updated_at
    unbanned = await store.unban(ls.id)
    assert unbanned is not None
    assert not unbanned.is_banned()
    assert (unbanned.banned_at, unbanned.ban_until, unbanned.ban_reason) == (None, None, None)
    assert await store.ban("ls_nope") is None
    assert await store.unban("ls_nope") is None


async def test_reban_replaces_ban(store: Store) -> None:
    ls = await store.create_livestream(name="x")
    await store.ban(ls.id, "first", utcnow() + timedelta(minutes=5))
    again = await store.ban(ls.id, "second")
    assert again is not None
    assert (again.ban_reason, again.ban_until) == ("second", None)


async def test_update_livestream(store: Store) -> None:
    ls = await store.create_livestream(name="x")
    updated = await store.update_livestream(
        ls.id, name="y", record=False, latency_mode="standard", srt_passphrase="abcdefghijk"
    )
    assert updated is not None
    assert (updated.name, updated.record, updated.latency_mode) == ("y", False, "standard")
    assert updated.srt_passphrase == "abcdefghijk"
    assert updated.created_at == ls.created_at
    assert updated.updated_at > ls.updated_at
    assert updated.stream_key == ls.stream_key
    assert await store.get_livestream(ls.id) == updated
    cleared = await store.update_livestream(ls.id, srt_passphrase=None)
    assert cleared is not None and cleared.srt_passphrase is None


async def test_update_livestream_edge_cases(store: Store) -> None:
    ls = await store.create_livestream(name="x")
    assert await store.update_livestream(ls.id) == ls
    assert await store.update_livestream("ls_nope", name="y") is None
    for forbidden in ("stream_key", "live", "id", "bogus"):
        with pytest.raises(ValueError):
            await store.update_livestream(ls.id, **{forbidden: "z"})
    assert await store.get_livestream(ls.id) == ls


async def test_delete_livestream(store: Store) -> None:
    ls = await store.create_livestream(name="x")
    other = await store.create_livestream(name="y")
    assert await store.delete_livestream(ls.id) is True
    assert await store.get_livestream(ls.id) is None
    assert await store.get_livestream_by_stream_key(ls.stream_key) is None
    assert await store.delete_livestream(ls.id) is False
    assert await store.list_livestreams() == ([other], 1)


async def test_set_live(store: Store) -> None:
    ls = await store.create_livestream(name="x")
    assert await store.set_live(ls.id, True) is True
    got = await store.get_livestream(ls.id)
    assert got is not None and got.live is True and got.status() == "live"
    assert got.updated_at == ls.updated_at  # runtime state, not a settings change
    assert await store.set_live(ls.id, False) is True
    got = await store.get_livestream(ls.id)
    assert got is not None and got.live is False
    assert await store.set_live("ls_nope", True) is False


async def test_reset_stream_key(store: Store) -> None:
    ls = await store.create_livestream(name="x")
    new_key = await store.reset_stream_key(ls.id)
    assert new_key is not None and new_key.startswith("sk_") and new_key != ls.stream_key
    assert await store.get_livestream_by_stream_key(ls.stream_key) is None
    got = await store.get_livestream_by_stream_key(new_key)
    assert got is not None and got.id == ls.id and got.playback_id == ls.playback_id
    assert await store.reset_stream_key("ls_nope") is None


def test_is_banned_without_store() -> None:
    from live.store.models import Livestream

    now = datetime(2026, 1, 1, tzinfo=UTC)
    ls = Livestream(id="ls_x", name="x", stream_key="sk_x", playback_id="pb_x")
    assert not ls.is_banned(now)
    ls.banned_at = now
    assert ls.is_banned(now)
    ls.ban_until = now + timedelta(seconds=1)
    assert ls.is_banned(now)
    assert not ls.is_banned(now + timedelta(seconds=1))  # the until instant is free again


def test_secrets_stay_out_of_repr() -> None:
    from live.store.models import ApiKey, Livestream

    ls = Livestream(
        id="ls_x", name="x", stream_key="sk_secret", playback_id="pb_x", srt_passphrase="pass-word!"
    )
    assert "sk_secret" not in repr(ls) and "pass-word!" not in repr(ls)
    key = ApiKey(id="ak_x", name="k", scope="read", key_hash="f00d" * 16)
    assert "f00d" not in repr(key)


# -- API keys --------------------------------------------------------------------


async def test_create_and_verify_api_key(store: Store) -> None:
    key, plaintext = await store.create_api_key("ci", "admin")
    assert key.id.startswith("ak_")
    assert plaintext.startswith("lk_") and len(plaintext) >= 3 + 43
    assert (key.name, key.scope, key.last_used_at) == ("ci", "admin", None)
    assert key.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    verified = await store.verify_api_key(plaintext)
    assert verified is not None and verified.id == key.id
    assert verified.last_used_at is not None
    got = await store.get_api_key(key.id)
    assert got is not None and got.last_used_at is not None


async def test_verify_rejects_wrong_keys(store: Store) -> None:
    key, plaintext = await store.create_api_key("ci", "read")
    assert await store.verify_api_key(plaintext + "x") is None
    assert await store.verify_api_key(plaintext[:-1]) is None
    assert await store.verify_api_key("") is None
    assert await store.verify_api_key(key.key_hash) is None  # the hash is not the key
    assert await store.verify_api_key(key.id) is None


async def test_api_key_scope_is_checked(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.create_api_key("x", "root")  # type: ignore[arg-type]


async def test_list_count_delete_api_keys(store: Store) -> None:
    assert await store.count_api_keys() == 0
    keys = [(await store.create_api_key(f"k{i}", "read"))[0] for i in range(5)]
    assert await store.count_api_keys() == 5
    items, total = await store.list_api_keys(1, 2)
    assert total == 5
    assert [k.id for k in items] == [keys[4].id, keys[3].id]
    items, _ = await store.list_api_keys(3, 2)
    assert [k.id for k in items] == [keys[0].id]
    assert await store.delete_api_key(keys[0].id) is True
    assert await store.delete_api_key(keys[0].id) is False
    assert await store.get_api_key(keys[0].id) is None
    assert await store.count_api_keys() == 4


async def test_deleted_api_key_stops_working(store: Store) -> None:
    key, plaintext = await store.create_api_key("gone", "admin")
    await store.delete_api_key(key.id)
    assert await store.verify_api_key(plaintext) is None


async def test_ensure_api_key_is_idempotent(store: Store) -> None:
    plaintext = "lk_configured-from-the-environment"
    first = await store.ensure_api_key(plaintext, "env", "admin")
    second = await store.ensure_api_key(plaintext, "renamed", "read")
    assert first.id == second.id
    assert (second.name, second.scope) == ("env", "admin")
    assert await store.count_api_keys() == 1
    verified = await store.verify_api_key(plaintext)
    assert verified is not None and verified.id == first.id


# -- sessions --------------------------------------------------------------------


def _session(livestream_id: str, started_at: datetime, **fields: object) -> Session:
    return Session(livestream_id=livestream_id, protocol="rtmp", started_at=started_at, **fields)  # type: ignore[arg-type]


async def test_create_and_get_session(store: Store) -> None:
    started = utcnow()
    session = Session(
        livestream_id="ls_a",
        protocol="srt",
        remote_addr="203.0.113.7:53211",
        encoder="obs-output module (libobs version 30.1.2)",
        started_at=started,
        video={"codec": "h264", "width": 1280, "height": 720, "fps": 30.0},
        audio={"codec": "aac", "sample_rate": 48000, "channels": 2},
    )
    assert session.id.startswith("ses_")
    assert await store.create_session(session) == session
    got = await store.get_session(session.id)
    assert got == session
    assert got is not None and got.ended_at is None and got.end_reason is None
    assert (got.bytes_in, got.peak_viewers, got.total_views, got.asset_id) == (0, 0, 0, None)
    assert await store.get_session("ses_nope") is None


async def test_update_and_end_session(store: Store) -> None:
    started = utcnow() - timedelta(minutes=10)
    session = await store.create_session(_session("ls_a", started))
    updated = await store.update_session(session.id, bytes_in=1000, peak_viewers=3)
    assert updated is not None and (updated.bytes_in, updated.peak_viewers) == (1000, 3)
    ended_at = started + timedelta(seconds=3621.4)
    ended = await store.end_session(
        session.id, ended_at, "kicked", bytes_in=5000, total_views=9, asset_id="ast_1"
    )
    assert ended is not None
    assert (ended.ended_at, ended.end_reason) == (ended_at, "kicked")
    assert (ended.bytes_in, ended.total_views, ended.asset_id) == (5000, 9, "ast_1")
    assert ended.peak_viewers == 3
    assert ended.duration_s() == pytest.approx(3621.4)
    assert await store.get_session(session.id) == ended
    assert await store.update_session("ses_nope", bytes_in=1) is None
    assert await store.end_session("ses_nope", ended_at, "error") is None


async def test_update_session_rejects_unknown_fields(store: Store) -> None:
    session = await store.create_session(_session("ls_a", utcnow()))
    for field in ("livestream_id", "id", "started_at", "bogus"):
        with pytest.raises(ValueError):
            await store.update_session(session.id, **{field: "x"})
    with pytest.raises(ValueError):
        await store.end_session(session.id, utcnow(), "error", bogus=1)


async def test_open_session_duration_runs_on(store: Store) -> None:
    started = utcnow() - timedelta(seconds=30)
    session = await store.create_session(_session("ls_a", started))
    assert session.duration_s(started + timedelta(seconds=45)) == pytest.approx(45)


async def test_list_sessions_newest_first(store: Store) -> None:
    base = utcnow() - timedelta(hours=1)
    mine = [
        await store.create_session(_session("ls_a", base + timedelta(minutes=i))) for i in range(5)
    ]
    await store.create_session(_session("ls_b", base + timedelta(minutes=30)))
    items, total = await store.list_sessions("ls_a", 1, 2)
    assert total == 5
    assert [s.id for s in items] == [mine[4].id, mine[3].id]
    items, total = await store.list_sessions("ls_a", 3, 2)
    assert [s.id for s in items] == [mine[0].id]
    assert await store.list_sessions("ls_none") == ([], 0)


async def test_list_open_sessions(store: Store) -> None:
    now = utcnow()
    open_one = await store.create_session(_session("ls_a", now))
    closed = await store.create_session(_session("ls_b", now))
    await store.end_session(closed.id, now + timedelta(seconds=5), "publisher_disconnected")
    assert [s.id for s in await store.list_open_sessions()] == [open_one.id]


async def test_sessions_survive_livestream_delete(store: Store) -> None:
    ls = await store.create_livestream(name="x")
    session = await store.create_session(_session(ls.id, utcnow()))
    await store.delete_livestream(ls.id)
    assert await store.get_session(session.id) is not None


async def test_fenced_session_writes_refuse_an_older_owner(store: Store) -> None:
    from live.store import StaleFence

    session = await store.create_session(_session("ls_a", utcnow()), fence=5)
    assert await store.update_session(session.id, fence=5, bytes_in=10) is not None  # same owner
    newer = await store.update_session(session.id, fence=7, bytes_in=20)  # a new owner
    assert newer is not None and newer.bytes_in == 20
    with pytest.raises(StaleFence) as info:
        await store.update_session(session.id, fence=6, bytes_in=999, encoder="stale")
    assert (info.value.highest, info.value.given) == (7, 6)
    with pytest.raises(StaleFence):
        await store.end_session(session.id, utcnow(), "error", fence=5, bytes_in=999)
    with pytest.raises(StaleFence):  # nor may the old owner start a session of this stream
        await store.create_session(_session("ls_a", utcnow()), fence=6)
    assert await store.get_session(session.id) == newer  # nothing changed
    assert (await store.list_sessions("ls_a"))[1] == 1
    ended = await store.end_session(session.id, utcnow(), "kicked", fence=7, bytes_in=30)
    assert ended is not None and ended.bytes_in == 30 and ended.end_reason == "kicked"


async def test_fences_are_per_stream_and_none_is_unchecked(store: Store) -> None:
    a = await store.create_session(_session("ls_a", utcnow()), fence=100)
    b = await store.create_session(_session("ls_b", utcnow()), fence=1)  # another stream
    assert await store.update_session(b.id, fence=2, bytes_in=1) is not None
    unchecked = await store.update_session(a.id, bytes_in=5)  # a single node has no lease
    assert unchecked is not None and unchecked.bytes_in == 5
    assert await store.update_session("ses_nope", fence=1, bytes_in=1) is None
    assert await store.end_session("ses_nope", utcnow(), "error", fence=1) is None


# -- webhooks, deliveries, idempotency keys -----------------------------------------


async def test_webhooks_crud(store: Store) -> None:
    first = await store.create_webhook("https://a.example/h", ["livestream.live"], "whsec_1")
    second = await store.create_webhook("https://b.example/h", ["asset.ready"], "whsec_2")
    assert await store.get_webhook(first.id) == first
    hooks, total = await store.list_webhooks(1, 1)
    assert total == 2 and hooks == [second]  # newest first
    assert await store.delete_webhook(first.id) is True
    assert await store.delete_webhook(first.id) is False
    assert await store.get_webhook(first.id) is None


async def test_enqueue_event_fans_out_to_subscribers_only(store: Store) -> None:
    live = await store.create_webhook("https://a.example", ["livestream.live"], "s1")
    both = await store.create_webhook("https://b.example", ["livestream.live", "asset.ready"], "s2")
    now = utcnow()
    assert await store.enqueue_event("evt_1", "livestream.live", '{"id":"evt_1"}', now) == 2
    assert await store.enqueue_event("evt_2", "asset.ready", '{"id":"evt_2"}', now) == 1
    assert await store.enqueue_event("evt_3", "asset.failed", "{}", now) == 0
    items, total = await store.list_deliveries()
    assert total == 3
    assert {(d.webhook_id, d.event_id) for d in items} == {
        (live.id, "evt_1"), (both.id, "evt_1"), (both.id, "evt_2"),
    }  # fmt: skip
    assert all(d.state == "pending" and d.attempts == 0 for d in items)
    assert len({d.id for d in items}) == 3
    only, count = await store.list_deliveries(webhook_id=live.id)
    assert count == 1 and only[0].body == '{"id":"evt_1"}'
    assert await store.next_delivery_at() == items[0].next_attempt_at


async def test_claim_leases_due_deliveries(store: Store) -> None:
    hook = await store.create_webhook("https://a.example", ["asset.ready"], "s")
    now = utcnow()
    for n in range(3):
        await store.enqueue_event(f"evt_{n}", "asset.ready", "{}", now)
    lease = now + timedelta(seconds=30)
    claimed = await store.claim_due_deliveries(hook.id, now, lease, 2)
    assert [d.event_id for d in claimed] == ["evt_0", "evt_1"]  # oldest first
    assert all(d.next_attempt_at == lease for d in claimed)
    rest = await store.claim_due_deliveries(hook.id, now, lease, 10)
    assert [d.event_id for d in rest] == ["evt_2"]
    assert await store.claim_due_deliveries(hook.id, now, lease, 10) == []
    again = await store.claim_due_deliveries(hook.id, lease, lease + timedelta(seconds=1), 10)
    assert len(again) == 3  # the lease ran out: at least once


async def test_record_attempt_and_resend(store: Store) -> None:
    hook = await store.create_webhook("https://a.example", ["asset.ready"], "s")
    now = utcnow()
    await store.enqueue_event("evt_1", "asset.ready", "{}", now)
    (delivery,) = await store.claim_due_deliveries(hook.id, now, now, 1)
    later = now + timedelta(seconds=10)
    failed = await store.record_attempt(
        delivery.id, state="pending", next_attempt_at=later, last_status=503, last_error="HTTP 503"
    )
    assert failed is not None
    assert (failed.attempts, failed.last_status, failed.next_attempt_at) == (1, 503, later)
    assert await store.claim_due_deliveries(hook.id, now, now, 1) == []
    done = await store.record_attempt(
        delivery.id, state="delivered", next_attempt_at=later, last_status=200,
        last_error=None, delivered_at=later,
    )  # fmt: skip
    assert done is not None and done.state == "delivered" and done.delivered_at == later
    assert (await store.list_deliveries(state="delivered"))[1] == 1
    assert await store.next_delivery_at() is None
    resent = await store.resend_delivery(delivery.id, now)
    assert resent is not None and resent.state == "pending" and resent.attempts == 2
    assert await store.resend_delivery("dlv_nope", now) is None
    assert await store.record_attempt(
        "dlv_nope", state="failed", next_attempt_at=now, last_status=None, last_error="x"
    ) is None  # fmt: skip


async def test_delivery_log_filters_page_like_the_whole_log(store: Store) -> None:
    hooks = [
        await store.create_webhook(f"https://{n}.example", ["asset.ready"], "s") for n in range(2)
    ]
    now = utcnow()
    for n in range(6):
        await store.enqueue_event(f"evt_{n}", "asset.ready", "{}", now)
    log, _ = await store.list_deliveries(1, 100)
    outcomes = ["delivered", "failed", "pending"]
    for n, delivery in enumerate(log):
        await store.record_attempt(
            delivery.id, state=outcomes[n % 3], next_attempt_at=now,  # type: ignore[arg-type]
            last_status=None, last_error=None,
        )  # fmt: skip
    await store.resend_delivery(log[1].id, now)  # failed -> pending again
    log, _ = await store.list_deliveries(1, 100)
    for hook_id in (None, hooks[0].id):
        for state in (None, "pending", "delivered", "failed"):
            expected = [
                d.id for d in log
                if hook_id in (None, d.webhook_id) and state in (None, d.state)
            ]  # fmt: skip
            seen, page = [], 1
            while items := (await store.list_deliveries(page, 2, webhook_id=hook_id, state=state))[
                0
            ]:  # type: ignore[arg-type]
                seen += [d.id for d in items]
                page += 1
            assert seen == expected, (hook_id, state)
            assert (await store.list_deliveries(webhook_id=hook_id, state=state))[1] == len(
                expected
            )  # type: ignore[arg-type]


async def test_deleting_a_webhook_deletes_its_deliveries(store: Store) -> None:
    gone = await store.create_webhook("https://a.example", ["asset.ready"], "s")
    kept = await store.create_webhook("https://b.example", ["asset.ready"], "s")
    await store.enqueue_event("evt_1", "asset.ready", "{}", utcnow())
    await store.delete_webhook(gone.id)
    items, total = await store.list_deliveries()
    assert total == 1 and items[0].webhook_id == kept.id


async def test_idempotent_answers_expire(store: Store) -> None:
    from live.store.models import IdempotentAnswer

    now = utcnow()
    answer = IdempotentAnswer(
        api_key_id="ak_1", key="k", fingerprint="f", status=201, body=b'{"a":1}',
        content_type="application/json; charset=utf-8", created_at=now,
    )  # fmt: skip
    await store.put_idempotent_answer(answer)
    assert await store.get_idempotent_answer("ak_1", "k", now - timedelta(hours=24)) == answer
    assert await store.get_idempotent_answer("ak_2", "k", now - timedelta(hours=24)) is None
    assert await store.get_idempotent_answer("ak_1", "k", now + timedelta(seconds=1)) is None
    assert await store.purge_idempotent_answers(now + timedelta(seconds=1)) == 1
    assert await store.get_idempotent_answer("ak_1", "k", now - timedelta(hours=24)) is None


# -- assets (recordings) ---------------------------------------------------------


async def test_create_get_update_asset(store: Store) -> None:
    from live.store.models import Asset

    asset = await store.create_asset(Asset(livestream_id="ls_1", session_id="ses_1"))
    assert asset.id.startswith("ast_") and asset.status == "recording"
    assert await store.get_asset(asset.id) == asset
    assert await store.get_asset("ast_nope") is None
    ready_at = utcnow()
    updated = await store.update_asset(
        asset.id, status="ready", duration_s=12.5, size_bytes=1234, has_poster=True,
        ready_at=ready_at,
    )  # fmt: skip
    assert updated is not None
    assert (updated.status, updated.duration_s, updated.size_bytes) == ("ready", 12.5, 1234)
    assert updated.has_poster is True and updated.ready_at == ready_at
    assert await store.get_asset(asset.id) == updated
    error = {"code": "processing_failed", "message": "the disk is full"}
    failed = await store.update_asset(asset.id, status="failed", error=error)
    assert failed is not None and failed.error == error
    assert await store.update_asset("ast_nope", status="ready") is None


async def test_an_upload_asset_keeps_every_field_and_belongs_to_no_livestream(
    store: Store,
) -> None:
    from live.store.models import Asset

    expires = utcnow()
    asset = await store.create_asset(
        Asset(
            source="url", name="Last week's show", status="pending",
            origin_url="https://media.example/show.mp4",
            origin_http_headers="Authorization: Bearer t0k3n\nX-Trace: 1",
            clip_start_s=5.0, clip_duration_s=10.0, transcode="passthrough",
            declared_size_bytes=123456, upload_expires_at=expires,
        )
    )  # fmt: skip
    assert await store.get_asset(asset.id) == asset
    assert asset.livestream_id is None and asset.session_id is None
    renditions = [{"width": 1280, "height": 720, "bitrate_kbps": 2800, "codec": "avc1.64001f"}]
    original = {"size_bytes": 123456, "video": {"codec": "h264"}, "audio": None}
    updated = await store.update_asset(
        asset.id, status="viewable", progress=40, renditions=renditions, original=original
    )
    assert updated is not None and await store.get_asset(asset.id) == updated
    assert (updated.progress, updated.renditions, updated.original) == (40, renditions, original)
    assert updated.status == "viewable"
    listed, total = await store.list_assets(statuses=("viewable",))
    assert (total, [a.id for a in listed]) == (1, [asset.id])
    assert await store.list_assets(livestream_id="ls_1") == ([], 0)
    assert await store.delete_asset(asset.id) is True
    assert await store.get_asset(asset.id) is None
    assert await store.list_assets() == ([], 0)


async def test_an_asset_error_must_be_a_code_and_a_message(store: Store) -> None:
    from live.store.models import Asset

    asset = await store.create_asset(Asset(livestream_id="ls_1", session_id="ses_1"))
    for bad in ("the disk is full", {"code": "disk_full", "message": "x"}, {"code": "x"}):
        with pytest.raises(ValueError):
            await store.update_asset(asset.id, status="failed", error=bad)
    assert (await store.get_asset(asset.id)).error is None


async def test_update_asset_rejects_unknown_fields_and_statuses(store: Store) -> None:
    from live.store.models import Asset

    asset = await store.create_asset(Asset(livestream_id="ls_1", session_id="ses_1"))
    with pytest.raises(ValueError):
        await store.update_asset(asset.id, livestream_id="ls_2")
    with pytest.raises(ValueError):
        await store.update_asset(asset.id, status="gone")


async def test_list_assets_newest_first_with_filters(store: Store) -> None:
    from live.store.models import Asset

    base = datetime(2026, 1, 1, tzinfo=UTC)
    made = []
    for number in range(5):
        asset = Asset(
            livestream_id="ls_a" if number % 2 == 0 else "ls_b",
            session_id=f"ses_{number}",
            created_at=base + timedelta(hours=number),
            status="ready" if number < 3 else "recording",
        )
        made.append(await store.create_asset(asset))
    items, total = await store.list_assets()
    assert total == 5 and [a.id for a in items] == [a.id for a in reversed(made)]
    items, total = await store.list_assets(page=2, page_size=2)
    assert total == 5 and [a.id for a in items] == [made[2].id, made[1].id]
    items, total = await store.list_assets(livestream_id="ls_b")
    assert total == 2 and {a.id for a in items} == {made[1].id, made[3].id}
    items, total = await store.list_assets(statuses=("recording", "processing"))
    assert {a.id for a in items} == {made[3].id, made[4].id}
    items, _ = await store.list_assets(created_before=base + timedelta(hours=2))
    assert {a.id for a in items} == {made[0].id, made[1].id}
    assert (await store.list_assets(statuses=()))[1] == 0


async def test_asset_filters_page_like_the_whole_list(store: Store) -> None:
    from live.store.models import Asset

    base = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(9):
        asset = Asset(
            livestream_id=f"ls_{n % 2}",
            session_id=f"ses_{n}",
            created_at=base + timedelta(hours=n % 5),
        )
        await store.create_asset(asset)
        if n % 3:
            await store.update_asset(asset.id, status="processing")
        if n % 4 == 0:
            await store.update_asset(asset.id, status="ready" if n % 8 else "failed")
    everything, _ = await store.list_assets(1, 100)
    cutoff = base + timedelta(hours=3)
    for livestream_id in (None, "ls_1"):
        for statuses in (None, ("ready", "failed"), ("recording", "processing"), ("processing",)):
            for before in (None, cutoff):
                expected = [
                    a.id for a in everything
                    if livestream_id in (None, a.livestream_id)
                    and (statuses is None or a.status in statuses)
                    and (before is None or a.created_at < before)
                ]  # fmt: skip
                seen, page = [], 1
                while True:
                    items, total = await store.list_assets(
                        page, 2, livestream_id=livestream_id, statuses=statuses,  # type: ignore[arg-type]
                        created_before=before,
                    )  # fmt: skip
                    assert total == len(expected)
                    if not items:
                        break
                    seen += [a.id for a in items]
                    page += 1
                assert seen == expected, (livestream_id, statuses, before)


async def test_a_taken_id_is_refused_and_changes_nothing(store: Store) -> None:
    from live.store.models import Asset

    session = await store.create_session(_session("ls_a", utcnow()))
    asset = await store.create_asset(Asset(livestream_id="ls_a", session_id=session.id))
    with pytest.raises(ValueError):
        await store.create_session(_session("ls_b", utcnow(), id=session.id))
    with pytest.raises(ValueError):
        await store.create_asset(Asset(livestream_id="ls_b", session_id="x", id=asset.id))
    assert await store.get_session(session.id) == session
    assert await store.get_asset(asset.id) == asset
    assert await store.list_sessions("ls_b") == ([], 0)
    assert (await store.list_assets())[1] == 1


async def test_delete_asset(store: Store) -> None:
    from live.store.models import Asset

    session = await store.create_session(_session("ls_1", utcnow()))
    asset = await store.create_asset(Asset(livestream_id="ls_1", session_id=session.id))
    await store.end_session(session.id, utcnow(), "publisher_disconnected", asset_id=asset.id)
    assert await store.delete_asset(asset.id) is True
    assert await store.get_asset(asset.id) is None
    assert await store.delete_asset(asset.id) is False
    history = await store.get_session(session.id)
    assert history is not None and history.asset_id is None  # never names a deleted asset


# -- VOD jobs ------------------------------------------------------------------


async def test_vod_jobs_are_served_oldest_first_and_enqueued_once(store: Store) -> None:
    first = await store.enqueue_vod_job("ast_1")
    assert (first.state, first.node_id, first.lease_until, first.attempts) == (
        "queued", None, None, 0,
    )  # fmt: skip
    await store.enqueue_vod_job("ast_2")
    again = await store.enqueue_vod_job("ast_1")  # a repeated submit changes nothing
    assert again == first
    now = utcnow()
    lease = now + timedelta(seconds=30)
    claimed = await store.claim_vod_job("node-a", now, lease)
    assert claimed is not None
    assert (claimed.asset_id, claimed.state, claimed.node_id) == ("ast_1", "running", "node-a")
    assert (claimed.lease_until, claimed.attempts) == (lease, 1)
    assert await store.get_vod_job("ast_1") == claimed
    # enqueueing a running job again leaves it running
    assert (await store.enqueue_vod_job("ast_1")).state == "running"
    second = await store.claim_vod_job("node-b", now, lease)
    assert second is not None and second.asset_id == "ast_2"
    assert await store.claim_vod_job("node-a", now, lease) is None
    assert [j.asset_id for j in await store.list_vod_jobs()] == ["ast_1", "ast_2"]


async def test_a_lapsed_vod_job_is_claimed_again_before_the_queue(store: Store) -> None:
    await store.enqueue_vod_job("ast_old")
    now = utcnow()
    lease = now + timedelta(seconds=30)
    assert (await store.claim_vod_job("dead", now, lease)) is not None
    await store.enqueue_vod_job("ast_new")
    # still leased: the queue is served
    waiting = await store.claim_vod_job("alive", lease - timedelta(microseconds=1), lease)
    assert waiting is not None and waiting.asset_id == "ast_new"
    assert await store.remove_vod_job("ast_new", "alive") is True
    await store.enqueue_vod_job("ast_newer")
    # lapsed: taken over first, its attempts counted, its old holder locked out
    later = lease + timedelta(seconds=30)
    taken = await store.claim_vod_job("alive", lease, later)
    assert taken is not None
    assert (taken.asset_id, taken.node_id, taken.attempts, taken.lease_until) == (
        "ast_old", "alive", 2, later,
    )  # fmt: skip
    assert await store.renew_vod_job("ast_old", "dead", later) is False
    assert await store.release_vod_job("ast_old", "dead") is False
    assert await store.remove_vod_job("ast_old", "dead") is False
    assert (await store.get_vod_job("ast_old")) == taken


async def test_a_vod_job_lease_is_renewed_released_and_removed_by_its_holder(
    store: Store,
) -> None:
    await store.enqueue_vod_job("ast_1")
    await store.enqueue_vod_job("ast_2")
    now = utcnow()
    lease = now + timedelta(seconds=10)
    assert (await store.claim_vod_job("node-a", now, lease)) is not None
    longer = lease + timedelta(seconds=60)
    assert await store.renew_vod_job("ast_1", "node-a", longer) is True
    job = await store.get_vod_job("ast_1")
    assert job is not None and job.lease_until == longer
    # renewed: not lapsed at the old lease end
    taken = await store.claim_vod_job("node-b", lease, lease + timedelta(seconds=5))
    assert taken is not None and taken.asset_id == "ast_2"
    # released: queued again, ahead of nothing newer, and claimable at once
    assert await store.release_vod_job("ast_1", "node-a") is True
    released = await store.get_vod_job("ast_1")
    assert released is not None
    assert (released.state, released.node_id, released.lease_until) == ("queued", None, None)
    assert await store.renew_vod_job("ast_1", "node-a", longer) is False  # not held
    again = await store.claim_vod_job("node-b", now, lease)
    assert again is not None and (again.asset_id, again.attempts) == ("ast_1", 2)
    assert await store.remove_vod_job("ast_1", "node-b") is True
    assert await store.get_vod_job("ast_1") is None
    assert await store.remove_vod_job("ast_2") is True  # unconditionally (asset deleted)
    assert await store.remove_vod_job("ast_2") is False
    assert await store.list_vod_jobs() == []
    assert await store.claim_vod_job("node-a", now, lease) is None


async def test_requeue_puts_every_running_vod_job_back_in_submission_order(store: Store) -> None:
    for n in range(3):
        await store.enqueue_vod_job(f"ast_{n}")
    now = utcnow()
    lease = now + timedelta(seconds=30)
    for _ in range(2):
        await store.claim_vod_job("gone", now, lease)
    assert await store.requeue_vod_jobs() == 2
    jobs = await store.list_vod_jobs()
    assert [(j.asset_id, j.state) for j in jobs] == [
        ("ast_0", "queued"), ("ast_1", "queued"), ("ast_2", "queued"),
    ]  # fmt: skip
    claimed = await store.claim_vod_job("back", now, lease)
    assert claimed is not None and (claimed.asset_id, claimed.attempts) == ("ast_0", 2)


# -- import jobs ---------------------------------------------------------------


async def test_an_import_is_held_by_one_node_and_a_lapsed_lease_is_taken_over(
    store: Store,
) -> None:
    queued = await store.enqueue_import_job("ast_1")
    assert (queued.state, queued.node_id, queued.attempts) == ("queued", None, 0)
    now = utcnow()
    lease = now + timedelta(seconds=15)
    held = await store.claim_import_job("node-a", now, lease)
    assert held is not None and (held.asset_id, held.node_id, held.attempts) == (
        "ast_1", "node-a", 1,
    )  # fmt: skip
    # a node that starts and queues the pending import again changes nothing
    assert await store.enqueue_import_job("ast_1") == held
    assert await store.claim_import_job("node-b", now, lease) is None
    # renewed: not lapsed at the old lease end
    renewed = lease + timedelta(seconds=15)
    assert await store.renew_import_job("ast_1", "node-a", renewed) is True
    assert await store.claim_import_job("node-b", lease, lease + timedelta(seconds=15)) is None
    # lapsed (node-a died): node-b takes it over, attempts counted, node-a locked out
    later = renewed + timedelta(seconds=15)
    taken = await store.claim_import_job("node-b", renewed, later)
    assert taken is not None and (taken.node_id, taken.attempts, taken.lease_until) == (
        "node-b", 2, later,
    )  # fmt: skip
    assert await store.renew_import_job("ast_1", "node-a", later) is False
    assert await store.release_import_job("ast_1", "node-a") is False
    assert await store.remove_import_job("ast_1", "node-a") is False
    assert await store.get_import_job("ast_1") == taken
    assert await store.remove_import_job("ast_1", "node-b") is True
    assert await store.get_import_job("ast_1") is None


async def test_import_jobs_are_released_requeued_and_apart_from_vod_jobs(store: Store) -> None:
    await store.enqueue_import_job("ast_1")
    await store.enqueue_import_job("ast_2")
    await store.enqueue_vod_job("ast_1")  # the same asset in the other queue
    now = utcnow()
    lease = now + timedelta(seconds=15)
    first = await store.claim_import_job("node-a", now, lease)
    assert first is not None and first.asset_id == "ast_1"
    assert await store.release_import_job("ast_1", "node-a") is True
    again = await store.claim_import_job("node-b", now, lease)  # at its place, first
    assert again is not None and (again.asset_id, again.attempts) == ("ast_1", 2)
    assert (await store.claim_import_job("node-b", now, lease)) is not None
    assert await store.requeue_import_jobs() == 2
    back = await store.claim_import_job("node-c", now, lease)
    assert back is not None and (back.asset_id, back.attempts) == ("ast_1", 3)
    # the VOD queue saw none of it
    vod = await store.get_vod_job("ast_1")
    assert vod is not None and (vod.state, vod.attempts) == ("queued", 0)
    assert await store.remove_import_job("ast_2") is True
    assert await store.remove_import_job("ast_2") is False
    vod_claim = await store.claim_vod_job("node-a", now, lease)
    assert vod_claim is not None and vod_claim.asset_id == "ast_1"


# -- uploads -------------------------------------------------------------------


def _upload(asset_id: str = "ast_1", **fields: Any):
    from live.store.models import Upload

    fields.setdefault("expires_at", utcnow() + timedelta(hours=1))
    return Upload(asset_id=asset_id, **fields)


async def test_create_and_get_upload_round_trips_every_field(store: Store) -> None:
    upload = _upload(
        length=1234,
        metadata={"asset_id": "ast_1", "filename": "show \u00e9.mp4"},
        write={"key": "assets/ast_1/source", "size": 0, "state": {"parts": [[1, "e", 5]]}},
    )
    assert await store.create_upload(upload) is None
    assert await store.get_upload(upload.id) == upload
    assert await store.get_upload("upl_nope") is None
    with pytest.raises(ValueError):
        await store.create_upload(upload)


async def test_a_new_upload_replaces_the_assets_previous_one(store: Store) -> None:
    first = await _created(store, _upload("ast_a"))
    other = await _created(store, _upload("ast_b"))
    second = _upload("ast_a")
    assert await store.create_upload(second) == first  # handed back to drop its bytes
    assert await store.get_upload(first.id) is None
    assert await store.get_upload(second.id) == second
    assert await store.get_upload(other.id) == other


async def _created(store: Store, upload):
    assert await store.create_upload(upload) is None
    return upload


async def test_one_writer_at_a_time_and_a_lapsed_claim_is_taken_over(store: Store) -> None:
    upload = await _created(store, _upload())
    now = utcnow()
    mine = await store.claim_upload(upload.id, "node-a:1", now + timedelta(seconds=30), now)
    assert mine is not None and mine.holder == "node-a:1"
    theirs = await store.claim_upload(upload.id, "node-b:1", now + timedelta(seconds=30), now)
    assert theirs is not None and theirs.holder == "node-a:1"  # refused: a holds it
    later = now + timedelta(seconds=31)
    taken = await store.claim_upload(upload.id, "node-b:1", later + timedelta(seconds=30), later)
    assert taken is not None and taken.holder == "node-b:1"
    # the old writer's progress no longer lands
    assert await store.save_upload(upload.id, "node-a:1", offset=5, write={}, until=later) is None
    assert await store.claim_upload("upl_nope", "x", later, now) is None


async def test_save_and_release_upload(store: Store) -> None:
    upload = await _created(store, _upload(length=100))
    now = utcnow()
    await store.claim_upload(upload.id, "w", now + timedelta(seconds=30), now)
    write = {"key": "k", "size": 40, "state": {"file": "0" * 32}}
    saved = await store.save_upload(
        upload.id, "w", offset=40, write=write, until=now + timedelta(seconds=60)
    )
    assert saved is not None and (saved.offset, saved.write) == (40, write)
    assert saved.held_until is not None and saved.held_until > now + timedelta(seconds=59)
    await store.release_upload(upload.id, "someone else")
    assert (await store.get_upload(upload.id)).holder == "w"
    await store.release_upload(upload.id, "w")
    released = await store.get_upload(upload.id)
    assert released is not None and released.holder is None and released.held_until is None
    assert released.offset == 40
    again = await store.claim_upload(upload.id, "v", now + timedelta(seconds=30), now)
    assert again is not None and again.holder == "v"


async def test_delete_upload_and_list_expired(store: Store) -> None:
    now = utcnow()
    old = await _created(store, _upload("ast_old", expires_at=now - timedelta(minutes=5)))
    older = await _created(store, _upload("ast_older", expires_at=now - timedelta(minutes=9)))
    fresh = await _created(store, _upload("ast_fresh", expires_at=now + timedelta(minutes=5)))
    assert [u.id for u in await store.list_expired_uploads(now)] == [older.id, old.id]
    assert [u.id for u in await store.list_expired_uploads(now, limit=1)] == [older.id]
    assert await store.delete_upload(older.id) == older
    assert await store.delete_upload(older.id) is None
    assert [u.id for u in await store.list_expired_uploads(now)] == [old.id]
    # the asset may take a new upload; the deleted one is not handed back
    assert await store.create_upload(_upload("ast_older")) is None
    assert await store.get_upload(fresh.id) == fresh
