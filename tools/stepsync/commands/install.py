"""`stepsync install [--no-backfill] [--row-security VIEWER | --no-row-security]`: stepsync.install.install
with a progress bar and Ctrl-C handling.

What the install does (preflight, upgrade, backfill, resuming) is in stepsync.install.
"""

from __future__ import annotations

import signal
import sys
from contextlib import nullcontext

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from stepsync import install as installer
from stepsync.database import StepsyncError
from stepsync.output import print_problems
from stepsync.row_security import RowSecurity


def run(url: str, no_backfill: bool, *, viewer: str | None = None, no_row_security: bool = False) -> None:
    """Install or upgrade stepsync at URL, then the backfill; prints what it did in a line.

    Ctrl-C in the backfill stops after the batch in progress commits (twice: rolls it back at once);
    exit status 130 then.
    """

    def say(line: str) -> None:
        click.echo(f"stepsync: {line}", err=True)

    # The backfill's progress bar, on a terminal only: elsewhere (a log, a pipe) the summary line says it all.
    console = Console(stderr=True)
    bar = (Progress(TextColumn("backfill"), BarColumn(), MofNCompleteColumn(), TextColumn("flows"),
                    TextColumn("{task.fields[rows]} rows"), TimeElapsedColumn(), transient=True, console=console)
           if console.is_terminal else None)
    task = bar.add_task("backfill", total=None, rows=0) if bar is not None else None

    def progress(done: int, total: int, rows: int) -> None:
        if bar is not None and task is not None:
            bar.update(task, completed=done, total=total, rows=rows)

    stopping = {"asked": False}

    def on_sigint(signum: int, frame: object) -> None:
        if stopping["asked"]:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        stopping["asked"] = True
        say("stopping after the step in progress commits (Ctrl-C again to stop at once)")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with bar if bar is not None else nullcontext():
            try:
                line = installer.install(url, run_backfill=not no_backfill, say=say, warn=say,
                                         progress=progress, stop=lambda: stopping["asked"],
                                         row_security=RowSecurity(viewer, no_row_security))
            except installer.PreflightFailed as failed:
                if bar is not None:
                    bar.stop()
                print_problems(failed.problems)
                raise StepsyncError(f"{len(failed.problems)} problem(s) found; nothing was changed") from None
            except installer.BackfillInterrupted as stopped:
                if bar is not None:
                    bar.stop()
                say(str(stopped))
                sys.exit(130)
            except KeyboardInterrupt:
                if bar is not None:
                    bar.stop()
                raise StepsyncError("interrupted: every step that finished is committed; run `stepsync install`"
                                    " again to finish") from None
    finally:
        signal.signal(signal.SIGINT, previous)
    click.echo(line)
