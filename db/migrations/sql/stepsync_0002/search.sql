-- The stored search vector behind stepsync.search_steps (docs/contract.md §6.8), in the install's
-- first transaction: the column (kept by the triggers step_library__t20/t21/t22, filled for the rows
-- already there by search_fill.gexec.sql, indexed by indexes.gexec.sql), added or kept.
--
-- stepsync before this revision searched through an expression index over stepsync._search_document,
-- whose definition changes here (an IMMUTABLE function under an index may not change while the index
-- exists), and its search_steps returned one column fewer (CREATE OR REPLACE cannot change that):
-- both go first, under the table lock this transaction holds anyway.
DO $stepsync$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                    WHERE a.attrelid = 'public.step_library'::pg_catalog.regclass
                      AND a.attname = 'search_vector' AND NOT a.attisdropped) THEN
        ALTER TABLE public.step_library ADD COLUMN search_vector tsvector;
        COMMENT ON COLUMN public.step_library.search_vector IS
            'stepsync: what stepsync.search_steps searches: the weighted text of the step and its audience,'
            ' popularity and group-label keys, stored by stepsync.tg_step_library__search_vector (never write'
            ' it yourself: it is recomputed).';
    END IF;
END;
$stepsync$;
DO $stepsync$
BEGIN
    IF pg_catalog.to_regclass('public.step_library_search_idx') IS NOT NULL THEN
        DROP INDEX public.step_library_search_idx;
    END IF;
    IF pg_catalog.to_regprocedure('stepsync.search_steps(uuid, text, text, text, uuid, integer)') IS NOT NULL THEN
        DROP FUNCTION stepsync.search_steps(uuid, text, text, text, uuid, integer);
    END IF;
END;
$stepsync$;
