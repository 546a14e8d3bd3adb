"""Settings: embedded defaults, then a TOML file, then LIVE_* variables, then flags.

Every setting has one flat name (`part_target_s`), which is also its environment
variable (`LIVE_PART_TARGET_S`) and its key in the TOML file, where it may sit in
any section (`configs/live.toml` groups them for reading).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, get_type_hints


class ConfigError(ValueError):
    """A setting that cannot be used, with the name of the setting."""


@dataclass(slots=True)
class Settings:
    # Listen addresses, HOST:PORT; port 0 picks a free port.
    http: str = "0.0.0.0:8080"
    rtmp: str = "0.0.0.0:1935"
    rtmps: str = "0.0.0.0:1936"
    srt: str = "0.0.0.0:9000"
    # RTMPS is served only when both are set (PEM files).
    tls_cert: str = ""
    tls_key: str = ""
    data_dir: str = "./data"
    # Base of the URLs the API hands out, e.g. "https://live.example.com".
    public_url: str = ""
    # The admin API key; when empty, a first start creates one and prints it.
    api_key: str = ""
    # Cluster mode (later): Redis URL.
    redis: str = ""
    log_level: str = "info"
    # LL-HLS timing.
    part_target_s: float = 0.2
    segment_target_s: float = 1.0
    window_segments: int = 7
    # What happens when a second publisher uses a key that is live:
    # "stale" (take over if the first sent nothing for stale_publisher_s), "always", "never".
    publisher_takeover: str = "stale"
    stale_publisher_s: float = 2.0
    # An RTMP publisher that sends nothing for this long is dropped (end reason: timeout).
    rtmp_idle_timeout_s: float = 30.0
    # How long an ended stream's playlist (with ENDLIST) stays up.
    ended_playlist_linger_s: float = 60.0

    def validate(self) -> Settings:
        for name in ("http", "rtmp", "rtmps", "srt"):
            split_address(getattr(self, name), name)
        if self.publisher_takeover not in ("stale", "always", "never"):
            raise ConfigError("publisher_takeover must be stale, always or never")
        if not 0.05 <= self.part_target_s <= 2.0:
            raise ConfigError("part_target_s must be between 0.05 and 2.0")
        if not self.part_target_s <= self.segment_target_s <= 30:
            raise ConfigError("segment_target_s must be at least part_target_s and at most 30")
        if self.window_segments < 3:
            raise ConfigError("window_segments must be at least 3")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("tls_cert and tls_key go together")
        return self


def split_address(value: str, name: str = "address") -> tuple[str, int]:
    """ "HOST:PORT", "[::1]:PORT" or ":PORT" → (host, port)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"{name} must be HOST:PORT, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)


def _coerce(name: str, kind: Any, value: Any) -> Any:
    try:
        if kind is bool:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{name}: cannot read {value!r} as {kind.__name__}") from error


def _flatten(table: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value))
        else:
            flat[key] = value
    return flat


def load_settings(
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    hints = get_type_hints(Settings)
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    if config_file:
        try:
            with open(config_file, "rb") as handle:
                table = _flatten(tomllib.load(handle))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"cannot read config file {config_file}: {error}") from error
        unknown = sorted(set(table) - names)
        if unknown:
            raise ConfigError(f"unknown settings in {config_file}: {', '.join(unknown)}")
        values.update(table)
    environ = os.environ if environ is None else environ
    for name in names:
        env_value = environ.get(f"LIVE_{name.upper()}")
        if env_value is not None:
            values[name] = env_value
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    coerced = {name: _coerce(name, hints[name], value) for name, value in values.items()}
    return dataclasses.replace(Settings(), **coerced).validate()
