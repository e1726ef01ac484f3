"""The one error hierarchy of `reference`.

Every error subclasses both :class:`ReferenceError_` and :class:`ValueError`, so callers may catch
either. Messages name the offending index and value: a wrong number is never returned silently.
"""

from __future__ import annotations

__all__ = [
    "DivergentReturnError",
    "ImproperPolicyError",
    "InvalidDiscountError",
    "InvalidGameError",
    "InvalidMDPError",
    "InvalidPolicyError",
    "NonSummableReturnError",
    "NotConvergedError",
    "ReferenceError_",
    "ShapeError",
]


class ReferenceError_(ValueError):
    """Base class of every error raised by `reference` (trailing underscore: the builtin is taken)."""


class ShapeError(ReferenceError_):
    """An array has the wrong number of dimensions or the wrong length along an axis."""


class InvalidMDPError(ReferenceError_):
    """The MDP is malformed: a negative probability, a row not summing to 1, a NaN or inf reward, ..."""


class InvalidDiscountError(ReferenceError_):
    """The discount factor gamma is outside (0, 1] (or outside the range a theorem needs)."""


class InvalidPolicyError(ReferenceError_):
    """A policy row is not a probability distribution over actions, or an action index is invalid."""


class InvalidGameError(ReferenceError_):
    """A game (matrix or sequential) is malformed, e.g. an illegal move or a non-zero-sum payoff."""


class ImproperPolicyError(ReferenceError_):
    """At gamma = 1 the policy does not reach `term` almost surely from every state.

    ``states`` lists the (non-terminal) states from which `term` is unreachable under the policy.
    """

    def __init__(self, message: str, states: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.states = states


class DivergentReturnError(ImproperPolicyError):
    """BEL-36: a closed class that never terminates has non-zero mean reward: V = +inf or -inf.

    ``sign``: +1 or -1, the sign of every such class, or 0 when classes of both signs are reachable (a
    transient state feeding both then has no value at all); the message names every class."""

    def __init__(self, message: str, states: tuple[int, ...] = (), sign: int = 1) -> None:
        super().__init__(message, states)
        self.sign = sign


class NonSummableReturnError(ImproperPolicyError):
    """BEL-38: a non-terminating class has zero mean but non-zero rewards: the total return has no sum."""


class NotConvergedError(ReferenceError_):
    """An iterative solver did not reach its certified tolerance within its iteration budget."""
