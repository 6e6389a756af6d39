"""Entry point: `python launchers/tune.py --help` (also installed as `vasot-tune`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from vasot_dist.cli import tune_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(tune_main())
