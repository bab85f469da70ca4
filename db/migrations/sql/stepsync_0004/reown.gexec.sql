-- `stepsync install` on a database already at the newest revision: when the tables changed owner
-- after the install (ALTER TABLE ... OWNER TO), everything of stepsync's (its version table included)
-- is given to the new owner, so that the sync again runs as the role that owns the tables. Nothing
-- when the owners agree.
-- A generator (see unique_key.gexec.sql): each row is one ALTER ... OWNER TO statement.
WITH owner AS (
    SELECT c.relowner AS oid, pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(c.relowner)) AS name
      FROM pg_catalog.pg_class AS c WHERE c.oid = 'public.step_library'::pg_catalog.regclass
)
SELECT q.statement
  FROM (SELECT 1 AS ord, 'ALTER SCHEMA stepsync OWNER TO ' || o.name AS statement
          FROM owner AS o, pg_catalog.pg_namespace AS n
         WHERE n.nspname = 'stepsync' AND n.nspowner <> o.oid
        UNION ALL
        SELECT 2, 'ALTER ' || CASE p.prokind WHEN 'p' THEN 'PROCEDURE ' ELSE 'FUNCTION ' END
                  || p.oid::pg_catalog.regprocedure::text || ' OWNER TO ' || o.name
          FROM owner AS o, pg_catalog.pg_proc AS p
         WHERE p.pronamespace = 'stepsync'::pg_catalog.regnamespace AND p.proowner <> o.oid
        UNION ALL
        SELECT 3, 'ALTER TYPE ' || t.oid::pg_catalog.regtype::text || ' OWNER TO ' || o.name
          FROM owner AS o, pg_catalog.pg_type AS t
         WHERE t.typnamespace = 'stepsync'::pg_catalog.regnamespace AND t.typtype = 'c' AND t.typowner <> o.oid
           AND (t.typrelid = 0 OR t.typrelid IN (SELECT c.oid FROM pg_catalog.pg_class AS c WHERE c.relkind = 'c'))
        UNION ALL      -- stepsync's own tables (their row types go with them)
        SELECT 3, 'ALTER TABLE ' || c.oid::pg_catalog.regclass::text || ' OWNER TO ' || o.name
          FROM owner AS o, pg_catalog.pg_class AS c
         WHERE c.relnamespace = 'stepsync'::pg_catalog.regnamespace AND c.relkind = 'r' AND c.relowner <> o.oid
        UNION ALL
        SELECT 4, 'ALTER VIEW public.step_library_entries OWNER TO ' || o.name
          FROM owner AS o, pg_catalog.pg_class AS c
         WHERE c.oid = pg_catalog.to_regclass('public.step_library_entries') AND c.relowner <> o.oid
        UNION ALL
        SELECT 5, 'ALTER TABLE public.stepsync_version OWNER TO ' || o.name
          FROM owner AS o, pg_catalog.pg_class AS c
         WHERE c.oid = pg_catalog.to_regclass('public.stepsync_version') AND c.relowner <> o.oid
       ) AS q
 ORDER BY q.ord, q.statement
