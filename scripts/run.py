"""`make run`: create the database, migrate every service, and run every service in the foreground.

Variables in `.env.local` (beside the Makefile) are loaded first, without overriding the environment;
when KALENDS_ENCRYPTION_KEYS is set nowhere, a development Fernet key is generated into that file, so
secrets stored by one run can be read by the next.

A service exists when `services/<name>/__main__.py` does; its migrations are `services/<name>/migrations`
(schema `<name>`). Each service runs as a child process (`python -m services.<name>`) whose output is
forwarded line by line behind a `[name]` prefix. Ctrl-C or SIGTERM stops every child (SIGTERM, then
SIGKILL after a grace period); a child that dies on its own stops the rest, and the exit status is
then non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
from dotenv import dotenv_values, set_key

from shared import db
from shared.crypto import DEVELOPMENT_KEYS_FILE, SecretBox, development_keys
from shared.crypto import ENV_NAME as ENCRYPTION_KEYS
from shared.logging import configure_logging
from shared.settings import PlatformSettings, SettingsError, censor_url

ROOT = Path(__file__).resolve().parent.parent
# The contract's order and ports; auth first because the others fetch its JWKS.
CONTRACT_PORTS = {"auth": 8081, "ingest": 8082, "feed": 8083, "webhook": 8084, "sync": 8085, "mail": 8086, "web": 8087}
COLOURS = ("36", "35", "33", "32", "34", "31")
STOP_GRACE = 10.0


@dataclass
class Child:
    name: str
    port: int | None
    colour: str
    process: asyncio.subprocess.Process | None = None
    expected_exit: bool = False

    @property
    def url(self) -> str | None:
        return f"http://{os.environ.get('KALENDS_HOST', '127.0.0.1') or '127.0.0.1'}:{self.port}" if self.port else None


def discover(services_dir: Path) -> list[str]:
    """Services that exist (have a `__main__.py`), contract services first, then the rest by name."""
    found = sorted(p.parent.name for p in services_dir.glob("*/__main__.py"))
    return sorted(found, key=lambda name: (list(CONTRACT_PORTS).index(name) if name in CONTRACT_PORTS else 99, name))


def service_port(name: str) -> int | None:
    raw = os.environ.get(f"KALENDS_{name.upper()}_PORT", "").strip()
    if raw.isdigit():
        return int(raw)
    return CONTRACT_PORTS.get(name)


def port_taken(port: int, host: str | None = None) -> bool:
    """Whether a service could not listen on `port`, probed the way it binds.

    The services bind through asyncio's create_server, which sets SO_REUSEADDR on POSIX: connections
    in TIME_WAIT (a `make run` stopped a moment ago) do not keep them off the port, a listener does.
    A probe without SO_REUSEADDR would see the former as busy for a minute after every clean stop.
    No SO_REUSEPORT: with it a probe could share the port of a running `--workers` service.
    """
    host = host or os.environ.get("KALENDS_HOST", "").strip() or "127.0.0.1"
    with socket.socket() as probe:
        if os.name == "posix":
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def say(message: str) -> None:
    print(f"run: {message}", flush=True)


def load_local_env(path: Path) -> list[str]:
    """Set the variables of `path` that the environment leaves unset; returns the names set."""
    if not path.is_file():
        return []
    loaded = []
    for name, value in dotenv_values(path).items():
        if value is not None and not os.environ.get(name, "").strip():
            os.environ[name] = value
            loaded.append(name)
    return loaded


def ensure_encryption_key(path: Path) -> bool:
    """When KALENDS_ENCRYPTION_KEYS is set nowhere, write a new development key into `path` (mode
    0600) and use it; True when one was made."""
    if os.environ.get(ENCRYPTION_KEYS, "").strip():
        return False
    key = SecretBox.generate_key()
    path.touch(mode=0o600, exist_ok=True)
    set_key(path, ENCRYPTION_KEYS, key, quote_mode="never")
    os.environ[ENCRYPTION_KEYS] = key
    return True


def local_environment(path: Path) -> None:
    """Load `path`, and make sure the services get an encryption key (saying what was done)."""
    loaded = load_local_env(path)
    if loaded:
        say(f"loaded {', '.join(sorted(loaded))} from {path}")
    if ensure_encryption_key(path):
        say(
            f"{ENCRYPTION_KEYS} was not set: generated a development key into {path}; keep that file,"
            " what is stored encrypted needs it (set the variable yourself outside development)"
        )


async def prepare(settings: PlatformSettings, services_dir: Path, names: list[str]) -> None:
    """Create the database if missing and apply each service's migrations to its own schema."""
    if await db.ensure_database(settings.database_url):
        say(f"created database {censor_url(settings.database_url)}")
    for name in names:
        migrations = services_dir / name / "migrations"
        if migrations.is_dir():
            applied = await db.prepare_database(settings.database_url, name, migrations)
            say(f"{name}: {len(applied)} migration(s) applied" if applied else f"{name}: schema up to date")


