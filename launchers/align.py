"""Entry point: `python launchers/align.py --help` (also installed as `vasot-align`)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "pipelines")]  # run from a checkout without installing the package

from vasot_dist.cli import align_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(align_main())
