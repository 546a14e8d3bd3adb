"""The WHIP offer: the body of `POST /whip`, up to the point where it is answered.

The server reads the body as UTF-8, checks what it asks for (`parse_offer`,
`choose`, for both transcode modes) and only then hands it to aiortc, whose SDP
parser `setRemoteDescription` runs first. Each step refuses bad input in its own
way: `OfferRefused` (a 4xx with a reason), a UnicodeDecodeError (400). Anything
else escaping from our code is a finding: the server would answer it with a 500.
aiortc's parser raises all sorts on malformed SDP (asserts, StopIteration), and
the session answers any of them with a 400, so from it only a hang or runaway
memory is a finding. The first run found those StopIterations answered as "no
codec in common" (422); the regression test is in tests/ingest/test_whip_offer.py.
"""

from __future__ import annotations

import contextlib
from typing import Final

from aiortc import sdp

from live.ingest.whip.offer import OfferRefused, choose, parse_offer

TRANSCODE_MODES: Final = ("passthrough", "auto")


def check(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    try:
        sections = parse_offer(text)
    except OfferRefused:
        return
    accepted = False
    for mode in TRANSCODE_MODES:
        try:
            choose(sections, mode)
        except OfferRefused:
            continue
        accepted = True
    if accepted:
        # What WhipSession.negotiate reports as "the SDP offer is not usable" (400).
        with contextlib.suppress(Exception):
            sdp.SessionDescription.parse(text)
