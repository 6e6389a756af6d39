"""What every layer above needs at run time, and nothing of the method: one import per job.

- :mod:`.files`: atomic file writes (temporary name, fsync, rename) with the mode the umask gives.
- :mod:`.ranklog`: rank-aware logging (rank 0 at INFO, other ranks at WARNING).
- :mod:`.distributed`: the process group and this rank's device (torchrun, Ray Train, DeepSpeed, one process).
- :mod:`.seeding`: seeding and RNG-state capture for checkpoints.
- :mod:`.progress`: rank 0's progress bars (rate and ETA).

The package imports no other part of ``vasot_dist`` (``tests/test_layers.py`` checks it); its ``__init__``
imports nothing, so ``vasot_dist.runtime.files`` stays cheap for the data-preparation tools.
"""
