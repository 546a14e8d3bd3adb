"""Stream keys never reach the logs through an SRT stream id."""

from __future__ import annotations

from live.ingest.srt import redacted_stream_id
from live.protocols.srt.streamid import parse_stream_id


def test_every_stream_id_form_loses_its_key():
    for stream_id in ("sk_secret", "#!::r=live/sk_secret,m=publish,u=alice",
                      "publish:live/sk_secret"):  # fmt: skip
        shown = redacted_stream_id(stream_id, parse_stream_id(stream_id).key)
        assert "sk_secret" not in shown and "[key]" in shown, shown
    assert redacted_stream_id("", None) == ""
