"""Static checks: search_path and comments on everything, pgspot and plpgsql_check with zero findings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stepsync.paths import FROZEN_SQL_DIR, INSTALL_DIR, object_files

# Small LANGUAGE sql functions that PostgreSQL inlines into the calling query: one rule written once.
# regprocedure -> how pgspot names it (its --proc-without-search-path takes that form).
INLINED = {"stepsync._may_see(text,uuid,uuid,uuid,uuid)":
           "stepsync._may_see(p_visibility text,p_account_id uuid,p_created_by uuid,p_user_id uuid,"
           "p_user_account_id uuid)",
           "stepsync._popularity_class(integer,uuid)": "stepsync._popularity_class(p_usage_count integer,p_id uuid)",
           "stepsync._class_key(integer)": "stepsync._class_key(p_class integer)",
           "stepsync._match_tier(tsvector,tsquery,tsquery,tsquery)":
           "stepsync._match_tier(p_vector pg_catalog.tsvector,p_title pg_catalog.tsquery,"
           "p_title_group pg_catalog.tsquery,p_with_instructions pg_catalog.tsquery)"}


def test_every_function_pins_search_path_and_is_commented(db):
    rows = db.rows(
        "SELECT p.oid::regprocedure::text, p.proconfig, obj_description(p.oid, 'pg_proc'), p.prokind"
        " FROM pg_proc p WHERE p.pronamespace = 'stepsync'::regnamespace ORDER BY 1")
    assert len(rows) >= 15
    for name, config, comment, _kind in rows:
        if name in INLINED:
            # Inlined into its callers' queries, which a SET clause would prevent (its body explains it).
            assert config is None, name
            assert comment and len(comment) > 20, name
            continue
        assert config[0] == "search_path=pg_catalog, pg_temp", name
        # search_steps: custom plans and no sequential scans (its body explains why)
        allowed = {"jit=off", "plan_cache_mode=force_generic_plan", "plan_cache_mode=force_custom_plan",
                   "enable_seqscan=off"}
        assert set(config[1:]) <= allowed, name
        assert comment and len(comment) > 20, name


def test_every_trigger_view_and_index_of_ours_is_commented(db):
    missing = db.rows(
        "SELECT 'trigger ' || tgname FROM pg_trigger"
        " WHERE NOT tgisinternal AND obj_description(oid, 'pg_trigger') IS NULL"
        " UNION ALL SELECT 'relation ' || oid::regclass FROM pg_class"
        " WHERE relnamespace IN ('public'::regnamespace, 'stepsync'::regnamespace) AND relkind IN ('v', 'i')"
        " AND relname NOT LIKE '%_pkey' AND relname NOT LIKE '%_key'"
        " AND relname NOT IN ('alembic_version_pkc', 'stepsync_version_pkc')"
        " AND obj_description(oid, 'pg_class') IS NULL"
        " UNION ALL SELECT 'table ' || oid::regclass FROM pg_class"   # stepsync's own tables, every column
        " WHERE relnamespace = 'stepsync'::regnamespace AND relkind = 'r' AND (obj_description(oid, 'pg_class') IS NULL"
        " OR EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = pg_class.oid AND a.attnum > 0"
        " AND NOT a.attisdropped AND col_description(a.attrelid, a.attnum) IS NULL))"
        " UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typnamespace = 'stepsync'::regnamespace"
        " AND typtype = 'c' AND typrelid IN (SELECT oid FROM pg_class WHERE relkind = 'c')"
        " AND obj_description(oid, 'pg_type') IS NULL")
    assert missing == []


def test_pgspot_finds_nothing_in_the_installed_sql(tmp_path):
    pgspot = shutil.which("pgspot") or str(Path(sys.executable).parent / "pgspot")
    # What the installer does before the files: its own schema, a pinned search_path.
    preamble = tmp_path / "preamble.sql"
    preamble.write_text("SET search_path = pg_catalog, pg_temp;\nCREATE SCHEMA stepsync;\n")
    files = [str(preamble)]
    # Every SQL file a migration runs: the frozen copies of stepsync's own revisions (the install
    # scripts, preflight, backfill and uninstall included), and the current sources they are cut from.
    for revision in sorted(p for p in FROZEN_SQL_DIR.iterdir() if p.is_dir() and p.name.startswith("stepsync_")):
        files += [str(f) for f in sorted(revision.glob("*.sql"))]
    files += [str(f) for f in sorted(INSTALL_DIR.glob("*.sql"))]
    files += [str(f) for f in object_files()]
    inlined = [f"--proc-without-search-path={name}" for name in INLINED.values()]
    result = subprocess.run([pgspot, "-a", *inlined, *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "TOTAL: Errors: 0 Warnings: 0 Unknown: 0" in result.stdout, result.stdout


def test_plpgsql_check_finds_nothing(db):
    available = db.value("SELECT count(*) FROM pg_available_extensions WHERE name = 'plpgsql_check'")
    if not available:
        if os.environ.get("STEPSYNC_REQUIRE_PLPGSQL_CHECK"):
            pytest.fail("plpgsql_check is required here (STEPSYNC_REQUIRE_PLPGSQL_CHECK) but not installed")
        pytest.skip("plpgsql_check is not installed for this server; .ci/run installs it for PostgreSQL 15")
    db.conn.execute("CREATE EXTENSION plpgsql_check")
    findings = db.rows(
        """
        SELECT p.oid::regprocedure::text, r.level, r.message, r.lineno
          FROM pg_proc p
          JOIN pg_language l ON l.oid = p.prolang AND l.lanname = 'plpgsql'
          LEFT JOIN LATERAL (
                SELECT t.tgrelid FROM pg_trigger t WHERE t.tgfoid = p.oid AND NOT t.tgisinternal LIMIT 1
               ) trig ON true
          CROSS JOIN LATERAL plpgsql_check_function_tb(
                p.oid, COALESCE(trig.tgrelid, 0), fatal_errors => false, other_warnings => true,
                performance_warnings => false, extra_warnings => true, security_warnings => true) r
         WHERE p.pronamespace = 'stepsync'::regnamespace
         ORDER BY 1, 4
        """)
    assert findings == []
    checked = db.value("SELECT count(*) FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
                       " WHERE l.lanname = 'plpgsql' AND p.pronamespace = 'stepsync'::regnamespace")
    assert checked >= 9


def test_the_inlined_helpers_are_inlined(db):
    """A helper in INLINED leaves no call in the plan of a query that uses it."""
    plan = "\n".join(r[0] for r in db.rows(
        "EXPLAIN (VERBOSE) SELECT s.id FROM public.step_library AS s"
        " WHERE stepsync._may_see(s.visibility, s.account_id, s.created_by, gen_random_uuid(), NULL)"))
    assert "_may_see" not in plan and "'public'::text" in plan, plan
    plan = "\n".join(r[0] for r in db.rows(
        "EXPLAIN (VERBOSE) SELECT stepsync._popularity_class(s.usage_count, s.id), stepsync._class_key(s.usage_count)"
        " FROM public.step_library AS s"))
    assert "_class_key" not in plan and "_popularity_class" not in plan and "uuid_send" in plan, plan
    plan = "\n".join(r[0] for r in db.rows(
        "EXPLAIN (VERBOSE) SELECT stepsync._match_tier(s.search_vector, 'a:A', 'a:AB', 'a:ABC') FROM step_library s"))
    assert "_match_tier" not in plan and "@@" in plan, plan
    for name in INLINED:
        language, volatility, definer = db.rows(
            "SELECT l.lanname, p.provolatile, p.prosecdef FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
            " WHERE p.oid = %s::regprocedure", (name,))[0]
        assert (language, volatility, definer) == ("sql", "i", False), name


def test_the_popularity_class_is_the_rule_search_steps_walks_by(db):
    """Classes 1-12 by floor(log2(usage_count)) - 1 counted down from 12, then 64 parts by the id's first 6 bits."""
    rows = db.rows(
        "SELECT u, i, stepsync._popularity_class(u, i), stepsync._class_key(stepsync._popularity_class(u, i))"
        "  FROM unnest(ARRAY[0, 1, 3, 4, 7, 8, 15, 16, 8191, 8192, 1000000]) AS u,"
        "       unnest(ARRAY['00000000-0000-0000-0000-000000000000', '03ffffff-0000-0000-0000-000000000000',"
        "                    '04000000-0000-0000-0000-000000000000', 'abcdef00-0000-0000-0000-000000000000',"
        "                    'ffffffff-ffff-ffff-ffff-ffffffffffff']::uuid[]) AS i")
    for usage, step_id, klass, key in rows:
        if usage >= 4:
            b = min(usage.bit_length() - 2, 12)
            assert (klass, key) == (13 - b, f"c{b}"), (usage, step_id)
        else:
            part = int(str(step_id)[:2], 16) // 4
            assert (klass, key) == (13 + part, f"n{part}"), (usage, step_id)
