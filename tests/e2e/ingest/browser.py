"""Headless Chromium (Debian's) driven over the DevTools protocol with aiohttp: no browser download,
no extra dependency. Installed by scripts/tools/chromium.sh; a failed install fails the test."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[3]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
]


def install_chromium() -> str:
    """The browser's path, after the project's install script (which raises if it fails)."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "tools" / "chromium.sh")], check=True, capture_output=True, text=True, timeout=900
    )
    return done.stdout.strip().splitlines()[-1]


class Page:
    """One page target: commands answered by id, events queued by method."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if "id" in data and data["id"] in self._pending:
                self._pending.pop(data["id"]).set_result(data)
            elif "method" in data:
                self._events.setdefault(data["method"], asyncio.Queue()).put_nowait(data.get("params", {}))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        await self._ws.send_json({"id": call_id, "method": method, "params": params})
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    def expect(self, event: str) -> asyncio.Queue[dict[str, Any]]:
        """Start listening for `event` before the action that causes it."""
        queue = self._events.setdefault(event, asyncio.Queue())
        while not queue.empty():
            queue.get_nowait()
        return queue

    async def navigate(self, url: str) -> None:
        loaded = self.expect("Page.loadEventFired")
        await self.send("Page.navigate", url=url)
        await asyncio.wait_for(loaded.get(), 30)

    async def node(self, selector: str) -> int:
        root = await self.send("DOM.getDocument", depth=0)
        found = await self.send("DOM.querySelector", nodeId=root["root"]["nodeId"], selector=selector)
        if not found.get("nodeId"):
            raise AssertionError(f"no element matches {selector!r}")
        return int(found["nodeId"])

    async def click(self, selector: str) -> None:
        """A real mouse click at the element's centre, as a person would make."""
        node = await self.node(selector)
        await self.send("DOM.scrollIntoViewIfNeeded", nodeId=node)
        quad = (await self.send("DOM.getBoxModel", nodeId=node))["model"]["border"]
        x, y = sum(quad[0::2]) / 4, sum(quad[1::2]) / 4
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    async def type_into(self, selector: str, text: str) -> None:
        await self.send("DOM.focus", nodeId=await self.node(selector))
        await self.send("Input.insertText", text=text)

    async def html(self) -> str:
        root = await self.send("DOM.getDocument", depth=-1)
        return str((await self.send("DOM.getOuterHTML", nodeId=root["root"]["nodeId"]))["outerHTML"])

    async def accessibility_tree(self) -> list[dict[str, Any]]:
        nodes: list[dict[str, Any]] = (await self.send("Accessibility.getFullAXTree"))["nodes"]
        return nodes

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._ws.close()


@contextlib.asynccontextmanager
async def chromium_page(executable: str) -> AsyncIterator[Page]:
    profile = tempfile.mkdtemp(prefix="kalends-chromium-")
    # Its own process group: Chromium's helpers (renderer, GPU, network, crashpad) outlive the main
    # process by a moment and keep writing into the profile, so the whole group is stopped before
    # the profile goes (removing it under them failed with "Directory not empty").
    process = subprocess.Popen(
        [executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start (exit code {process.poll()})")
            await asyncio.sleep(0.05)
        port = port_file.read_text().split()[0]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            page_target = next(t for t in targets if t["type"] == "page")
            ws = await session.ws_connect(page_target["webSocketDebuggerUrl"], max_msg_size=64 * 1024 * 1024)
            page = Page(ws)
            try:
                yield page
            finally:
                await page.close()
    finally:
        await asyncio.to_thread(_stop_group, process)
        await asyncio.to_thread(_remove_profile, Path(profile))


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to Chromium's process group; SIGKILL to whatever is left after 10 s; wait for the main one."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)  # is any member of the group left?
        except ProcessLookupError:
            break
        process.poll()  # reap the main process, or the group never empties
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _remove_profile(profile: Path) -> None:
    """The profile directory, retried briefly: a helper killed a moment ago may still be closing files."""
    for _ in range(20):
        shutil.rmtree(profile, ignore_errors=True)
        if not profile.exists():
            return
        time.sleep(0.1)
    shutil.rmtree(profile)  # the last try reports what is stuck
