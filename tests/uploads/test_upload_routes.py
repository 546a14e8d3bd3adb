"""/v1/uploads (tus) and PUT /v1/assets/{id}/file through the real /v1 app: bytes
land in storage exactly, the asset goes `pending` and is handed on once, and every
refusal of API.md and tus is what a client gets."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from uploads_testing import MAX_UPLOAD, TUS, Rig, b64, make_rig, path_of

from live.api.ratelimit import RateLimiter
from live.recording.layout import POSTER_SOURCE, SOURCE
from live.storage import LocalStorage
from live.store.models import Asset, Session

DATA = bytes(range(256)) * 1200  # 307 200 bytes


def source_of(rig: Rig, asset_id: str) -> bytes:
    assert isinstance(rig.storage, LocalStorage)
    return (rig.storage.root / "assets" / asset_id / SOURCE).read_bytes()


async def test_a_tus_upload_in_chunks_lands_whole_and_hands_the_asset_on(rig: Rig):
    asset = await rig.new_asset()
    created = await rig.create_upload(asset["id"], len(DATA))
    assert created.status == 201, await created.text()
    location = created.headers["Location"]
    assert location.startswith("http://live.test:8080/v1/uploads/upl_")
    assert created.headers["Tus-Resumable"] == "1.0.0"
    assert created.headers["Upload-Offset"] == "0"
    assert created.headers["Upload-Expires"].endswith(" GMT")
    offset = 0
    for size in (100_000, 150_000, len(DATA) - 250_000):
        answer = await rig.patch(location, offset, DATA[offset : offset + size])
        assert answer.status == 204, await answer.text()
        offset += size
        assert answer.headers["Upload-Offset"] == str(offset)
        assert answer.headers["Tus-Resumable"] == "1.0.0"
        if offset < len(DATA):
            head = await rig.head(location)
            assert head.status == 200
            assert (head.headers["Upload-Offset"], head.headers["Upload-Length"]) == (
                str(offset), str(len(DATA)),
            )  # fmt: skip
            assert head.headers["Cache-Control"] == "no-store"
            assert "filename" in head.headers["Upload-Metadata"]
            assert rig.handed.ready == []
    assert source_of(rig, asset["id"]) == DATA
    assert [a.id for a in rig.handed.ready] == [asset["id"]]
    assert rig.handed.ready[0].status == "pending"
    stored = await rig.store.get_asset(asset["id"])
    assert stored is not None and stored.status == "pending" and stored.upload_expires_at is None
    assert (await rig.head(location)).status == 404  # finished uploads are gone
    assert rig.scratch_files() == []
    body = await (await rig.client.get(f"/v1/assets/{asset['id']}", headers=rig.admin)).json()
    assert body["status"] == "pending" and "upload" not in body


async def test_a_wrong_offset_is_409_and_writes_nothing(rig: Rig):
    asset = await rig.new_asset()
    location = (await rig.create_upload(asset["id"], 1000)).headers["Location"]
    assert (await rig.patch(location, 0, b"a" * 400)).status == 204
    wrong = await rig.patch(location, 300, b"b" * 100)
    assert wrong.status == 409
    assert wrong.headers["Upload-Offset"] == "400"
    assert (await wrong.json())["error"]["code"] == "upload_offset_mismatch"
    assert (await rig.head(location)).headers["Upload-Offset"] == "400"
    assert (await rig.patch(location, 400, b"c" * 600)).status == 204
    assert source_of(rig, asset["id"]) == b"a" * 400 + b"c" * 600


async def test_protocol_refusals(rig: Rig):
    asset = await rig.new_asset()
    location = (await rig.create_upload(asset["id"], 1000)).headers["Location"]
    no_version = await rig.client.head(path_of(location), headers=rig.admin)
    assert no_version.status == 412 and no_version.headers["Tus-Version"] == "1.0.0"
    old = await rig.client.patch(
        path_of(location), data=b"x", headers={**rig.admin, "Tus-Resumable": "0.2.2",
        "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )  # fmt: skip
    assert old.status == 412
    wrong_type = await rig.patch(location, 0, b"x", **{"Content-Type": "application/octet-stream"})
    assert wrong_type.status == 415
    too_long = await rig.patch(location, 0, b"x" * 1001)
    assert too_long.status == 413
    assert (await rig.head(location)).headers["Upload-Offset"] == "0"
    options = await rig.client.options("/v1/uploads", headers=rig.admin)
    assert options.status == 204
    assert options.headers["Tus-Version"] == "1.0.0"
    assert options.headers["Tus-Extension"] == "creation,expiration,termination,checksum"
    assert options.headers["Tus-Max-Size"] == str(MAX_UPLOAD)
    anonymous = await rig.client.head(path_of(location), headers=TUS)
    assert anonymous.status == 401


async def test_a_chunk_passing_the_length_keeps_what_fits_and_is_413(rig: Rig):
    """Sent chunked (no Content-Length), the body is cut where the upload ends."""
    asset = await rig.new_asset()
    location = (await rig.create_upload(asset["id"], 1000)).headers["Location"]

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"z" * 500

    answer = await rig.patch(location, 0, chunked())
    assert answer.status == 413
    # the first 1000 bytes were the upload's: kept, and the upload is complete
    assert source_of(rig, asset["id"]) == b"z" * 1000


async def test_termination_drops_the_bytes(rig: Rig):
    asset = await rig.new_asset()
    location = (await rig.create_upload(asset["id"], 1000)).headers["Location"]
    await rig.patch(location, 0, b"x" * 500)
    assert rig.scratch_files() != []
    gone = await rig.client.delete(path_of(location), headers={**rig.admin, **TUS})
    assert gone.status == 204 and gone.headers["Tus-Resumable"] == "1.0.0"
    assert (await rig.head(location)).status == 404
    assert (await rig.patch(location, 500, b"x")).status == 404
    assert rig.scratch_files() == []
    again = await rig.client.delete(path_of(location), headers={**rig.admin, **TUS})
    assert again.status == 404
    # the asset is still waiting for its file: a new upload may start
    assert (await rig.create_upload(asset["id"], 10)).status == 201


async def test_an_abandoned_upload_expires_410_then_is_swept_with_its_bytes(rig: Rig):
    asset = await rig.new_asset()
    location = (await rig.create_upload(asset["id"], 1000)).headers["Location"]
    await rig.patch(location, 0, b"x" * 500)
    rig.clock.ahead = timedelta(hours=2)  # the asset's window is an hour
    assert (await rig.head(location)).status == 410
    assert (await rig.patch(location, 500, b"x")).status == 410
    assert await rig.receiver.expire_due() == 1
    assert (await rig.head(location)).status == 404
    assert rig.scratch_files() == []
    late = await rig.create_upload(asset["id"], 10)
    assert late.status == 410


async def test_sizes_over_the_limit_are_413_before_a_byte_is_stored(rig: Rig):
    asset = await rig.new_asset()
    over = await rig.create_upload(asset["id"], MAX_UPLOAD + 1)
    assert over.status == 413 and (await over.json())["error"]["code"] == "payload_too_large"
    put = await rig.client.put(
        f"/v1/assets/{asset['id']}/file", data=b"x" * 10,
        headers={**rig.admin, "Content-Length": str(MAX_UPLOAD + 1)},
    )  # fmt: skip
    assert put.status == 413

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(MAX_UPLOAD // 65536 + 10):
            yield b"y" * 65536

    cut = await rig.client.put(f"/v1/assets/{asset['id']}/file", data=endless(), headers=rig.admin)
    assert cut.status == 413
    assert rig.scratch_files() == [] and await rig.storage.list("") == []
    assert (await rig.store.get_asset(asset["id"])).status == "empty"


async def test_who_may_be_uploaded_to(rig: Rig):
    unknown = await rig.create_upload("ast_doesnotexist", 10)
    assert unknown.status == 404 and (await unknown.json())["error"]["code"] == "asset_not_found"
    recording = await rig.store.create_asset(Asset(livestream_id="ls_1", session_id="ses_1"))
    assert (await rig.create_upload(recording.id, 10)).status == 409
    put = await rig.client.put(f"/v1/assets/{recording.id}/file", data=b"x", headers=rig.admin)
    assert put.status == 409
    done = await rig.new_asset()
    put = await rig.client.put(f"/v1/assets/{done['id']}/file", data=b"first", headers=rig.admin)
    assert put.status == 200
    second = await rig.create_upload(done["id"], 10)
    assert second.status == 409 and (await second.json())["error"]["code"] == "asset_has_file"
    again = await rig.client.put(f"/v1/assets/{done['id']}/file", data=b"x", headers=rig.admin)
    assert again.status == 409
    assert source_of(rig, done["id"]) == b"first"
    missing = await rig.client.put("/v1/assets/ast_nope/file", data=b"x", headers=rig.admin)
    assert missing.status == 404


async def test_garbage_metadata_is_400(rig: Rig):
    asset = await rig.new_asset()
    for metadata in (
        "", "filename " + b64("a.mp4"), "asset_id !!!", f"asset_id {b64(asset['id'])},asset_id x",
        f"asset_id {b64('../../etc/passwd')}", f"asset_id {b64('/etc/passwd')}",
        "asset_id " + b64("ast_\u202e.."),
    ):  # fmt: skip
        answer = await rig.client.post(
            "/v1/uploads",
            headers={**rig.admin, **TUS, "Upload-Length": "10", "Upload-Metadata": metadata},
        )
        assert answer.status == 400, metadata
    assert rig.scratch_files() == []


async def test_odd_upload_ids_are_unknown(rig: Rig):
    asset = await rig.new_asset()
    await rig.create_upload(asset["id"], 10)
    for path in (
        "/v1/uploads/..", "/v1/uploads/%2e%2e", "/v1/uploads/..%2F..%2Fetc%2Fpasswd",
        "/v1/uploads/%2Fetc%2Fpasswd", "/v1/uploads/upl_%E2%80%AE..", "/v1/uploads/upl_a%00b",
        "/v1/uploads/%C0%AE%C0%AE", "/v1/uploads/upl_" + "a" * 300,
    ):  # fmt: skip
        for method in ("HEAD", "PATCH", "DELETE"):
            answer = await rig.client.request(
                method, path, data=b"x" if method == "PATCH" else None,
                headers={**rig.admin, **TUS, "Upload-Offset": "0",
                         "Content-Type": "application/offset+octet-stream"},
            )  # fmt: skip
            assert answer.status in (400, 404), (method, path, answer.status)
    assert await rig.storage.list("") == []


async def test_a_zero_length_upload_completes_at_creation(rig: Rig):
    asset = await rig.new_asset()
    created = await rig.create_upload(asset["id"], 0)
    assert created.status == 201
    assert source_of(rig, asset["id"]) == b""
    assert [a.id for a in rig.handed.ready] == [asset["id"]]


async def test_checksums_are_checked_and_a_bad_chunk_is_dropped(rig: Rig):
    asset = await rig.new_asset()
    location = (await rig.create_upload(asset["id"], 20)).headers["Location"]

    def sha1(data: bytes) -> str:
        return "sha1 " + base64.b64encode(hashlib.sha1(data).digest()).decode()

    bad = await rig.patch(location, 0, b"a" * 10, **{"Upload-Checksum": sha1(b"b" * 10)})
    assert bad.status == 460
    assert (await rig.head(location)).headers["Upload-Offset"] == "0"
    good = await rig.patch(location, 0, b"a" * 10, **{"Upload-Checksum": sha1(b"a" * 10)})
    assert good.status == 204 and good.headers["Upload-Offset"] == "10"
    assert rig.scratch_files() != [] and all("chunk-" not in p.name for p in rig.scratch_files())


async def test_two_patches_at_once_one_waits_423(rig: Rig):
    asset = await rig.new_asset()
    location = (await rig.create_upload(asset["id"], 1000)).headers["Location"]
    release = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"s" * 100
        await release.wait()
        yield b"s" * 100

    first = asyncio.ensure_future(rig.patch(location, 0, slow()))
    for _ in range(100):
        upload = await rig.store.get_upload(path_of(location).rsplit("/", 1)[1])
        if upload is not None and upload.holder is not None:
            break
        await asyncio.sleep(0.01)
    second = await rig.patch(location, 0, b"t" * 100)
    assert second.status == 423
    release.set()
    assert (await first).status == 204
    assert (await rig.head(location)).headers["Upload-Offset"] == "200"


async def test_a_dropped_connection_keeps_what_arrived(rig: Rig):
    """The client sends half the announced body and hangs up: HEAD answers where
    the bytes stopped, and the upload resumes from there."""
    asset = await rig.new_asset()
    location = (await rig.create_upload(asset["id"], len(DATA))).headers["Location"]
    host, port = rig.client.server.host, rig.client.server.port
    _, writer = await asyncio.open_connection(host, port)
    head = (
        f"PATCH {path_of(location)} HTTP/1.1\r\nHost: {host}\r\n"
        f"X-API-Key: {rig.admin['X-API-Key']}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nContent-Length: {len(DATA)}\r\n\r\n"
    )
    writer.write(head.encode() + DATA[:150_000])
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    for _ in range(200):
        offset = int((await rig.head(location)).headers["Upload-Offset"])
        upload = await rig.store.get_upload(path_of(location).rsplit("/", 1)[1])
        if offset == 150_000 and upload is not None and upload.holder is None:
            break
        await asyncio.sleep(0.02)
    assert offset == 150_000
    assert (await rig.patch(location, offset, DATA[offset:])).status == 204
    assert source_of(rig, asset["id"]) == DATA


async def test_put_file_streams_and_hands_over(rig: Rig):
    asset = await rig.new_asset()
    answer = await rig.client.put(
        f"/v1/assets/{asset['id']}/file",
        data=DATA,
        headers={**rig.admin, "Content-Type": "video/mp4"},
    )
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    assert body["id"] == asset["id"] and body["status"] == "pending"
    assert source_of(rig, asset["id"]) == DATA
    assert [a.id for a in rig.handed.ready] == [asset["id"]]


async def test_a_new_upload_replaces_an_unfinished_one(rig: Rig):
    asset = await rig.new_asset()
    first = (await rig.create_upload(asset["id"], 1000)).headers["Location"]
    await rig.patch(first, 0, b"x" * 300)
    second = (await rig.create_upload(asset["id"], 5)).headers["Location"]
    assert (await rig.head(first)).status == 404
    assert (await rig.patch(second, 0, b"hello")).status == 204
    assert source_of(rig, asset["id"]) == b"hello"
    assert rig.scratch_files() == []


async def test_the_poster_is_kept(rig: Rig):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    poster = "data:image/png;base64," + base64.b64encode(png).decode()
    asset = await rig.new_asset(poster=poster)
    assert await rig.storage.get(f"assets/{asset['id']}/{POSTER_SOURCE}") == png


async def test_chunks_spend_no_rate_limit_token_and_pass_the_json_cap(tmp_path: Path):
    async for rig in make_rig(tmp_path, rate_limiter=RateLimiter(per_minute=1, burst=3)):
        asset = await rig.new_asset()  # token 1
        location = (await rig.create_upload(asset["id"], 20 * 65536)).headers["Location"]  # 2
        for n in range(20):  # each 64 KiB: over the JSON cap of 4 KiB, and no token
            answer = await rig.patch(location, n * 65536, b"q" * 65536)
            assert answer.status == 204, await answer.text()
            assert answer.headers["X-RateLimit-Remaining"] == "1"
        assert (await rig.client.get("/v1/assets", headers=rig.admin)).status == 200  # 3
        limited = await rig.client.get("/v1/assets", headers=rig.admin)
        assert limited.status == 429
        assert source_of(rig, asset["id"]) == b"q" * 20 * 65536


async def test_a_recording_session_is_not_disturbed(rig: Rig):
    """Uploads touch only upload assets: a recording's record is as it was."""
    session = await rig.store.create_session(Session(livestream_id="ls_1", protocol="rtmp"))
    recording = await rig.store.create_asset(Asset(livestream_id="ls_1", session_id=session.id))
    await rig.create_upload(recording.id, 10)
    assert await rig.store.get_asset(recording.id) == recording


async def test_the_sweeper_drops_expired_uploads_on_its_round(rig: Rig):
    from live.uploads.sweeper import UploadSweeper

    asset = await rig.new_asset()
    location = (await rig.create_upload(asset["id"], 1000)).headers["Location"]
    await rig.patch(location, 0, b"x" * 10)
    sweeper = UploadSweeper(rig.receiver, rig.intake, every_s=3600)
    await sweeper.sweep_once()
    assert (await rig.head(location)).status == 200  # not due yet
    rig.clock.ahead = timedelta(hours=2)
    sweeper.start()  # the first round runs at once
    try:
        for _ in range(100):
            if await rig.store.get_upload(path_of(location).rsplit("/", 1)[1]) is None:
                break
            await asyncio.sleep(0.02)
    finally:
        await sweeper.stop()
    assert (await rig.head(location)).status == 404
    assert rig.scratch_files() == []
