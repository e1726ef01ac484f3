"""Ground-truth reference implementation of the objects of Ryu, *Chapter 1: Deep Reinforcement Learning*.

Layers (each imports only earlier ones): :mod:`~reference.errors`, :mod:`~reference.tolerance`,
:mod:`~reference.mdp` (finite MDPs with an absorbing ``term``, policies), :mod:`~reference.chains`,
:mod:`~reference.exact` (V^pi, Q^pi, A^pi, J by linear solves), :mod:`~reference.bellman` (B^pi, B^*),
:mod:`~reference.dp` (VI, Q-VI, anchored VI, PI), :mod:`~reference.generators` (seeded random MDPs and
the gamma = 1 pathologies). Every public function names its inventory ID (``Spec: BEL-08``) in its
docstring; ``grep -rn BEL-08 reference`` finds it.
"""

__version__ = "0.1.0"
