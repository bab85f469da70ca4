"""`stepsync distribute`: stepsync.distribute.distribute, its progress lines on stderr, the line saying
what it did on stdout.

What it does (the layout of docs/contract.md §11.1, the check that every row is kept, the install)
is in stepsync.distribute.
"""

from __future__ import annotations

import click

from stepsync import distribute as distributor
from stepsync import install as installer
from stepsync.database import StepsyncError
from stepsync.output import print_problems


def say(line: str) -> None:
    click.echo(f"stepsync: {line}", err=True)


def lay_out(url: str) -> str:
    """Lay the tables of the Citus coordinator at URL out as §11.1, keeping every row, then install
    stepsync; returns what it did, in a line (`stepsync migrate` on a coordinator ends with it too).

    A refusal lists its problems one a line, then fails in one line; so does an install that refuses
    the tables once laid out (the layout, said on stderr before, stays: `stepsync install` goes on).
    """
    try:
        return distributor.distribute(url, say=say, warn=say)
    except distributor.LayoutRefused as refused:
        print_problems(refused.problems)
        raise StepsyncError(str(refused)) from None
    except installer.PreflightFailed as failed:
        print_problems(failed.problems)
        raise StepsyncError(f"{len(failed.problems)} problem(s) found: the tables are laid out, but stepsync was"
                            " not installed (fix them, then run stepsync install)") from None


def run(url: str) -> None:
    """`stepsync distribute` on the database at URL."""
    click.echo(lay_out(url))
