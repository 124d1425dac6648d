"""`make demo`: an account, a token, a calendar with tagged events, a subscription, and its feed.

Runs against the stack at the contract's URLs (KALENDS_AUTH_URL, KALENDS_INGEST_PORT, ...). When
auth is not answering it starts the stack itself (`python -m scripts.run`) and stops it afterwards
(`--keep` leaves it running in the foreground). Every step goes through the contract's routes; a
service that is missing is named, with what could not be shown because of it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from scripts.run import CONTRACT_PORTS, ROOT


class DemoError(Exception):
    """A step failed; the message says which and why."""


@dataclass(frozen=True)
class Urls:
    auth: str
    ingest: str
    feed: str

    @classmethod
    def from_env(cls) -> Urls:
        host = os.environ.get("KALENDS_HOST", "").strip() or "127.0.0.1"

        def local(name: str) -> str:
            port = os.environ.get(f"KALENDS_{name.upper()}_PORT", "").strip() or str(CONTRACT_PORTS[name])
            return f"http://{host}:{port}"

        auth = os.environ.get("KALENDS_AUTH_URL", "").strip().rstrip("/") or local("auth")
        return cls(auth=auth, ingest=local("ingest"), feed=local("feed"))


def step(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def show(label: str, value: Any) -> None:
    text = value if isinstance(value, str) else json.dumps(value, indent=2)
    print(f"    {label}: " + text.replace("\n", "\n    "), flush=True)


async def is_up(session: aiohttp.ClientSession, base: str) -> bool:
    with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
        async with session.get(f"{base}/healthz") as response:
            return response.status == 200
    return False


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    expect: tuple[int, ...] = (200, 201),
    **kwargs: Any,
) -> Any:
    async with session.request(method, url, **kwargs) as response:
        text = await response.text()
        if response.status not in expect:
            raise DemoError(f"{method} {url} answered {response.status}: {text[:500]}")
        if response.content_type == "application/json":
            return json.loads(text)
        return text


def admin(*args: str) -> dict[str, Any]:
    """`python -m services.auth.admin ...` (the contract's admin CLI); its one JSON object."""
    done = subprocess.run(
        [sys.executable, "-m", "services.auth.admin", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise DemoError(f"services.auth.admin {' '.join(args)} failed ({done.returncode}): {done.stderr[-800:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def http_form(webcal_url: str) -> str:
    """The URL a program fetches for a webcal:// link (the scheme of the public feed URL)."""
    if not webcal_url.startswith("webcal://"):
        return webcal_url
    public = os.environ.get("KALENDS_PUBLIC_FEED_URL", "").strip() or "http://127.0.0.1:8083"
    scheme = "https" if public.startswith("https:") else "http"
    return f"{scheme}://{webcal_url.removeprefix('webcal://')}"


def webcal_form(url: str) -> str:
    for scheme in ("https://", "http://"):
        if url.startswith(scheme):
            return "webcal://" + url.removeprefix(scheme)
    return url


async def demo(urls: Urls) -> int:
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        missing = [name for name, base in vars(urls).items() if not await is_up(session, base)]
        if "auth" in missing:
            raise DemoError(f"auth is not answering at {urls.auth}: start the stack with `make run`")

        code = f"demo-{secrets.token_hex(3)}"
        step(f"create account '{code}' with the admin CLI")
        account = admin("create-account", code, "--name", "Demo Sports League")
        show("account", {k: v for k, v in account.items() if k != "clientSecret"} | {"clientSecret": "(hidden)"})

        step("get an access token (client credentials, HTTP Basic)")
        token = await call(
            session,
            "POST",
            f"{urls.auth}/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": aiohttp.encode_basic_auth(account["clientId"], account["clientSecret"])},
        )
        show("token", f"{token['token_type']} {token['access_token'][:24]}... expires in {token['expires_in']} s")
        bearer = {"Authorization": f"Bearer {token['access_token']}"}

        if "ingest" in missing:
            print(f"\n!!  ingest is not answering at {urls.ingest}: no calendar, events or subscription to show.")
            return 1

        step("create a calendar")
        calendar = await call(
            session,
            "POST",
            f"{urls.ingest}/v1/calendars/{code}",
            json={
                "code": "fixtures",
                "name": "Demo League fixtures",
                "description": "Every match of the season",
                "timezone": "Europe/London",
                "refreshInterval": "PT1H",
            },
            headers=bearer,
        )
        show("calendar", calendar)
        base = f"{urls.ingest}/v1/calendars/{code}/fixtures"

        step("create tags")
        tags = {}
        for name, external in (("Home games", "home"), ("Away games", "away")):
            tags[external] = await call(
                session, "POST", f"{base}/tags", json={"name": name, "externalId": external}, headers=bearer
            )
            show(f"tag {external}", tags[external])

        step("create tagged events")
        events = [
            ("match-1", "Demo FC vs Rivals United", "2030-03-07T15:00:00", "2030-03-07T17:00:00", "home"),
            ("match-2", "Harbour Town vs Demo FC", "2030-03-14T19:45:00", "2030-03-14T21:45:00", "away"),
            ("match-3", "Demo FC vs Hill Rovers", "2030-03-21T15:00:00", "2030-03-21T17:00:00", "home"),
        ]
        for external_id, title, start, end, tag in events:
            event = await call(
                session,
                "POST",
                f"{base}/events",
                json={
                    "externalId": external_id,
                    "title": title,
                    "start": start,
                    "end": end,
                    "timezone": "Europe/London",
                    "location": "Demo Park" if tag == "home" else "Away ground",
                    "tags": [{"externalId": tag}],
                    "notifyBefore": 60,
                },
                headers=bearer,
            )
            show(f"event {external_id}", {k: event.get(k) for k in ("id", "externalId", "title", "sequence")})

        step("subscribe fan-1 to home games only")
        subscription = await call(
            session,
            "POST",
            f"{urls.ingest}/v1/subscribe/{code}/fixtures",
            json={
                "subscriberId": "fan-1",
                "subscriptionMethod": "webcal",
                "calendarTags": [{"externalId": "home"}],
                "utmSource": "demo",
            },
            headers=bearer,
        )
        show("subscription", subscription)
        feed_url = str(subscription.get("subscriptionUrl") or "")
        if not feed_url:
            raise DemoError(f"the subscription answer has no subscriptionUrl: {subscription}")
        print(f"\n    webcal URL (open it in a calendar app): {webcal_form(feed_url)}")

        if "feed" in missing:
            print(f"\n!!  feed is not answering at {urls.feed}: the feed itself cannot be shown.")
            return 1
        step("the head of the feed (home games only)")
        body = await wait_for_feed(session, http_form(feed_url), expect=("Demo FC vs Rivals United", "Hill Rovers"))
        print("    " + "\n    ".join(feed_head(body)))
        summaries = [line for line in body.splitlines() if line.startswith("SUMMARY")]
        print(f"\n    {len(summaries)} events in this subscriber's feed: " + "; ".join(s[8:] for s in summaries))
        return 0


def feed_head(body: str) -> list[str]:
    """The calendar's header and its first event, with the time-zone definitions summarised."""
    lines = body.splitlines()
    head: list[str] = []
    in_zone, zone_lines = False, 0
    for line in lines:
        if line.startswith("BEGIN:VTIMEZONE"):
            in_zone = True
        if in_zone:
            zone_lines += 1
            if line.startswith("TZID:"):
                head.append(f"BEGIN:VTIMEZONE ... {line} ...")
            if line.startswith("END:VTIMEZONE"):
                in_zone = False
                head[-1] += f" ({zone_lines} lines) END:VTIMEZONE"
                zone_lines = 0
            continue
        head.append(line)
        if line.startswith("END:VEVENT"):
            break
    rest = len(lines) - len(head)
    return [*head, f"... ({rest} more lines)"] if rest > 0 else head


async def wait_for_feed(session: aiohttp.ClientSession, url: str, expect: tuple[str, ...], timeout: float = 20) -> str:
    """The feed once the projection has caught up (it is fed asynchronously through RabbitMQ)."""
    deadline = time.monotonic() + timeout
    body, status = "", 0
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with session.get(url) as response:
                status, body = response.status, await response.text()
                if status == 200 and all(e in body for e in expect):
                    return body
        await asyncio.sleep(0.3)
    raise DemoError(f"the feed at {url} did not show the events within {timeout:g} s (last: {status}) {body[:300]}")


@contextlib.contextmanager
def started_stack(keep: bool) -> Iterator[subprocess.Popen[bytes] | None]:
    """Start `python -m scripts.run` when auth is not answering; stop it afterwards unless kept."""
    urls = Urls.from_env()

    async def up() -> bool:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            return await is_up(session, urls.auth)

    if asyncio.run(up()):
        yield None
        return
    print(f"demo: nothing answers at {urls.auth}; starting the stack (python -m scripts.run)", flush=True)
    log_path = Path(tempfile.gettempdir()) / "kalends-demo-stack.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "scripts.run"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not log_path.read_text(errors="replace").count("all services are up"):
            if process.poll() is not None:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
                raise DemoError(f"the stack did not start (status {process.returncode}):\n{tail}")
            time.sleep(0.3)
        yield process
        if keep:
            print("\ndemo: the stack keeps running; Ctrl-C stops it", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                process.wait()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
        print(f"demo: stack stopped (its output is in {log_path})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep a stack this demo started running afterwards")
    args = parser.parse_args(argv)
    try:
        with started_stack(args.keep):
            return asyncio.run(demo(Urls.from_env()))
    except DemoError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
