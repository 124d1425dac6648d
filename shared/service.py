"""Running a service process: `python -m services.<name> [--role api|worker|all] [--port N] [--workers N]`."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from shared.logging import configure_logging, get_logger
from shared.settings import PlatformSettings, SettingsError

log = get_logger(__name__)

ROLES = ("api", "worker", "all")


@dataclass(frozen=True)
class RunOptions:
    role: str
    host: str
    port: int
    workers: int


def parse_args(service: str, default_port: int, argv: list[str] | None = None) -> RunOptions:
    env_port = os.environ.get(f"KALENDS_{service.upper()}_PORT", "").strip()
    parser = argparse.ArgumentParser(prog=f"python -m services.{service}")
    parser.add_argument(
        "--role",
        choices=ROLES,
        default=os.environ.get("KALENDS_ROLE", "all"),
        help="api: HTTP only; worker: relays and consumers (with health routes); all: both",
    )
    parser.add_argument("--host", default=os.environ.get("KALENDS_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env_port) if env_port.isdigit() else default_port)
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get(f"KALENDS_{service.upper()}_WORKERS", "1") or 1),
        help="HTTP processes sharing the port (SO_REUSEPORT); role api only beyond 1",
    )
    args = parser.parse_args(argv)
    return RunOptions(role=args.role, host=args.host, port=args.port, workers=max(1, args.workers))


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _serve(app: web.Application, options: RunOptions, reuse_port: bool) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port, reuse_port=reuse_port, backlog=1024)
    await site.start()
    log.info("service.listening", url=f"http://{options.host}:{options.port}", role=options.role, pid=os.getpid())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("service.stopping")
    await runner.cleanup()


def run(
    service: str,
    default_port: int,
    build_app: Callable[[PlatformSettings, str], web.Application],
    argv: list[str] | None = None,
) -> None:
    """Entry point body of every `services.<name>.__main__`."""
    options = parse_args(service, default_port, argv)
    try:
        settings = PlatformSettings.from_env()
    except SettingsError as exc:
        print(f"kalends {service}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_format, settings.log_level, service)
    log.info("service.starting", role=options.role, workers=options.workers, settings=settings.for_log())
    _install_uvloop()

    if options.workers > 1:
        # Extra processes serve HTTP only; this process keeps the role's background work.
        children: list[int] = []
        for _ in range(options.workers - 1):
            pid = os.fork()
            if pid == 0:
                child = RunOptions("api", options.host, options.port, 1)
                asyncio.run(_serve(build_app(settings, "api"), child, True))
                os._exit(0)
            children.append(pid)
        try:
            asyncio.run(_serve(build_app(settings, options.role), options, True))
        finally:
            for pid in children:
                try:
                    os.kill(pid, signal.SIGTERM)
                    os.waitpid(pid, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
        return
    asyncio.run(_serve(build_app(settings, options.role), options, hasattr(socket, "SO_REUSEPORT")))
