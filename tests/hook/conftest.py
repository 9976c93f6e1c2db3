"""The fixtures of the pre-commit hook tests (defined, with their helpers, in precommit_env.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from precommit_env import hook_repo, installed, project  # noqa: E402,F401  (pytest fixtures)