WEB_ACCOUNT = "kalends-web"


async def ensure_web_client(env_file: Path, package_root: Path) -> None:
    """The web service's platform client (scope calendar-pages, README "web"): made once with auth's
    admin CLI and kept in `env_file`, unless KALENDS_WEB_CLIENT_ID is set."""
    if os.environ.get("KALENDS_WEB_CLIENT_ID", "").strip():
        return

    async def admin(*args: str) -> dict[str, str] | None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.auth.admin",
            *args,
            cwd=package_root,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        return json.loads(out) if proc.returncode == 0 else None

    await admin("create-account", WEB_ACCOUNT, "--name", "Kalends web pages")  # fails harmlessly when it exists
    client = await admin("create-client", WEB_ACCOUNT, "--scope", "calendar-pages")
    if client is None:
        say("could not make the web service's platform client: its calendar pages will answer 503")
        return
    await asyncio.to_thread(env_file.touch, mode=0o600, exist_ok=True)
    for name, value in (
        ("KALENDS_WEB_CLIENT_ID", client["clientId"]),
        ("KALENDS_WEB_CLIENT_SECRET", client["clientSecret"]),
    ):
        set_key(env_file, name, value, quote_mode="never")
        os.environ[name] = value
    say(f"made the web service's platform client (scope calendar-pages) into {env_file}")


async def forward(child: Child, stream: asyncio.StreamReader, tty: bool) -> None:
    prefix = f"\033[{child.colour}m[{child.name}]\033[0m " if tty else f"[{child.name}] "
    while line := await stream.readline():
        sys.stdout.write(prefix + line.decode(errors="replace").rstrip("\n") + "\n")
        sys.stdout.flush()


async def wait_ready(children: list[Child], timeout: float) -> list[str]:
    """Poll each child's /readyz; returns the names not ready by the deadline (or dead)."""
    deadline = time.monotonic() + timeout
    pending = [c for c in children if c.url]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while pending and time.monotonic() < deadline:
            for child in list(pending):
                if child.process is not None and child.process.returncode is not None:
                    return [child.name]
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with session.get(f"{child.url}/readyz") as response:
                        if response.status == 200:
                            pending.remove(child)
                            say(f"{child.name} ready at {child.url}")
            if pending:
                await asyncio.sleep(0.2)
    return [c.name for c in pending]


