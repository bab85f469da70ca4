"""A small SQLAlchemy application like the one stepsync came from, for tests/test_orm.py.

`models` maps the application's tables as the application declares them (only
its own columns, docs/contract.md §1, no sync columns); `models_synced` is the same
application with stepsync's columns mapped through `stepsync.sqlalchemy.StepsyncColumns`.
"""
