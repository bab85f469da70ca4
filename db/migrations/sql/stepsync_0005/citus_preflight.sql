-- stepsync's Citus preflight: a Citus coordinator refuses the single-node install, changing nothing.
--
-- One row (object, message) when this database has the citus extension; no rows otherwise. It reads
-- pg_extension only, so it runs anywhere, Citus or not, and before the main preflight (whose
-- queries a distributed table may refuse). `stepsync install` and `stepsync migrate` print the row
-- and stop; the script of `stepsync sql` refuses (55000) with it in DETAIL.
--
-- Why: stepsync's distributed variant (docs/contract.md §11: keys with tree_key, the sync as
-- shard-local statements, no foreign key that Citus refuses) is not in this version. The
-- single-node install on a coordinator fails part-way on tables laid out as §11.1 says (0A000 on
-- the ON DELETE SET NULL key, after the tables revision), and on local tables it creates local
-- objects that then stop the tables from being distributed (2BP01): both leave the database worse
-- than before, so it is refused up front.
SELECT 'database ' || pg_catalog.current_database() AS object,
       'this is a Citus database (citus ' || e.extversion || '): stepsync''s distributed variant'
       || ' (docs/contract.md §11) is not in this version of stepsync, and its single-node install would stop'
       || ' part-way here; install stepsync on a database without Citus' AS message
  FROM pg_catalog.pg_extension AS e
 WHERE e.extname = 'citus'
