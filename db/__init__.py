"""db/ ships inside the wheel as the package `stepsync.db`.

It holds no Python the runtime imports: the SQL (functions/, tables/) and the
alembic migrations (migrations/) are package data, found with
importlib.resources (see tools/stepsync/paths.py), so an installed wheel and a
checkout read the same files.
"""
