"""Refuse an MPEG-TS that redeclares an elementary stream, before FFmpeg reads it.

FFmpeg's TS demuxer (libavformat 62, as in PyAV 18) aborts the whole process on an
assertion when a PMT changes the codec of a PID whose decoder it has already opened
for probing (demux.c: "Assertion sti->avctx->codec_id == AV_CODEC_ID_H264 || ...").
One publisher could so take the server down with every stream on it. No encoder
changes a PID's codec mid-stream, so the guard reads the PAT and the PMTs as they
pass and stops the stream at the first PMT that declares a known PID with another
stream type (or, for private data, other descriptors, which then name the codec);
new PIDs are fine. Only the PSI is parsed: of other packets, just the PID is read.
"""

from __future__ import annotations

from typing import Final

PACKET_SIZE: Final = 188
SYNC: Final = 0x47
PAT_PID: Final = 0
_PAT_ID: Final = 0x00
_PMT_ID: Final = 0x02
_MAX_SECTION: Final = 1024  # a PSI section is at most 1,021 bytes after its header
# What FFmpeg reads looking for the PAT before it starts over (its probesize, which
# the ingest sets to 64 KiB), with room to spare.
_PROBE_PACKETS: Final = 2 * 65536 // PACKET_SIZE
_PRIVATE_DATA: Final = 0x06  # the codec is in the descriptors (registration, AC-3, ...)


class TsGuard:
    """Watches a TS byte stream on its way to FFmpeg.

    `feed` returns the whole packets to pass on (bytes out of sync dropped, so that
    FFmpeg reads exactly the packets the guard has read) and why the stream must
    stop, or None.
    """

    def __init__(self) -> None:
        self._partial = b""  # the start of a packet cut at the end of the last feed
        self._pmt_pids: set[int] = set()
        self._sections: dict[int, bytearray] = {}  # PSI sections being reassembled
        self._declared: dict[int, bytes] = {}  # PID → what its PMT entry says it is
        # The first packets, which FFmpeg reads a second time (see _reread_early).
        self._early: list[bytes] | None = []
        self._reread_pids: set[int] = set()

    def feed(self, data: bytes) -> tuple[bytes, str | None]:
        data = self._partial + data
        kept: list[bytes] = []
        run_start = offset = 0
        end = len(data) - PACKET_SIZE
        while offset <= end:
            if data[offset] != SYNC:  # lost sync: drop bytes up to the next sync byte
                kept.append(data[run_start:offset])
                offset = data.find(SYNC, offset + 1)
                if offset < 0:
                    offset = len(data)
                run_start = offset
                continue
            pid = (data[offset + 1] & 0x1F) << 8 | data[offset + 2]
            reason = None
            if self._early is not None:
                self._early.append(data[offset : offset + PACKET_SIZE])
            if pid == PAT_PID or pid in self._pmt_pids:
                reason = self._on_psi_packet(pid, data[offset : offset + PACKET_SIZE])
                if reason is None and self._early is not None:
                    reason = self._reread_early()
            if self._early is not None and len(self._early) >= _PROBE_PACKETS:
                self._early = None  # FFmpeg's first look is over: no more starting over
            if reason:
                kept.append(data[run_start:offset])
                self._partial = b""
                return b"".join(kept), reason
            offset += PACKET_SIZE
        kept.append(data[run_start:offset])
        self._partial = data[offset:]
        return (kept[0] if len(kept) == 1 else b"".join(kept)), None

    def _reread_early(self) -> str | None:
        """FFmpeg reads the start of a stream twice: once to learn the PAT, then from
        the beginning again, so a PMT ahead of the PAT that names its PID counts. So
        the first packets are kept and read again for each PMT PID a PAT adds."""
        new = self._pmt_pids - self._reread_pids
        if not new:
            return None
        self._reread_pids |= new
        sections, self._sections = self._sections, {}  # a pass of its own
        try:
            for packet in self._early or []:
                pid = (packet[1] & 0x1F) << 8 | packet[2]
                if pid in new:
                    reason = self._on_psi_packet(pid, packet)
                    if reason:
                        return reason
        finally:
            self._sections = sections
        return None

    def _on_psi_packet(self, pid: int, packet: bytes) -> str | None:
        unit_start = packet[1] & 0x40
        control = packet[3] >> 4 & 0x3
        if not control & 0x1:
            return None  # adaptation field only
        start = 4
        if control & 0x2:
            start += 1 + packet[4]
        if start >= PACKET_SIZE:
            return None
        payload = packet[start:]
        pending = self._sections.pop(pid, None)
        if not unit_start:
            if pending is None:
                return None
            return self._sections_in(pid, bytes(pending) + payload)
        pointer = payload[0]
        if pending is not None:  # the end of the previous section, before the pointer
            reason = self._sections_in(pid, bytes(pending) + payload[1 : 1 + pointer])
            self._sections.pop(pid, None)
            if reason:
                return reason
        return self._sections_in(pid, payload[1 + pointer :])

    def _sections_in(self, pid: int, data: bytes) -> str | None:
        """Every whole section in `data` (one after another, up to 0xFF stuffing);
        the start of an unfinished one is kept for the next packet."""
        while data and data[0] != 0xFF:
            if len(data) < 3:
                self._sections[pid] = bytearray(data)
                return None
            length = 3 + ((data[1] & 0x0F) << 8 | data[2])
            if len(data) < length:
                if len(data) <= _MAX_SECTION:
                    self._sections[pid] = bytearray(data)
                return None
            reason = self._on_section(pid, data[:length])
            if reason:
                return reason
            data = data[length:]
        return None

    def _on_section(self, pid: int, section: bytes) -> str | None:
        if len(section) < 12:
            return None
        body = section[8:-4]  # after the long header, before the CRC
        if pid == PAT_PID and section[0] == _PAT_ID:
            for i in range(0, len(body) - 3, 4):
                program = body[i] << 8 | body[i + 1]
                if program:  # 0 names the network PID, not a PMT
                    self._pmt_pids.add((body[i + 2] & 0x1F) << 8 | body[i + 3])
        elif section[0] == _PMT_ID and len(body) >= 4:
            return self._on_pmt(body)
        return None

    def _on_pmt(self, body: bytes) -> str | None:
        offset = 4 + ((body[2] & 0x0F) << 8 | body[3])  # PCR PID, program info
        while offset + 5 <= len(body):
            stream_type = body[offset]
            pid = (body[offset + 1] & 0x1F) << 8 | body[offset + 2]
            info_length = (body[offset + 3] & 0x0F) << 8 | body[offset + 4]
            declared = bytes([stream_type])
            if stream_type == _PRIVATE_DATA:
                declared += body[offset + 5 : offset + 5 + info_length]
            known = self._declared.setdefault(pid, declared)
            if known != declared:
                return (
                    f"the MPEG-TS redeclared PID {pid} (stream type {known[0]:#04x} → "
                    f"{stream_type:#04x}): a stream may not change its codec"
                )
            offset += 5 + info_length
        return None
