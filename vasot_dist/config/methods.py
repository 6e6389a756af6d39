"""Every method's hyper-parameters: one settings dataclass per method, each default written once, with its reason.

Each is registered under its method's name (:func:`.registry.register_method`, with the method's evaluation
hooks), which makes it the config section ``method.<name>`` (``method.asot.segment.eps=0.05``); the loss of
``method.name`` registers itself against the same name and is built from its section
(:func:`vasot_dist.losses.build_loss`). The solver-argument sections
(:class:`SegmentSolve`, :class:`AlignSolve`, :class:`PartialAlignSolve`) are passed field by field to their
solver, so a field name here is the solver's keyword.  Training and decoding solves are separate sections:
ASOT's "no GW (train)" ablation is ``method.asot.segment.alpha=0``, "(train & test)" adds
``method.asot.decode.alpha=0``.

Defaults reproduce the authors' released code, with the paper's variant as an option where they differ and
without the code's bugs; each choice is explained in ``docs/methods.md`` and pinned by ``tests/test_config.py``.
Nothing here imports torch: the schema and the loader stay light.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from vasot_dist.ot.settings import ALIGN, PARTIAL_ALIGN, SEGMENT

from .registry import METHODS, MethodConfig, register_method
from .rules import at_least, fraction, in_range, non_negative, one_of, positive

__all__ = ["METHODS", "MOVED_KEYS", "AlignSolve", "MethodConfig", "PartialAlignSolve", "SegmentSolve",
           "register_method"]

# ---------------------------------------------------------------------------------------------------------------
# Solver arguments (field names = the solver's keywords)


@dataclass
class SegmentSolve:
    """One ``segment_asot`` solve (``vasot_dist/ot/fgw.py``): frames -> K actions, fused unbalanced GW.

    The regularisation is ASOT's training value; every other default is the solver's (``ot.settings.SEGMENT``)
    unless ASOT's run scripts use another, said below.
    """

    eps: float = positive(0.07)  # entropy; the paper finds 0.06-0.08 best, lower is unstable
    alpha: float = fraction(0.3)  # weight of the GW structure term against the visual cost
    radius: float = in_range(0.04, 0, 1, lo_open=True)  # frame neighbourhood, fraction of the video: floor(N r)
    lambda_frames: float = non_negative(SEGMENT.lambda_frames)  # used only when unbalanced_frames
    # KL weight on the action marginal: every run script of the authors uses 0.1-0.16, not the solver's 0.05
    # (their argparse default, used by none); at 0.05 prototypes die on clean data
    lambda_actions: float = non_negative(0.1)
    unbalanced_frames: bool = SEGMENT.unbalanced_frames  # frames hard-constrained (each frame sends mass 1/N)
    unbalanced_actions: bool = SEGMENT.unbalanced_actions  # actions KL-penalised: long-tailed or missing actions
    temporal_prior: float = non_negative(0.2)  # rho of rho |i/N - j/K| (Breakfast script; the solver's: none)
    n_iters: int = at_least(1, SEGMENT.n_iters)  # mirror-descent steps, as coded (not run to convergence)
    inner_iters: int = at_least(1, SEGMENT.inner_iters)  # Sinkhorn passes per step in the balanced branch


@dataclass
class AlignSolve:
    """One ``align_fgw`` solve (``vasot_dist/ot/fgw.py``): frames of x -> frames of y, fused GW with structure
    priors {Cx, Cy} and a virtual frame.  VAOT's values (its ``train.py``); the rest is the solver's
    (``ot.settings.ALIGN``: balanced, one Sinkhorn pass per step, as published)."""

    eps: float = positive(0.07)
    alpha: float = fraction(0.3)
    radius: float = in_range(0.02, 0, 1, lo_open=True)  # neighbourhood floor((N+1) r); empty at 20 frames, as coded
    temporal_prior: float = non_negative(0.35)  # rho of rho |i/N - j/M| (the solver's default: none)
    virtual_cost: float | None = non_negative(0.5)  # zeta of the prepended virtual frame (the solver's: none)
    lambda_x: float = non_negative(ALIGN.lambda_x)  # KL weights, used only when unbalanced_x / unbalanced_y
    lambda_y: float = non_negative(ALIGN.lambda_y)
    unbalanced_x: bool = ALIGN.unbalanced_x  # "w/o balance" drops IKEA ASM 38.6 -> 25.2
    unbalanced_y: bool = ALIGN.unbalanced_y
    n_iters: int = at_least(1, ALIGN.n_iters)
    inner_iters: int = at_least(1, ALIGN.inner_iters)


@dataclass
class PartialAlignSolve:
    """One ``align_partial_fgw`` solve (``vasot_dist/ot/partial_fgw.py``): fused partial GW, REALIGN.

    The authors' code is not public; these are our choices (``docs/methods.md#realign``); the iteration counts
    are the solver's (``ot.settings.PARTIAL_ALIGN``).
    """

    mass: float = in_range(0.8, 0, 1, lo_open=True)  # transported mass m; the rest may stay untransported
    eps: float = positive(0.07)
    alpha: float = fraction(0.3)
    radius: float = in_range(0.1, 0, 1, lo_open=True)  # Laplace structure scale b, fraction of the video
    temporal_prior: float = non_negative(0.35)  # VAOT's rho (the solver's default: none)
    virtual_cost: float | None = non_negative(0.5)  # zeta of the virtual sink (the solver's default: none)
    n_iters: int = at_least(1, PARTIAL_ALIGN.n_iters)  # outer mirror-descent steps
    # Bregman sweeps per step: raise it for mass -> 1 or eps < 0.03 (benchmarks/study_realign_inner.py)
    inner_iters: int = at_least(1, PARTIAL_ALIGN.inner_iters)


# ---------------------------------------------------------------------------------------------------------------
# Methods: each settings class registered under its method's name, with its evaluation hooks (registry.py);
# the order here is the order of the config's sections. A new method adds its class here, its loss module
# (``@method_loss(name)`` in vasot_dist/losses/) and its section in docs/methods.md.


@register_method("asot")
@dataclass
class ASOTConfig:
    """ASOT (Xu & Gould, CVPR 2024): frames -> learnable action prototypes, pseudo-label cross-entropy."""

    needs_pairs: ClassVar[bool] = False

    tau: float = positive(0.1)  # softmax temperature of the pseudo-label cross-entropy
    segment: SegmentSolve = field(default_factory=SegmentSolve)  # the training solve
    # decoding at evaluation: the authors' eval arguments (eps 0.04, alpha 0.6, lambda 0.01), rho R kept as coded
    decode: SegmentSolve = field(
        default_factory=lambda: SegmentSolve(eps=0.04, alpha=0.6, lambda_actions=0.01)
    )


@register_method("vaot")
@dataclass
class VAOTConfig:
    """VAOT (Ali et al., ICCV 2025): fused-GW alignment of two videos as pseudo-labels."""

    needs_pairs: ClassVar[bool] = True

    tau: float = positive(0.1)
    symmetric: bool = False  # also the y -> x cross-entropy; the code has x -> y only
    contrastive_weight: float = non_negative(0.0)  # LAV's contrastive-IDM on each video; off as published
    idm_window: float = in_range(0.05, 0, 1, lo_open=True)  # IDM positives: |i - j| <= window * n
    idm_margin: float = non_negative(2.0)  # IDM negatives pushed beyond this squared distance (LAV)
    align: AlignSolve = field(default_factory=AlignSolve)


@register_method("vasot", plot_align="vasot.align")
@dataclass
class VASOTConfig:
    """VASOT (Ali et al., ICCV 2025): VAOT on each pair plus ASOT on each video, one encoder and one set of
    prototypes.  Its own solver values, not VAOT's and ASOT's: the VASOT code uses radius 0.04 and rho 0.1 on
    both solves, and decodes with its training settings."""

    needs_pairs: ClassVar[bool] = True

    tau: float = positive(0.1)  # of both cross-entropies
    beta: float = non_negative(1.0)  # weight of the alignment term (as coded; the paper's w_align)
    symmetric: bool = False
    contrastive_weight: float = non_negative(0.0)
    idm_window: float = in_range(0.05, 0, 1, lo_open=True)
    idm_margin: float = non_negative(2.0)
    align: AlignSolve = field(default_factory=lambda: AlignSolve(radius=0.04, temporal_prior=0.1))
    segment: SegmentSolve = field(default_factory=lambda: SegmentSolve(temporal_prior=0.1))
    decode: SegmentSolve = field(default_factory=lambda: SegmentSolve(temporal_prior=0.1))


@register_method("vava")
@dataclass
class VAVAConfig:
    """VAVA (Liu et al., CVPR 2022): Kantorovich OT with priors and a virtual frame, plus contrastive terms.

    Defaults are the released ``vava.py``'s.
    """

    needs_pairs: ClassVar[bool] = True

    virtual_cost: float = non_negative(0.5)  # zeta of the virtual row and column
    sigma: float = positive(2.0)  # width of the Gaussian priors
    lambda1: float = non_negative(1.0)  # IDM weight, times (n + m)
    lambda2: float = positive(0.1)  # KL-to-prior weight = Sinkhorn regularisation, times n m / 4
    virtual_distance: float = non_negative(5.0)  # sets the constant prior of the virtual entries
    gamma: float = non_negative(0.5)  # weight of the contrastive terms (paper)
    window: int = non_negative(15)  # C(X): positives within this many frames
    margin: float = non_negative(2.0)  # C(X): negatives pushed beyond this distance
    temperature: float = positive(0.5)  # C(X, Y)
    n_iters: int = at_least(1, 20)  # Sinkhorn iterations, as coded
    tol: float | None = positive(None)  # stop early once marginals are this close (a host read every 10)


@register_method("clot")
@dataclass
class CLOTConfig:
    """CLOT (Bueno-Benito & Dimiccoli, ICCV 2025): three ASOT problems per video (frames, decoder segments,
    refined frames).  Only four modules are public; the rest follows ASOT's code, so do the solver values."""

    needs_pairs: ClassVar[bool] = False

    tau: float = positive(0.1)
    segment: SegmentSolve = field(default_factory=SegmentSolve)  # rho R only on the two frame levels
    decode: SegmentSolve = field(
        default_factory=lambda: SegmentSolve(eps=0.04, alpha=0.6, lambda_actions=0.01)
    )
    # sliced-Wasserstein cost at the frame level; at weight 1 it varies ~0.02 across actions against ~0.29 for
    # the cosine cost, nearly a no-op: raise it for the term to matter
    sw_weight: float = non_negative(1.0)
    sw_projections: int = at_least(1, 150)  # released gsw.py
    sw_radius: float = non_negative(2.0)  # circular projections |x - radius theta| (released gsw.py)
    queries_delta: int = 0  # decoder queries n_seg = K + delta (Breakfast: 0)
    decoder_layers: int = at_least(1, 2)  # Breakfast: 2
    decoder_heads: int = at_least(1, 8)
    decoder_dropout: float = in_range(0.5, 0, 1, hi_open=True)  # Breakfast: 0.5
    refine_temperature: float = positive(0.1)  # cross-attention refinement softmax temperature
    decode_level: str = one_of("refined", ("refined", "frames"))  # which frames are decoded at evaluation
    # where feature dispatching (X + update) applies: all (segment and refined frames, the paper's Fig. 2),
    # memory (only the segment-level features kept for the next stage) or none
    dispatch: str = one_of("all", ("all", "memory", "none"))


