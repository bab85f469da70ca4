"""The live-install benchmark (stepsync_dev.bench.install, docs/contract.md §9.4) at a tiny size.

Only its correctness part is asserted: the install into a loaded application database, with
writers running, loses nothing (every listed flow synced, the counts add up, check_library()
empty, every usage bump counted) and no application statement fails unexpectedly. Timings are
reported, never asserted: this machine is shared.
"""

from __future__ import annotations

import json

from stepsync_dev.bench import install as bench_install


def test_live_install_loses_nothing_and_cleans_up(server):
    result = bench_install.run(server.admin_url, flows=300, steps=5, writers=2, seconds_cap=30,
                               warmup=1.0, tail=1.0)
    json.dumps(result)  # JSON-able, for `PYTHONPATH=tools python -m stepsync_dev.bench.install --json`

    assert result["install"]["error"] is None, result["install"]
    assert result["install"]["warning_count"] == 0
    c = result["checks"]
    assert c["check_library_rows"] == 0
    assert c["listed_flows_not_fully_synced"] == 0
    assert c["listed_flows"] == c["expected_listed_flows"] == 300 + result["published_drafts"]
    assert c["active_synced_entries"] == c["expected_entries"] == c["listed_flows"] * 5
    assert c["hand_made_rows"] == c["expected_hand_made_rows"]
    assert c["hand_made_usage"] == c["expected_hand_made_usage"]
    assert c["synced_usage"] == c["expected_synced_usage"]
    assert result["install"]["backfill"]["flows"] >= 300

    s = result["statements"]
    assert s["total"] > 0 and s["during_install"] > 0
    assert [e for e in s["errors"] if e["outcome"] == "error"] == []
    assert s["writer_failures"] == []
    assert result["target"]["nothing_lost"] and result["target"]["no_unexpected_errors"]

    text = bench_install.render_markdown(result)
    assert "Live install on PostgreSQL" in text and "check_library()" in text

    with server.admin() as conn:  # its database and roles are gone
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                            (result["database"],)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s)",
                            (result["roles"],)).fetchone()[0] == 0
