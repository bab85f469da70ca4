"""The developers' tools of stepsync, kept in the checkout and out of the wheel.

bench/       the benchmark (`stepsync bench` in a checkout, or `python -m stepsync_dev.bench.install` and
             `python -m stepsync_dev.bench.search` for one part, with tools/ on PYTHONPATH)
apidoc.py    docs/api.md from a migrated database's catalog (`python tools/apidoc.py --database-url URL`)
cluster.py   throwaway PostgreSQL clusters for the tests, the soak and the benchmark
throwaway.py the benchmark's own server (a throwaway cluster, or the embedded PostgreSQL)

The runtime package (tools/stepsync/) never imports this one (`stepsync bench` looks for it in the checkout).
"""
