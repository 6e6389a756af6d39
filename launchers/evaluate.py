"""Entry point: `python launchers/evaluate.py --help` (also installed as `vasot-evaluate`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from vasot_dist.cli import evaluate_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(evaluate_main())
