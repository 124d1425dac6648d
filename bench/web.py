"""The calendar page under load: `GET /c/{account}/{calendar}` of a 200-event calendar at 64
connections (wrk), beside ingest's `/healthz` (the framework floor of a Kalends service) and web's own
`/healthz`, in the same run on the same machine.

auth, ingest and web run as processes (shared.testing.Stack) over a database and broker prefix of
their own; web reads the calendar through ingest's API with its platform client (scope
calendar-pages), and serves the page from its cache (bench asserts the page came through ingest
once, then measures). CPU per request is each server process's user + system time over the
measured seconds (bench.cputime); the load average is printed because the machine is shared.

`python -m bench web` (or `make bench`). About a minute.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from bench.cputime import CpuMeter
from shared.testing import (
    Stack,
    running_stack,
)

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 64
EVENTS = 200
DURATION = int(os.environ.get("KALENDS_BENCH_WEB_SECONDS", "8"))
# web HTTP processes sharing the port (KALENDS_WEB_WORKERS); 1 compares like for like with ingest's one.
WEB_WORKERS = int(os.environ.get("KALENDS_BENCH_WEB_WORKERS", "1"))
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"


@dataclass(frozen=True)
class Row:
    name: str
    rps: float
    requests: int
    p50: float
    p99: float
    errors: int
    cpu_ms: float
    body: int

    def line(self) -> str:
        return (
            f"| {self.name} | {CONNECTIONS} | {self.requests:,} | {self.errors} | {self.rps:,.0f} | {self.cpu_ms:.3f}"
            f" | {self.p50:.2f} | {self.p99:.2f} | {self.body:,} |"
        )


def _ms(value: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)", value)
    if not match:
        return float("nan")
    return float(match.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[match.group(2)]


def wrk(name: str, url: str, pid: int, headers: dict[str, str], body: int) -> Row:
    args = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", "--timeout", "5s"]
    for header, value in headers.items():
        args += ["-H", f"{header}: {value}"]
    with CpuMeter([pid]) as cpu:
        out = subprocess.run([*args, url], capture_output=True, text=True, timeout=DURATION + 30, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(g) for g in socket.groups()) if socket else 0)
    return Row(
        name=name,
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        requests=requests,
        # Anchored: the thread stats' "+/- Stdev" column (e.g. "85.50%") must not be read as a percentile.
        p50=_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        p99=_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        errors=errors,
        cpu_ms=cpu.per_request_ms(requests),
        body=body,
    )


async def _calendar(stack: Stack) -> tuple[str, str]:
    """A merchant's calendar of EVENTS upcoming events over two tags; (account code, calendar code)."""
    account = await stack.new_account(name="Bench League")
    token = await stack.token(account)
    code = account["accountCode"]
    base = f"{stack.url('ingest')}/v1/calendars/{code}"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:

        async def post(path: str, body: dict[str, object]) -> dict[str, str]:
            async with session.post(base + path, json=body) as response:
                answer: dict[str, str] = await response.json()
                assert response.status == 201, answer
                return answer

        await post("", {"code": "season", "name": "Bench League season", "description": "Every match."})
        tags = [(await post("/season/tags", {"name": name}))["id"] for name in ("Lions", "Tigers")]
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        semaphore = asyncio.Semaphore(8)

        async def event(n: int) -> None:
            when = start + timedelta(hours=6 * n)
            async with semaphore:
                await post(
                    "/season/events",
                    {
                        "title": f"Match {n + 1}",
                        "start": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "end": (when + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "location": "Bench Park",
                        "tags": [{"internalId": tags[n % 2]}],
                    },
                )

        await asyncio.gather(*(event(n) for n in range(EVENTS)))
    return code, "season"


async def _size(url: str, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        body = await response.read()
        assert response.status == 200, body[:300]
        return len(body)


async def run() -> str:
    subprocess.run([str(ROOT / "scripts" / "tools" / "wrk.sh")], check=True, timeout=900)
    async with running_stack("bench_web") as stack:
        await stack.start("auth")
        await stack.start("ingest")
        await stack.start_web({"KALENDS_WEB_WORKERS": str(WEB_WORKERS)})
        account, calendar = await _calendar(stack)
        page = f"{stack.url('web')}/c/{account}/{calendar}"
        web_process, ingest_process = stack.processes["web"].process, stack.processes["ingest"].process
        assert web_process is not None and ingest_process is not None
        web_pid, ingest_pid = web_process.pid, ingest_process.pid
        sizes = {
            "iphone": await _size(page, {"User-Agent": IPHONE}),
            "windows": await _size(page + "?utm_source=bench&utm_medium=wrk", {"User-Agent": WINDOWS}),
        }
        load_before = os.getloadavg()
        rows = [
            wrk(
                "ingest GET /healthz (reference: a service's framework floor)",
                stack.url("ingest") + "/healthz",
                ingest_pid,
                {},
                15,
            ),
            wrk("web GET /healthz (web's own floor)", stack.url("web") + "/healthz", web_pid, {}, 15),
            wrk(
                f"web GET /c/{{account}}/{{calendar}}, {EVENTS} events, iPhone",
                page,
                web_pid,
                {"User-Agent": IPHONE},
                sizes["iphone"],
            ),
            wrk(
                f"web GET /c/... ?utm_source&utm_medium, {EVENTS} events, Windows (QR code)",
                page + "?utm_source=bench&utm_medium=wrk",
                web_pid,
                {"User-Agent": WINDOWS},
                sizes["windows"],
            ),
        ]
        load_after = os.getloadavg()
    return "\n".join(
        [
            f"{WEB_WORKERS} web process(es) and one ingest process, wrk -t2 -c{CONNECTIONS}, {DURATION} s per row,"
            " on this machine"
            f" ({os.cpu_count()} cores shared with wrk and other work; load average {load_before[0]:.2f} before,"
            f" {load_after[0]:.2f} after). Server CPU is the measured process's user + system time over the"
            " row's seconds, per request (bench.cputime). The page is served from web's cache (calendar,"
            " tags and events read through ingest's API once per KALENDS_WEB_PAGE_TTL, 30 s).",
            "",
            "| request | connections | requests | errors | per second | server CPU ms/request | p50 ms | p99 ms"
            " | body bytes |",
            "|---|---|---|---|---|---|---|---|---|",
            *(row.line() for row in rows),
        ]
    )


def main() -> str:
    return asyncio.run(run())


if __name__ == "__main__":
    print(main())
