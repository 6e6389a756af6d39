"""A trained model applied to new videos: ``model = vasot_dist.load(run)``; ``model.embed / segment / align``.

The model is rebuilt exactly as evaluation rebuilds it (:func:`vasot_dist.train.evaluate.find_checkpoint`,
:func:`vasot_dist.train.model.build_train_model` with the run's config), and each video goes through the
evaluation's steps: frames at ``data.image_size`` (:mod:`.frames`), ``data.context_frames`` context frames
``data.context_stride`` apart (:func:`vasot_dist.data.context_indices`), ``eval.batch_frames`` frames per
encoder call with the padding mask evaluation passes, features standardised per video when
``data.standardize``; segments from the method's own decoder (``loss.segment``); plans from the run's
alignment solve (:func:`vasot_dist.eval.runner.alignment_plan`). Frames are decoded and embedded one chunk at
a time, so a video's decoded frames are never all in memory: what grows with its length is its embeddings
(T, D), and for ``segment`` / ``align`` the (T, K) / (N, M) plans of the solves.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vasot_dist.config import RunConfig, config_from_dict, load_config
from vasot_dist.data import context_indices
from vasot_dist.ot import eager
from vasot_dist.runtime.ranklog import get_logger
from vasot_dist.train.evaluate import find_checkpoint
from vasot_dist.train.model import TrainModel, build_train_model

from .frames import Clip, UnreadableInput, open_clip
from .results import Alignment, Embeddings, Segmentation

log = get_logger(__name__)
Progress = Callable[[int], None]
# the softmax temperature of a segment's confidence for methods that have none (VAVA); the others use theirs
DEFAULT_TAU = 0.1


def pick_device(device: str | torch.device | None) -> torch.device:
    """``device``, else CUDA when present, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_config(checkpoint: Path, state: dict) -> RunConfig:
    """The config saved in the checkpoint, else the run's ``config.yaml`` beside ``checkpoints/``."""
    if isinstance(state.get("config"), dict):
        return config_from_dict(state["config"])
    path = checkpoint.parent.parent / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint} holds no config and there is no {path}")
    return load_config(path)


def run_label_names(cfg: RunConfig) -> dict[int, str]:
    """``{label id: name}`` of the run's ``dataset.json`` (``data.shards``); empty when it cannot be read here."""
    from vasot_dist.data.format import read_dataset_index

    try:
        index = read_dataset_index(cfg.data.shards)
    except (OSError, ValueError) as e:
        log.info("no label map: %s", e)
        return {}
    return {int(i): str(name) for name, i in index["label_map"].items()}


def load(path: str | os.PathLike, device: str | torch.device | None = None) -> InferenceModel:
    """The model of a run directory (its newest loadable checkpoint) or of a checkpoint file, on ``device``
    (default: CUDA when present, else the CPU), in evaluation mode.

    Raises:
        FileNotFoundError: no such checkpoint, or a run directory without a loadable one.
        ValueError: a DeepSpeed checkpoint folder (convert it with ``zero_to_fp32`` first).
        vasot_dist.config.ConfigError: the saved config does not load.
    """
    ckpt, state = find_checkpoint(path)
    cfg = run_config(ckpt, state)
    dev = pick_device(device)
    net = build_train_model(cfg, from_checkpoint=True)
    net.load_state_dict(state["model"])
    net.to(dev).eval()
    return InferenceModel(net, cfg, ckpt.resolve(), dev, run_label_names(cfg))


