"""Run the benchmarks and print one PASS/FAIL line per benchmark."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shlex
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import ack_link
import board
import busy_chat
import channels
import checkins
import clockin
import digest
import due_lookup
import email_send
import fanout
import floor
import lateness
import look_cost
import memory
import ops_scrape
import robots
import roster_import
import rota
import startup
import storm
import summary
import throughput
from support import Options, Result

Benchmark = Callable[[Options], Awaitable[Result]]
RESULTS = Path(__file__).resolve().parent / "results"

BENCHMARKS: dict[str, tuple[Benchmark, float]] = {
    # name: (benchmark, seconds it may take before it counts as failed)
    "lateness": (lateness.run, 100.0),
    "fanout": (fanout.run, 120.0),
    "busy_chat": (busy_chat.run, 90.0),
    "due_lookup": (due_lookup.run, 120.0),
    "rota": (rota.run, 120.0),
    "roster_import": (roster_import.run, 120.0),
    "clockin": (clockin.run, 90.0),
    "throughput": (throughput.run, 300.0),
    "floor": (floor.run, 240.0),
    "storm": (storm.run, 240.0),
    "look_cost": (look_cost.run, 120.0),
    "checkins": (checkins.run, 300.0),
    "board": (board.run, 240.0),
    "summary": (summary.run, 300.0),
    "digest": (digest.run, 180.0),
    "ops_scrape": (ops_scrape.run, 240.0),
    "robots": (robots.run, 60.0),
    "ack_link": (ack_link.run, 240.0),
    "channels": (channels.run, 120.0),
    "email_send": (email_send.run, 60.0),
    "startup": (startup.run, 240.0),
    "memory": (memory.run, 300.0),
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/run.py",
        description="Paging-engine benchmarks: one line per benchmark, PASS or FAIL.",
    )
    parser.add_argument("names", nargs="+", metavar="NAME", help=f"all, or {', '.join(BENCHMARKS)}")
    parser.add_argument(
        "--database-url",
        help="PostgreSQL server to use (postgresql+asyncpg://user@host/db); each benchmark "
        "creates and drops its own zhiban_bench_<random> database there. Default: SQLite.",
    )
    parser.add_argument(
        "--messages-per-second",
        type=float,
        help="fanout only: run the bot with this [telegram] messages_per_second "
        "instead of the product default",
    )
    parser.add_argument(
        "--api-latency",
        type=float,
        default=0.0,
        help="fanout only: the emulator answers every call this many seconds late",
    )
    parser.add_argument("--verbose", action="store_true", help="print query plans and logs")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="sample the whole run with pyinstrument (a dev dependency) and write its call "
        "tree as text to FILE (time spent waiting on the event loop shows as select)",
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n != "all" and n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from all, {', '.join(BENCHMARKS)}")
    return args


async def run_one(name: str, options: Options) -> Result:
    benchmark, limit = BENCHMARKS[name]
    started = time.monotonic()
    try:
        result = await asyncio.wait_for(benchmark(options), timeout=limit)
    except TimeoutError:
        return Result(name, False, f"did not finish within {limit:.0f}s")
    except Exception as error:  # one broken benchmark must not hide the others' lines
        logging.getLogger("bench").exception("%s failed", name)
        return Result(name, False, f"error: {type(error).__name__}: {error}")
    took = time.monotonic() - started
    return Result(name, result.passed, f"{result.figures} ({took:.0f}s)", result.details)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    options = Options(
        database_url=args.database_url,
        verbose=args.verbose,
        messages_per_second=args.messages_per_second,
        api_latency=args.api_latency,
    )
    names = list(BENCHMARKS) if "all" in args.names else list(dict.fromkeys(args.names))
    with _profiled(args.profile):
        failed = 0
        for name in names:
            result = asyncio.run(run_one(name, options))  # a fresh event loop for each benchmark
            print(result.line(), flush=True)
            record(result, options, argv)
            if args.verbose:
                for line in result.details:
                    print(f"  {line}", flush=True)
            failed += not result.passed
    return 1 if failed else 0


def record(result: Result, options: Options, argv: list[str]) -> None:
    """Keep the run's line in `bench/results/<name>.json`, next to what the benchmark wrote.

    Benchmarks that write their own figures keep them; this adds, per backend, the line as
    printed, when and by which command, so every figure in the README can be traced to a run.
    """
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{result.name}.json"
    try:
        kept = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except ValueError:
        kept = {}
    if not isinstance(kept, dict):
        kept = {"figures": kept}
    runs = kept.get("runs") if isinstance(kept.get("runs"), dict) else {}
    runs[options.backend] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "bench/run.py", *argv]),
        "passed": result.passed,
        "line": result.line(),
    }
    kept["runs"] = runs
    path.write_text(json.dumps(kept, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


@contextmanager
def _profiled(path: str | None) -> Iterator[None]:
    """Sample the run with pyinstrument when asked, and write the call tree to `path`."""
    if path is None:
        yield
        return
    from pyinstrument import Profiler  # a dev dependency, needed only here

    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        Path(path).write_text(profiler.output_text(unicode=True, show_all=False))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
