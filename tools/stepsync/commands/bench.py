"""`stepsync bench`: the benchmark, which lives in the checkout (tools/stepsync_dev/bench/), not in the wheel.

The command finds the checkout beside the package it runs from (an editable install: `pip install -e .`)
and runs stepsync_dev.bench.report there; from an installed wheel it says, in one line, what to do.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from stepsync.database import StepsyncError

TOOLS_DIR = Path(__file__).resolve().parents[2]   # tools/ in a checkout: tools/stepsync/commands/bench.py


def run(explicit_url: str | None, rounds: int, quick: bool, sections: tuple[str, ...], output: Path | None) -> None:
    """Run the benchmark from the checkout, or say how to get one."""
    if not (TOOLS_DIR / "stepsync_dev" / "bench" / "report.py").is_file():
        raise StepsyncError("stepsync bench runs from a checkout of stepsync, not from an installed wheel: clone the"
                            " repository, `pip install -e \".[dev]\"` there, and run `stepsync bench` in it")
    if str(TOOLS_DIR) not in sys.path:
        sys.path.insert(0, str(TOOLS_DIR))
    report: Any = importlib.import_module("stepsync_dev.bench.report")
    report.run(explicit_url, rounds, quick, sections, output)
