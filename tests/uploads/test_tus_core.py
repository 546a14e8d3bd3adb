"""The tus 1.0.0 core, byte for byte: headers in, decisions and headers out."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest

from live.uploads import tus

EXPIRES = datetime(2026, 12, 3, 6, 5, 9, tzinfo=UTC)
V = {"Tus-Resumable": "1.0.0"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def refused(call, *args) -> tus.TusError:
    with pytest.raises(tus.TusError) as caught:
        call(*args)
    return caught.value


def test_options_answers_what_the_server_speaks():
    assert tus.options_headers(20_000_000_000) == {
        "Tus-Resumable": "1.0.0",
        "Tus-Version": "1.0.0",
        "Tus-Extension": "creation,expiration,termination,checksum",
        "Tus-Max-Size": "20000000000",
        "Tus-Checksum-Algorithm": "sha1,sha256,md5",
    }


@pytest.mark.parametrize("version", [None, "0.2.2", "1.0", "1.0.0 ", ""])
def test_another_version_is_412_with_the_version_we_speak(version):
    headers = {} if version is None else {"Tus-Resumable": version}
    error = refused(tus.check_version, headers)
    assert error.status == 412
    assert error.headers == {"Tus-Resumable": "1.0.0", "Tus-Version": "1.0.0"}
    tus.check_version(V)  # ours passes


def test_creation_reads_length_and_metadata():
    headers = {
        **V,
        "Upload-Length": "1048576",
        "Upload-Metadata": (
            f"asset_id {b64('ast_abc')},filename {b64('clip été.mp4')},is_confidential"
        ),
    }
    assert tus.read_creation(headers, 2**30) == tus.Creation(
        1048576, {"asset_id": "ast_abc", "filename": "clip été.mp4", "is_confidential": ""}
    )
    assert tus.read_creation({**V, "Upload-Length": "0"}, 10) == tus.Creation(0, {})


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 400),  # no length
        ({"Upload-Length": "-1"}, 400),
        ({"Upload-Length": "1e6"}, 400),
        ({"Upload-Length": " 12"}, 400),
        ({"Upload-Length": "99999999999999999999"}, 400),  # past 2^63
        ({"Upload-Length": "١٢"}, 400),  # Arabic-Indic digits are not ASCII digits
        ({"Upload-Defer-Length": "1"}, 400),  # not offered
        ({"Upload-Length": "1001"}, 413),  # over Tus-Max-Size
    ],
)
def test_creation_refusals(headers, status):
    assert refused(tus.read_creation, {**V, **headers}, 1000).status == status


@pytest.mark.parametrize(
    "metadata",
    [
        "asset_id",  # fine: a key without value
        "asset_id !!!!",  # not base64
        "asset_id YWJj,asset_id YWJj",  # repeated key
        "asset_id YWJ",  # bad padding
        "a b c",  # three parts
        "asset_id /w==",  # base64 of a byte that is not UTF-8
        " , ",  # empty key
        "k\u00e9y YWJj",  # a key outside ASCII
        "x" * 5000,
    ],
)
def test_metadata_is_read_strictly(metadata):
    if metadata == "asset_id":
        assert tus.parse_metadata(metadata) == {"asset_id": ""}
        return
    assert refused(tus.parse_metadata, metadata).status == 400


def test_metadata_round_trips():
    metadata = {"asset_id": "ast_1", "filename": "a,b c.mp4", "flag": ""}
    encoded = tus.encode_metadata(metadata)
    assert encoded == "asset_id YXN0XzE=,filename YSxiIGMubXA0,flag"
    assert tus.parse_metadata(encoded) == metadata


def test_created_head_and_patch_headers_exactly():
    assert tus.created_headers("http://h/v1/uploads/upl_x", EXPIRES) == {
        "Tus-Resumable": "1.0.0",
        "Location": "http://h/v1/uploads/upl_x",
        "Upload-Offset": "0",
        "Upload-Expires": "Thu, 03 Dec 2026 06:05:09 GMT",
    }
    assert tus.head_headers(70, 100, {"filename": "a"}, EXPIRES) == {
        "Tus-Resumable": "1.0.0",
        "Upload-Offset": "70",
        "Upload-Length": "100",
        "Upload-Expires": "Thu, 03 Dec 2026 06:05:09 GMT",
        "Cache-Control": "no-store",
        "Upload-Metadata": "filename YQ==",
    }
    assert tus.patch_headers(100, EXPIRES) == {
        "Tus-Resumable": "1.0.0",
        "Upload-Offset": "100",
        "Upload-Expires": "Thu, 03 Dec 2026 06:05:09 GMT",
    }
    assert tus.terminated_headers() == {"Tus-Resumable": "1.0.0"}


def patch(**headers: str) -> dict[str, str]:
    return {**V, "Content-Type": "application/offset+octet-stream", **headers}


def test_a_chunk_at_the_right_offset():
    chunk = tus.read_chunk(patch(**{"Upload-Offset": "70", "Content-Length": "30"}), 70, 100)
    assert chunk == tus.Chunk(70, 30, None)
    chunked = tus.read_chunk(patch(**{"Upload-Offset": "0"}), 0, 100)
    assert chunked.content_length is None


def test_a_wrong_offset_is_409_with_the_right_one():
    error = refused(tus.read_chunk, patch(**{"Upload-Offset": "60"}), 70, 100)
    assert (error.status, error.code) == (409, "upload_offset_mismatch")
    assert error.headers == {"Tus-Resumable": "1.0.0", "Upload-Offset": "70"}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Type": "application/octet-stream", "Upload-Offset": "0"}, 415),
        ({"Content-Type": "", "Upload-Offset": "0"}, 415),
        ({}, 400),  # no Upload-Offset
        ({"Upload-Offset": "0x10"}, 400),
        ({"Upload-Offset": "0", "Content-Length": "101"}, 413),  # past Upload-Length
    ],
)
def test_chunk_refusals(headers, status):
    assert refused(tus.read_chunk, patch(**headers), 0, 100).status == status


def test_content_type_parameters_and_case_are_allowed():
    headers = patch(
        **{"Upload-Offset": "0", "Content-Type": "Application/Offset+Octet-Stream; x=1"}
    )
    assert tus.read_chunk(headers, 0, 100).offset == 0


def test_checksums():
    data = b"hello tus"
    sha1 = base64.b64encode(hashlib.sha1(data).digest()).decode()
    checksum = tus.read_checksum(f"sha1 {sha1}")
    assert checksum == tus.Checksum("sha1", hashlib.sha1(data).digest())
    verifier = checksum.verifier()
    verifier.update(data)
    assert verifier.digest() == checksum.digest
    assert refused(tus.read_checksum, f"crc32 {sha1}").code == "checksum_algorithm_unsupported"
    assert refused(tus.read_checksum, "sha1 !!!").status == 400
    assert refused(tus.read_checksum, f"sha256 {sha1}").status == 400  # a sha1-sized digest
    assert tus.checksum_mismatch().status == 460
    chunk = tus.read_chunk(patch(**{"Upload-Offset": "0", "Upload-Checksum": f"sha1 {sha1}"}), 0, 9)
    assert chunk.checksum == checksum
