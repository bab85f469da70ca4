"""`stepsync distribute`: stepsync.distribute.distribute, its progress lines on stderr, the line saying
what it did on stdout.

What it does (the layout of docs/contract.md §11.1, the check that every row is kept, the install)
is in stepsync.distribute.
"""

from __future__ import annotations

import click

from stepsync import citus, database, history
from stepsync import distribute as distributor
from stepsync import install as installer
from stepsync.database import StepsyncError
from stepsync.output import print_problems


def say(line: str) -> None:
    click.echo(f"stepsync: {line}", err=True)


def lay_out(url: str, shard_count: int | None = None) -> str:
    """Lay the tables of the Citus coordinator at URL out as §11.1, keeping every row, then install
    stepsync; returns what it did, in a line (`stepsync migrate` on a coordinator ends with it too).

    A refusal lists its problems one a line, then fails in one line; so does an install that refuses
    the tables once laid out (the layout, said on stderr before, stays: `stepsync install` goes on).
    """
    try:
        done = []
        with database.connect(url) as conn:
            distributor.refuse_unless_coordinator(conn, "distribute")
            revision = installer.installed_revision(conn)
            single_node = revision not in (None, history.TABLES_REVISION) and not citus.installed(conn)
        if single_node:   # its view and functions over the tables would stop Citus (2BP01)
            say(f"removing the single-node stepsync ({revision}) first; its columns, keys and rows stay")
            installer.uninstall(url, drop_columns=False, say=say)
            done.append(f"removed the single-node stepsync ({revision}), keeping its columns and rows")
        done.append(distributor.lay_out(url, say=say, warn=say, shard_count=shard_count))
        say(done[-1])   # now too: the line of an install that fails leaves it out
        done.append(installer.install(url, say=say, warn=say))
        return "; ".join(done)
    except distributor.LayoutRefused as refused:
        print_problems(refused.problems)
        raise StepsyncError(str(refused)) from None
    except installer.PreflightFailed as failed:
        print_problems(failed.problems)
        raise StepsyncError(f"{len(failed.problems)} problem(s) found: the tables are laid out, but stepsync was"
                            " not installed (fix them, then run stepsync install)") from None


def run(url: str, shard_count: int | None = None) -> None:
    """`stepsync distribute` on the database at URL (trees and step_library in SHARD_COUNT shards when given)."""
    click.echo(lay_out(url, shard_count))
