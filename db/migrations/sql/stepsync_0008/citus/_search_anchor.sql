-- stepsync._search_anchor (Citus only): the explanation is the comment at the top of its body (\sf shows it).
CREATE OR REPLACE FUNCTION stepsync._search_anchor(p_position integer)
RETURNS uuid
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- stepsync._search_anchor(p_position): the key of row p_position (0 to 4095) of stepsync.search_anchors,
-- a fixed uuid (docs/contract.md §11.4). Keys hash into the shards at random, so the first few reach every
-- worker: stepsync._search_gather takes them in order until it has one a worker.
SELECT pg_catalog.md5('stepsync search anchor ' || p_position)::uuid
$function$;

COMMENT ON FUNCTION stepsync._search_anchor(integer) IS
    'Internal (Citus): the key of row n (0 to 4095) of stepsync.search_anchors, a fixed uuid (docs/contract.md §11.4).';
