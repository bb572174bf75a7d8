"""Shared fixtures. The repository root is put on sys.path so `nerf_engine` and `blender_nerf`
import from the working tree.

Property tests (hypothesis) run derandomized — the same examples on every machine and every run —
so a failure in CI fails the same way here and can be replayed; ``HYPOTHESIS_PROFILE=explore``
draws fresh random examples instead (to look for new failures on purpose).
"""

import os
import sys
from pathlib import Path

from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
