"""The server side of one RTMP connection, as a pure state machine.

Bytes go in through `receive_data`; events come out of `events()` and bytes to
write out of `data_to_send()`. No sockets, no clock: the asyncio adapter in
`live/ingest/` is plumbing around this class, and the tests drive it with bytes.

The core answers the routine parts of the conversation itself (handshake, connect,
createStream, pings, acknowledgements) and hands the one real decision, whether a
stream key may publish, to the adapter as `PublishRequested`. The adapter answers
with `accept_publish()` or `reject_publish()`.

Malformed input never raises: it becomes a single `ProtocolError` event, after which
the connection is closed, ignores further input and emits nothing more. Input over a
configured limit (message or chunk size) is answered first with an error onStatus
that says which limit, so the publisher's log tells its operator why.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from . import amf0, control
from .aggregate import split_aggregate
from .chunk import MAX_CHUNK_SIZE, ChunkReader, ChunkWriter, RtmpMessage
from .errors import AmfError, LimitExceeded, RtmpError
from .events import (
    AudioConfig,
    AudioFrame,
    ConnectRequested,
    MetadataReceived,
    ProtocolError,
    PublishEnded,
    PublishRequested,
    RtmpEvent,
    VideoConfig,
    VideoEndOfSequence,
    VideoFrame,
)
from .flv import CodedFrame, SequenceEnd, SequenceStart, parse_audio_tag, parse_video_tag
from .handshake import ServerHandshake
from .names import normalize_app, split_publish_name
from .timestamps import TimestampUnwrapper

CSID_CONTROL: Final = 2  # protocol and user control messages, stream 0
CSID_COMMAND: Final = 3  # NetConnection commands, stream 0
CSID_STREAM_COMMAND: Final = 5  # NetStream commands (onStatus), stream >= 1

FMS_VERSION: Final = "FMS/3,0,1,123"
CAPABILITIES: Final = 31
# Enhanced RTMP capability fields echoed from connect into its _result.
ENHANCED_CAPABILITY_KEYS: Final = (
    "fourCcList",
    "videoFourCcInfoMap",
    "audioFourCcInfoMap",
    "capsEx",
)
# Replies we never asked for and commands that are answered by silence.
_IGNORED_COMMANDS: Final = frozenset({"_result", "_error", "onStatus", "onBWDone"})
_MAX_NAME_IN_REPLY: Final = 64
_MESSAGE_NAMES: Final = {
    control.USER_CONTROL: "user control",
    control.WINDOW_ACK_SIZE: "window ack size",
    control.AUDIO: "audio",
    control.VIDEO: "video",
    control.DATA_AMF3: "AMF3 data",
    control.COMMAND_AMF3: "AMF3 command",
    control.DATA_AMF0: "data",
    control.COMMAND_AMF0: "command",
    control.AGGREGATE: "aggregate",
}


class _Phase(enum.Enum):
    HANDSHAKE = "handshake"
    AWAIT_CONNECT = "await_connect"
    CONNECTED = "connected"


class _PublishState(enum.Enum):
    PENDING = "pending"  # PublishRequested emitted, adapter has not answered
    LIVE = "live"
    ENDED = "ended"


@dataclass(slots=True)
class _Publish:
    stream_id: int
    state: _PublishState


def _number(value: Any, default: float = 0.0) -> float:
    """An AMF number as a finite float; anything else gives `default`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value) if math.isfinite(value) else default


def _status(level: str, code: str, description: str) -> dict[str, Any]:
    return {"level": level, "code": code, "description": description}


