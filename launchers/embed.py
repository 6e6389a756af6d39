"""Entry point: `python launchers/embed.py --help` (also installed as `vasot-embed`)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "pipelines")]  # run from a checkout without installing the package

from vasot_dist.cli import embed_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(embed_main())
