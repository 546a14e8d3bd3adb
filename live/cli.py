"""The `live` command: `live serve` runs the server, `live keys create` makes an API key."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from live.allocator import use_mmap_for_large_buffers
from live.config import ConfigError, Settings, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="live", description="Live streaming server")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server")
    _common(serve)
    serve.add_argument("--http", help="HTTP listen address HOST:PORT (API, HLS, WHIP)")
    serve.add_argument("--rtmp", help="RTMP listen address HOST:PORT")
    serve.add_argument("--rtmps", help="RTMPS listen address HOST:PORT (with --tls-cert/--tls-key)")
    serve.add_argument("--srt", help="SRT listen address HOST:PORT")
    serve.add_argument("--https", help="HTTPS listen address HOST:PORT (with --tls-cert/--tls-key)")
    serve.add_argument("--tls-cert", dest="tls_cert", help="PEM certificate for RTMPS")
    serve.add_argument("--tls-key", dest="tls_key", help="PEM private key for RTMPS")
    serve.add_argument("--public-url", dest="public_url", help="base URL put in API answers")
    serve.add_argument(
        "--node-url",
        dest="node_url",
        help="how other cluster nodes reach this one (default: from --http)",
    )
    serve.add_argument("--storage", help="recordings: a directory, or s3://BUCKET/PREFIX")
    serve.add_argument("--log-level", dest="log_level", help="debug, info, warning, error")

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create an API key and print it once")
    _common(create)
    create.add_argument("--name", default="cli")
    create.add_argument("--scope", choices=("admin", "read"), default="admin")
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (see configs/live.toml)")
    parser.add_argument("--redis", help="Redis URL redis://HOST:PORT/DB (cluster mode)")
    parser.add_argument("--data-dir", dest="data_dir", help="where the database and files live")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k in Settings.__dataclass_fields__}
    try:
        settings = load_settings(args.config, overrides)
    except ConfigError as error:
        print(f"live: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiosqlite logs every statement with its values at DEBUG: stream keys and
    # passphrases among them.
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, logging.root.level))
    if args.command == "serve":
        use_mmap_for_large_buffers()
        return _run(_serve(settings), settings.event_loop)
    return asyncio.run(_create_key(settings, args.name, args.scope))


def _run(main_coroutine: Coroutine[Any, Any, int], event_loop: str) -> int:
    """Run the server on uvloop (the default: its C event loop costs a fraction of
    asyncio's per socket wake-up, which is most of an ingest's CPU) or on asyncio."""
    if event_loop == "uvloop":
        import uvloop

        return uvloop.run(main_coroutine)
    return asyncio.run(main_coroutine)


def _host(urls) -> str:
    """The host part of the public HTTP base."""
    return urls.http_base.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]


async def _serve(settings: Settings) -> int:
    from live.app import LiveServer

    server = LiveServer(settings)
    try:
        info = await server.start()
    except (OSError, ConfigError) as error:
        print(f"live: cannot start: {error}", file=sys.stderr)
        await server.stop()
        return 1
    urls = info.urls
    lines = [
        "live is running",
        f"  HTTP (API, HLS, WHIP)  {urls.http_base}   (port {info.http_port})",
    ]
    if info.https_port is not None:
        lines.append(
            f"  HTTPS (the same)       https://{_host(urls)}:{info.https_port}"
            f"   (port {info.https_port})"
        )
    lines += [
        f"  RTMP ingest            {urls.rtmp_base}/{{stream_key}}   (port {info.rtmp_port})",
    ]
    if urls.rtmps_base:
        lines.append(
            f"  RTMPS ingest           {urls.rtmps_base}/{{stream_key}}   (port {info.rtmps_port})"
        )
    lines.append(
        f"  SRT ingest             {urls.srt_base}?streamid={{stream_key}}   (port {info.srt_port})"
    )
    lines += [
        f"  REST API               {urls.http_base}/v1/livestreams",
        f"  dashboard              {urls.http_base}/admin",
        f"  player page            {urls.http_base}/play/{{playback_id}}",
        f"  playback               {urls.http_base}/live/{{playback_id}}/index.m3u8",
    ]
    if info.created_api_key:
        lines += ["", f"  admin API key (shown once, keep it): {info.created_api_key}"]
    print("\n".join(lines), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    print("live: shutting down", flush=True)
    await server.stop()
    return 0


async def _create_key(settings: Settings, name: str, scope: str) -> int:
    from pathlib import Path

    from live.store.factory import open_store

    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    store = await open_store(settings.redis or str(Path(settings.data_dir) / "live.db"))
    try:
        _, plaintext = await store.create_api_key(name, scope)  # type: ignore[arg-type]
    finally:
        await store.close()
    print(plaintext)
    return 0


if __name__ == "__main__":
    sys.exit(main())
