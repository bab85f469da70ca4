-- stepsync._search_statistics_keep() (Citus only): the explanation is the comment at the top of its body
-- (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._search_statistics_keep()
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._search_statistics_keep(): copies the statistics of stepsync.search_sample.search_vector (its
-- most common lexemes and their shares, from pg_stats) into the row of stepsync.search_sample_size, where
-- stepsync._search_statistics reads them at every search (docs/contract.md §11.4): reading pg_stats there,
-- a view of several joins whose 1,000 elements come as text, cost about 0.5 ms a search. Called by
-- stepsync.refresh_search_statistics() after it ANALYZEs the sample, and by the install (an older install's
-- sample, ANALYZEd before this copy existed). No statistics (never ANALYZEd): nulls, no figures.
-- The sample changes only by a refresh, so the copy stays what pg_stats says. Not granted to PUBLIC.
-- It also keeps the keys through which a search reaches each worker (anchors: stepsync._search_anchors(),
-- which returns the kept ones while they hold, else finds them again), so that a search only checks them.
UPDATE stepsync.search_sample_size AS z
   SET (most_common_elems, most_common_elem_freqs) =
       (SELECT st.most_common_elems::text::text[], st.most_common_elem_freqs
          FROM pg_catalog.pg_stats AS st
         WHERE st.schemaname = 'stepsync' AND st.tablename = 'search_sample' AND st.attname = 'search_vector'),
       anchors = stepsync._search_anchors();
$function$;

COMMENT ON FUNCTION stepsync._search_statistics_keep() IS
    'Internal (Citus): copies the statistics of stepsync.search_sample (pg_stats) into stepsync.search_sample_size, where stepsync._search_statistics reads them, with the keys stepsync._search_anchors() returns (docs/contract.md §11.4).';

REVOKE ALL ON FUNCTION stepsync._search_statistics_keep() FROM PUBLIC;
