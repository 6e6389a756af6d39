"""Applying a trained model to new videos: per-frame embeddings, segments, alignments.

    import vasot_dist
    model = vasot_dist.load("runs/demo/<run-id>")       # a run directory or a checkpoint file; CUDA when present
    emb = model.embed("clip.mp4")                        # Embeddings: vectors (T, D), times (T,)
    seg = model.segment("clip.mp4")                      # Segmentation: segments with frames, seconds, confidence
    ali = model.align("a.mp4", "b.mp4")                  # Alignment: plan (N, M), matches both ways

- :mod:`.frames`: inputs (video files shown upright, arrays, features) read in chunks as evaluation decodes them.
- :mod:`.model`: :func:`load` and :class:`InferenceModel`.
- :mod:`.results`: the returned dataclasses and their JSON / CSV / MS-TCN forms.
- :mod:`.render`: the plan picture and the side-by-side video of an alignment.
- :mod:`.commands`: ``vasot-embed``, ``vasot-segment``, ``vasot-align`` (their parsers live in ``vasot_dist.cli``).

``docs/inference.md`` is the user's guide.
"""

from .frames import Clip, UnreadableInput, open_clip
from .model import InferenceModel, load
from .results import Alignment, Embeddings, Segment, Segmentation

__all__ = ["Alignment", "Clip", "Embeddings", "InferenceModel", "Segment", "Segmentation", "UnreadableInput", "load",
           "open_clip"]