@register_method("realign", metrics=("keystep",))
@dataclass
class REALIGNConfig:
    """REALIGN (Chandra & Roy, 2025): fused partial GW couplings as pseudo-labels plus contrastive terms.

    The authors' code is not public; the loss is our formula from the paper's components.
    """

    needs_pairs: ClassVar[bool] = True

    tau: float = positive(0.1)
    contrastive_weight: float = non_negative(1.0)  # on the inter-sequence term and the contrastive-IDM
    temperature: float = positive(0.5)  # inter-sequence term, VAVA's value
    idm_window: float = in_range(0.05, 0, 1, lo_open=True)
    idm_margin: float = non_negative(2.0)
    align: PartialAlignSolve = field(default_factory=PartialAlignSolve)


@register_method("kot")
@dataclass
class KOTConfig:
    """KOT: plain entropic Kantorovich OT between two videos, the baseline (no structure, prior or virtual frame)."""

    needs_pairs: ClassVar[bool] = True

    tau: float = positive(0.1)
    symmetric: bool = False
    eps: float = positive(0.07)  # ASOT/VAOT's training eps
    # Sinkhorn iterations and early stop, not the solver's POT defaults (1000, 1e-9): a fixed count, no host read
    n_iters: int = at_least(1, 200)
    tol: float | None = positive(None)  # stop early once marginals are this close (a host read every 10)


