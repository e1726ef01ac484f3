"""Networks: the text's Atari network (default) and the Nature CNN, MuJoCo MLPs, policy heads, init.

Submodules: :mod:`~scalable.nets.atari`, :mod:`~scalable.nets.mlp`, :mod:`~scalable.nets.init`.
"""
