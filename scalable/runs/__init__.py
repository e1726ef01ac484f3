"""Run infrastructure: run folders, CSV + TensorBoard logs, progress bar, atomic checkpoints, RNG state.

Submodules: :mod:`~scalable.runs.checkpoint` and :mod:`~scalable.runs.logging`.
"""