class InferenceModel:
    """A run's encoder and method, in evaluation mode on :attr:`device` (build with :func:`load`).

    Every method takes a video as a file path (any container decord or PyAV reads; shown upright as a player
    shows it), a decoded uint8 array (T, H, W, 3), for a features model (``data.modality=features``) a
    ``.npy`` / ``.txt`` file or a float array (T, F), or :class:`Embeddings` already computed. ``fps`` gives
    an array's frame rate (for times in seconds); ``progress`` is called with the number of frames each
    chunk embedded.
    """

    def __init__(self, net: TrainModel, cfg: RunConfig, checkpoint: Path, device: torch.device,
                 label_names: dict[int, str]) -> None:
        self.net, self.cfg, self.checkpoint, self.device = net, cfg, checkpoint, device
        self.label_names = label_names  # the run's label map, id -> name
        self.action_names: dict[int, str] = {}  # the model's action -> label name, from match_actions()

    def __repr__(self) -> str:
        c = self.cfg
        return (f"InferenceModel({c.method.name}, {c.model.encoder} on {c.data.modality}, embed_dim "
                f"{c.model.embed_dim}, {self.checkpoint}, {self.device})")

    # ----------------------------------------------------------------------------------------- embed
    def open(self, video, fps: float | None = None) -> Clip:
        """The chunked reader of ``video`` (:func:`vasot_dist.infer.frames.open_clip`) for this model."""
        d = self.cfg.data
        return open_clip(video, modality=d.modality, image_size=d.image_size, fps=fps, standardize=d.standardize)

    @torch.no_grad()
    def embed(self, video, *, fps: float | None = None, progress: Progress | None = None) -> Embeddings:
        """Per-frame embeddings (T, D) of every frame of ``video``, with the frames' times."""
        if isinstance(video, Embeddings):
            return video
        return self.embed_clip(self.open(video, fps), progress)

    @torch.no_grad()
    def embed_clip(self, clip: Clip, progress: Progress | None = None) -> Embeddings:
        """Embed an opened input chunk by chunk (module docstring); raises UnreadableInput naming it."""
        data = self.cfg.data
        chunk = self.cfg.eval.batch_frames
        back = (data.context_frames - 1) * data.context_stride if clip.modality == "video" else 0
        carry: np.ndarray | None = None  # the last `back` frames of the previous chunks: context of this one
        start, out, times = 0, [], []
        self.net.eval()
        for values, t in clip.chunks(chunk):
            n = len(values)
            if clip.modality == "video":
                window = values if carry is None else np.concatenate([carry, values])
                idx = context_indices(np.arange(start, start + n), data.context_frames, data.context_stride)
                inputs = window[idx - (start - (0 if carry is None else len(carry)))]  # (n, S, H, W, 3)
                carry = window[len(window) - min(back, len(window)):] if back else None
            else:
                self._check_features(clip, values)
                inputs = values
            batch = torch.from_numpy(np.ascontiguousarray(inputs))[None].to(self.device)
            emb = self.net.embed(batch, torch.ones(1, n, dtype=torch.bool, device=self.device))
            out.append(emb[0].float().cpu().numpy())
            times.append(t)
            start += n
            if progress is not None:
                progress(n)
        if not out:
            raise UnreadableInput(f"{clip.name}: no frames decoded")
        stamps = None if any(t is None for t in times) else np.concatenate(times)
        return Embeddings(np.concatenate(out), stamps, clip.fps, clip.name)

    def _check_features(self, clip: Clip, values: np.ndarray) -> None:
        want = self.cfg.model.mlp_layers[0]
        if values.shape[1] != want:
            raise UnreadableInput(f"{clip.name}: features of dimension {values.shape[1]}, but the model reads "
                                  f"{want} (model.mlp_layers[0])")

    # --------------------------------------------------------------------------------------- segment
    @torch.no_grad()
    def segment(self, video, *, fps: float | None = None, progress: Progress | None = None) -> Segmentation:
        """The segments of ``video``, decoded by the method's own decoder; for a method without one, the
        nearest prototype; for a method without prototypes (the alignment methods), k-means with
        K = ``model.num_actions`` over the video's embeddings (:attr:`Segmentation.decoder` says which)."""
        emb = self.embed(video, fps=fps, progress=progress)
        x = torch.from_numpy(emb.vectors).to(self.device)
        loss, name = self.net.loss, self.cfg.method.name
        with eager():  # one video of its own length: never stall on a solver compile
            labels = loss.segment(x[None], torch.ones(1, len(x), dtype=torch.bool, device=self.device))
        if labels is not None:
            actions, decoder = loss.prototypes(), f"{name}'s decoder: ASOT structured OT (method.{name}.decode)"
            labels = labels[0].cpu().numpy()
        elif loss.prototypes is not None:
            actions, decoder = loss.prototypes(), "nearest prototype"
            labels = (x @ actions.T).argmax(1).cpu().numpy()
        else:
            from vasot_dist.eval.procedure import cluster_keysteps

            k = min(self.cfg.model.num_actions, len(x))
            labels = cluster_keysteps(emb.vectors, k=k, seed=self.cfg.train.seed)
            lab = torch.from_numpy(labels).to(self.device)
            actions = torch.stack([x[lab == c].mean(0) for c in range(k)])
            decoder = f"k-means over the video's embeddings (k={k}): {name} has no action prototypes"
        tau = getattr(self.cfg.method.settings, "tau", DEFAULT_TAU)
        probs = torch.softmax(x @ F.normalize(actions.float(), dim=-1).T / tau, dim=-1).cpu().numpy()
        names = self.action_names if "k-means" not in decoder else {}
        return Segmentation.from_labels(labels, probs, decoder=decoder, fps=emb.fps, times=emb.times,
                                        source=emb.source, names=names)

    def match_actions(self, split: str | None = None) -> dict[int, str]:
        """Name the model's actions: the Hungarian matching of its segments to the ground truth over the
        videos of the run's ``split`` (default ``data.eval_split``), as evaluation's MoF matches them (all
        videos at once). Sets and returns :attr:`action_names` ``{action: label name}``; later
        :meth:`segment` calls name their segments with it.

        Raises:
            ValueError: the method has no action decoder (its segments are per-video clusters), or the run's
                shards (``data.shards``) and label map cannot be read here.
        """
        from vasot_dist.eval.hungarian import hungarian_mapping
        from vasot_dist.eval.runner import extract_embeddings
        from vasot_dist.runtime.distributed import DistContext

        name = self.cfg.method.name
        if self.net.loss.prototypes is None:
            raise ValueError(f"{name} has no action prototypes: its segments are k-means clusters of each video "
                             "alone, which no label map can name")
        if not self.label_names:
            raise ValueError(f"the run's label map cannot be read: data.shards={self.cfg.data.shards!r} has no "
                             "readable dataset.json here (pass the run's shards with the same path)")
        split = split or self.cfg.data.eval_split
        ctx = DistContext(0, 1, 0, self.device, owns_group=False)
        videos, _ = extract_embeddings(self.cfg, self.net, ctx, split)
        scored = [v for v in videos if v.segmentation is not None]
        if not scored:
            raise ValueError(f"no video of split {split!r} of {self.cfg.data.shards} was segmented")
        mapping = hungarian_mapping(np.concatenate([v.segmentation for v in scored]),
                                    np.concatenate([v.labels for v in scored]))
        self.action_names = {k: self.label_names[g] for k, g in mapping.items() if g in self.label_names}
        log.info("actions named by the matching over %d videos of %r: %s", len(scored), split, self.action_names)
        return self.action_names

    # ----------------------------------------------------------------------------------------- align
    @torch.no_grad()
    def align(self, a, b, *, fps: float | None = None, progress: Progress | None = None) -> Alignment:
        """The alignment of ``a`` with ``b``: the plan of the run's alignment solve (VAOT's settings for methods
        without one, no virtual frame) on the cosine cost of their embeddings, and the frame matches both ways.

        Memory: the (N, M) plan and the solver's few (N, M) buffers, float32 (``docs/inference.md``)."""
        from sklearn.isotonic import IsotonicRegression

        from vasot_dist.eval.runner import alignment_plan

        ea, eb = self.embed(a, fps=fps, progress=progress), self.embed(b, fps=fps, progress=progress)
        x, y = (torch.from_numpy(e.vectors).to(self.device)[None] for e in (ea, eb))
        plan = alignment_plan(self.cfg, x, y)[0]
        a_to_b, b_to_a = plan.argmax(1).cpu().numpy(), plan.argmax(0).cpu().numpy()
        fit = IsotonicRegression(increasing=True).fit_transform(np.arange(len(a_to_b)), a_to_b)
        retiming = np.clip(np.round(fit), 0, len(eb) - 1).astype(np.int64)
        return Alignment(plan.cpu().numpy(), a_to_b, b_to_a, retiming, ea, eb)
