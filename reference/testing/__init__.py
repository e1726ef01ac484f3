"""Public testing helpers: Hypothesis strategies for finite MDPs, policies and value functions.

Requires the optional dependency ``hypothesis`` (``pip install 'rl-groundtruth[test]'``). Outside users
build their own property tests on these strategies, exactly as this project's tests do.
"""