# Keys of the shared ``ot`` / ``method`` sections before every method had its own section, and where each went:
# the loader names them when an old config or override uses one.
_SEG = ("asot.segment", "vasot.segment", "clot.segment")
_ALIGN = ("vaot.align", "vasot.align")
_DECODE = ("asot.decode", "vasot.decode", "clot.decode")


def _at(sections: tuple[str, ...], leaf: str) -> tuple[str, ...]:
    return tuple(f"method.{s}.{leaf}" for s in sections)


MOVED_KEYS: dict[str, tuple[str, ...]] = {
    "ot": tuple(f"method.{s}" for s in (*_SEG, *_DECODE, *_ALIGN, "realign.align", "kot")),
    "ot.eps": (*_at(_SEG, "eps"), *_at(_ALIGN, "eps"), "method.realign.align.eps", "method.kot.eps"),
    "ot.alpha": (*_at(_SEG, "alpha"), *_at(_ALIGN, "alpha"), "method.realign.align.alpha"),
    "ot.radius": (*_at(_SEG, "radius"), *_at(_DECODE, "radius"), "method.realign.align.radius"),
    "ot.temporal_prior": (*_at(_SEG, "temporal_prior"), *_at(_DECODE, "temporal_prior")),
    "ot.lambda_frames": _at(_SEG, "lambda_frames"),
    "ot.lambda_actions": _at(_SEG, "lambda_actions"),
    "ot.unbalanced_frames": _at(_SEG, "unbalanced_frames"),
    "ot.unbalanced_actions": _at(_SEG, "unbalanced_actions"),
    "ot.n_iters": (*_at(_SEG, "n_iters"), *_at(_ALIGN, "n_iters")),
    "ot.inner_iters": (*_at(_SEG, "inner_iters"), *_at(_ALIGN, "inner_iters")),
    "ot.align_radius": _at(_ALIGN, "radius"),
    "ot.align_temporal_prior": (*_at(_ALIGN, "temporal_prior"), "method.realign.align.temporal_prior"),
    "ot.mass": ("method.realign.align.mass",),
    "ot.partial_n_iters": ("method.realign.align.n_iters",),
    "ot.partial_inner_iters": ("method.realign.align.inner_iters",),
    "ot.sinkhorn_iters": ("method.kot.n_iters",),
    "ot.eval_eps": _at(_DECODE, "eps"),
    "ot.eval_alpha": _at(_DECODE, "alpha"),
    "ot.eval_lambda_actions": _at(_DECODE, "lambda_actions"),
    "ot.eval_temporal_prior": _at(_DECODE, "temporal_prior"),
    "method.tau": tuple(f"method.{m}.tau" for m in ("asot", "vaot", "vasot", "clot", "realign", "kot")),
    "method.beta": ("method.vasot.beta",),
    "method.virtual_cost": (*_at(_ALIGN, "virtual_cost"), "method.realign.align.virtual_cost",
                            "method.vava.virtual_cost"),
    "method.symmetric": ("method.vaot.symmetric", "method.vasot.symmetric", "method.kot.symmetric"),
    "method.contrastive_weight": ("method.vaot.contrastive_weight", "method.vasot.contrastive_weight"),
    "method.idm_window": tuple(f"method.{m}.idm_window" for m in ("vaot", "vasot", "realign")),
    "method.idm_margin": tuple(f"method.{m}.idm_margin" for m in ("vaot", "vasot", "realign")),
    "method.gamma": ("method.vava.gamma",),
    "method.vava_sigma": ("method.vava.sigma",),
    "method.vava_window": ("method.vava.window",),
    "method.vava_margin": ("method.vava.margin",),
    "method.vava_temperature": ("method.vava.temperature",),
    "method.vava_lambda1": ("method.vava.lambda1",),
    "method.vava_lambda2": ("method.vava.lambda2",),
    "method.vava_virtual_distance": ("method.vava.virtual_distance",),
    "method.vava_sinkhorn_iters": ("method.vava.n_iters",),
    "method.sw_weight": ("method.clot.sw_weight",),
    "method.sw_projections": ("method.clot.sw_projections",),
    "method.sw_radius": ("method.clot.sw_radius",),
    "method.clot_queries_delta": ("method.clot.queries_delta",),
    "method.clot_decoder_layers": ("method.clot.decoder_layers",),
    "method.clot_decoder_dropout": ("method.clot.decoder_dropout",),
    "method.clot_refine_temperature": ("method.clot.refine_temperature",),
    "method.clot_decode_level": ("method.clot.decode_level",),
    "method.clot_dispatch": ("method.clot.dispatch",),
    "method.realign_contrastive_weight": ("method.realign.contrastive_weight",),
    "method.realign_temperature": ("method.realign.temperature",),
}
