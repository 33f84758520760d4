"""Byte-compile the bot's own packages, as installing them does, for the processes tests start.

`pip install` writes each module's bytecode. A checkout run with PYTHONDONTWRITEBYTECODE=1 (set
on the machines the benchmarks and CI run on) compiles its hundred modules again at every start
of `python -m bot run`: 1.1 to 1.5 s of CPU under cProfile there, a cost no installed bot pays,
which the start-up benchmark had been measuring and the kill -9 drills paid at every restart.
"""

from __future__ import annotations

import compileall
from pathlib import Path

PACKAGES = ("bot", "handlers", "jobs")
_done: set[Path] = set()


def compile_packages() -> None:
    """Write the bytecode of this checkout's packages where it is missing or stale (once)."""
    root = Path(__file__).resolve().parent.parent.parent
    if root in _done:
        return
    for package in PACKAGES:
        compileall.compile_dir(root / package, quiet=1)
    _done.add(root)