class RtmpServerConnection:
    """One publisher connection: handshake, chunk streams, commands and media."""

    def __init__(
        self,
        *,
        app: str = "live",
        window_ack_size: int = 2_500_000,
        peer_bandwidth: int = 2_500_000,
        out_chunk_size: int = 4096,
        max_message_size: int = 16 * 1024 * 1024,
        max_chunk_size: int = MAX_CHUNK_SIZE,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not 1 <= out_chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"out_chunk_size {out_chunk_size} out of range")
        self._app = app
        self._window_ack_size = window_ack_size
        self._peer_bandwidth = peer_bandwidth
        self._out_chunk_size = out_chunk_size
        self._handshake = ServerHandshake(random_bytes)
        self._handshake_buffer = bytearray()
        self._reader = ChunkReader(max_message_size=max_message_size, max_chunk_size=max_chunk_size)
        self._writer = ChunkWriter()
        self._out = bytearray()
        self._events: list[RtmpEvent] = []
        self._phase = _Phase.HANDSHAKE
        self._closed = False
        self._bytes_received = 0
        # Until the client announces its own Window Ack Size, acknowledge at ours.
        self._ack_window = window_ack_size
        self._last_ack = 0
        self._next_stream_id = 1
        self._publish: _Publish | None = None
        self._clocks = {control.AUDIO: TimestampUnwrapper(), control.VIDEO: TimestampUnwrapper()}

    # -- the adapter's side ---------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def bytes_received(self) -> int:
        return self._bytes_received

    @property
    def buffered_bytes(self) -> int:
        """Input held back for later (handshake bytes, partial chunks and messages)."""
        return len(self._handshake_buffer) + self._reader.buffered

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the socket. Never raises on bad input."""
        if self._closed or not data:
            return
        self._bytes_received += len(data)
        try:
            self._process(data)
        except LimitExceeded as exc:
            self._refuse_over_limit(exc)
        except RtmpError as exc:
            self._fail(str(exc) or type(exc).__name__)
        except Exception as exc:  # a bug here must not take the adapter down
            self._fail(f"internal error: {type(exc).__name__}: {exc}")
        if not self._closed and self._phase is not _Phase.HANDSHAKE:
            self._maybe_acknowledge()

    def bytes_wanted(self) -> int:
        """A lower bound on the bytes to receive before another message (and so
        another event) can come out: an adapter may wait for that many before
        reading (a socket's receive low-water mark) without delaying anything."""
        if self._closed or self._phase is _Phase.HANDSHAKE:
            return 1
        return self._reader.bytes_wanted()

    def events(self) -> list[RtmpEvent]:
        """Drain the pending events, oldest first."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> bytes:
        """Drain the bytes to write to the socket."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def accept_publish(self) -> None:
        """Let the pending publish go live: StreamBegin, then NetStream.Publish.Start."""
        if self._publish is None:
            raise RuntimeError("accept_publish() without a PublishRequested")
        if self._closed or self._publish.state is not _PublishState.PENDING:
            return
        self._publish.state = _PublishState.LIVE
        stream_id = self._publish.stream_id
        self._send_control(
            control.USER_CONTROL, control.user_control(control.STREAM_BEGIN, stream_id)
        )
        self._send_command(
            stream_id,
            "onStatus",
            0,
            None,
            _status("status", "NetStream.Publish.Start", "Start publishing"),
        )

    def reject_publish(
        self,
        code: str = "NetStream.Publish.BadName",
        description: str = "Publishing refused",
    ) -> None:
        """Refuse the pending publish with an error onStatus; the adapter then closes."""
        if self._publish is None:
            raise RuntimeError("reject_publish() without a PublishRequested")
        if self._closed:
            return
        self._send_command(
            self._publish.stream_id, "onStatus", 0, None, _status("error", code, description)
        )
        self._closed = True
        self._events.clear()

    # -- input ----------------------------------------------------------------------

    def _process(self, data: bytes) -> None:
        if self._phase is _Phase.HANDSHAKE:
            self._handshake_buffer += data
            while not self._handshake.done:
                consumed, reply = self._handshake.receive(self._handshake_buffer)
                self._out += reply
                if not consumed:
                    return
                del self._handshake_buffer[:consumed]
            data = bytes(self._handshake_buffer)
            self._handshake_buffer.clear()
            self._phase = _Phase.AWAIT_CONNECT
        self._reader.feed(data)
        while not self._closed:
            message = self._reader.next_message()
            if message is None:
                return
            self._on_message(message)

    def _on_message(self, msg: RtmpMessage) -> None:
        try:
            self._dispatch(msg)
        except RtmpError as exc:
            # Say where it happened: "truncated" alone helps nobody reading a log.
            what = _MESSAGE_NAMES.get(msg.type_id, f"type {msg.type_id}")
            raise type(exc)(f"{what} message on csid {msg.csid}: {exc}") from exc

    def _dispatch(self, msg: RtmpMessage) -> None:
        kind = msg.type_id
        if kind in (control.AUDIO, control.VIDEO):
            self._on_media(kind, msg.timestamp, msg.payload)
        elif kind in (control.COMMAND_AMF0, control.COMMAND_AMF3):
            self._on_command(msg, self._amf_body(msg))
        elif kind in (control.DATA_AMF0, control.DATA_AMF3):
            self._on_data(self._amf_body(msg))
        elif kind == control.AGGREGATE:
            for tag in split_aggregate(msg.payload, msg.timestamp):
                if tag.type_id in (control.AUDIO, control.VIDEO):
                    self._on_media(tag.type_id, tag.timestamp, tag.body)
                elif tag.type_id == control.DATA_AMF0:
                    self._on_data(tag.body)
        elif kind == control.USER_CONTROL:
            self._on_user_control(msg.payload)
        elif kind == control.WINDOW_ACK_SIZE:
            size = control.parse_u32(msg.payload, "Window Ack Size")
            if size:
                self._ack_window = size
        # Acknowledgement, Set Peer Bandwidth, shared objects and unknown types
        # need no answer from a publish-only server.

    @staticmethod
    def _amf_body(msg: RtmpMessage) -> bytes:
        # AMF3 command/data messages start with one format byte, then (in practice)
        # carry plain AMF0. An AMF0 command starts with a string marker, never 0x00.
        if msg.type_id in (control.COMMAND_AMF3, control.DATA_AMF3) and msg.payload[:1] == b"\x00":
            return msg.payload[1:]
        return msg.payload

    def _maybe_acknowledge(self) -> None:
        if self._bytes_received - self._last_ack >= self._ack_window:
            self._last_ack = self._bytes_received
            self._send_control(control.ACKNOWLEDGEMENT, control.u32(self._bytes_received))

    def _on_user_control(self, payload: bytes) -> None:
        event_type, data = control.parse_user_control(payload)
        if event_type == control.PING_REQUEST:
            timestamp = control.parse_u32(data, "PingRequest")
            self._send_control(
                control.USER_CONTROL, control.user_control(control.PING_RESPONSE, timestamp)
            )

    # -- commands -------------------------------------------------------------------

    def _on_command(self, msg: RtmpMessage, body: bytes) -> None:
        values = amf0.decode_all(body)
        if not values or not isinstance(values[0], str):
            raise RtmpError("command message without a command name")
        name = values[0]
        tx = _number(values[1]) if len(values) > 1 else 0.0
        command_object = values[2] if len(values) > 2 else None
        args = values[3:]

        if self._phase is _Phase.AWAIT_CONNECT:
            if name != "connect":
                raise RtmpError(f"command {name[:_MAX_NAME_IN_REPLY]!r} before connect")
            self._on_connect(tx, command_object)
            return
        if name == "connect":
            raise RtmpError("second connect on one connection")
        if name == "createStream":
            stream_id = self._next_stream_id
            self._next_stream_id += 1
            self._send_command(msg.stream_id, "_result", tx, None, stream_id)
        elif name == "publish":
            self._on_publish(msg.stream_id, args)
        elif name in ("releaseStream", "FCPublish"):
            if tx:
                self._send_command(msg.stream_id, "_result", tx, None)
        elif name == "FCUnpublish":
            self._end_publish(None, "FCUnpublish")
            if tx:
                self._send_command(msg.stream_id, "_result", tx, None)
        elif name == "deleteStream":
            target = _number(args[0], -1.0) if args else -1.0
            self._end_publish(int(target), "deleteStream")
        elif name == "closeStream":
            self._end_publish(msg.stream_id, "closeStream")
        elif name in _IGNORED_COMMANDS or not tx:
            pass
        else:
            self._send_command(
                msg.stream_id,
                "_error",
                tx,
                None,
                _status(
                    "error",
                    "NetConnection.Call.Failed",
                    f"Unsupported command {name[:_MAX_NAME_IN_REPLY]}",
                ),
            )

    def _on_connect(self, tx: float, command_object: Any) -> None:
        properties: dict[str, Any] = command_object if isinstance(command_object, dict) else {}
        raw_app = properties.get("app")
        app = normalize_app(raw_app) if isinstance(raw_app, str) else ""
        if app != self._app:
            self._send_command(
                0,
                "_error",
                tx,
                None,
                _status("error", "NetConnection.Connect.Rejected", "Unknown application"),
            )
            # Not the name itself: a publisher that left out the app sends its
            # stream key here (rtmp://host/KEY).
            raise RtmpError(
                f"connect to an unknown app ({len(app)} characters; expected {self._app!r})"
            )

        self._send_control(control.WINDOW_ACK_SIZE, control.u32(self._window_ack_size))
        self._send_control(
            control.SET_PEER_BANDWIDTH, control.set_peer_bandwidth(self._peer_bandwidth)
        )
        self._send_control(control.SET_CHUNK_SIZE, control.u32(self._out_chunk_size))
        self._writer.chunk_size = self._out_chunk_size  # applies right after that message
        self._send_control(control.USER_CONTROL, control.user_control(control.STREAM_BEGIN, 0))

        server: dict[str, Any] = {"fmsVer": FMS_VERSION, "capabilities": CAPABILITIES}
        for key in ENHANCED_CAPABILITY_KEYS:
            if key in properties:
                server[key] = properties[key]
        info = _status("status", "NetConnection.Connect.Success", "Connection succeeded.")
        info["objectEncoding"] = _number(properties.get("objectEncoding"))
        self._send_command(0, "_result", tx, server, info)

        self._phase = _Phase.CONNECTED
        tc_url = properties.get("tcUrl")
        flash_ver = properties.get("flashVer")
        self._emit(
            ConnectRequested(
                app=app,
                tc_url=tc_url if isinstance(tc_url, str) else "",
                flash_ver=flash_ver if isinstance(flash_ver, str) else "",
                properties=dict(properties),
            )
        )

    def _on_publish(self, stream_id: int, args: list[Any]) -> None:
        if self._publish is not None:
            self._send_command(
                stream_id,
                "onStatus",
                0,
                None,
                _status("error", "NetStream.Publish.BadName", "Only one publish per connection"),
            )
            return
        if not args or not isinstance(args[0], str):
            raise RtmpError("publish without a stream name")
        publish_type = args[1] if len(args) > 1 and isinstance(args[1], str) else "live"
        stream_key, query = split_publish_name(args[0], self._app)
        self._publish = _Publish(stream_id, _PublishState.PENDING)
        self._emit(PublishRequested(stream_id, stream_key, query, publish_type))

    def _end_publish(self, stream_id: int | None, reason: str) -> None:
        """End the publish (if `stream_id` is given, only if it is that stream's)."""
        publish = self._publish
        if publish is None or publish.state is _PublishState.ENDED:
            return
        if stream_id is not None and stream_id != publish.stream_id:
            return
        publish.state = _PublishState.ENDED
        self._emit(PublishEnded(publish.stream_id, reason))

    # -- media and metadata -----------------------------------------------------------

    def _publishing(self) -> bool:
        return self._publish is not None and self._publish.state is not _PublishState.ENDED

    def _on_data(self, body: bytes) -> None:
        if not self._publishing():
            return
        try:
            values = amf0.decode_all(body)
        except AmfError:
            return  # metadata is advisory: a malformed one is dropped, not fatal
        if values and values[0] == "@setDataFrame":
            values = values[1:]
        if len(values) >= 2 and values[0] == "onMetaData" and isinstance(values[1], dict):
            self._emit(MetadataReceived(dict(values[1])))

    def _on_media(self, type_id: int, timestamp32: int, body: bytes) -> None:
        if not self._publishing():
            return
        timestamp = self._clocks[type_id].unwrap(timestamp32)
        if type_id == control.VIDEO:
            for item in parse_video_tag(body):
                if isinstance(item, CodedFrame):
                    self._emit(
                        VideoFrame(
                            item.codec, timestamp, item.composition_time, item.keyframe, item.data
                        )
                    )
                elif isinstance(item, SequenceStart):
                    self._emit(VideoConfig(item.codec, item.config, timestamp))
                elif isinstance(item, SequenceEnd):
                    self._emit(VideoEndOfSequence(timestamp))
        else:
            for item in parse_audio_tag(body):
                if isinstance(item, CodedFrame):
                    self._emit(AudioFrame(item.codec, timestamp, item.data))
                elif isinstance(item, SequenceStart):
                    self._emit(AudioConfig(item.codec, item.config, timestamp))

    # -- output ---------------------------------------------------------------------

    def _emit(self, event: RtmpEvent) -> None:
        if not self._closed:
            self._events.append(event)

    def _refuse_over_limit(self, exc: LimitExceeded) -> None:
        """Say why before closing: onStatus on the publish stream, else on stream 0."""
        if self._closed:
            return
        description = f"Refused: {exc}"
        if self._publishing():
            assert self._publish is not None
            stream_id, code = self._publish.stream_id, "NetStream.Publish.Rejected"
        else:
            stream_id, code = 0, "NetConnection.Connect.Rejected"
        self._send_command(stream_id, "onStatus", 0, None, _status("error", code, description))
        self._fail(str(exc), limit=exc.limit)

    def _fail(self, reason: str, limit: str | None = None) -> None:
        if not self._closed:
            self._events.append(ProtocolError(reason, limit))
            self._closed = True
            # Nothing will read the rest: let it go now rather than with the object.
            self._handshake_buffer.clear()
            self._reader = ChunkReader(
                max_message_size=self._reader.max_message_size,
                max_chunk_size=self._reader.max_chunk_size,
            )

    def _send_control(self, type_id: int, payload: bytes) -> None:
        self._out += self._writer.write(CSID_CONTROL, type_id, 0, 0, payload)

    def _send_command(self, stream_id: int, *values: Any) -> None:
        csid = CSID_COMMAND if stream_id == 0 else CSID_STREAM_COMMAND
        self._out += self._writer.write(
            csid, control.COMMAND_AMF0, stream_id, 0, amf0.encode_all(*values)
        )
