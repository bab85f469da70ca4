"""`stepsync bench` runs for real, end to end (a quick, one-round smoke run: no timing is asserted)."""

from __future__ import annotations

import os
import subprocess
import sys

from repo import REPO_ROOT


def test_bench_quick_run_writes_a_report(server, tmp_path):
    report = tmp_path / "benchmarks.md"
    env = {k: v for k, v in os.environ.items() if k != "STEPSYNC_DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "stepsync.cli", "--database-url", server.admin_url, "bench", "--quick",
         "--rounds", "1", "--output", str(report)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = report.read_text()
    for expected in ("| publish 1000 | stepsync |", "| publish 1000 | limit |", "| publish 1000 | app_side |",
                     "stepsync / limit", "troubleshooting 1000", "5,000-deep chain publish", "resync 100 x 50",
                     "4 pgbench clients", "## Search at 20,000 entries", "recall@20",
                     "### Live install on PostgreSQL", "Nothing lost",
                     "Checked first: stepsync, app_side and limit write identical rows",
                     "rewrote 10 rows (of 1000)", "## Where the time goes"):
        assert expected in text, expected
    with server.admin() as conn:  # the bench dropped its database
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'stepsync_bench_%'").fetchone() == (0,)
