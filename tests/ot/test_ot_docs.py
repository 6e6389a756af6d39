"""The python blocks of ``docs/ot.md`` run as written (each in a fresh namespace), so the user page cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

DOC = Path(__file__).resolve().parents[2] / "docs" / "ot.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)


def test_the_page_has_an_example_of_each_public_solver():
    code = "\n".join(BLOCKS)
    for name in ("sinkhorn(", "sinkhorn_unbalanced(", "partial_wasserstein(", "segment_asot(", "align_fgw(",
                 "align_partial_fgw(", "asot_objective("):
        assert name in code, name


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_doc_block_runs(index):
    torch.manual_seed(0)
    exec(compile(BLOCKS[index], f"{DOC.name}[block {index}]", "exec"), {})