def signal_group(process: asyncio.subprocess.Process, sig: int) -> None:
    """Signal the child's whole process group: a service with --workers > 1 has forked HTTP workers."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


async def stop_all(children: list[Child]) -> None:
    """SIGTERM every running child, SIGKILL what is still alive after the grace period."""
    running = [c for c in children if c.process is not None and c.process.returncode is None]
    for child in running:
        child.expected_exit = True
        assert child.process is not None
        signal_group(child.process, signal.SIGTERM)
    if not running:
        return
    waits = [asyncio.create_task(c.process.wait()) for c in running if c.process is not None]
    _, late = await asyncio.wait(waits, timeout=STOP_GRACE)
    for child in running:
        if child.process is not None and child.process.returncode is None:
            say(f"{child.name} did not stop within {STOP_GRACE:g} s: killing it")
            signal_group(child.process, signal.SIGKILL)
    if late:
        await asyncio.wait(late)


async def run(services_dir: Path, ready_timeout: float, env_file: Path = ROOT / ".env.local") -> int:
    try:
        local_environment(env_file)
    except OSError as exc:
        say(f"cannot read or write {env_file}: {exc}")
        return 2
    try:
        settings = PlatformSettings.from_env()
    except SettingsError as exc:
        say(str(exc))
        return 2
    # This script says what it does itself; the library's info lines would only repeat it.
    configure_logging(settings.log_format if not sys.stdout.isatty() else "console", "warning", "run")
    names = discover(services_dir)
    if not names:
        say(f"no services to run: none of {services_dir}/*/__main__.py exists yet")
        return 1
    try:
        await prepare(settings, services_dir, names)
    except (OSError, asyncpg.PostgresError) as exc:
        say(f"cannot prepare the database at {censor_url(settings.database_url)}: {exc}")
        return 1
    if "web" in names and "auth" in names:
        await ensure_web_client(env_file, services_dir.parent)

    tty = sys.stdout.isatty()
    env = dict(os.environ)
    if not env.get(ENCRYPTION_KEYS, "").strip():
        # Secrets at rest need a key list; on a development machine one is made once and kept.
        env[ENCRYPTION_KEYS] = development_keys(create=True) or ""
        say(f"{ENCRYPTION_KEYS} is not set: using the development key in {DEVELOPMENT_KEYS_FILE}")
    if tty and not env.get("KALENDS_LOG_FORMAT"):
        env["KALENDS_LOG_FORMAT"] = "console"
    package_root = services_dir.parent
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([str(package_root), str(ROOT), env.get("PYTHONPATH", "")]))
    env["PYTHONPATH"] = env["PYTHONPATH"].rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"

    children = [Child(name, service_port(name), COLOURS[i % len(COLOURS)]) for i, name in enumerate(names)]
    taken = [c for c in children if c.port and port_taken(c.port)]
    if taken:
        for child in taken:
            say(
                f"port {child.port} of {child.name} is already in use (another `make run`?): stop that,"
                f" or choose another with KALENDS_{child.name.upper()}_PORT"
            )
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    forwarders = []
    for child in children:
        # Own session: a terminal's Ctrl-C reaches this script only, which then stops the children in order.
        child.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            f"{services_dir.name}.{child.name}",
            cwd=package_root,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        assert child.process.stdout is not None
        forwarders.append(asyncio.create_task(forward(child, child.process.stdout, tty)))
        say(f"started {child.name} (pid {child.process.pid})" + (f" on {child.url}" if child.url else ""))

    async def first_exit() -> Child:
        waits = {asyncio.create_task(c.process.wait()): c for c in children if c.process is not None}
        done, rest = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in rest:
            task.cancel()
        return waits[next(iter(done))]

    status = 0
    readiness = asyncio.create_task(wait_ready(children, ready_timeout))
    exited = asyncio.create_task(first_exit())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({readiness, exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if readiness.done() and not exited.done() and not stopping.done():
            late = readiness.result()
            if late:
                say(f"not ready after {ready_timeout:g} s: {', '.join(late)}; they keep starting (see their output)")
            else:
                say("all services are up:")
                for child in children:
                    if child.url:
                        print(f"    {child.name:<8} {child.url}  (openapi: {child.url}/openapi.json)", flush=True)
                say("press Ctrl-C to stop")
            await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if exited.done() and not stopping.done():
            dead = exited.result()
            assert dead.process is not None
            say(f"{dead.name} exited unexpectedly with status {dead.process.returncode}: stopping the others")
            status = 1
        else:
            say("stopping every service")
    finally:
        for task in (readiness, exited, stopping):
            task.cancel()
        await stop_all(children)
        await asyncio.gather(*forwarders, return_exceptions=True)
    for child in children:
        assert child.process is not None
        code = child.process.returncode
        if code not in (0, None, -signal.SIGTERM) and status == 0:
            say(f"{child.name} stopped with status {code}")
            status = 1
    say("stopped" if status == 0 else f"stopped (status {status})")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.run", description=__doc__.splitlines()[0])
    parser.add_argument("--services-dir", type=Path, default=ROOT / "services", help=argparse.SUPPRESS)
    parser.add_argument("--ready-timeout", type=float, default=60.0, help="seconds to wait for every /readyz")
    parser.add_argument("--env-file", type=Path, default=ROOT / ".env.local", help="local variables (made if needed)")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.services_dir.resolve(), args.ready_timeout, args.env_file.resolve()))


if __name__ == "__main__":
    sys.exit(main())
