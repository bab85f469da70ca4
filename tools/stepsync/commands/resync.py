"""`stepsync resync`: stepsync.resync's batched run with a progress bar, Ctrl-C handling and a report.

How the run works (batches, locks, what is counted, --all through stepsync.backfill_batch) is in
stepsync.resync.
"""

from __future__ import annotations

import signal
from typing import Any

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from stepsync import database, resync
from stepsync.database import StepsyncError
from stepsync.output import console, database_error_line, emit_json
from stepsync.resync import Result


def summary(result: Result, limit: int = 20) -> list[str]:
    """What the run did, as lines for stdout."""
    lines = []
    if result.interrupted:
        lines.append(f"interrupted after {result.done} of {result.total} flows:"
                     f" {result.written} library rows written or retired")
    else:
        lines.append(f"resynced {result.done} flows: {result.written} library rows written or retired")
    if result.changed:
        lines.append(f"changed {len(result.changed)} flows: {result.inserted} entries inserted,"
                     f" {result.updated} updated, {result.retired} retired")
        for c in result.changed[:limit]:
            lines.append(f"  {c.tree_id}  {c.name}: {c.inserted} inserted, {c.updated} updated, {c.retired} retired")
        if len(result.changed) > limit:
            lines.append(f"  ... and {len(result.changed) - limit} more flows")
    if result.skipped:
        lines.append(f"skipped {len(result.skipped)} flows that fail the publish checks"
                     " (fix their structure, then run resync again; `stepsync check` lists the problems):")
        for s in result.skipped[:limit]:
            lines.append(f"  {s['tree_id']}  {s['name']}: {s['message']}")
        if len(result.skipped) > limit:
            lines.append(f"  ... and {len(result.skipped) - limit} more flows")
    return lines


def interruption_lines(result: Result, all_flows: bool) -> list[str]:
    """What to tell a user whose run stopped early (stderr)."""
    lines = []
    if result.rolled_back:
        lines.append("stepsync: the batch in progress was rolled back; every batch before it is committed")
    else:
        lines.append("stepsync: stopped after the batch in progress committed")
    if result.done < result.total:
        resume = f" (or add --after {result.last_tree_id} to skip the flows already done)" \
            if all_flows and result.last_tree_id else ""
        lines.append(f"stepsync: {result.done} of {result.total} flows done; run the same command again to finish:"
                     f" flows already in step are not written again{resume}")
    return lines


def run(url: str, tree_id: Any, all_flows: bool, batch: int, after: Any, as_json: bool) -> int:
    """`stepsync resync`: the run with a progress bar on stderr and Ctrl-C handling; returns the exit status.

    The first Ctrl-C (SIGINT) stops after the batch in progress commits; a second one cancels that batch.
    """
    stopping = {"asked": False}

    def on_sigint(signum: int, frame: object) -> None:
        if stopping["asked"]:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        stopping["asked"] = True
        click.echo("stepsync: stopping after the batch in progress commits (Ctrl-C again to roll it back now)",
                   err=True)

    with database.connect(url, autocommit=True, application_name="stepsync resync") as conn:
        ids = None
        if not all_flows:
            row = conn.execute("SELECT id FROM public.trees WHERE id = %s", (tree_id,)).fetchone()
            if row is None:
                raise StepsyncError(f"no flow with id {tree_id}: check the id against public.trees")
            ids = [row[0]]
        total = resync.count_flows(conn, ids, after)
        columns = (TextColumn("resync"), BarColumn(), MofNCompleteColumn(), TextColumn("flows"),
                   TextColumn("{task.fields[flows_rate]} flows/s"), TextColumn("{task.fields[entries_rate]} entries/s"),
                   TimeElapsedColumn())
        err = console(stderr=True)
        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            # On a terminal a live bar; elsewhere (logs, cron) no bar, and the rates in one line at the end.
            with Progress(*columns, console=err, transient=False, disable=not err.is_terminal) as bar:
                task = bar.add_task("resync", total=total, flows_rate="0", entries_rate="0")

                def progress(result: Result) -> None:
                    bar.update(task, completed=result.done, total=max(total, result.done),
                               flows_rate=f"{result.done / result.elapsed:,.0f}",
                               entries_rate=f"{result.written / result.elapsed:,.0f}")

                try:
                    result = resync.run(conn, ids, batch=batch, after=after, progress=progress,
                                 stop=lambda: stopping["asked"], total=total)
                except resync.ResyncStopped as stopped:
                    if stopped.result.done == 0:
                        raise stopped.error from None   # nothing done: the error is the whole story
                    for line in summary(stopped.result):
                        click.echo(line)
                    click.echo(database_error_line(stopped.error), err=True)
                    click.echo(f"stepsync: stopped after {stopped.result.done} of {stopped.result.total} flows"
                               " (every finished batch is committed): fix the error, then run the same command"
                               " again", err=True)
                    return 1
        finally:
            signal.signal(signal.SIGINT, previous)
    if not err.is_terminal:
        click.echo(f"stepsync: {result.done} flows in {result.elapsed:.1f} s: {result.done / result.elapsed:,.0f}"
                   f" flows/s, {result.written / result.elapsed:,.0f} entries/s", err=True)
    if as_json:
        emit_json(result.as_json())
    else:
        for line in summary(result):
            click.echo(line)
    if result.interrupted:
        for line in interruption_lines(result, all_flows):
            click.echo(line, err=True)
        return 130
    return 1 if result.skipped else 0
