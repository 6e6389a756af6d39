"""vasot_dist: distributed self-supervised video alignment and action segmentation with optimal transport."""

__version__ = "0.1.0"
