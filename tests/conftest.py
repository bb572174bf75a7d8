"""Shared fixtures. The repository root is put on sys.path so `nerf_engine` and `blender_nerf`
import from the working tree."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
