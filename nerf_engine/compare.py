"""``python -m nerf_engine.compare ...``: an alias of ``python -m nerf_engine compare ...``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
