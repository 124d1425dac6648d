"""A real CalDAV server for tests: Radicale (PyPI) as a child process on a free loopback port, with
its own storage directory and htpasswd users, and its request log to count what reached it."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.testing import free_port


@dataclass
class RadicaleServer:
    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def log_path(self) -> Path:
        return self.root / "radicale.log"

    @property
    def users_path(self) -> Path:
        return self.root / "users"

    def add_user(self, name: str, password: str) -> None:
        """Plain htpasswd lines; Radicale re-reads the file on each login (no cache)."""
        with self.users_path.open("a") as users:
            users.write(f"{name}:{password}\n")

    def start(self) -> RadicaleServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self.users_path.touch()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "radicale",
                "--server-hosts",
                f"127.0.0.1:{self.port}",
                "--storage-filesystem-folder",
                str(self.root / "collections"),
                "--auth-type",
                "htpasswd",
                "--auth-htpasswd-filename",
                str(self.users_path),
                "--auth-htpasswd-encryption",
                "plain",
                "--auth-delay",
                "0",
                "--rights-type",
                "owner_only",
                "--logging-level",
                "info",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"radicale exited:\n{self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return self
            time.sleep(0.1)
        raise TimeoutError(f"radicale not listening:\n{self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def requests(self, method: str, path_contains: str = "") -> list[str]:
        """Paths of the `method` requests Radicale logged (e.g. every PUT), in order."""
        pattern = re.compile(rf"\[INFO\] {re.escape(method)} request for '([^']*)'")
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [m.group(1) for m in pattern.finditer(text) if path_contains in m.group(1)]


def calendar_events(url: str, username: str, password: str) -> dict[str, dict[str, str]]:
    """Every event in the collection at `url`, read with the `caldav` client library (blocking:
    call it through asyncio.to_thread): UID -> {"summary", "sequence", "status"}."""
    import caldav

    with caldav.DAVClient(url=url, username=username, password=password) as client:
        calendar = client.calendar(url=url)
        out: dict[str, dict[str, str]] = {}
        for resource in calendar.get_events():
            component = resource.icalendar_component
            out[str(component["UID"])] = {
                "summary": str(component.get("SUMMARY", "")),
                "sequence": str(component.get("SEQUENCE", "0")),
                "status": str(component.get("STATUS", "")),
            }
        return out


def calendar_name(url: str, username: str, password: str) -> str:
    """The collection's display name, read with the `caldav` client library (blocking)."""
    import caldav

    with caldav.DAVClient(url=url, username=username, password=password) as client:
        return str(client.calendar(url=url).get_display_name())
