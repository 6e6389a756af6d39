"""Training augmentation of LAV / VAOT / VAVA, drawn once per video and applied to all its frames.

The reference (``ColorJitter(brightness=32/255, contrast=0.5)`` then ``RandomHorizontalFlip(0.5)`` on
the whole clip tensor) draws one brightness factor ``b ~ U[1 - 32/255, 1 + 32/255]``, one contrast
factor ``c ~ U[0.5, 1.5]``, a random order of the two, and one flip decision per video. Applied on the
uint8 frames in the worker with lookup tables (no float copy of the clip):

- brightness: ``x -> clip(b x)``;
- contrast: ``x -> clip(c x + (1 - c) m_f)`` with ``m_f`` the mean grey level of frame ``f``
  (torchvision computes it per frame when given a ``(T, C, H, W)`` clip);
- both truncate to uint8 as torchvision does (float32 vs its float blend: at most one grey level apart).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_GREY = np.array([0.2989, 0.587, 0.114])  # torchvision rgb_to_grayscale weights
_LEVELS = np.arange(256, dtype=np.float64)


@dataclass(frozen=True)
class AugmentParams:
    brightness: float  # multiplicative factor
    contrast: float  # blend factor towards the frame's mean grey
    brightness_first: bool
    flip: bool


class VideoAugment:
    """Video-consistent colour jitter + horizontal flip on uint8 ``(..., H, W, 3)`` frames."""

    def __init__(self, brightness: float = 32 / 255, contrast: float = 0.5, flip_p: float = 0.5):
        if not 0 <= brightness < 1:
            raise ValueError(f"brightness must be in [0, 1), got {brightness}")
        if not 0 <= contrast < 1:
            raise ValueError(f"contrast must be in [0, 1), got {contrast}")
        if not 0 <= flip_p <= 1:
            raise ValueError(f"flip_p must be in [0, 1], got {flip_p}")
        self.brightness, self.contrast, self.flip_p = float(brightness), float(contrast), float(flip_p)

    def draw(self, rng: np.random.Generator) -> AugmentParams:
        """One video's parameters (always four draws, so the stream stays aligned whatever they are)."""
        b = rng.uniform(1 - self.brightness, 1 + self.brightness)
        c = rng.uniform(1 - self.contrast, 1 + self.contrast)
        first = bool(rng.random() < 0.5)
        flip = bool(rng.random() < self.flip_p)
        return AugmentParams(float(b), float(c), first, flip)

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """frames: uint8 (..., H, W, 3), all frames of one video; returns a new array of the same shape."""
        return apply_augment(frames, self.draw(rng))


# Frames with at least this many pixels estimate their mean grey on every other row and column: the
# mean moves by a fraction of a grey level and the cost drops 4x (the mean is the costly part).
_SUBSAMPLE_FROM = 64 * 64


def _brightness_lut(b: float) -> np.ndarray:
    return np.clip(b * _LEVELS, 0, 255).astype(np.uint8)  # astype truncates, like torchvision's .to(uint8)


def _contrast_lut(c: float, mean_grey: float) -> np.ndarray:
    return np.clip(c * _LEVELS + (1 - c) * mean_grey, 0, 255).astype(np.uint8)


def _mean_grey(frame: np.ndarray, lut: np.ndarray | None = None) -> float:
    """torchvision's ``rgb_to_grayscale(frame).float().mean()`` of one uint8 (H, W, 3) frame, or of
    ``lut[frame]``, from per-channel histograms: ``sum_c w_c mean(channel c)`` minus 0.5, the mean loss
    of torchvision's per-pixel truncation of the grey value to uint8 (exact up to that average)."""
    if frame.shape[0] * frame.shape[1] >= _SUBSAMPLE_FROM:
        frame = frame[::2, ::2]
    levels = _LEVELS if lut is None else lut.astype(np.float64)
    count = frame.shape[0] * frame.shape[1]
    means = [np.bincount(frame[..., k].ravel(), minlength=256) @ levels / count for k in range(3)]
    return max(0.0, float(np.dot(_GREY, means)) - 0.5)


def _hflip(x: np.ndarray) -> np.ndarray:
    """Reverse the W axis of uint8 (F, H, W, 3), moving whole pixels (3-byte records: 4x faster than
    reversing a strided uint8 view)."""
    pixels = np.ascontiguousarray(x).view(np.dtype((np.void, 3)))[..., 0]  # (F, H, W)
    return np.ascontiguousarray(pixels[:, :, ::-1]).view(np.uint8).reshape(x.shape)


def apply_augment(frames: np.ndarray, params: AugmentParams) -> np.ndarray:
    """Apply ``params`` to every frame of one video. frames: uint8 (..., H, W, 3).

    Brightness and contrast are pointwise once a frame's mean grey is known, so each frame goes
    through one composite 256-entry lookup table.
    """
    if frames.dtype != np.uint8 or frames.ndim < 3 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (..., H, W, 3), got {frames.dtype} {frames.shape}")
    shape = frames.shape
    x = frames.reshape((-1,) + shape[-3:])
    bright = _brightness_lut(params.brightness)
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        if params.brightness_first:
            lut = _contrast_lut(params.contrast, _mean_grey(x[i], bright))[bright]
        else:
            lut = bright[_contrast_lut(params.contrast, _mean_grey(x[i]))]
        np.take(lut, x[i], out=out[i])
    if params.flip:
        out = _hflip(out)
    return out.reshape(shape)
