"""What the web pages' browser tests do besides clicking: run axe-core, press keys, save screenshots.

Screenshots go to `.cache/artifacts/web/` (ignored by git; KALENDS_TEST_ARTIFACTS moves it), one PNG
per page and device, so a run leaves pictures of every subscriber page behind.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e.ingest.browser import Page

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("KALENDS_TEST_ARTIFACTS") or ROOT / ".cache" / "artifacts") / "web"
# Impacts that fail a page; "moderate" and "minor" findings are reported in the assertion message only.
BLOCKING = ("serious", "critical")


def install_axe() -> str:
    """axe.min.js's source, after the project's install script (npm, pinned by the lock file)."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "tools" / "axe.sh")], check=True, capture_output=True, text=True, timeout=600
    )
    return Path(done.stdout.strip().splitlines()[-1]).read_text()


async def evaluate(page: Page, expression: str, *, wait: bool = False) -> Any:
    answer = await page.send("Runtime.evaluate", expression=expression, awaitPromise=wait, returnByValue=True)
    if "exceptionDetails" in answer:
        raise AssertionError(f"{expression[:80]}: {answer['exceptionDetails']}")
    return answer["result"].get("value")


async def axe_violations(page: Page, axe_source: str) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.x A/AA and best-practice violations of the page as it is now."""
    if not await evaluate(page, "typeof window.axe === 'object'"):
        await evaluate(page, axe_source)
    found = await evaluate(
        page,
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa', 'best-practice']}})"
        ".then(r => JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' '))}))))",
        wait=True,
    )
    violations: list[dict[str, Any]] = json.loads(found)
    return violations


async def assert_accessible(page: Page, axe_source: str, name: str) -> None:
    violations = await axe_violations(page, axe_source)
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert not blocking, f"{name}: {json.dumps(violations, indent=1)}"


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = await page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    path = ARTIFACTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


async def press(page: Page, key: str) -> None:
    """One key press as a keyboard makes it (Tab, Space, Enter)."""
    codes = {"Tab": 9, "Enter": 13, " ": 32}
    text = {"Enter": "\r", " ": " "}.get(key)
    down: dict[str, Any] = {"key": key, "code": "Space" if key == " " else key, "windowsVirtualKeyCode": codes[key]}
    await page.send(
        "Input.dispatchKeyEvent",
        type="keyDown",
        **down,
        **({"text": text} if text else {}),
    )
    await page.send("Input.dispatchKeyEvent", type="keyUp", **down)


async def tab_to(page: Page, condition: str, limit: int = 40) -> None:
    """Press Tab until `condition` (a JS expression about document.activeElement) holds."""
    for _ in range(limit):
        await press(page, "Tab")
        if await evaluate(page, f"(el => !!el && ({condition}))(document.activeElement)"):
            return
    raise AssertionError(f"Tab never reached an element where {condition}")


async def emulate(page: Page, user_agent: str, *, mobile: bool) -> None:
    await page.send("Emulation.setUserAgentOverride", userAgent=user_agent)
    width, height = (390, 844) if mobile else (1280, 900)
    await page.send(
        "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile
    )
