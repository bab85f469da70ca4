-- stepsync.sync_tree as a Citus distributed function (docs/contract.md §11.3): co-located with
-- public.trees and distributed by its flow id, so that `SELECT stepsync.sync_tree(id)` on the
-- coordinator runs on the worker that holds the flow, where the sync's statements reach the flow's
-- shard and the guards see the sync's marker; force_delegation sends it there inside a transaction
-- block too. The backfill and `stepsync resync` on Citus call it flow by flow.
SELECT pg_catalog.create_distributed_function('stepsync.sync_tree(uuid)', 'p_tree_id',
                                              colocate_with := 'public.trees', force_delegation := true);
