"""What the `/live` answers and their hooks read of a request.

Nothing else is read, so a server other than aiohttp can answer `/live` with the same
handlers: aiohttp's `web.BaseRequest` has these attributes, and so does the lean
request of the front of the HTTP port (`front.LeanRequest`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol


class HlsRequest(Protocol):
    @property
    def method(self) -> str: ...

    @property
    def raw_path(self) -> str:
        """The request target as sent: path and query, still percent-encoded."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Case-insensitive."""
        ...

    @property
    def remote(self) -> str | None:
        """The peer's address."""
        ...

    @property
    def transport(self) -> asyncio.BaseTransport | None: ...
