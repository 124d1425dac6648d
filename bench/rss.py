"""Resident memory of every service process after start and after a little work: the memory
requests and limits of deploy/k8s/40-services.yaml. `python -m bench rss`.

Each service runs alone (role all, one process) over one database and broker prefix; RSS is read from
/proc/<pid>/status (VmRSS) after it is ready, and again after ROUNDS calendars, events and
subscriptions went through ingest, feed and webhook (feed polled, a webhook endpoint configured).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import aiohttp

from bench.feed import _calendar_with_events, _call
from shared.testing import (
    running_stack,
)

SERVICES = ("auth", "ingest", "feed", "webhook", "sync", "mail")
ROUNDS = 5


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run() -> dict[str, tuple[float, float]]:
    async with running_stack("rss", {"KALENDS_WEBHOOK_ALLOW_PRIVATE": "1"}) as stack:
        for service in SERVICES:
            await stack.start(service, env={"KALENDS_FEED_WORKERS": "1"} if service == "feed" else None)
        pids = {service: stack.processes[service].process.pid for service in SERVICES}  # type: ignore[union-attr]
        started = {service: rss_mb(pid) for service, pid in pids.items()}
        account = await stack.new_account()
        token = await stack.token(account)
        async with aiohttp.ClientSession() as session:
            hooks = f"{stack.url('webhook')}/v1/webhooks/{account['accountCode']}"
            await _call(session, "POST", hooks, token, {"url": "http://127.0.0.1:9/hook"})
            for round_ in range(ROUNDS):  # the calendar's code is bench<events>: one size per round
                code, _events = await _calendar_with_events(session, stack, account, token, 200 + round_)
                subscribe = f"{stack.url('ingest')}/v1/subscribe/{account['accountCode']}/{code}"
                for n in range(20):
                    sub: dict[str, Any] = await _call(
                        session, "POST", subscribe, token, {"subscriberId": f"s{n}", "subscriptionMethod": "webcal"}
                    )
                    async with session.get(f"{stack.url('feed')}/v1/webcal/{sub['subscriptionId']}") as r:
                        await r.read()
        await asyncio.sleep(2)
        worked = {service: rss_mb(pid) for service, pid in pids.items()}
    return {service: (started[service], worked[service]) for service in SERVICES}


def main() -> str:
    result = asyncio.run(run())
    lines = [
        f"One process per service (role all), RSS from /proc after start and after {ROUNDS} calendars of about 200"
        f" events with 20 subscriptions each (every feed fetched once, a webhook endpoint). Load average"
        f" {os.getloadavg()[0]:.2f}.",
        "",
        "| service | RSS after start MB | RSS after the work MB |",
        "|---|---:|---:|",
        *(f"| {service} | {start:.0f} | {worked:.0f} |" for service, (start, worked) in result.items()),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
