"""Evaluation: the papers' protocols as pure numpy functions, plus report figures and the report writer.

- :mod:`.alignment`: phase classification / progression, Kendall's tau, retrieval AP, synthetic alignment
  accuracy (TCC / LAV / VAOT protocols).
- :mod:`.segmentation`: Hungarian-matched MoF, F1, mIoU, Edit, F1@k (ASOT/VASOT/CLOT + MS-TCN).
- :mod:`.procedure`: EgoProceL key-step precision / recall / IoU / F1 (OPEL / RGWOT / REALIGN).
- :mod:`.plots`, :mod:`.report`: PNG figures and ``report.md`` + ``metrics.json``.
"""

from vasot_dist.eval.alignment import (
    alignment_accuracy,
    alignment_progress_error,
    gt_match_from_progress,
    kendalls_tau,
    matches_from_plan,
    phase_classification,
    phase_progression,
    retrieval_ap,
)
from vasot_dist.eval.hungarian import hungarian_mapping, relabel
from vasot_dist.eval.procedure import cluster_keysteps, keystep_metrics
from vasot_dist.eval.report import write_report
from vasot_dist.eval.segmentation import segmentation_metrics

__all__ = [
    "alignment_accuracy",
    "alignment_progress_error",
    "cluster_keysteps",
    "gt_match_from_progress",
    "hungarian_mapping",
    "keystep_metrics",
    "kendalls_tau",
    "matches_from_plan",
    "phase_classification",
    "phase_progression",
    "relabel",
    "retrieval_ap",
    "segmentation_metrics",
    "write_report",
]
