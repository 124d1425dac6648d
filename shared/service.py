"""Running a service process: `python -m services.<name> [--role api|worker|all] [--port N] [--workers N]`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from shared.logging import configure_logging, get_logger
from shared.metrics import MULTIPROC_ENV, enable_multiprocess, remove_multiprocess_dir
from shared.settings import PlatformSettings, SettingsError
from shared.web import FrontedAppRunner

log = get_logger(__name__)

ROLES = ("api", "worker", "all")


@dataclass(frozen=True)
class RunOptions:
    role: str
    host: str
    port: int
    workers: int


def _env_whole(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise SettingsError(f"{name} must be a whole number, got {raw!r}")
    return int(raw)


def parse_args(service: str, default_port: int, argv: list[str] | None = None) -> RunOptions:
    parser = argparse.ArgumentParser(prog=f"python -m services.{service}")
    try:
        port = _env_whole(f"KALENDS_{service.upper()}_PORT", default_port)
        workers = _env_whole(f"KALENDS_{service.upper()}_WORKERS", 1)
    except SettingsError as exc:
        parser.error(str(exc))
    role = os.environ.get("KALENDS_ROLE", "").strip() or "all"
    if role not in ROLES:
        parser.error(f"KALENDS_ROLE must be one of {', '.join(ROLES)}, got {role!r}")
    parser.add_argument(
        "--role",
        choices=ROLES,
        default=role,
        help="api: HTTP only; worker: relays and consumers (with health routes); all: both",
    )
    parser.add_argument("--host", default=os.environ.get("KALENDS_HOST", "").strip() or "127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument(
        "--workers",
        type=int,
        default=workers,
        help="processes sharing the port (SO_REUSEPORT); the extra ones serve the api role only, except"
        " in services whose background work runs in parallel (webhook: each process is a delivery worker)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    if args.workers > 1 and not hasattr(socket, "SO_REUSEPORT"):
        parser.error("--workers > 1 needs SO_REUSEPORT, which this platform lacks")
    return RunOptions(role=args.role, host=args.host, port=args.port, workers=max(1, args.workers))


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _serve(
    app: web.Application, options: RunOptions, reuse_port: bool, on_listening: Callable[[], None] | None = None
) -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly (cleanup_ctx unwinds: consumers, relay, pools).
    `on_listening` runs once the app has started (its consumers' queues declared) and the port answers."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    serving = False

    def on_signal() -> None:
        # While starting (waiting for PostgreSQL, say) a signal cancels the start; once serving, it
        # ends the wait below. Either way what has started unwinds in `runner.cleanup()`.
        if serving:
            stop.set()
        elif main_task is not None:
            main_task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    runner = FrontedAppRunner(app, access_log=None, handle_signals=False)
    try:
        await runner.setup()
        # Only several workers share a port on purpose; a lone process must fail loudly when the port is taken.
        site = web.TCPSite(runner, options.host, options.port, reuse_port=reuse_port or None, backlog=1024)
        await site.start()
        serving = True
        _settle_heap()
        log.info("service.listening", url=f"http://{options.host}:{options.port}", role=options.role, pid=os.getpid())
        if on_listening is not None:
            on_listening()
        await stop.wait()
        log.info("service.stopping", pid=os.getpid())
    finally:
        await runner.cleanup()
    log.info("service.stopped", pid=os.getpid())


# Allocations between young-generation collections (CPython's default is 700). A request allocates
# hundreds of container objects (dicts, models, frames), so at the default a busy process collected
# every few requests: 7-8% of ingest's CPU under load went to the cyclic collector (perf, round 3).
GC_YOUNG_THRESHOLD = 10_000


def _settle_heap() -> None:
    """Once the app has started: what it built (modules, routes, pools, models) moves to the collector's
    permanent generation, which full collections no longer traverse, and young collections run less
    often. Reference counting still frees everything at once; only cycles wait a little longer."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def _serve_or_exit(
    build: Callable[[], web.Application],
    options: RunOptions,
    reuse_port: bool,
    service: str = "service",
    on_listening: Callable[[], None] | None = None,
) -> int:
    """Run one serving process; returns its exit status (1 when it could not start or crashed)."""
    try:
        app = build()
    except SettingsError as exc:
        # A setting the service cannot start without (KALENDS_ENCRYPTION_KEYS, say): say which, plainly.
        print(f"kalends {service}: cannot start: {exc}", file=sys.stderr, flush=True)
        log.error("service.misconfigured", error=str(exc))
        return 2
    try:
        asyncio.run(_serve(app, options, reuse_port, on_listening))
    except (KeyboardInterrupt, asyncio.CancelledError):
        log.info("service.start_cancelled", pid=os.getpid())
        return 0
    except Exception as exc:
        log.exception("service.failed", error=repr(exc), role=options.role, port=options.port)
        return 1
    return 0


