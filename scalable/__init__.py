"""Scalable PyTorch deep RL built on the verified `reference` pieces (typed package; agents to come)."""
