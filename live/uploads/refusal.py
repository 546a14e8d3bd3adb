"""What a client is told when an upload is refused: the HTTP status, the API's
error code, a sentence, and the headers the answer must carry. The tus core and
the receiver raise it; the routes turn it into the API's JSON error."""

from __future__ import annotations

from collections.abc import Mapping


class UploadRefused(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
