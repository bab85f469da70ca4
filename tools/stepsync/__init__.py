"""stepsync: keeps a reusable step library in sync with published flows, inside PostgreSQL.

This package is the thin Python side: the command line, the migration runner,
the throwaway clusters used by tests and the benchmark. The sync logic itself
lives in SQL under db/functions/.
"""

__version__ = "0.1.0"
