-- stepsync._search_anchors_fill (Citus only): the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._search_anchors_fill()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._search_anchors_fill(): puts back every row of stepsync.search_anchors that is missing (the
-- keys stepsync._search_anchor(0 .. 4095) gives; docs/contract.md §11.4) and returns how many it added.
-- The install runs it, and stepsync.refresh_search_statistics(). Without its rows a search reaches the
-- workers through the distributed table instead: the same rows, slower. Not granted to PUBLIC.
DECLARE
    v_added bigint;
BEGIN
    INSERT INTO stepsync.search_anchors (tree_key)
    SELECT stepsync._search_anchor(n) FROM pg_catalog.generate_series(0, 4095) AS n
        ON CONFLICT (tree_key) DO NOTHING;
    GET DIAGNOSTICS v_added = ROW_COUNT;
    RETURN v_added;
END;
$function$;

COMMENT ON FUNCTION stepsync._search_anchors_fill() IS
    'Internal (Citus): puts back the missing rows of stepsync.search_anchors (the keys stepsync._search_anchor(0 .. 4095) gives); returns how many it added (docs/contract.md §11.4).';

REVOKE ALL ON FUNCTION stepsync._search_anchors_fill() FROM PUBLIC;
