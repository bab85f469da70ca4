"""Carry stepsync as a branch of an application's own alembic (docs/contract.md §9.7, README).

stepsync's revisions (ids `stepsync_...`, branch label `stepsync`) ship in the
package. An application adds their folder to its `version_locations`, next to
its own versions folder; they are then recorded in the application's own
version table, and its revisions can depend on them. In alembic.ini (or
`[tool.alembic]` in pyproject.toml) that is the package resource
`VERSION_LOCATION`, which alembic resolves itself; from Python,
`version_location()` is the folder's path.

An application revision that needs stepsync installed names the install
revision: `depends_on = "stepsync_0002"`. Not `depends_on = "stepsync"`: a
branch label there means the branch's *first* revision, stepsync_0001, which
installs nothing.
"""

from __future__ import annotations

from stepsync.paths import VERSIONS_DIR

BRANCH = "stepsync"
INSTALL_REVISION = "stepsync_0002"

# alembic's package-resource notation for the packaged versions folder (use `path_separator = space`
# in alembic.ini: the `os` separator, ':' on POSIX, would split it in two).
VERSION_LOCATION = "stepsync.db:migrations/versions"


def version_location() -> str:
    """The packaged folder of stepsync's revisions, for an alembic Config's version_locations."""
    return str(VERSIONS_DIR)
