"""Run the benchmarks: every `bench/<name>.py` listed in BENCHES that exists, or those named.

Each module has `main() -> str`: it runs its measurements side by side with their reference,
prints a Markdown table and returns it; the table is also written to `bench/results/<name>.md`.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

# Issue 11's rows come from auth, ingest, feed, feed_memory and webhook; capacity_check reads the figures
# the others wrote, and capacity (the model's report) reads them all, so both come last.
BENCHES = (
    "auth",
    "jwt",
    "ingest",
    "feed",
    "feed_memory",
    "webhook",
    "sync",
    "sync_google",
    "mail",
    "web",
    "rss",
    "capacity_check",
    "capacity",
)
RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str]) -> int:
    names = argv or [n for n in BENCHES if (Path(__file__).parent / f"{n}.py").exists()]
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        started = time.monotonic()
        print(f"\n## bench {name}\n", flush=True)
        table: str = module.main()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        (RESULTS / f"{name}.md").write_text(f"# {name}\n\nRun {stamp}\n\n{table}\n")
        print(table, flush=True)
        print(f"\n({name}: {time.monotonic() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
