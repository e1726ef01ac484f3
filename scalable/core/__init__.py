"""Numeric pieces of the training loops: torch twins of `reference`, property-tested equal to it.

Submodules: :mod:`~scalable.core.advantages` (TD residuals, TD(k), GAE, value targets on [T, B]),
:mod:`~scalable.core.losses` (PPO clip, value, entropy, A2C and stop-gradient TD losses),
:mod:`~scalable.core.distributions` (categorical, tanh-Gaussian, diagonal Gaussian densities) and
:mod:`~scalable.core.normalize` (running observation and reward normalisers).
"""
