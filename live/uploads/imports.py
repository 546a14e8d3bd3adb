"""Imports by URL: the server fetches an asset's `origin_url` into storage.

The fetch streams to `assets/{id}/source` (never whole in memory) with the
uploader's `origin_http_headers`, a bound on size (`max_upload_bytes`, checked on
Content-Length first and then on the bytes as they come), on the whole time and on
connecting, and a bounded number of redirects. Every way it can fail ends as one of
API.md's error objects: `origin_unreachable`, `origin_status` (with the status in
the message) or `file_too_large`. Which node fetches an import, and when, is
`importer.py`'s.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict

from live.storage.base import Storage, StorageError
from live.store.models import Asset, AssetErrorCode, asset_error
from live.uploads.receiver import source_key

log = logging.getLogger(__name__)

READ_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImportSettings:
    max_bytes: int
    timeout_s: float = 6 * 3600.0  # the whole fetch
    connect_timeout_s: float = 10.0
    max_redirects: int = 5


class ImportFailed(Exception):
    def __init__(self, code: AssetErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: AssetErrorCode = code
        self.message = message

    def error(self) -> dict[str, str]:
        return asset_error(self.code, self.message)


def header_lines(text: str | None) -> CIMultiDict[str]:
    """`origin_http_headers` ("Name: value" lines, checked at creation) as headers."""
    headers: CIMultiDict[str] = CIMultiDict()
    for line in (text or "").splitlines():
        name, _, value = line.partition(":")
        if name.strip():
            headers.add(name.strip(), value.strip())
    return headers


async def _at_most(chunks: AsyncIterable[bytes], limit: int) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise ImportFailed("file_too_large", f"The file is over the limit of {limit} bytes")
        yield chunk


async def fetch(
    session: aiohttp.ClientSession, asset: Asset, storage: Storage, settings: ImportSettings
) -> int:
    """Fetch the asset's origin into storage; its size. Raises ImportFailed."""
    url = asset.origin_url or ""
    timeout = aiohttp.ClientTimeout(
        total=settings.timeout_s, sock_connect=settings.connect_timeout_s
    )
    try:
        async with session.get(
            url,
            headers=header_lines(asset.origin_http_headers),
            allow_redirects=settings.max_redirects > 0,
            # aiohttp gives up on reaching its count: one more follows exactly ours
            max_redirects=settings.max_redirects + 1,
            timeout=timeout,
        ) as response:
            if not 200 <= response.status < 300:
                raise ImportFailed(
                    "origin_status",
                    f"The origin answered {response.status} {response.reason or ''}".rstrip(),
                )
            if response.content_length is not None and response.content_length > settings.max_bytes:
                raise ImportFailed(
                    "file_too_large",
                    f"The origin's file ({response.content_length} bytes) is over the limit"
                    f" of {settings.max_bytes} bytes",
                )
            body = _at_most(response.content.iter_chunked(READ_CHUNK), settings.max_bytes)
            return await storage.put_stream(source_key(asset.id), body)
    except aiohttp.TooManyRedirects:
        raise ImportFailed(
            "origin_unreachable", f"The origin redirected more than {settings.max_redirects} times"
        ) from None
    except TimeoutError:
        raise ImportFailed(
            "origin_unreachable",
            f"The origin did not answer in time (connect {settings.connect_timeout_s:g} s,"
            f" whole fetch {settings.timeout_s:g} s)",
        ) from None
    except (aiohttp.ClientError, ValueError) as error:
        raise ImportFailed(
            "origin_unreachable", f"The origin could not be fetched: {error}"
        ) from None


class OriginFetcher:
    """This node's HTTP client for the fetches (`fetch`), each ending as the file's
    size or an ImportFailed: a storage error too, as `processing_failed`."""

    def __init__(self, storage: Storage, settings: ImportSettings) -> None:
        self.storage = storage
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self, asset: Asset) -> int:
        """Fetch the asset's origin into storage, replacing whatever was there."""
        if self._session is None:
            # no cookie jar: one origin's cookies must never reach another's fetch
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        try:
            return await fetch(self._session, asset, self.storage, self.settings)
        except StorageError as error:
            log.warning("import of %s could not be stored: %s", asset.id, error)
            raise ImportFailed("processing_failed", str(error)) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
