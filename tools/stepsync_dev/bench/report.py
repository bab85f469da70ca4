"""The whole benchmark (`stepsync bench` in a checkout): its parts (stepsync_dev.bench: writes;
stepsync_dev.bench.search; stepsync_dev.bench.install), each on a fresh database, joined into one Markdown report.
The section "citus" (stepsync_dev.bench.citus: Citus against one node) runs only when asked for by name, on the
Citus cluster whose coordinator $STEPSYNC_CITUS_DSN names (a superuser URL).

With --database-url (or $STEPSYNC_DATABASE_URL) it creates its databases on that server and drops them
afterwards; with neither, it starts a throwaway server of its own (stepsync_dev.throwaway).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import click

from stepsync import database
from stepsync_dev import bench as bench_module
from stepsync_dev.throwaway import throwaway_server

CITUS_DSN_ENV = "STEPSYNC_CITUS_DSN"


def run(explicit_url: str | None, rounds: int, quick: bool, sections: tuple[str, ...], output: Path | None) -> None:
    """Run the parts SECTIONS names (all three when none), print the report, write it to OUTPUT too."""
    wanted = set(sections) or {"writes", "search", "install"}
    coordinator = os.environ.get(CITUS_DSN_ENV, "")
    if "citus" in wanted and not coordinator:
        raise click.UsageError(f"the citus section needs a Citus coordinator: set {CITUS_DSN_ENV} to its superuser URL")
    explicit = explicit_url or os.environ.get(database.URL_ENV)
    cluster = None
    if explicit:
        admin_url = explicit
    else:
        cluster = throwaway_server()
        admin_url = cluster.url()
    libpq, _ = database.split_url(admin_url)
    created: list[str] = []

    def fresh_database(what: str) -> str:
        name = f"stepsync_bench_{what}_{os.getpid()}"
        with database.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        url = urlsplit(libpq)._replace(path=f"/{name}").geturl()
        database.migrate(url)
        return url

    parts: list[str] = []
    try:
        if "writes" in wanted:
            with tempfile.TemporaryDirectory() as tmp:
                report = Path(tmp) / "writes.md"
                bench_module.run(fresh_database("writes"), rounds, quick, report)
                parts.append(report.read_text(encoding="utf-8"))
        if "search" in wanted:
            from stepsync_dev.bench import search as search_bench

            svg = output.parent / "search-p95.svg" if output is not None else None
            result = search_bench.run(fresh_database("search"), entries=20_000 if quick else 1_000_000,
                                      rounds=min(rounds, 3) if quick else rounds, svg=svg,
                                      log=lambda line: click.echo(line, err=True))
            parts.append(search_bench.render_markdown(result))
        if "install" in wanted:
            from stepsync_dev.bench import install as install_bench

            result = install_bench.run(admin_url, flows=500 if quick else 100_000, steps=10, writers=4,
                                       seconds_cap=600 if quick else 3600,
                                       say=lambda line: click.echo(line, err=True))
            parts.append(install_bench.render_markdown(result))
        if "citus" in wanted:
            from stepsync_dev.bench import citus as citus_bench

            result = citus_bench.run(coordinator, rounds, None, search_entries=20_000 if quick else 1_000_000,
                                     log=lambda line: click.echo(line, err=True))
            parts.append(citus_bench.render_markdown(result))
        text = "\n\n".join(part.rstrip() for part in parts) + "\n"
        click.echo(text)
        if output is not None:
            output.write_text(text, encoding="utf-8")
            click.echo(f"report written to {output}", err=True)
    finally:
        if explicit:
            with database.connect(admin_url, autocommit=True) as conn:
                for name in created:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if cluster is not None:
            cluster.stop()
