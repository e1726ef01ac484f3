"""Public testing helpers: Hypothesis strategies for finite MDPs, policies, value functions, rollout
batches and PPO minibatches (``strategies*``), independent oracles (``oracles``), and the conformance kit
(``conformance``) that checks your own GAE, PPO loss, tanh-Gaussian log-density, GRPO advantages or Bellman
solver against :mod:`reference` (docs/conformance.md).

Requires the optional dependency ``hypothesis`` (from a clone: ``pip install -e '.[conformance]'``; the package is
not on PyPI). Outside users
build their own property tests on these strategies, exactly as this project's tests do.
"""
