"""Where the checkout is, for tests that run commands from the repository root (alembic, the CLI).

The package itself never looks for a checkout: it finds its SQL through importlib.resources.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
