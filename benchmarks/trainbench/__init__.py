"""The parts of ``benchmarks/bench_train.py``, one job per module; the trainer's own set-up builds what they run.

- :mod:`.setup`: the run config (file, overrides, flags; pairs as the trainer decides), the benchmark's synthetic
  shards, and the model and engine as ``vasot_dist.train`` builds them (``build_train_model``, ``build_engine``,
  ``compile_for_training``).
- :mod:`.timing`: clock marks (CUDA events or ``perf_counter``), the OT solver timer, GPU utilisation samples.
- :mod:`.steps`: the ``ceiling`` and ``e2e`` modes: training steps split at the phase boundaries.
- :mod:`.loader`: the ``loader`` mode: the training loader alone.
- :mod:`.profile`: ``--profile``: end-to-end steps under ``torch.profiler``.
- :mod:`.syncs`: ``--sync-debug``: where a step makes the host wait for the GPU.
- :mod:`.report`: the table, the summary against the targets, the machine.
"""