def _die_with_parent() -> None:
    """A forked HTTP worker gets SIGTERM when its parent dies, even by SIGKILL (Linux prctl).

    Without it a killed parent leaves workers serving on the port with no background half behind
    them. Not exposed by the standard library, hence ctypes; elsewhere the worker simply lacks it.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before the signal was armed
        os._exit(0)


def run(
    service: str,
    default_port: int,
    build_app: Callable[[PlatformSettings, str], web.Application],
    argv: list[str] | None = None,
    *,
    parallel_background: bool = False,
) -> None:
    """Entry point body of every `services.<name>.__main__`; exits with 0 after a clean stop.

    `parallel_background`: the service's background work may run in several processes at once (its
    consumers and claims share work safely), so with `--workers N` every process runs the role given,
    background work included; otherwise only the first does and the extra ones serve the api role."""
    options = parse_args(service, default_port, argv)
    try:
        settings = PlatformSettings.from_env()
    except SettingsError as exc:
        print(f"kalends {service}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_format, settings.log_level, service)
    log.info("service.starting", role=options.role, workers=options.workers, settings=settings.for_log())
    _install_uvloop()

    if options.workers <= 1 and not os.environ.get(MULTIPROC_ENV):
        raise SystemExit(_serve_or_exit(lambda: build_app(settings, options.role), options, False, service))

    # Several processes answer scrapes: each must show the whole pod (shared.metrics). Before the fork,
    # so that every process, this one included, writes its metrics where the others read them.
    metrics_dir = enable_multiprocess(service)
    try:
        status = _run_workers(service, options, settings, build_app, parallel_background)
    finally:
        remove_multiprocess_dir(metrics_dir)
    raise SystemExit(status)


def _run_workers(
    service: str,
    options: RunOptions,
    settings: PlatformSettings,
    build_app: Callable[[PlatformSettings, str], web.Application],
    parallel_background: bool = False,
) -> int:
    """This process with the role's background work, and `workers - 1` forked ones (HTTP-only, or
    the same role when the background work runs in parallel); the exit status."""
    if options.workers <= 1:
        return _serve_or_exit(lambda: build_app(settings, options.role), options, False, service)

    # Extra processes serve HTTP only and this process keeps the role's background work, unless that
    # work runs in parallel. The kernel spreads connections over every process listening with SO_REUSEPORT.
    child_role = options.role if parallel_background else "api"
    # The forked processes open the shared port only once this one listens, its consumers' queues
    # declared: a child answering /readyz earlier let a caller publish a change before any queue was
    # bound to take it (it went to kalends.unrouted, and a feed missed a calendar). A byte per child
    # through a pipe says "go"; end of file (this process never got to listen) sends them away.
    go_read, go_write = os.pipe()
    children: list[int] = []
    for _ in range(options.workers - 1):
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                _die_with_parent()
                os.close(go_write)
                if os.read(go_read, 1):
                    os.close(go_read)
                    child = RunOptions(child_role, options.host, options.port, 1)
                    status = _serve_or_exit(lambda: build_app(settings, child_role), child, True, service)
                else:
                    status = 0
            finally:
                os._exit(status)
        children.append(pid)
    os.close(go_read)

    def release_children() -> None:
        os.write(go_write, b"." * len(children))

    try:
        status = _serve_or_exit(lambda: build_app(settings, options.role), options, True, service, release_children)
    finally:
        os.close(go_write)  # if this process never listened, the children read end of file and leave
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for pid in children:
        try:
            _, child_status = os.waitpid(pid, 0)
        except ChildProcessError:
            continue
        if os.waitstatus_to_exitcode(child_status) not in (0, -signal.SIGTERM):
            status = status or 1
    return status
