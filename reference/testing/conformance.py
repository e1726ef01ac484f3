"""Conformance kit: check your own GAE, TD(k), rewards-to-go, PPO loss, tanh-Gaussian log-density, GRPO
advantages, Bellman operator or Bellman solver.

Spec: TR-29, TR-31, TR-32, TR-34 (GAE; open choice 13, E-62), TR-20, TR-30 (TD(k), E-59), TR-13, TR-14,
TR-16 (PPO clip), PG-50..PG-52 (tanh-Gaussian, E-51), TR-49, TR-51 (GRPO, E-68, E-69), MDP-20/BEL-04 (V^pi),
BEL-10/BEL-12/BEL-17 (V* and optimal policies), BEL-06/BEL-09/BEL-14/BEL-21 (the Bellman operators).
Each ``check_*`` function runs your implementation on hand-built pitfall cases (batch of size 1,
T = 1, termination and truncation on the same row, lam = 0 and 1, a ratio exactly on a clip boundary,
...) and then on ``examples`` random cases drawn by Hypothesis, compares with :mod:`reference` within
a derived tolerance, and returns a :class:`ConformanceReport`. A failure is shrunk by Hypothesis to a
small counterexample; the report then names every known mistake (truncation treated as termination, the
recursion crossing an episode boundary, max instead of min, ...) that reproduces the implementation's
output on all the cases tried.
Deterministic: the same call gives the same report.

Use it from pytest::

    from reference.testing.conformance import check_gae

    def test_my_gae_conforms():
        check_gae(my_gae, convention="sb3", precision="float32").raise_if_failed()

or from the shell (``module:function`` must be importable)::

    python -m reference.testing.conformance gae mypkg.rl:compute_gae --convention sb3 --precision float32

Conventions (how your function is called; every array is a float64 / bool NumPy array, convert inside
your function if it works on tensors). Return real numbers: anything ``np.asarray`` turns into a real (bool,
integer or float) array, or a torch tensor, which the kit detaches and moves to the CPU (a loss that requires
grad is normal: only its value is compared). ``None``, strings and complex results are refused, with a message
saying so (a complex result is never silently reduced to its real part):

* GAE, ``convention="reference"``: ``fn(rewards, values, next_values, terminated, truncated, *, gamma,
  lam) -> advantages``, all ``[T, B]`` time-major, as :func:`reference.advantages.gae`.
  ``next_values[t]`` is V of the *true* next state (the final observation where truncated; 0 is not
  pre-applied at termination: your function must ignore it there).
* GAE, ``convention="sb3"`` (Stable-Baselines3's ``RolloutBuffer.compute_returns_and_advantage`` and the
  rollout loop around it): ``fn(rewards, values, episode_starts, last_value, last_done, *, gamma, lam)``
  with ``episode_starts[t]`` = "s_t is the first state of an episode" ([T, B]; row 0 is random: a
  conforming function never reads it), ``last_value`` [B] = V of the state after the rollout,
  ``last_done`` [B] = the done flags of the last row. A truncation bootstrap is folded into the reward
  the way SB3's rollout loop does it: ``rewards[t] = r_t + gamma V(final_t)`` on truncated rows.
* GAE, ``convention="cleanrl"``: the same signature as "sb3" with ``dones`` for ``episode_starts``
  (CleanRL's ``dones[t]`` is the done flag returned with observation t), ``next_value``, ``next_done``.
  CleanRL's PPO treats a time-limit truncation as a termination, which no correct GAE can reproduce;
  this convention is therefore checked on batches without truncation, and the report says so.
* Rewards-to-go: ``fn(rewards, *, gamma) -> G`` for one episode [T] (``convention="episode"``), or
  ``fn(rewards, terminated, truncated, *, gamma)`` on [T, B] (``"batch"``; no bootstrap anywhere).
* TD(k): ``fn(rewards, values, next_values, terminated, truncated, *, gamma, k) -> advantages``, the GAE
  "reference" convention with ``k`` (an int >= 1, or None for TD(inf)) in place of ``lam``.
* PPO: ``fn(log_prob, old_log_prob, advantages, *, eps) -> loss`` (a scalar), the negative mean of
  C_eps(ell, A) = min(ell A, clip(ell, 1 - eps, 1 + eps) A) with ell = exp(log_prob - old_log_prob);
  ``sign="objective"`` for a function returning +mean, ``reduction="sum"`` for a sum;
  ``normalize_advantages=True`` (or ``"unbiased"``) if your loss normalises A per minibatch as SB3 and
  CleanRL do, (A - mean) / (std + 1e-8) with the unbiased std, ``"biased"`` for the std with ddof 0
  (neither is the text's PPO; N = 1 is then skipped: the unbiased std of one sample is undefined).
  ``grad=g`` additionally checks ``g(log_prob, old_log_prob, advantages, *, eps) -> d loss / d log_prob``
  [N] (at ell exactly on 1 +- eps either one-sided derivative passes).
* tanh-Gaussian: ``fn(z, mu, log_std) -> log_prob`` [B] with z, mu, log_std [B, n] (the pre-squash
  sample, open choice 15; the log-density of a = tanh z summed over the n action dimensions);
  ``convention="action"`` passes ``a = tanh z`` instead of z (checked for |z| <= 5 only).
* GRPO: ``fn(rewards) -> advantages``, [G, N] with the group on the last axis; ``scale_by_std=False``
  for Dr. GRPO, ``eps_std`` (default 1e-4, E-69).
* Policy evaluation: ``fn(P, R, pi, gamma) -> V`` with ``P[s, a, s']`` [S, A, S], ``R[s, a]`` the
  expected reward [S, A], ``pi[s, a]`` [S, A] (``layout="ASS"`` passes ``P[a, s, s']`` as pymdptoolbox
  does). The last state is the absorbing terminal state (zero reward, P[term, a, term] = 1): an ordinary
  state for a standard solver. ``gamma`` < 1: the random MDPs draw gamma up to 0.999 (0.99 and 0.999 often),
  and the pitfall cases include gamma = 0.99 and 0.999, where a fixed number of sweeps is not converged.
* Optimal value: ``fn(P, R, gamma) -> V`` or ``(V, policy)`` with ``policy`` int [S]; V must equal V*,
  and a returned policy must be optimal (its own V^pi equals V*; ties between actions make the argmax
  non-unique, so the policy is never compared entry by entry). A result is read as ``(V, policy)`` iff it is a
  tuple or list of two items whose first item is an array; a V returned as a tuple of numbers (pymdptoolbox's
  ``.V``) is a V, even when it has two entries.
* Bellman operator (one application): ``fn(P, R, pi, gamma, V) -> B^pi V`` [S], or with ``optimal=True``
  ``fn(P, R, gamma, V) -> B* V``; ``target="q"`` passes Q [S, A] and expects B^pi Q or B* Q [S, A]. The
  values given are 0 at the terminal state, so hard-coding V(term) = 0 and treating term as an ordinary
  absorbing state both conform.

Tolerances (module :mod:`reference.tolerance`; Higham's forward-error model): GAE
``SAFETY * (T + 2) * u * T * scale`` with ``scale`` = max |r| + 2 max |V| (one residual), the sum of at
most T residuals; PPO ``SAFETY * (N + 4 + max |log_prob| + max |old_log_prob|) * u * mean |A| *
max(1, max ell)`` (u = the machine epsilon of ``precision``, 2^-52 for float64 and 2^-23 for float32: twice
the unit roundoff, as in :mod:`reference.tolerance`; input rounding included); tanh-Gaussian, GRPO and the
operators as their ``check_*`` docstrings and docs/conformance.md; values
:func:`reference.testing.oracles.value_tolerance` scaled to the precision.
An iterative solver that stops at a tolerance of its own (value iteration with a stopping rule) passes
``atol`` (finite, >= 0): the kit then checks ||V - V_ref||_inf <= atol + the rounding tolerance of
``precision`` (a solver that stops at atol in exact arithmetic still rounds on top of it), and says so in a note.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib
import math
import numbers
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from numpy.typing import NDArray

from reference.advantages import gae, reward_to_go_targets, td_k_advantages
from reference.bellman import bellman_optimality_q, bellman_optimality_v, bellman_q, bellman_v
from reference.dp import v_star
from reference.exact import v_pi
from reference.mdp import FiniteMDP, FloatArray, deterministic_policy, validate_actions
from reference.policies import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    log1m_tanh2,
    tanh_gaussian_log_prob,
)
from reference.surrogates import GRPO_EPS_STD, grpo_advantages, ppo_clip_objective, ppo_clip_ratio_gradient
from reference.testing.oracles import value_tolerance
from reference.testing.strategies import finite_mdps, policies, value_functions
from reference.testing.strategies_rollouts import PPOBatch, RolloutBatch, ppo_batches, rollout_batches
from reference.tolerance import EPS, tolerance

__all__ = [
    "BellmanTarget",
    "ConformanceError",
    "ConformanceReport",
    "GaeConvention",
    "Mismatch",
    "Precision",
    "check_bellman_operator",
    "check_gae",
    "check_grpo_advantages",
    "check_optimal_value",
    "check_policy_evaluation",
    "check_ppo_clip_loss",
    "check_rewards_to_go",
    "check_tanh_gaussian_log_prob",
    "check_td_k_advantages",
    "main",
]

GaeConvention = Literal["reference", "sb3", "cleanrl"]
Precision = Literal["float64", "float32"]
_UNIT_ROUNDOFF: dict[str, float] = {"float64": EPS, "float32": float(np.finfo(np.float32).eps)}


def _unit_roundoff(precision: str) -> float:
    """u of ``precision``: its machine epsilon (2^-52 for float64, 2^-23 for float32, twice the unit roundoff,
    as :data:`reference.tolerance.EPS`); ValueError for anything else."""
    if precision not in _UNIT_ROUNDOFF:
        raise ValueError(f"precision must be 'float64' or 'float32', got {precision!r}")
    return _UNIT_ROUNDOFF[precision]


def _tol(scale: float, terms: float, u: float) -> float:
    """:func:`reference.tolerance.tolerance` at unit roundoff ``u``: SAFETY * terms * u * scale."""
    return tolerance(max(scale, 0.0) * terms, terms=1) * (u / EPS)


class ConformanceError(AssertionError):
    """Raised by :meth:`ConformanceReport.raise_if_failed`; an AssertionError, so pytest shows the report."""


@dataclass(frozen=True)
class Mismatch:
    """The (shrunk) case on which the implementation under test disagreed with the reference."""

    case: str
    inputs: dict[str, Any]
    expected: Any
    got: Any
    max_abs_error: float
    where: tuple[int, ...] | None
    tolerance: float
    problem: str
    diagnosis: str | None = None

    def __str__(self) -> str:
        with np.printoptions(precision=6, suppress=False, linewidth=110, threshold=200):
            lines = [f"case: {self.case}", f"problem: {self.problem}"]
            if self.diagnosis:
                lines.append(f"diagnosis: {self.diagnosis}")
            if self.where is not None:
                lines.append(f"worst entry {self.where}: |error| = {self.max_abs_error:.3e} > tolerance "
                             f"{self.tolerance:.3e}")
            lines.append("inputs:")
            lines += [f"  {k} = {np.asarray(v)!r}" if isinstance(v, np.ndarray) else f"  {k} = {v!r}"
                      for k, v in self.inputs.items()]
            lines.append(f"expected = {np.asarray(self.expected)!r}")
            lines.append(f"got      = {self.got!r}")
        return "\n".join(lines)


@dataclass(frozen=True)
class ConformanceReport:
    """What a ``check_*`` call found. ``passed`` is True iff every case ran agreed within tolerance."""

    check: str
    spec: str
    passed: bool
    pitfall_cases: tuple[str, ...]
    random_examples: int
    failure: Mismatch | None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        head = "PASSED" if self.passed else "FAILED"
        lines = [f"{head}: {self.check} (Spec: {self.spec})",
                 f"pitfall cases: {len(self.pitfall_cases)} ({', '.join(self.pitfall_cases)}); "
                 f"random examples: {self.random_examples}"]
        lines += [f"note: {n}" for n in self.notes]
        if self.failure is not None:
            lines.append(str(self.failure))
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise :class:`ConformanceError` with the report as its message if the check failed."""
        if not self.passed:
            raise ConformanceError(str(self))


class _Failed(Exception):  # carries a Mismatch (and the failing case) out of a Hypothesis property
    def __init__(self, mismatch: Mismatch, case: Any = None) -> None:
        super().__init__(mismatch.problem)
        self.mismatch = mismatch
        self.case = case


# ------------------------------------------------------------------------------------------ engine
def _detached(x: Any) -> Any:
    """A torch tensor's value (``x.detach().cpu()``); anything else unchanged. A loss that requires grad is the
    normal case for the function under test, and only its value is compared, so the kit detaches it rather than
    fail it (NumPy refuses a tensor that requires grad with a RuntimeError)."""
    detach = getattr(x, "detach", None)
    if callable(detach) and hasattr(x, "requires_grad"):
        x = detach()
        cpu = getattr(x, "cpu", None)
        return cpu() if callable(cpu) else x
    return x


def _real_array(got: Any) -> tuple[FloatArray | None, str | None]:
    """``got`` as a float64 array, or (None, why not). Only real numbers are accepted: ``None``, strings (which
    ``np.asarray(..., dtype=float)`` would parse), complex results (whose imaginary part that conversion drops
    with a mere ComplexWarning) and other non-numeric values are refused; a torch tensor is detached first."""
    if got is None:
        return None, "the result is None: the function returned nothing"
    if isinstance(got, (str, bytes)):
        return None, f"the result is a {type(got).__name__} ({got!r:.60}), not an array of real numbers"
    try:
        a = np.asarray(_detached(got))
    except Exception as exc:  # ragged lists, a tensor on a device NumPy cannot read, an __array__ that raises
        return None, f"the result is not an array of numbers ({type(exc).__name__}: {exc})"
    kind = a.dtype.kind
    if kind == "O" and all(isinstance(x, numbers.Real) for x in a.ravel().tolist()):
        kind = "f"  # an object array of Python / NumPy real numbers
    if kind == "c":
        imag = float(np.max(np.abs(a.imag))) if a.size else 0.0
        return None, (f"the result is complex (dtype {a.dtype}, max |imaginary part| = {imag:.3e}): a real array is "
                      f"expected (converting it would drop the imaginary part); return the real part if intended")
    if kind not in "biuf":
        return None, f"the result is not an array of real numbers (dtype {a.dtype})"
    return np.asarray(a, dtype=np.float64), None


def _compare(got: Any, want: FloatArray, tol: float | FloatArray) -> tuple[str | None, float, tuple[int, ...] | None]:
    """None if ``got`` equals ``want`` within ``tol`` entrywise (a number, or an array broadcast to ``want``'s
    shape: one tolerance per entry), else (problem, error at the worst entry, worst index); the worst entry is
    the one furthest beyond its own tolerance."""
    g, why = _real_array(got)
    if g is None:
        return why, float("inf"), None
    if g.shape != want.shape:
        return f"result shape {list(g.shape)}, expected {list(want.shape)}{_shape_hint(g.shape, want.shape)}", \
            float("inf"), None
    if not np.all(np.isfinite(g)):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(g))[0]) if g.ndim else ()
        return f"non-finite result at {idx}", float("inf"), idx
    err = np.abs(g - want)
    t = np.broadcast_to(np.asarray(tol, dtype=np.float64), err.shape)  # one tolerance per entry
    if not err.size or bool(np.all(err <= t)):
        return None, float(np.max(err)) if err.size else 0.0, None
    flat = int(np.argmax((err - t) / np.maximum(t, np.finfo(np.float64).tiny)))  # (the largest error, if t is one)
    idx = tuple(int(i) for i in np.unravel_index(flat, err.shape)) if err.ndim else ()
    each = " for this entry" if np.ndim(tol) else ""
    return (f"differs from the reference by {float(err[idx]):.3e} (tolerance {float(t[idx]):.3e}{each})"
            + _precision_hint(got, float(t[idx]), want), float(err[idx]), idx)


def _precision_hint(got: Any, tol: float, want: FloatArray) -> str:
    """A hint when a result in a 32-bit or narrower float format failed a float64 tolerance (the default
    ``precision``): a float64 tolerance is below 1e-9 of the values' scale, a float32 one far above it."""
    dtype = str(getattr(_detached(got), "dtype", ""))
    narrow = dtype.replace("torch.", "") in ("float32", "float16", "bfloat16")
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    if narrow and tol < 1e-9 * scale:
        return (f"; the result is {dtype.replace('torch.', '')} and was checked at float64's tolerance: if the "
                f"implementation computes in float32, check it with precision='float32' (--precision float32)")
    return ""


def _shape_hint(got: tuple[int, ...], want: tuple[int, ...]) -> str:
    """What a result of shape ``got`` where ``want`` was expected most likely needs (only a claim the shapes
    imply: a transposed [B, T] batch is not fixed by squeezing, nor is a result with axes missing)."""
    if math.prod(got) != math.prod(want):
        return ""
    if len(got) == len(want) == 2 and got == want[::-1] and got != want:
        return " (the axes transposed? batches here are time-major [T, B])"
    if tuple(d for d in got if d != 1) == tuple(d for d in want if d != 1):
        if len(got) > len(want):
            return " (same entries, extra axes of size 1: squeeze them)"
        return " (same entries, axes of size 1 missing: do not squeeze the result)"
    return ""


def _matches(got: Any, want: FloatArray, tol: float | FloatArray) -> bool:
    return _compare(got, want, tol)[0] is None


_Variant = tuple[str, "FloatArray | None"] | tuple[str, "FloatArray | None", float]
_Evaluate = Callable[[Any], "tuple[Any, FloatArray, float | FloatArray, Sequence[_Variant]] | None"]
"""For a case: (the implementation's output, the reference output, the tolerance, [(mistake, the output that
mistake gives, or None where it does not apply[, extra tolerance for matching that mistake])]), or None if the
implementation raised on the case. The extra tolerance widens only the match with that mistake's output (a
mistake computed with a cancellation the reference does not have), never the test that the mistake differs from
the reference, so it cannot hide the evidence for another mistake."""

_DIAGNOSIS_EXAMPLES = 50
"""Random cases (after the pitfall cases) on which a failing implementation is compared with each mistake."""


def _sample(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """``n`` cases drawn deterministically from ``strategy``."""
    out: list[Any] = []

    @settings(max_examples=n, database=None, deadline=None, derandomize=True, phases=(Phase.generate,),
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(strategy)
    def collect(case: Any) -> None:
        out.append(case)

    collect()
    return out


def _diagnose(cases: list[Any], evaluate: _Evaluate) -> str | None:
    """The known mistakes that reproduce the implementation's output on *every* case (and differ from the
    reference on at least one): one failing case alone is often explained by several mistakes at once."""
    consistent: list[str] | None = None
    evidence: set[str] = set()
    for case in cases:
        res = evaluate(case)
        if res is None:
            continue
        got, want, tol, variants = res
        names = []
        for item in variants:
            text, v = item[0], item[1]
            extra = item[2] if len(item) > 2 else 0.0
            if v is None:  # the mistake is not defined on this case: no evidence either way
                names.append(text)
            elif _matches(got, v, tol + extra):
                names.append(text)
                if not _matches(v, want, tol):
                    evidence.add(text)
        consistent = names if consistent is None else [n for n in consistent if n in names]
    found = [n for n in (consistent or []) if n in evidence]
    if not found:
        return None
    head = f"on all {len(cases)} cases tried, the output equals the reference's with this mistake: "
    if len(found) > 1:
        head = f"on all {len(cases)} cases tried, the output equals the reference's with each of these mistakes: "
    return head + "; ".join(found)


def _run(
    name: str,
    spec: str,
    pitfalls: Iterable[tuple[str, Any]],
    strategy: st.SearchStrategy[Any],
    check_one: Callable[[str, Any], Mismatch | None],
    *,
    examples: int,
    notes: tuple[str, ...] = (),
    evaluate: _Evaluate | None = None,
) -> ConformanceReport:
    if isinstance(examples, bool) or not isinstance(examples, (int, np.integer)) or examples < 0:
        # -5 ran the pitfalls only and reported PASSED (0 is allowed: the pitfall cases alone, said in the report)
        raise ValueError(f"examples must be an integer >= 0, got {examples!r}")
    pitfalls = list(pitfalls)

    def failed(ran: list[str], count: int, m: Mismatch, case: Any) -> ConformanceReport:
        if evaluate is not None and m.diagnosis is None and np.isfinite(m.max_abs_error):
            # the failing case first: a mistake that shows only in a rare region (e.g. z < -10) has its evidence
            # there, and the pitfalls and fresh random cases may not reach that region
            cases = [case] + [c for _, c in pitfalls] + _sample(strategy, _DIAGNOSIS_EXAMPLES)
            m = dataclasses.replace(m, diagnosis=_diagnose(cases, evaluate))
        return ConformanceReport(name, spec, False, tuple(ran), count, m, notes)

    ran: list[str] = []
    for case_name, case in pitfalls:
        ran.append(case_name)
        m = check_one(case_name, case)
        if m is not None:
            return failed(ran, 0, m, case)
    if examples <= 0:
        return ConformanceReport(name, spec, True, tuple(ran), 0, None, notes)
    count = [0]

    @settings(max_examples=examples, database=None, deadline=None, derandomize=True, report_multiple_bugs=False,
              suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate, Phase.shrink),
              print_blob=False)
    @given(strategy)
    def prop(case: Any) -> None:
        count[0] += 1
        m = check_one("random example (shrunk by Hypothesis)", case)
        if m is not None:
            raise _Failed(m, case)

    try:
        prop()
    except _Failed as exc:
        return failed(ran, count[0], exc.mismatch, exc.case)
    except Flaky as exc:  # a failure that did not reproduce on the same input
        m = Mismatch("random example", {}, None, None, float("inf"), None, float("nan"),
                     f"the search stopped with {type(exc).__name__}: {exc} (a failure that does not reproduce on "
                     f"the same input means the implementation is not deterministic)")
        return ConformanceReport(name, spec, False, tuple(ran), count[0], m, notes)
    except Exception as exc:  # the kit itself failed on what the implementation returned: say so, not "flaky"
        m = Mismatch("random example", {}, None, None, float("inf"), None, float("nan"),
                     f"checking a result raised {type(exc).__name__}: {exc} (the result could not be read as an "
                     f"array of real numbers)")
        return ConformanceReport(name, spec, False, tuple(ran), count[0], m, notes)
    return ConformanceReport(name, spec, True, tuple(ran), count[0], None, notes)


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """``fn(*args, **kwargs)`` on *copies* of the array arguments (an implementation that works in place cannot
    change the inputs a report shows, nor the arrays the reference and the diagnoses use), or the error it raised."""
    args = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)
    kwargs = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    try:
        return fn(*args, **kwargs), None
    except (Exception, SystemExit) as exc:  # the implementation may raise anything; sys.exit(0) inside it ended
        # the CLI with status 0 and no report
        return None, f"raised {type(exc).__name__}: {exc}"


_Variants = list[tuple[str, FloatArray | None]]


def _compare_case(
    call: Callable[[Any], tuple[Any, str | None, dict[str, Any]]],
    want_of: Callable[[Any], FloatArray],
    tol_of: Callable[[Any], float],
    variants_of: Callable[[Any], _Variants],
) -> tuple[Callable[[str, Any], Mismatch | None], _Evaluate]:
    """``check_one`` and ``evaluate`` for :func:`_run`, for a check whose case is called by ``call`` (the
    output, the error text if it raised, the named inputs) and compared entrywise with ``want_of``."""
    def check_one(case_name: str, case: Any) -> Mismatch | None:
        want, tol = want_of(case), tol_of(case)
        got, err, inputs = call(case)
        if err is not None:
            return Mismatch(case_name, inputs, want, None, float("inf"), None, tol, err)
        return _value_check(case_name, got, want, tol, inputs)

    def evaluate(case: Any) -> tuple[Any, FloatArray, float, _Variants] | None:
        got, err, _ = call(case)
        return None if err is not None else (got, want_of(case), tol_of(case), variants_of(case))

    return check_one, evaluate


# ---------------------------------------------------------------------------------------------- GAE
def _gae_tolerance(bt: RolloutBatch, precision: Precision) -> float:
    t = bt.shape[0]
    return _tol(bt.scale, (t + 2) * t, _unit_roundoff(precision))


def _gae_ref(bt: RolloutBatch, *, terminated: Any = None, truncated: Any = None, next_values: Any = None,
             gamma: float | None = None, lam: float | None = None) -> FloatArray:
    term = bt.terminated if terminated is None else terminated
    trunc = bt.truncated if truncated is None else truncated
    nv = bt.next_values if next_values is None else next_values
    return gae(bt.rewards, bt.values, nv, term, trunc, gamma=bt.gamma if gamma is None else gamma,
               lam=bt.lam if lam is None else lam)


def _gae_no_reset(bt: RolloutBatch) -> FloatArray:
    """The recursion A_t = delta_t + gamma lam A_{t+1} without the reset at episode ends: the reference GAE
    with no episode flags and V(term) = 0 already applied to the next values."""
    none = np.zeros_like(bt.terminated)
    return _gae_ref(bt, terminated=none, truncated=none, next_values=np.where(bt.terminated, 0.0, bt.next_values))


def _passed_next_values(bt: RolloutBatch) -> FloatArray:
    """next_values as handed to a "reference"-convention function: a finite non-zero value on terminated rows
    (V(term) = 0 is the function's job, MDP-11), V(final obs) on truncated ones."""
    fill = np.where(np.isfinite(bt.v_final), bt.v_final, bt.values + 1.0)
    return np.asarray(np.where(bt.terminated, fill, bt.next_values), dtype=np.float64)


BoolArray = NDArray[np.bool_]


def _shift_up(flags: BoolArray) -> BoolArray:
    """Row t gets the flag of row t+1 (the last row: False)."""
    return np.concatenate([flags[1:], np.zeros_like(flags[:1])], axis=0)


def _shift_down(flags: BoolArray) -> BoolArray:
    """Row t gets the flag of row t-1 (row 0: False)."""
    return np.concatenate([np.zeros_like(flags[:1]), flags[:-1]], axis=0)


def _gae_starts_loop(bt: RolloutBatch, convention: GaeConvention, ended: BoolArray, nxt: FloatArray, *,
                     mask_bootstrap: bool = True) -> FloatArray:
    """An SB3 / CleanRL-style GAE loop on the arguments it is handed, with the per-row "episode ended after row t"
    mask ``ended`` and next values ``nxt`` (both [T, B]) as a mistake would build them; ``mask_bootstrap=False``
    leaves the (1 - done) mask off the bootstrap term (the trace is still cut)."""
    rewards, values = _gae_args(bt, convention)[0][:2]
    adv = np.zeros_like(rewards, dtype=np.float64)
    acc = np.zeros(rewards.shape[1])
    for t in range(rewards.shape[0] - 1, -1, -1):
        alive = 1.0 - ended[t]
        boot = nxt[t] * alive if mask_bootstrap else nxt[t]
        acc = rewards[t] + bt.gamma * boot - values[t] + bt.gamma * bt.lam * alive * acc
        adv[t] = acc
    return adv


def _starts_masks(bt: RolloutBatch, convention: GaeConvention) -> tuple[BoolArray, FloatArray]:
    """The correct "ended after row t" mask and next values of an SB3 / CleanRL-style loop."""
    (_, values, starts, last_value, last_done), _ = _gae_args(bt, convention)
    ended = np.concatenate([starts[1:], last_done[None]], axis=0).astype(np.bool_)
    return ended, np.concatenate([values[1:], last_value[None]], axis=0)


def _gae_from_starts(bt: RolloutBatch, convention: GaeConvention,
                     shift: Callable[[BoolArray], BoolArray]) -> FloatArray:
    """What an SB3 / CleanRL-style GAE loop computes from the arguments it is handed when the per-row
    "episode ended after row t" mask is ``shift``-ed by a row (the last row keeps its ``last_done``)."""
    starts = _gae_args(bt, convention)[0][2]
    ended, nxt = _starts_masks(bt, convention)
    # one row late is episode_starts[t] itself, row 0 included (whatever it holds): the loop reads what it is given
    wrong = np.array(starts, dtype=np.bool_) if shift is _shift_down else shift(ended)
    wrong[-1] = ended[-1]
    return _gae_starts_loop(bt, convention, wrong, nxt)


def _gae_trace_across_truncation(bt: RolloutBatch) -> FloatArray:
    """Bootstrap right (0 at termination, V(final obs) at truncation) but the lambda-trace cut at termination
    only: a hand-written loop with one discount gamma (1 - terminated) for the trace and the bootstrap. (rlax's
    GAE takes one values sequence, so a transcription of it also bootstraps a truncation from the next
    episode's first state: a different mistake, caught by the truncation pitfall, not named.)"""
    delta = bt.rewards + bt.gamma * np.where(bt.terminated, 0.0, bt.next_values) - bt.values
    out = np.zeros_like(delta)
    acc = np.zeros(delta.shape[1])
    for t in range(delta.shape[0] - 1, -1, -1):
        acc = delta[t] + bt.gamma * bt.lam * np.where(bt.terminated[t], 0.0, acc)
        out[t] = acc
    return out


def _gae_diagnoses(bt: RolloutBatch, convention: GaeConvention) -> list[tuple[str, FloatArray | None]]:
    """Known mistakes, each with the advantages it produces on ``bt`` (None where it is not defined)."""
    # V of the next row (the next episode's first state after a truncation); the last row has no next row
    reset_next = np.concatenate([bt.values[1:], bt.next_values[-1:]], axis=0)
    out: list[tuple[str, Callable[[], FloatArray | None]]] = [
        ("returned value targets A + V (the lambda-returns), not advantages",
         lambda: _gae_ref(bt) + bt.values),
        ("truncation treated as termination: no bootstrap from the final observation at a time limit "
         "(open choice 13)", lambda: _gae_ref(bt, terminated=bt.done)),
        ("truncation bootstrapped from V of the next row (the reset state of the next episode) instead of "
         "V of the final observation", lambda: _gae_ref(bt, next_values=np.where(bt.terminated, 0.0, reset_next))),
        ("the recursion is not reset at episode ends: advantages leak across episode boundaries",
         lambda: _gae_no_reset(bt)),
        ("no bootstrap at the end of the rollout (V after the last row taken as 0)",
         lambda: _gae_ref(bt, next_values=np.where(
             np.arange(bt.shape[0])[:, None] == bt.shape[0] - 1,
             np.where(bt.bootstrap_truncated, bt.next_values, 0.0), bt.next_values))),
        ("gamma missing from the recursion (A_t = delta_t + lam A_{t+1})",
         lambda: _gae_ref(bt, lam=bt.lam / bt.gamma) if bt.lam / bt.gamma <= 1.0 else None),
    ]
    def off_by_one(shift: Callable[[BoolArray], BoolArray]) -> Callable[[], FloatArray | None]:
        if convention == "reference":
            return lambda: _gae_ref(bt, terminated=shift(bt.terminated), truncated=shift(bt.truncated),
                                    next_values=_passed_next_values(bt))
        return lambda: _gae_from_starts(bt, convention, shift)

    for shift, words in ((_shift_up, "the flag of row t+1 used for row t"),
                         (_shift_down, "the flag of row t-1 used for row t")):
        out.append((f"the done flags are off by one row ({words}: episode_starts and dones mixed up)",
                    off_by_one(shift)))
    out.append(("the lambda-trace runs on across a time-limit truncation: cut at termination only (a discount "
                "gamma (1 - terminated) used for the trace as well as for the bootstrap)",
                lambda: _gae_trace_across_truncation(bt)))
    if convention == "reference":
        out.append(("next_values taken as values: V(s_t) where V(s_{t+1}) belongs",
                    lambda: _gae_ref(bt, next_values=bt.values)))
    else:
        def same_row() -> FloatArray:
            ended, nxt = _starts_masks(bt, convention)
            values = _gae_args(bt, convention)[0][1]
            return _gae_starts_loop(bt, convention, ended, np.concatenate([values[:-1], nxt[-1:]], axis=0))

        def last_done_ignored() -> FloatArray:
            ended, nxt = _starts_masks(bt, convention)
            ended = ended.copy()
            ended[-1] = False
            return _gae_starts_loop(bt, convention, ended, nxt)

        out.append(("the next value taken from the same row: values[t] where values[t + 1] belongs", same_row))
        out.append(("the last row's done flag (last_done / next_done) ignored: bootstrapped from the next "
                    "episode's first state", last_done_ignored))
    if convention == "reference":
        out.append(("next_values used where the row terminated (V(term) = 0 not applied, MDP-11)",
                    lambda: _gae_ref(bt, terminated=np.zeros_like(bt.terminated), truncated=bt.done,
                                     next_values=_passed_next_values(bt))))

        def truncation_ignored() -> FloatArray:
            # a CleanRL-style loop on the reference's arguments: next value V(s_{t+1}) from the next row (the
            # passed next_values only at the last row), cut at termination only: a truncated row bootstraps
            # from the next episode's first state and the trace runs on into it
            nv = np.concatenate([bt.values[1:], _passed_next_values(bt)[-1:]], axis=0)
            return _gae_ref(bt, truncated=np.zeros_like(bt.truncated), next_values=nv)

        out.append(("truncated ignored altogether: a truncated row bootstraps from the next row's value (the next "
                    "episode's first state) and the lambda-trace runs on into that episode (only terminated read)",
                    truncation_ignored))
    else:
        def bootstrap_through_termination() -> FloatArray:
            return _gae_starts_loop(bt, convention, *_starts_masks(bt, convention), mask_bootstrap=False)

        out.append(("the bootstrap not masked at an episode end: delta = r + gamma V(next) - V without "
                    "(1 - done), so a terminated row bootstraps from the next episode's first state (the trace "
                    "is cut correctly)", bootstrap_through_termination))
    return [(text, make()) for text, make in out]


def _gae_args(bt: RolloutBatch, convention: GaeConvention) -> tuple[tuple[Any, ...], dict[str, Any]]:
    kw: dict[str, Any] = {"gamma": bt.gamma, "lam": bt.lam}
    if convention == "reference":
        return (bt.rewards.copy(), bt.values.copy(), _passed_next_values(bt), bt.terminated.copy(),
                bt.truncated.copy()), kw
    done = bt.done
    # row 0 of episode_starts is never read by a conforming function: random, seeded by the batch itself
    rng = np.random.default_rng(int.from_bytes(hashlib.blake2b(bt.rewards.tobytes(), digest_size=4).digest(), "little"))
    starts = np.concatenate([rng.random((1, bt.shape[1])) < 0.5, done[:-1]], axis=0)
    rewards = bt.rewards.copy()
    if convention == "sb3":
        rewards = np.where(bt.bootstrap_truncated, rewards + bt.gamma * np.nan_to_num(bt.v_final), rewards)
    return (rewards, bt.values.copy(), starts, bt.last_value.copy(), done[-1].copy()), kw


def check_gae(
    fn: Callable[..., Any],
    *,
    convention: GaeConvention = "reference",
    precision: Precision = "float64",
    examples: int = 200,
) -> ConformanceReport:
    """Check a GAE implementation against :func:`reference.advantages.gae` (TR-31, TR-32, TR-34).

    ``fn`` is called as the ``convention`` says (module docstring); ``precision`` is the floating-point
    format it computes in (the tolerance scales with its unit roundoff). ``examples`` random batches
    after the pitfall cases. Returns a :class:`ConformanceReport`; call ``raise_if_failed()`` in a test.
    """
    if convention not in ("reference", "sb3", "cleanrl"):
        raise ValueError(f"convention must be 'reference', 'sb3' or 'cleanrl', got {convention!r}")
    _unit_roundoff(precision)
    truncation = convention != "cleanrl"

    def check_one(case_name: str, bt: RolloutBatch) -> Mismatch | None:
        want = _gae_ref(bt)
        tol = _gae_tolerance(bt, precision)
        args, kw = _gae_args(bt, convention)
        got, err = _call(fn, *args, **kw)
        problem = err if err is not None else _compare(got, want, tol)[0]
        if problem is None:
            return None
        _, worst, where = _compare(got, want, tol) if err is None else (None, float("inf"), None)
        names = ("rewards", "values", "next_values", "terminated", "truncated") if convention == "reference" \
            else ("rewards", "values", "episode_starts" if convention == "sb3" else "dones",
                  "last_value" if convention == "sb3" else "next_value",
                  "last_done" if convention == "sb3" else "next_done")
        inputs: dict[str, Any] = dict(zip(names, args, strict=True))
        inputs.update(kw)
        if convention == "sb3" and bool(np.any(bt.bootstrap_truncated)):
            inputs["(truncated rows, folded into rewards)"] = bt.bootstrap_truncated
        return Mismatch(case_name, inputs, want, got, worst, where, tol, problem)

    def evaluate(bt: RolloutBatch) -> tuple[Any, FloatArray, float, list[tuple[str, FloatArray | None]]] | None:
        args, kw = _gae_args(bt, convention)
        got, err = _call(fn, *args, **kw)
        return None if err else (got, _gae_ref(bt), _gae_tolerance(bt, precision), _gae_diagnoses(bt, convention))

    pitfalls = list(_gae_pitfalls(truncation))
    notes: tuple[str, ...] = ()
    if not truncation:
        notes = ("cleanrl convention: checked on batches without time-limit truncation; CleanRL's PPO treats "
                 "a truncation as a termination (no bootstrap from the final observation), which differs "
                 "from the reference (open choice 13) whenever an episode hits a time limit",)
    return _run(f"GAE (convention {convention!r}, {precision})", "TR-29, TR-31, TR-32, TR-34", pitfalls,
                rollout_batches(truncation=truncation), check_one, examples=examples, notes=notes, evaluate=evaluate)


def _batch(rewards: Any, values: Any, last: Any, term: Any, trunc: Any, v_final: Any, gamma: float,
           lam: float) -> RolloutBatch:
    tr = np.asarray(trunc, dtype=bool)
    te = np.asarray(term, dtype=bool)
    vf = np.where(tr & ~te, np.asarray(v_final, dtype=np.float64), np.nan)
    return RolloutBatch(np.asarray(rewards, dtype=np.float64), np.asarray(values, dtype=np.float64),
                        np.asarray(last, dtype=np.float64), vf, te, tr, gamma, lam)


def _gae_pitfalls(truncation: bool) -> Iterable[tuple[str, RolloutBatch]]:
    f, t = False, True
    yield "T = 1, B = 1, no episode end (bootstrap from last_value)", \
        _batch([[1.0]], [[0.5]], [2.0], [[f]], [[f]], [[0.0]], 0.9, 0.95)
    yield "termination on the last row (no bootstrap)", \
        _batch([[1.0], [1.0]], [[0.5], [0.25]], [7.0], [[f], [t]], [[f], [f]], [[0.0], [0.0]], 0.9, 0.95)
    yield "termination mid-rollout (the recursion restarts)", \
        _batch([[1.0], [2.0], [3.0]], [[1.0], [2.0], [3.0]], [4.0], [[t], [f], [f]], [[f], [f], [f]],
               [[0.0], [0.0], [0.0]], 0.99, 0.9)
    yield "lam = 0 (one-step TD residuals)", \
        _batch([[1.0, -1.0], [0.5, 0.5]], [[0.0, 1.0], [2.0, -2.0]], [1.0, 3.0], [[f, t], [f, f]],
               [[f, f], [f, f]], [[0.0, 0.0], [0.0, 0.0]], 0.9, 0.0)
    yield "lam = 1, gamma = 1 (Monte Carlo return minus V, E-62)", \
        _batch([[1.0], [1.0], [1.0]], [[0.0], [0.0], [0.0]], [10.0], [[f], [f], [f]], [[f], [f], [f]],
               [[0.0], [0.0], [0.0]], 1.0, 1.0)
    if truncation:
        yield "truncation mid-rollout (bootstrap from V(final obs), not from the next episode's first state)", \
            _batch([[1.0], [1.0], [1.0]], [[0.0], [100.0], [0.0]], [0.0], [[f], [f], [f]], [[t], [f], [f]],
                   [[5.0], [0.0], [0.0]], 0.9, 0.95)
        yield "truncation on the last row (v_final, not last_value)", \
            _batch([[1.0], [1.0]], [[0.0], [0.0]], [100.0], [[f], [f]], [[f], [t]], [[0.0], [3.0]], 0.9, 0.95)
        yield "termination and truncation on the same row (termination wins: no bootstrap)", \
            _batch([[1.0], [1.0]], [[0.0], [0.0]], [100.0], [[t], [f]], [[t], [f]], [[0.0], [0.0]], 0.9, 0.95)


# ------------------------------------------------------------------------------------------- TD(k)
@dataclass(frozen=True)
class _TdkCase:
    batch: RolloutBatch
    k: int | None  # None = TD(inf)


def _tdk_cases(include_infinite: bool) -> st.SearchStrategy[_TdkCase]:
    ks: list[int | None] = [1, 1, 2, 3, 5, 20]
    if include_infinite:
        ks.append(None)
    return st.builds(_TdkCase, rollout_batches(), st.sampled_from(ks))


def _tdk_ref(bt: RolloutBatch, k: int | None, *, terminated: Any = None, truncated: Any = None,
             next_values: Any = None) -> FloatArray:
    return td_k_advantages(bt.rewards, bt.values, bt.next_values if next_values is None else next_values,
                           bt.terminated if terminated is None else terminated,
                           bt.truncated if truncated is None else truncated, gamma=bt.gamma, k=k)


def _tdk_diagnoses(c: _TdkCase) -> list[tuple[str, FloatArray | None]]:
    bt, k = c.batch, c.k
    t_last = np.arange(bt.shape[0])[:, None] == bt.shape[0] - 1
    reset_next = np.concatenate([bt.values[1:], bt.next_values[-1:]], axis=0)
    none = np.zeros_like(bt.terminated)
    passed = _passed_next_values(bt)  # what the function is handed: it applies V(term) = 0 itself
    out: list[tuple[str, Callable[[], FloatArray | None]]] = [
        ("returned the k-step returns (targets) A + V, not advantages", lambda: _tdk_ref(bt, k) + bt.values),
        ("truncation treated as termination: no bootstrap from the final observation at a time limit "
         "(open choice 13)", lambda: _tdk_ref(bt, k, terminated=bt.done)),
        ("truncation bootstrapped from V of the next row (the reset state of the next episode) instead of "
         "V of the final observation", lambda: _tdk_ref(bt, k, next_values=np.where(bt.terminated, 0.0, reset_next))),
        ("the k-step window is not cut at episode ends: rewards of the next episode are summed in",
         lambda: _tdk_ref(bt, k, terminated=none, truncated=none,
                          next_values=np.where(bt.terminated, 0.0, bt.next_values))),
        ("no bootstrap at the end of the rollout (V after the last row taken as 0)",
         lambda: _tdk_ref(bt, k, next_values=np.where(t_last & ~bt.bootstrap_truncated, 0.0, bt.next_values))),
        ("k + 1 steps summed before the bootstrap (off by one)", lambda: _tdk_ref(bt, k + 1) if k else None),
        ("k - 1 steps summed before the bootstrap (off by one)",
         lambda: _tdk_ref(bt, k - 1) if k is not None and k > 1 else None),
        ("the done flags are off by one row (the flag of row t+1 used for row t)",
         lambda: _tdk_ref(bt, k, terminated=_shift_up(bt.terminated), truncated=_shift_up(bt.truncated),
                          next_values=passed)),
        ("the done flags are off by one row (the flag of row t-1 used for row t)",
         lambda: _tdk_ref(bt, k, terminated=_shift_down(bt.terminated), truncated=_shift_down(bt.truncated),
                          next_values=passed)),
        ("next_values used where the row terminated (V(term) = 0 not applied, MDP-11)",
         lambda: _tdk_ref(bt, k, terminated=none, truncated=bt.done, next_values=_passed_next_values(bt))),
    ]
    return [(text, make()) for text, make in out]


def check_td_k_advantages(
    fn: Callable[..., Any],
    *,
    include_infinite: bool = True,
    precision: Precision = "float64",
    examples: int = 200,
) -> ConformanceReport:
    """Check k-step (TD(k)) advantages against :func:`reference.advantages.td_k_advantages` (A2C's PG-38 targets are
    these with k = None on a k-step segment, not a k-step window slid over a longer rollout).

    Spec: TR-20 (E-59), TR-30, PG-38/PG-39. ``fn(rewards, values, next_values, terminated, truncated, *, gamma,
    k) -> advantages`` [T, B], the GAE "reference" convention plus ``k``:
    sum_{l<m} gamma^l r_{t+l} + gamma^m V(s_{t+m}) - V(s_t), where m = k capped at the end of t's episode or
    of the rollout; V(s_{t+m}) is ``next_values`` of row t+m-1 (the final observation's value on a truncated
    row), 0 on a terminated one. ``k`` is drawn from {1, 2, 3, 5, 20} and, with ``include_infinite``, None
    (TD(inf): the bootstrapped Monte Carlo return minus V). Tolerance as GAE's (a sum of at most T terms).
    """
    _unit_roundoff(precision)

    def call(c: _TdkCase) -> tuple[Any, str | None, dict[str, Any]]:
        bt = c.batch
        args = (bt.rewards.copy(), bt.values.copy(), _passed_next_values(bt), bt.terminated.copy(),
                bt.truncated.copy())
        inputs: dict[str, Any] = dict(zip(("rewards", "values", "next_values", "terminated", "truncated"), args,
                                          strict=True))
        inputs.update(gamma=bt.gamma, k=c.k)
        got, err = _call(fn, *args, gamma=bt.gamma, k=c.k)
        return got, err, inputs

    check_one, evaluate = _compare_case(call, lambda c: _tdk_ref(c.batch, c.k),
                                        lambda c: _gae_tolerance(c.batch, precision), _tdk_diagnoses)

    # the GAE pitfall batches, in their order, with a k and a name for TD(k)
    named: list[tuple[str, int | None]] = [
        ("T = 1, B = 1, no episode end (bootstrap from last_value); k = 1", 1),
        ("termination on the last row (no bootstrap); k = 2", 2),
        ("termination mid-rollout (the window is cut there); k = 2", 2),
        ("two envs, one terminating on row 0; k = 1 (one-step TD residuals)", 1),
        ("gamma = 1, no episode end; k = inf (Monte Carlo return minus V)", None),
        ("truncation mid-rollout (bootstrap from V(final obs), not from the next episode's first state); k = 2", 2),
        ("truncation on the last row (v_final, not last_value); k = 1", 1),
        ("termination and truncation on the same row (termination wins: no bootstrap); k = 2", 2),
    ]
    pitfalls = [(name if k is not None or include_infinite else name.replace("k = inf", f"k = T = {bt.shape[0]}"),
                 _TdkCase(bt, k if k is not None or include_infinite else bt.shape[0]))
                for (name, k), (_n, bt) in zip(named, _gae_pitfalls(True), strict=True)]
    pitfalls.append(("k = 50, larger than the rollout (the window is cut at the rollout end)",
                     _TdkCase(pitfalls[4][1].batch, 50)))
    return _run(f"TD(k) advantages ({precision}{'' if include_infinite else ', finite k only'})",
                "TR-20, TR-30, PG-38", pitfalls, _tdk_cases(include_infinite), check_one, examples=examples,
                evaluate=evaluate)


# -------------------------------------------------------------------------------------- rewards-to-go
RtgConvention = Literal["episode", "batch"]


def _rtg_variants(bt: RolloutBatch) -> list[tuple[str, FloatArray | None]]:
    """The known mistakes on ``bt`` (episodes delimited by its flags, the rollout end cutting the last)."""
    r, done, g = bt.rewards, bt.done, bt.gamma
    n_t, n_b = r.shape
    start = np.zeros_like(r)  # the row index of each row's episode start
    for b in range(n_b):
        s0 = 0
        for t in range(n_t):
            start[t, b] = s0
            if done[t, b]:
                s0 = t + 1
    t_idx = np.arange(n_t)[:, None] * np.ones((1, n_b))
    ref = reward_to_go_targets(r, bt.terminated, bt.truncated, gamma=g)
    none = np.zeros_like(bt.terminated)
    forward = np.zeros_like(r)  # sum_{t' <= t} gamma^{t - t'} r_t' within the episode
    acc = np.zeros(n_b)
    for t in range(n_t):
        acc = np.where(start[t] == t, 0.0, acc) * g + r[t]
        forward[t] = acc
    return [
        ("discounted from the episode start: sum_t' gamma^t' r_t' instead of gamma^(t' - t) (the gamma^t of PG-08 "
         "applied inside G_t)", ref * g ** (t_idx - start)),
        ("not discounted (gamma taken as 1)", reward_to_go_targets(r, bt.terminated, bt.truncated, gamma=1.0)),
        ("the sum starts at t + 1: r_t left out", ref - r),
        ("a forward cumulative sum (rewards before t) instead of the rewards from t on", forward),
        ("not reset at episode ends: the next episode's rewards are summed in",
         reward_to_go_targets(r, none, none, gamma=g) if bool(np.any(done[:-1])) else None),
    ]


def check_rewards_to_go(
    fn: Callable[..., Any],
    *,
    convention: RtgConvention = "episode",
    precision: Precision = "float64",
    examples: int = 200,
) -> ConformanceReport:
    """Check discounted rewards-to-go G_t = sum_{t' >= t} gamma^(t' - t) r_t' (REINFORCE's weights, PG-08, and
    the text's value targets, TR-11 with E-57) against :func:`reference.advantages.reward_to_go_targets`.

    ``convention="episode"``: ``fn(rewards, *, gamma) -> G`` for the rewards [T] of one complete episode
    (Spinning Up's ``discount_cumsum``). ``convention="batch"``: ``fn(rewards, terminated, truncated, *, gamma)``
    on [T, B] rollouts whose episodes end at either flag (no bootstrap, not at a truncation nor at the rollout
    end: these are the observed returns). Tolerance: SAFETY (T + 2) u T max |r|, a sum of at most T terms.
    """
    if convention not in ("episode", "batch"):
        raise ValueError(f"convention must be 'episode' or 'batch', got {convention!r}")
    u = _unit_roundoff(precision)
    episode = convention == "episode"

    def tol_of(bt: RolloutBatch) -> float:
        t = bt.shape[0]
        return _tol(t * float(np.max(np.abs(bt.rewards))), t + 2, u)

    def want_of(bt: RolloutBatch) -> FloatArray:
        w = reward_to_go_targets(bt.rewards, bt.terminated, bt.truncated, gamma=bt.gamma)
        return np.asarray(w[:, 0], dtype=np.float64) if episode else w

    def call(bt: RolloutBatch) -> tuple[Any, str | None, dict[str, Any]]:
        if episode:
            inputs: dict[str, Any] = {"rewards": bt.rewards[:, 0].copy(), "gamma": bt.gamma}
            got, err = _call(fn, bt.rewards[:, 0].copy(), gamma=bt.gamma)
        else:
            inputs = {"rewards": bt.rewards, "terminated": bt.terminated, "truncated": bt.truncated,
                      "gamma": bt.gamma}
            got, err = _call(fn, bt.rewards.copy(), bt.terminated.copy(), bt.truncated.copy(), gamma=bt.gamma)
        return got, err, inputs

    def variants_of(bt: RolloutBatch) -> _Variants:
        variants = _rtg_variants(bt)
        if episode:
            variants = [(n, None if v is None else np.asarray(v[:, 0], dtype=np.float64)) for n, v in variants]
        return variants

    check_one, evaluate = _compare_case(call, want_of, tol_of, variants_of)

    @st.composite
    def episodes(draw: st.DrawFn) -> RolloutBatch:  # one complete episode: B = 1, no flag before the last row
        bt = draw(rollout_batches(max_envs=1, truncation=False))
        term = np.zeros_like(bt.terminated)
        term[-1] = draw(st.booleans())
        return _batch(bt.rewards, bt.values, bt.last_value, term, np.zeros_like(term), bt.v_final, bt.gamma, bt.lam)

    f, t = False, True
    pitfalls = [
        ("T = 1", _batch([[2.0]], [[0.0]], [0.0], [[t]], [[f]], [[0.0]], 0.9, 1.0)),
        ("gamma = 1: plain sums", _batch([[1.0], [2.0], [3.0]], [[0.0]] * 3, [0.0], [[f], [f], [t]], [[f]] * 3,
                                         [[0.0]] * 3, 1.0, 1.0)),
        ("a zero reward in the middle", _batch([[1.0], [0.0], [1.0]], [[0.0]] * 3, [0.0], [[f], [f], [t]],
                                               [[f]] * 3, [[0.0]] * 3, 0.5, 1.0)),
    ]
    if not episode:
        pitfalls += [
            ("two episodes in one column (the sum restarts)",
             _batch([[1.0], [1.0], [1.0]], [[0.0]] * 3, [0.0], [[t], [f], [f]], [[f]] * 3, [[0.0]] * 3, 0.9, 1.0)),
            ("a truncation mid-rollout (no bootstrap: the observed return)",
             _batch([[1.0, 1.0], [1.0, 2.0]], [[0.0, 0.0]] * 2, [9.0, 9.0], [[f, f], [f, f]], [[t, f], [f, f]],
                    [[5.0, 0.0], [0.0, 0.0]], 0.9, 1.0)),
        ]
    return _run(f"rewards-to-go (convention {convention!r}, {precision})", "PG-08, TR-11", pitfalls,
                episodes() if episode else rollout_batches(), check_one, examples=examples, evaluate=evaluate)


# ---------------------------------------------------------------------------------------------- PPO
Sign = Literal["loss", "objective"]
Reduction = Literal["mean", "sum"]


AdvNorm = Literal["unbiased", "biased"]


def _normalized(adv: FloatArray, kind: AdvNorm = "unbiased") -> FloatArray:
    """(A - mean) / (std + 1e-8) over the minibatch; std with ddof 1 ("unbiased", SB3 and CleanRL) or 0."""
    return np.asarray((adv - adv.mean()) / (adv.std(ddof=1 if kind == "unbiased" else 0) + 1e-8), dtype=np.float64)


def _ppo_expected(b: PPOBatch, adv: FloatArray, sign: Sign, reduction: Reduction,
                  objective: Callable[[FloatArray, FloatArray], FloatArray] | None = None) -> float:
    c = ppo_clip_objective(b.ratio, adv, eps=b.eps) if objective is None else objective(b.ratio, adv)
    total = float(c.sum() if reduction == "sum" else c.mean())
    return -total if sign == "loss" else total


def check_ppo_clip_loss(
    fn: Callable[..., Any],
    *,
    sign: Sign = "loss",
    reduction: Reduction = "mean",
    normalize_advantages: bool | AdvNorm = False,
    grad: Callable[..., Any] | None = None,
    precision: Precision = "float64",
    examples: int = 200,
) -> ConformanceReport:
    """Check a PPO clipped-surrogate loss against :func:`reference.surrogates.ppo_clip_objective` (TR-13, TR-14, TR-16).

    ``fn(log_prob, old_log_prob, advantages, *, eps)`` returns the scalar loss (module docstring for
    ``sign``, ``reduction``, ``normalize_advantages``); ``grad``, if given, its derivative with respect to
    ``log_prob`` [N], compared with the reference's dC/d ell * ell (TR-13's gradient, chain rule).
    """
    if sign not in ("loss", "objective") or reduction not in ("mean", "sum"):
        raise ValueError(f"sign must be 'loss' or 'objective' and reduction 'mean' or 'sum', got {sign!r}, "
                         f"{reduction!r}")
    u = _unit_roundoff(precision)
    norm: AdvNorm | None = None
    if normalize_advantages is True or normalize_advantages == "unbiased":
        norm = "unbiased"
    elif normalize_advantages == "biased":
        norm = "biased"
    elif normalize_advantages is not False:
        raise ValueError(f"normalize_advantages must be False, True, 'unbiased' or 'biased', got "
                         f"{normalize_advantages!r}")

    def adv_of(b: PPOBatch) -> FloatArray:
        return _normalized(b.advantages, norm) if norm is not None else b.advantages

    def amplification(b: PPOBatch) -> float:
        """Normalising A divides the rounding of the centring (about u max|A| a term) by std + 1e-8: clustered
        advantages (3 + 0.001 N(0, 1)) amplify it 1000-fold, in the user's loss and the reference's alike."""
        if norm is None:
            return 0.0
        a = b.advantages
        return max(1.0, float(np.max(np.abs(a))) / (float(a.std(ddof=1 if norm == "unbiased" else 0)) + 1e-8))

    def tolerance_of(b: PPOBatch, adv: FloatArray) -> tuple[float, float]:
        """(terms, tol). Forward error (Higham 3.5): ell = exp(lp - old) carries a relative error
        u (1 + |lp| + |old|); one product and one min per term; a mean of n terms adds n u. Normalising A
        adds about (2 n + 4) u max|A| / (std + 1e-8) to each normalised advantage (:func:`amplification`),
        times the largest ratio, per term."""
        n = adv.size
        terms = n + 4 + float(np.max(np.abs(b.log_prob)) + np.max(np.abs(b.old_log_prob)))
        big_ratio = max(1.0, float(np.max(b.ratio)))
        per_term = float(np.mean(np.abs(adv)) * big_ratio)
        count = n if reduction == "sum" else 1
        tol = _tol(per_term * count, terms, u)
        if norm is not None:
            tol += _tol(amplification(b) * big_ratio * count, 2 * n + 4, u)
        return terms, tol

    def evaluate(b: PPOBatch) -> tuple[Any, FloatArray, float, list[tuple[str, FloatArray | None]]] | None:
        if norm is not None and b.advantages.size < 2:
            return None
        got, err = _call(fn, b.log_prob.copy(), b.old_log_prob.copy(), b.advantages.copy(), eps=b.eps)
        if err is not None:
            return None
        adv = adv_of(b)
        got_cmp = _scalar_or_raw(got)
        variants: list[tuple[str, FloatArray | None]] = [
            (text, None if v is None else np.asarray(v)) for text, v in _ppo_variants(b, norm, sign, reduction)]
        return got_cmp, np.asarray(_ppo_expected(b, adv, sign, reduction)), tolerance_of(b, adv)[1], variants

    def check_one(case_name: str, b: PPOBatch) -> Mismatch | None:
        n = b.advantages.size
        if norm is not None and n < 2:
            return None
        adv = adv_of(b)
        ratio = b.ratio
        terms, tol = tolerance_of(b, adv)
        want = np.asarray(_ppo_expected(b, adv, sign, reduction))
        inputs: dict[str, Any] = {"log_prob": b.log_prob.copy(), "old_log_prob": b.old_log_prob.copy(),
                                  "advantages": b.advantages.copy(), "eps": b.eps, "(ratio)": ratio}
        got, err = _call(fn, b.log_prob.copy(), b.old_log_prob.copy(), b.advantages.copy(), eps=b.eps)
        if err is not None:
            return Mismatch(case_name, inputs, want, None, float("inf"), None, tol, err)
        got_cmp = _scalar_or_raw(got)
        problem, worst, where = _compare(got_cmp, want, tol)
        if problem is not None:
            return Mismatch(case_name, inputs, want, got, worst, where, tol, problem)
        if grad is None:
            return None
        g_got, err = _call(grad, b.log_prob.copy(), b.old_log_prob.copy(), b.advantages.copy(), eps=b.eps)
        # d/d lp_i of sign * reduce_i C(ell_i, A_i) = sign * dC/d ell (ell_i, A_i) * ell_i (/ n for the mean);
        # dC/d ell is A on the unclipped side and 0 on the clipped one (TR-13)
        factor = (-1.0 if sign == "loss" else 1.0) / (1.0 if reduction == "sum" else n)
        unclipped = factor * adv * ratio
        want_g = factor * ppo_clip_ratio_gradient(ratio, adv, eps=b.eps) * ratio
        gtol = _tol(float(np.max(np.abs(unclipped))), terms, u)
        if norm is not None:  # the normalised advantages' own rounding, amplified (see tolerance_of)
            gtol += _tol(abs(factor) * max(1.0, float(np.max(ratio))) * amplification(b), 2 * n + 4, u)
        if err is not None:
            return Mismatch(case_name + " (gradient)", inputs, want_g, None, float("inf"), None, gtol, err)
        g_arr = _real_array(g_got)[0]
        if g_arr is None or g_arr.shape != want_g.shape:
            problem, worst, where = _compare(g_got, want_g, gtol)
            return Mismatch(case_name + " (gradient d loss / d log_prob)", inputs, want_g, g_got, worst, where,
                            gtol, problem or "malformed gradient")
        g = g_arr
        # exactly on a kink ell = 1 +- eps (up to the rounding of exp) either one-sided derivative is right
        kink = (np.abs(ratio - (1.0 + b.eps)) <= 4 * terms * u) | (np.abs(ratio - (1.0 - b.eps)) <= 4 * terms * u)
        other = np.where(want_g == 0.0, unclipped, 0.0)
        g_cmp = np.where(kink & (np.abs(g - other) <= gtol), want_g, g)
        problem, worst, where = _compare(g_cmp, want_g, gtol)
        if problem is None:
            return None
        diag = ""  # "" (not None): the loss mistakes of ``evaluate`` say nothing about a gradient
        if _matches(g, np.asarray(unclipped), gtol) and not _matches(want_g, unclipped, gtol):
            diag = "the gradient ignores the clip: on the clipped side it must be 0 (TR-13)"
        elif _matches(g, -want_g, gtol):
            diag = "the gradient has the wrong sign"
        return Mismatch(case_name + " (gradient d loss / d log_prob)", inputs, want_g, g_got, worst, where, gtol,
                        problem, diag)

    notes: tuple[str, ...] = ()
    if norm is not None:
        notes = (f"advantages normalised per minibatch, (A - mean) / (std + 1e-8) with the {norm} std: the "
                 "public implementations' choice (SB3 and CleanRL: unbiased), not the text's PPO; minibatches "
                 "of size 1 are skipped",)
    return _run(f"PPO clipped loss (sign {sign!r}, reduction {reduction!r}, "
                f"normalize_advantages={norm or False}, {precision})", "TR-13, TR-14, TR-16",
                _ppo_pitfalls(), ppo_batches(), check_one, examples=examples, notes=notes, evaluate=evaluate)


def _is_scalar(x: Any) -> bool:
    a = _real_array(x)[0]
    return a is not None and a.size == 1


def _is_number_array(x: Any) -> bool:
    return _real_array(x)[0] is not None


def _scalar_or_raw(x: Any) -> Any:
    """A one-entry real result as a 0-d float64 array (a loss returned as [1] or a 0-d tensor), else ``x``."""
    a = _real_array(x)[0]
    return a.reshape(()) if a is not None and a.size == 1 else x


def _ppo_variants(b: PPOBatch, norm: AdvNorm | None, sign: Sign,
                  reduction: Reduction) -> list[tuple[str, float | None]]:
    """Known mistakes, each with the loss it gives on ``b``."""
    e = b.eps
    adv = _normalized(b.advantages, norm) if norm is not None else b.advantages
    flip: Sign = "objective" if sign == "loss" else "loss"
    other: Reduction = "sum" if reduction == "mean" else "mean"
    inv = np.exp(b.old_log_prob - b.log_prob)
    clamped = np.clip(np.exp(b.log_prob), 1e-8, 1.0) / np.clip(np.exp(b.old_log_prob), 1e-8, 1.0)
    variants: list[tuple[str, float | None]] = [
        ("the sign is flipped (objective returned as a loss or vice versa)", _ppo_expected(b, adv, flip, reduction)),
        (f"{other} instead of {reduction} over the minibatch", _ppo_expected(b, adv, sign, other)),
        ("max instead of min: the optimistic bound, not PPO's pessimistic one",
         _ppo_expected(b, adv, sign, reduction, lambda r, a: np.maximum(r * a, np.clip(r, 1 - e, 1 + e) * a))),
        ("no clipping (the plain importance-sampling surrogate ell A)",
         _ppo_expected(b, adv, sign, reduction, lambda r, a: r * a)),
        ("the clipped term alone (clip(ell) A without the min)",
         _ppo_expected(b, adv, sign, reduction, lambda r, a: np.clip(r, 1 - e, 1 + e) * a)),
        ("old_log_prob taken from the current policy: the ratio is identically 1, so nothing is clipped",
         _ppo_expected(b, adv, sign, reduction, lambda r, a: a)),
        ("the ratio inverted: exp(old_log_prob - log_prob)",
         _ppo_expected(b, adv, sign, reduction, lambda r, a: ppo_clip_objective(inv, a, eps=e))),
        ("exp(log_prob) clamped to a probability in [1e-8, 1]: a continuous policy's log-density can be > 0, "
         "and the ratio must be exp(log_prob - old_log_prob) unclamped",
         _ppo_expected(b, adv, sign, reduction, lambda r, a: ppo_clip_objective(clamped, a, eps=e))),
    ]
    kinds: list[tuple[AdvNorm | None, str]] = [
        (None, "advantages not normalised"), ("unbiased", "advantages normalised with the unbiased std"),
        ("biased", "advantages normalised with the biased std (ddof 0)")]
    for kind, text in kinds:
        if kind != norm:  # undefined for a minibatch of one (its unbiased std)
            value = None
            if b.advantages.size >= 2:
                alt = b.advantages if kind is None else _normalized(b.advantages, kind)
                value = _ppo_expected(b, alt, sign, reduction)
            variants.append((f"{text} (set normalize_advantages={kind or False} if intended)", value))
    return variants


def _ppo_pitfalls() -> Iterable[tuple[str, PPOBatch]]:
    lp = np.log(np.array([0.5, 0.25, 0.125, 0.5]))
    a = np.array([1.0, -1.0, 2.0, -0.5])
    yield "first epoch: ratio exactly 1", PPOBatch(lp, lp.copy(), a, 0.2)
    yield "minibatch of size 1", PPOBatch(np.log(np.array([0.6])), np.log(np.array([0.3])), np.array([1.5]), 0.2)
    yield "A > 0 above 1 + eps (clipped, flat) and A < 0 below 1 - eps (clipped, flat)", \
        PPOBatch(np.log(np.array([0.9, 0.1])), np.log(np.array([0.5, 0.5])), np.array([2.0, -3.0]), 0.2)
    yield "A > 0 below 1 - eps and A < 0 above 1 + eps (unclipped side: the min keeps ell A)", \
        PPOBatch(np.log(np.array([0.1, 0.9])), np.log(np.array([0.5, 0.5])), np.array([2.0, -3.0]), 0.2)
    yield "ratio on the clip boundary 1 + eps (0.6 / 0.5)", \
        PPOBatch(np.log(np.array([0.6, 0.4])), np.log(np.array([0.5, 0.5])), np.array([1.0, -1.0]), 0.2)
    yield "zero advantages", PPOBatch(np.log(np.array([0.9, 0.1])), np.log(np.array([0.5, 0.5])), np.zeros(2), 0.2)
    yield "continuous actions: log-densities > 0 (exp(log_prob) is a density, not a probability <= 1)", \
        PPOBatch(np.array([1.5, 0.7]), np.array([1.0, 1.2]), np.array([1.0, -1.0]), 0.2)


# ------------------------------------------------------------------------------- tanh-Gaussian
TanhConvention = Literal["pre_squash", "action"]


@dataclass(frozen=True)
class _TanhCase:
    z: FloatArray  # [B, n] pre-squash samples
    mu: FloatArray  # [B, n]
    log_std: FloatArray  # [B, n]


@st.composite
def _tanh_cases(draw: st.DrawFn, *, max_abs_z: float) -> _TanhCase:
    seed = draw(st.integers(0, 2**32 - 1))
    b = draw(st.sampled_from([1, 1, 2, 5]))
    n = draw(st.sampled_from([1, 1, 2, 6]))
    mu_scale = draw(st.sampled_from([0.0, 1.0, 3.0]))
    rng = np.random.default_rng(seed)
    mu = mu_scale * rng.normal(size=(b, n))
    log_std = rng.uniform(LOG_STD_MIN, LOG_STD_MAX, (b, n))
    z = np.clip(mu + np.exp(log_std) * rng.normal(size=(b, n)), -max_abs_z, max_abs_z)
    return _TanhCase(z, mu, log_std)


def _tanh_pitfalls(convention: TanhConvention) -> Iterable[tuple[str, _TanhCase]]:
    def case(z: list[float], mu: list[float], ls: list[float]) -> _TanhCase:
        return _TanhCase(np.array([z]), np.array([mu]), np.array([ls]))

    yield "one action dimension, z = mu, log_std = 0", case([0.3], [0.3], [0.0])
    yield "three action dimensions (the log-densities add, PG-52)", case([0.1, -0.5, 1.2], [0.0, 0.2, 1.0],
                                                                         [-1.0, 0.0, 0.5])
    yield "the clamp bounds of log_std (-5 and 2, open choice 15)", case([0.01, -2.0], [0.0, 1.0], [-5.0, 2.0])
    if convention == "pre_squash":
        yield "|z| = 25: a = tanh z rounds to +-1, log(1 - a^2) must stay finite (E-51's stable form)", \
            case([25.0, -25.0], [24.0, -23.0], [0.5, 1.0])
        # softplus(-2 z) at -2 z = 21 is 21 + log1p(e^-21) = 21 + 7.6e-10: torch's F.softplus (threshold 20)
        # returns 21, off by 1.5e-9 in the log-density, far above float64 rounding (random draws reach z < -10
        # too rarely to show it within 100 examples)
        yield "z = -10.5: softplus(-2 z) above torch's threshold of 20 must keep its log1p(e^(2 z)) term", \
            case([-10.5], [-10.0], [0.0])


def check_tanh_gaussian_log_prob(
    fn: Callable[..., Any],
    *,
    convention: TanhConvention = "pre_squash",
    precision: Precision = "float64",
    examples: int = 200,
) -> ConformanceReport:
    """Check a tanh-Gaussian log-density against :func:`reference.policies.tanh_gaussian_log_prob`.

    Spec: PG-50, PG-51 (erratum E-51: the text's formula omits log(1 - a^2) + (1/2) log 2 pi), PG-52.
    ``fn(x, mu, log_std) -> log_prob`` with ``mu``, ``log_std`` [B, n] (n action dimensions) and the
    log-density of the action summed over the last axis, [B]. ``convention="pre_squash"`` passes the
    stored pre-squash sample ``z`` [B, n] (open choice 15; |z| up to 30 is drawn, where a = tanh z is
    +-1 in floating point); ``"action"`` passes the action ``a = tanh z`` and draws |z| <= 5 only (atanh
    of a rounded +-1 is infinite: a function of the action cannot be right there, see the report's note).
    """
    if convention not in ("pre_squash", "action"):
        raise ValueError(f"convention must be 'pre_squash' or 'action', got {convention!r}")
    u = _unit_roundoff(precision)

    def want_of(c: _TanhCase) -> FloatArray:
        return np.asarray(tanh_gaussian_log_prob(c.z, c.mu, c.log_std).sum(axis=-1), dtype=np.float64)

    def tol_of(c: _TanhCase) -> float:
        # per dimension: the magnitude of the terms (every rounding of the arithmetic, SAFETY (n + 8) u each),
        # plus the first-order effect of the *input's* rounding: |d log pi / dz| <= |z - mu| / sigma^2 + 2 times
        # the error of z - mu (u (|z| + |mu|)) and, for an action input, of atanh(a) (u / (1 - a^2) from the
        # rounding of a, a few ulps of z from atanh itself): a counted bound, 2 u per unit of sensitivity, with
        # no SAFETY (n + 8) factor. With that factor the float32 action bound was ~200 times a correct
        # computation's error and passed SAC's log(1 - a^2 + 1e-6), 5.5e-3 nats off at z = 5 (review of
        # 2026-12-07); a correct float32 computation there is within 7e-4.
        sig = np.exp(c.log_std)
        w = (c.z - c.mu) / sig
        mag = np.abs(c.log_std) + 0.5 * w * w + 1.0 + np.abs(log1m_tanh2(c.z))
        dz = np.abs(c.z) + np.abs(c.mu)
        if convention == "action":
            dz = dz + np.exp(-log1m_tanh2(c.z))
        sens = (np.abs(w) / sig + 2.0) * dz
        n = c.z.shape[-1]
        return _tol(float(np.max(np.sum(mag, axis=-1))), n + 8, u) + 2.0 * u * float(np.max(np.sum(sens, axis=-1)))

    def inputs_of(c: _TanhCase) -> tuple[FloatArray, FloatArray, FloatArray]:
        x = c.z if convention == "pre_squash" else np.tanh(c.z)
        return x.copy(), c.mu.copy(), c.log_std.copy()

    def variants(c: _TanhCase) -> list[_Variant]:
        sig = np.exp(c.log_std)
        normal = -c.log_std - 0.5 * ((c.z - c.mu) / sig) ** 2 - 0.5 * np.log(2 * np.pi)
        a = np.tanh(c.z)
        return [
            ("no tanh correction: the Gaussian log-density of z, without -log(1 - a^2) (E-51)",
             normal.sum(-1)),
            ("the correction as -log(1 - a^2 + 1e-6) (the epsilon common in SAC code): biased where |a| -> 1",
             (normal - np.log(1 - a * a + 1e-6)).sum(-1), naive_tol(c)),
            ("the text's formula as printed, without C = -log(1 - a^2) - (1/2) log 2 pi (E-51)",
             (normal + 0.5 * np.log(2 * np.pi)).sum(-1)),  # = tanh_gaussian_log_prob_text at a = tanh z
            ("log_std read as the log of the variance (sigma = exp(log_std / 2))",
             tanh_gaussian_log_prob(c.z, c.mu, 0.5 * c.log_std).sum(-1)),
            ("the -(1/2) log 2 pi constant missing",
             (tanh_gaussian_log_prob(c.z, c.mu, c.log_std) + 0.5 * np.log(2 * np.pi)).sum(-1)),
            ("the (1/2) log 2 pi constant with the wrong sign (+ instead of -)",
             (tanh_gaussian_log_prob(c.z, c.mu, c.log_std) + np.log(2 * np.pi)).sum(-1)),
            ("2 (log 2 - z - softplus(-2 z)) with torch's F.softplus, which returns x itself for x > 20 (its default "
             "threshold; Spinning Up's SAC, torch's TanhTransform): for z < -10 it drops 2 log1p(e^(2z)), up to 4e-9 "
             "per dimension. Harmless in float32; in float64 use torch.logaddexp(0, -2 z) or "
             "F.softplus(-2 z, threshold=40)",
             (normal - 2.0 * (np.log(2.0) - c.z - np.where(-2.0 * c.z > 20.0, -2.0 * c.z,
                                                            np.logaddexp(0.0, -2.0 * c.z)))).sum(-1)),
        ]

    def check_one(case_name: str, c: _TanhCase) -> Mismatch | None:
        want = want_of(c)
        tol = tol_of(c)
        x, mu, ls = inputs_of(c)
        inputs: dict[str, Any] = {"z" if convention == "pre_squash" else "a": x, "mu": mu, "log_std": ls}
        got, err = _call(fn, x, mu, ls)
        if err is not None:
            return Mismatch(case_name, inputs, want, None, float("inf"), None, tol, err)
        problem, worst, where = _compare(got, want, tol)
        if problem is None:
            return None
        diagnosis = None
        g = _real_array(got)[0]
        if g is not None:
            if g.shape == c.z.shape and c.z.shape != want.shape:
                diagnosis = "per-dimension log-densities returned: sum over the last (action) axis (PG-52)"
            elif g.shape == want.shape and not np.all(np.isfinite(g)) and np.max(np.abs(c.z)) > 15:
                diagnosis = ("log(1 - tanh(z)^2) evaluated naively: it is log 0 = -inf once tanh z rounds to +-1; "
                             "use 2 (log 2 - z - softplus(-2 z)) (E-51)")
        return Mismatch(case_name, inputs, want, got, worst, where, tol, problem, diagnosis)

    def naive_tol(c: _TanhCase) -> float:
        # the SAC-epsilon mistake computes 1 - a^2 naively: a cancellation with relative error u a^2 / (1 - a^2
        # + 1e-6) in log(1 - a^2 + 1e-6), which the stable reference does not have; its match allows that
        a2 = np.tanh(c.z) ** 2
        return _tol(float(np.max(np.sum(a2 / (1.0 - a2 + 1e-6), axis=-1))), c.z.shape[-1], u)

    def evaluate(c: _TanhCase) -> tuple[Any, FloatArray, float, Sequence[_Variant]] | None:
        got, err = _call(fn, *inputs_of(c))
        if err:
            return None
        return got, want_of(c), tol_of(c), variants(c)

    notes: tuple[str, ...] = ()
    if convention == "action":
        notes = ("action convention: checked for |z| <= 5 only; a log-density computed from the action goes "
                 "through atanh(a), which is infinite where tanh z rounds to +-1 (|z| > ~19 in float64, ~9 in "
                 "float32): store the pre-squash z (open choice 15)",)
    return _run(f"tanh-Gaussian log-density (convention {convention!r}, {precision})", "PG-50, PG-51, PG-52",
                list(_tanh_pitfalls(convention)), _tanh_cases(max_abs_z=30.0 if convention == "pre_squash" else 5.0),
                check_one, examples=examples, notes=notes, evaluate=evaluate)


# ---------------------------------------------------------------------------------------------- GRPO
@st.composite
def _grpo_rewards(draw: st.DrawFn) -> FloatArray:
    seed = draw(st.integers(0, 2**32 - 1))
    g = draw(st.sampled_from([1, 1, 2, 4]))
    n = draw(st.sampled_from([1, 2, 4, 8, 16]))
    kind = draw(st.sampled_from(["binary", "binary", "continuous", "integer"]))
    rng = np.random.default_rng(seed)
    if kind == "binary":  # verifiable rewards: correct / incorrect
        return np.asarray(rng.random((g, n)) < rng.uniform(0, 1, (g, 1)), dtype=np.float64)
    if kind == "integer":
        return np.asarray(rng.integers(-2, 3, (g, n)), dtype=np.float64)
    return np.asarray(rng.normal(size=(g, n)) * rng.choice([1e-3, 1.0, 100.0]), dtype=np.float64)


def check_grpo_advantages(
    fn: Callable[..., Any],
    *,
    scale_by_std: bool = True,
    eps_std: float = GRPO_EPS_STD,
    precision: Precision = "float64",
    examples: int = 200,
) -> ConformanceReport:
    """Check GRPO group advantages against :func:`reference.surrogates.grpo_advantages`.

    Spec: TR-49, TR-51 (E-68, E-69; open choices 9, 10). ``fn(rewards) -> advantages`` with rewards
    [G, N] (G groups of N completions of one prompt each, the group along the last axis):
    A = (r - mean(r)) / (std(r) + eps_std) with the sample std (ddof 1, as TRL), and exactly 0 for a group
    whose rewards are all equal and for N = 1. ``scale_by_std=False`` is Dr. GRPO's r - mean(r).
    """
    u = _unit_roundoff(precision)
    if not (eps_std > 0 and np.isfinite(eps_std)):
        raise ValueError(f"eps_std must be positive and finite, got {eps_std!r}")

    def want_of(r: FloatArray) -> FloatArray:
        return grpo_advantages(r, eps_std=eps_std, scale_by_std=scale_by_std)

    def tol_of(r: FloatArray) -> FloatArray:
        # per group (one tolerance per entry, broadcast along the group): centring n u max|r| per entry; the
        # std adds a relative n u; the division amplifies by 1 / (std + eps). Until 2026-12-07 the largest group
        # bound applied to every group, so a flat group (std 0: 1 / eps_std = 1e4) next to an integer group
        # let a ddof-0 std in the latter pass
        n = r.shape[-1]
        rmax = np.maximum(np.max(np.abs(r), axis=-1, keepdims=True) if r.size else np.zeros((*r.shape[:-1], 1)),
                          np.finfo(np.float64).tiny)
        if not scale_by_std:
            return np.asarray(_tol(1.0, n + 2, u) * rmax, dtype=np.float64)
        den = r.std(axis=-1, ddof=1, keepdims=True) + eps_std if n > 1 else np.full((*r.shape[:-1], 1), eps_std)
        a = np.abs(want_of(r))
        per_group = (rmax / den) * (1.0 + np.max(a, axis=-1, keepdims=True))
        return np.asarray(_tol(1.0, n + 4, u) * per_group, dtype=np.float64)

    def variants(r: FloatArray) -> list[tuple[str, FloatArray | None]]:
        n = r.shape[-1]
        c = r - r.mean(axis=-1, keepdims=True)
        out: list[tuple[str, FloatArray | None]] = []
        if scale_by_std:
            out += [
                ("the population std (ddof 0) instead of the sample std (ddof 1, TRL)",
                 np.where(c == 0, 0.0, c / (r.std(axis=-1, keepdims=True) + eps_std)) if n > 1 else None),
                ("eps inside the square root: sqrt(var + eps) instead of std + eps",
                 c / np.sqrt(r.var(axis=-1, ddof=1, keepdims=True) + eps_std) if n > 1 else None),
                ("not divided by the std (Dr. GRPO's r - mean(r); pass scale_by_std=False if intended)", c),
            ]
        else:
            out.append(("divided by the std (GRPO; pass scale_by_std=True if intended)",
                        grpo_advantages(r, eps_std=eps_std) if n > 1 else None))
        whole = r - r.mean()
        if scale_by_std and r.size > 1:
            whole = whole / (r.std(ddof=1) + eps_std)
        out.append(("normalised over the whole batch instead of within each group (the last axis)",
                    whole if r.shape[0] > 1 else None))
        return out

    def check_one(case_name: str, r: FloatArray) -> Mismatch | None:
        want = want_of(r)
        tols = tol_of(r)
        got, err = _call(fn, r.copy())
        if err is not None:
            return Mismatch(case_name, {"rewards": r}, want, None, float("inf"), None, float(np.max(tols, initial=0.0)),
                            err)
        problem, worst, where = _compare(got, want, tols)
        if problem is None:
            return None
        t_all = np.broadcast_to(tols, want.shape)
        tol = float(t_all[where]) if where is not None and t_all.size else float(np.max(tols, initial=0.0))
        diagnosis = None
        g = _real_array(got)[0]
        if scale_by_std and r.shape[-1] == 1 and g is not None and g.shape == r.shape and np.all(np.isnan(g)):
            diagnosis = ("groups of one completion (N = 1) give NaN: the sample std (ddof 1) of one value is "
                         "NaN (torch.std's default, as TRL); the reference's advantage there is 0 (open choice 9: "
                         "a lone completion has nothing to be compared with). Guard N = 1, or never form such groups")
        return Mismatch(case_name, {"rewards": r}, want, got, worst, where, tol, problem, diagnosis)

    def evaluate(r: FloatArray) -> tuple[Any, FloatArray, FloatArray, list[tuple[str, FloatArray | None]]] | None:
        got, err = _call(fn, r.copy())
        return None if err else (got, want_of(r), tol_of(r), variants(r))

    pitfalls: list[tuple[str, FloatArray]] = [
        ("binary rewards, one success in a group of 4", np.array([[0.0, 1.0, 0.0, 0.0]])),
        ("a flat group (all correct): advantage exactly 0, not 0 / eps", np.array([[1.0, 1.0, 1.0, 1.0],
                                                                                  [0.0, 1.0, 1.0, 0.0]])),
        ("a flat group of 0.1 (the mean rounds: 0.1 + 0.1 + 0.1 != 0.3)", np.array([[0.1, 0.1, 0.1]])),
        ("a group of one completion (N = 1): advantage 0", np.array([[3.0], [-1.0]])),
    ]
    return _run(f"GRPO group advantages (scale_by_std={scale_by_std}, eps_std={eps_std:g}, {precision})",
                "TR-49, TR-51", pitfalls, _grpo_rewards(), check_one, examples=examples, evaluate=evaluate)


# ------------------------------------------------------------------------------- Bellman solvers
Layout = Literal["SAS", "ASS"]


def _standard_arrays(mdp: FiniteMDP, layout: Layout) -> tuple[FloatArray, FloatArray]:
    p = np.array(mdp.P, dtype=np.float64)
    r = np.array(mdp.r, dtype=np.float64)
    return (p if layout == "SAS" else np.ascontiguousarray(p.transpose(1, 0, 2))), r


def _value_check(case_name: str, got: Any, want: FloatArray, tol: float, inputs: dict[str, Any]) -> Mismatch | None:
    problem, worst, where = _compare(got, want, tol)
    if problem is None:
        return None
    return Mismatch(case_name, inputs, want, got, worst, where, tol, problem)


_SOLVER_GAMMAS: tuple[float | None, ...] = (None, None, 0.99, 0.999)
"""How the random MDPs' gamma is drawn: None = uniformly from [0.05, 0.999], else that value. Long horizons
(gamma = 0.99, 0.999) are drawn often: there a fixed budget of sweeps (value iteration or iterative evaluation
run N times) is far from converged, 0.99^1000 |V| = 4e-5 |V|, while the tolerance grows with the conditioning
only as 1 / (1 - gamma)^2 (:func:`_value_tol`)."""


def _solver_mdps() -> st.SearchStrategy[FiniteMDP]:
    return st.sampled_from(_SOLVER_GAMMAS).flatmap(
        lambda g: finite_mdps(max_states=6, max_actions=3, max_gamma=0.999, gamma=g))


def _checked_atol(atol: float | None) -> float | None:
    """``atol`` as a float; ValueError unless it is None or finite and >= 0 (NaN would pass everything or nothing)."""
    if atol is None:
        return None
    a = float(atol)
    if not (np.isfinite(a) and a >= 0.0):
        raise ValueError(f"atol must be None or finite and >= 0, got {atol!r}")
    return a


def _value_tol(mdp: FiniteMDP, precision: Precision, atol: float | None) -> float:
    """The rounding tolerance of ``precision``, plus ``atol`` (the solver's own accuracy) if given: a solver
    that stops at ||V - V*|| <= atol in exact arithmetic still rounds on top of that. The rounding part is
    :func:`reference.testing.oracles.value_tolerance` scaled to ``precision``: SAFETY |S| kappa u R / (1 - gamma)
    with kappa = (1 + gamma) / (1 - gamma), the condition bound of I - gamma P, so the long horizons are
    checked with a bound that grows with their conditioning, never with a picked constant."""
    rounding = value_tolerance(mdp) * (_unit_roundoff(precision) / EPS)
    return rounding if atol is None else float(atol) + rounding


def _atol_notes(atol: float | None) -> tuple[str, ...]:
    if atol is None:
        return ()
    return (f"tolerance: the given atol = {atol:g} plus the rounding tolerance of the precision",)


def _value_and_policy(got: Any) -> tuple[Any, Any]:
    """(V, policy) if ``got`` is a pair (a tuple or list of two items) whose first item is an array (ndim >= 1),
    else (got, None). A V returned as a tuple of numbers (pymdptoolbox's ``.V``) is thus read as V even when it
    has two entries (one state and term): its items are numbers, not arrays."""
    if isinstance(got, (tuple, list)) and len(got) == 2:
        try:
            first_ndim = int(np.ndim(_detached(got[0])))
        except Exception:  # a ragged or unreadable first item: not an array
            first_ndim = 0
        if first_ndim >= 1:
            return got[0], got[1]
    return got, None


def check_policy_evaluation(
    fn: Callable[..., Any],
    *,
    layout: Layout = "SAS",
    precision: Precision = "float64",
    atol: float | None = None,
    examples: int = 100,
) -> ConformanceReport:
    """Check a policy-evaluation solver V^pi = (I - gamma P_pi)^{-1} r_pi against :func:`reference.exact.v_pi`.

    Spec: MDP-20, BEL-04. ``fn(P, R, pi, gamma) -> V`` [S] (module docstring; ``layout`` "ASS" for P[a, s, s']).
    ``atol``: the solver's own accuracy ||V - V^pi||_inf <= atol, for a solver that stops early (iterative
    evaluation); it is *added* to the rounding tolerance of ``precision`` (:func:`_value_tol`). gamma is drawn up
    to 0.999, and the pitfall cases include gamma = 0.99 and 0.999 (a fixed number of sweeps fails there).
    """
    _unit_roundoff(precision)
    atol = _checked_atol(atol)
    if layout not in ("SAS", "ASS"):
        raise ValueError(f"layout must be 'SAS' or 'ASS', got {layout!r}")

    @st.composite
    def cases(draw: st.DrawFn) -> tuple[FiniteMDP, FloatArray]:
        mdp = draw(_solver_mdps())
        return mdp, draw(policies(mdp))

    def check_one(case_name: str, case: tuple[FiniteMDP, FloatArray]) -> Mismatch | None:
        mdp, pi = case
        p, r = _standard_arrays(mdp, layout)
        inputs: dict[str, Any] = {"P": p, "R": r, "pi": pi, "gamma": mdp.gamma}
        got, err = _call(fn, p.copy(), r.copy(), pi.copy(), mdp.gamma)
        want = v_pi(mdp, pi)
        tol = _value_tol(mdp, precision, atol)
        if err is not None:
            return Mismatch(case_name, inputs, want, None, float("inf"), None, tol, err)
        return _value_check(case_name, got, want, tol, inputs)

    return _run(f"policy evaluation (layout {layout!r}, {precision}"
                f"{'' if atol is None else f', atol={atol:g}'})", "MDP-20, BEL-04",
                list(_solver_pitfalls()), cases(), check_one, examples=examples,
                notes=_atol_notes(atol))


def check_optimal_value(
    fn: Callable[..., Any],
    *,
    layout: Layout = "SAS",
    precision: Precision = "float64",
    atol: float | None = None,
    check_value: bool = True,
    examples: int = 100,
) -> ConformanceReport:
    """Check an optimal-value solver (VI, PI, LP, ...) against :func:`reference.dp.v_star`.

    Spec: BEL-10, BEL-12, BEL-17. ``fn(P, R, gamma)`` returns V* [S] or (V*, policy int [S]). A returned
    policy must be optimal (BEL-17): greedy with respect to values within the tolerance. Checked state by state:
    its action's Q*(s, pi(s)) may fall short of V*(s) by at most 2 gamma e + 2 delta, with e = atol + the
    rounding tolerance of ``precision`` and delta the rounding of one Bellman backup in ``precision`` (the
    per-state step of the greedy-policy bound of Singh and Yee, 1994, which sums these gaps into
    2 (gamma e + delta) / (1 - gamma); not a statement of the text). ``atol``: the solver's own
    accuracy ||V - V*||_inf <= atol (value iteration stopped early, BEL-25). ``check_value=False`` checks only
    the returned policy, with ``atol`` (plus rounding) as its own bound ||V^policy - V*||_inf <= atol: the
    guarantee of a solver whose stopping rule certifies the policy and not the values (pymdptoolbox's span rule).

    A (V, policy) pair is a tuple or list of two items whose first item is an array; a V returned as a tuple of
    numbers (pymdptoolbox's ``.V``) is read as V even with two entries. gamma is drawn up to 0.999, and the
    pitfall cases include gamma = 0.99 and 0.999, where a fixed number of value-iteration sweeps is not converged.
    """
    _unit_roundoff(precision)
    atol = _checked_atol(atol)
    if layout not in ("SAS", "ASS"):
        raise ValueError(f"layout must be 'SAS' or 'ASS', got {layout!r}")

    def check_one(case_name: str, case: tuple[FiniteMDP, FloatArray] | FiniteMDP) -> Mismatch | None:
        mdp = case[0] if isinstance(case, tuple) else case
        p, r = _standard_arrays(mdp, layout)
        inputs: dict[str, Any] = {"P": p, "R": r, "gamma": mdp.gamma}
        want = v_star(mdp)
        tol = _value_tol(mdp, precision, atol)
        got, err = _call(fn, p.copy(), r.copy(), mdp.gamma)
        if err is not None:
            return Mismatch(case_name, inputs, want, None, float("inf"), None, tol, err)
        v, pol = _value_and_policy(got)
        if check_value:
            m = _value_check(case_name, v, want, tol, inputs)
            if m is not None or pol is None:
                return m
        elif pol is None:
            return Mismatch(case_name, inputs, want, got, float("inf"), None, tol,
                            "check_value=False checks the policy: fn must return (V, policy)")
        try:
            a = validate_actions(_detached(pol), mdp.n_actions, name="policy")  # 0.9 is refused, not truncated
            if a.shape != (mdp.n_states_plus,):
                raise ValueError(f"policy must be int actions of shape [{mdp.n_states_plus}] in "
                                 f"[0, {mdp.n_actions}), got {np.asarray(pol)!r}")
            v_pol = v_pi(mdp, deterministic_policy(a, mdp.n_actions))
        except Exception as exc:  # a malformed policy: reported, not raised
            return Mismatch(case_name + " (policy)", inputs, want, pol, float("inf"), None, tol,
                            f"the returned policy is not usable: {exc}")
        if check_value:
            # The policy comes from values V' within e = tol of V* (atol + the rounding of ``precision``), and its
            # greedy step computes Q_V' in ``precision``, within delta of the exact Q_V'. Then at every state
            # Q*(s, pi(s)) >= Q_V'(s, pi(s)) - gamma e >= max_a Q_V'(s, a) - 2 delta - gamma e >= V*(s) - 2 gamma e
            # - 2 delta: the action gap of each state is checked, which does not grow as 1 / (1 - gamma). (Until
            # 2026-12-07 the check was V^policy >= V* - 2 gamma e / (1 - gamma) (Singh and Yee), which the gaps
            # imply; in float32 at gamma = 0.999 that bound exceeded the largest possible loss, so any policy
            # passed, the worst greedy action included.) Q* is computed here in float64 from the reference V*.
            scale = mdp.max_abs_reward + mdp.gamma * float(np.max(np.abs(want)))
            terms = mdp.n_states_plus + 2
            delta = _tol(scale, terms, _unit_roundoff(precision))
            gap_tol = 2.0 * mdp.gamma * (tol + value_tolerance(mdp)) + 2.0 * delta + _tol(scale, terms, EPS)
            q_star = mdp.lookahead(want)
            q_star[mdp.term] = 0.0
            gap = want - q_star[np.arange(mdp.n_states_plus), a]
            bad = np.flatnonzero(gap > gap_tol)
            if bad.size == 0:
                return None
            s_bad = int(bad[np.argmax(gap[bad])])
            return Mismatch(case_name + " (policy)", inputs, want, v_pol, float(np.max(np.abs(v_pol - want))),
                            (s_bad,), gap_tol,
                            f"the returned policy is not optimal: at state {s_bad} its action {int(a[s_bad])} has "
                            f"Q*(s, a) = {q_star[s_bad, a[s_bad]]!r} < V*(s) = {want[s_bad]!r} by {gap[s_bad]:.3g} "
                            f"(allowed: {gap_tol:.3g}, a greedy step on values within the value tolerance); its "
                            f"value V^policy is shown as 'got'")
        # check_value=False: the solver certifies ||V^policy - V*|| <= atol itself (plus rounding)
        ptol = tol + value_tolerance(mdp)
        problem, worst, where = _compare(v_pol, want, ptol)
        if problem is None:
            return None
        return Mismatch(case_name + " (policy)", inputs, want, v_pol, worst, where, ptol,
                        "the returned policy is not optimal: its value V^policy (shown as 'got') falls short of V*")

    what = "optimal value" if check_value else "optimal policy"
    return _run(f"{what} (layout {layout!r}, {precision}"
                f"{'' if atol is None else f', atol={atol:g}'})", "BEL-10, BEL-12, BEL-17",
                [(n, c[0]) for n, c in _solver_pitfalls()], _solver_mdps(), check_one,
                examples=examples, notes=_atol_notes(atol))


def _solver_pitfalls() -> Iterable[tuple[str, tuple[FiniteMDP, FloatArray]]]:
    from reference.mdp import from_arrays

    # one state, one action, self-loop with probability 0.5, else term: V = 1 / (1 - 0.9 * 0.5)
    m1 = from_arrays(np.array([[[0.5, 0.5]]]), np.array([[1.0]]), gamma=0.9)
    yield "one state + term, one action", (m1, np.ones((2, 1)))
    # a state that reaches term surely: V(term) = 0 must not be confused with a reward-free state
    m2 = from_arrays(np.array([[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]]),
                     np.array([[0.0, 2.0], [5.0, -1.0]]), gamma=0.95)
    yield "two states + term, exact ties absent, a sure termination", (m2, np.full((3, 2), 0.5))
    # all actions equal: every policy is optimal (a tie everywhere)
    m3 = from_arrays(np.array([[[0.3, 0.7], [0.3, 0.7]]]), np.array([[1.0, 1.0]]), gamma=0.5)
    yield "a tie between actions everywhere", (m3, np.array([[1.0, 0.0], [0.5, 0.5]]))
    # long horizons: a self-loop with reward 1 that never terminates, V = 1 / (1 - gamma); N sweeps of value
    # iteration or iterative evaluation from 0 leave gamma^N / (1 - gamma): 4.3e-3 after 1000 sweeps at 0.99,
    # 368 at 0.999, far above the tolerance (which grows only as 1 / (1 - gamma)^2)
    # the greedy step must discount: from state 0, action 0 ends with reward 1 and action 1 earns 1.5 one step
    # later; at gamma = 1/2, Q*(0, .) = (1, 0.75), but argmax_a R + P V* (gamma left out) picks action 1, worth
    # 0.75 < V*(0) = 1 (13 of 400 random MDPs only showed this mistake, so 100 random examples missed it)
    m4 = from_arrays(np.array([[[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]], [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]]),
                     np.array([[1.0, 0.0], [1.5, 1.5]]), gamma=0.5)
    yield "gamma decides the greedy action: argmax_a R + gamma P V* differs from argmax_a R + P V*", \
        (m4, np.full((3, 2), 0.5))
    # a near tie: from state 0, action 0 ends with reward 1 and action 1 earns nothing now and 1.00001 one step
    # later (gamma = 0.99): Q*(0, .) = (1, 1.00001). The worse action comes first and pays more at once, so a
    # greedy step that treats Q values within np.isclose's rtol = 1e-5 (or a fixed 1e-3) as ties, or breaks such
    # "ties" by the immediate reward, keeps action 0 (review 2026-12-07: the random MDPs' continuous rewards
    # almost never put two actions that close)
    near = from_arrays(np.array([[[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]], [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]]),
                       np.array([[1.0, 0.0], [1.00001 / 0.99, 1.00001 / 0.99]]), gamma=0.99)
    yield "a near tie: Q*(0, .) = (1, 1.00001), the worse action first and paying more at once", \
        (near, np.array([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5]]))
    for g in (0.99, 0.999):
        loop = from_arrays(np.array([[[1.0, 0.0], [0.0, 1.0]]]), np.array([[1.0, 0.5]]), gamma=g)
        yield f"gamma = {g}: a self-loop that never terminates, V = 1 / (1 - gamma) (a fixed number of sweeps is " \
              "not converged)", (loop, np.array([[1.0, 0.0], [0.5, 0.5]]))


# ----------------------------------------------------------------------------- Bellman operators
BellmanTarget = Literal["v", "q"]


@dataclass(frozen=True)
class _OperatorCase:
    mdp: FiniteMDP
    pi: FloatArray
    values: FloatArray  # V [S] or Q [S, A], term entries 0


def _operator_cases(target: BellmanTarget) -> st.SearchStrategy[_OperatorCase]:
    @st.composite
    def cases(draw: st.DrawFn) -> _OperatorCase:
        mdp = draw(_solver_mdps())
        return _OperatorCase(mdp, draw(policies(mdp)), draw(value_functions(mdp, q=target == "q", term_zero=True)))
    return cases()


def _operator_expected(c: _OperatorCase, target: BellmanTarget, optimal: bool) -> FloatArray:
    if target == "v":
        return bellman_optimality_v(c.mdp, c.values) if optimal else bellman_v(c.mdp, c.pi, c.values)
    return bellman_optimality_q(c.mdp, c.values) if optimal else bellman_q(c.mdp, c.pi, c.values)


def _operator_variants(c: _OperatorCase, target: BellmanTarget, optimal: bool) -> list[tuple[str, FloatArray | None]]:
    """The output of each known mistake on case ``c`` (None where the mistake is not defined on it)."""
    p = np.array(c.mdp.P, dtype=np.float64)  # [S, A, S]
    r = np.array(c.mdp.r, dtype=np.float64)  # [S, A]
    g, pi, x = c.mdp.gamma, c.pi, c.values
    uniform = np.full_like(pi, 1.0 / p.shape[1])
    p_t = np.ascontiguousarray(p.transpose(2, 1, 0))  # P[s', a, s] read as P[s, a, s']
    out: list[tuple[str, FloatArray | None]] = []
    if target == "v":
        def look(v: FloatArray, gamma: float = g, pp: FloatArray = p) -> FloatArray:
            return np.asarray(r + gamma * np.einsum("sat,t->sa", pp, v), dtype=np.float64)
        if optimal:
            out += [
                ("min instead of max over actions", look(x).min(axis=1)),
                ("the mean over actions (the uniform policy) instead of the max", look(x).mean(axis=1)),
                ("reward and continuation maximised separately: max_a r + gamma max_a P V",
                 r.max(axis=1) + g * np.einsum("sat,t->sa", p, x).max(axis=1)),
                ("gamma left out: max_a (r + P V)", look(x, 1.0).max(axis=1)),
                ("the reward discounted too: max_a gamma (r + P V)", g * look(x, 1.0).max(axis=1)),
                ("the transition array read transposed, as P[s', a, s]", look(x, g, p_t).max(axis=1)),
            ]
        else:
            out += [
                ("the max over actions (B*) instead of the expectation over pi", look(x).max(axis=1)),
                ("the uniform policy instead of pi", np.einsum("sa,sa->s", uniform, look(x))),
                ("gamma left out: r + P V", np.einsum("sa,sa->s", pi, look(x, 1.0))),
                ("the reward discounted too: gamma (r + P V)", g * np.einsum("sa,sa->s", pi, look(x, 1.0))),
                ("the transition array read transposed, as P[s', a, s]", np.einsum("sa,sa->s", pi, look(x, g, p_t))),
            ]
        return out
    def ev(v: FloatArray, pp: FloatArray = p) -> FloatArray:  # E[v(s') | s, a], [S, A]
        return np.asarray(np.einsum("sat,t->sa", pp, v), dtype=np.float64)

    if optimal:
        out += [
            ("max_a' taken outside the expectation over s': max_a' E[Q(s', a')]",
             r + g * np.einsum("sat,tb->sab", p, x).max(axis=2)),
            ("min instead of max over a'", r + g * ev(x.min(axis=1))),
            ("the mean over a' (the uniform policy) instead of the max", r + g * ev(x.mean(axis=1))),
            ("gamma left out: r + E[max_a' Q(s', a')]", r + ev(x.max(axis=1))),
            ("the reward discounted too: gamma (r + E[max_a' Q(s', a')])", g * (r + ev(x.max(axis=1)))),
            ("the transition array read transposed, as P[s', a, s]", r + g * ev(x.max(axis=1), p_t)),
        ]
    else:
        out += [
            ("the max over a' (B*) instead of the expectation over pi(.|s')", r + g * ev(x.max(axis=1))),
            ("pi of the current state s weights a' instead of pi(.|s')", r + g * np.einsum("sat,tb,sb->sa", p, x, pi)),
            ("the uniform policy instead of pi", r + g * ev((uniform * x).sum(axis=1))),
            ("gamma left out: r + E[Q(s', a')]", r + ev((pi * x).sum(axis=1))),
            ("the reward discounted too: gamma (r + E[Q(s', a')])", g * (r + ev((pi * x).sum(axis=1)))),
            ("the transition array read transposed, as P[s', a, s]", r + g * ev((pi * x).sum(axis=1), p_t)),
        ]
    return out


def check_bellman_operator(
    fn: Callable[..., Any],
    *,
    target: BellmanTarget = "v",
    optimal: bool = False,
    layout: Layout = "SAS",
    precision: Precision = "float64",
    examples: int = 100,
) -> ConformanceReport:
    """Check one application of a Bellman operator against :mod:`reference.bellman`.

    Spec: BEL-06 (B^pi on V), BEL-09 (B^pi on Q), BEL-14 (B* on V), BEL-21 (B* on Q). Called as
    ``fn(P, R, pi, gamma, V)`` (``optimal=False``) or ``fn(P, R, gamma, V)`` (``optimal=True``), with P
    [S, A, S] (``layout="ASS"``: [A, S, S]), R [S, A] the expected reward, pi [S, A], and V [S]
    (``target="v"``) or Q [S, A] (``target="q"``); it returns B V [S] or B Q [S, A]:

    (B^pi V)(s) = sum_a pi(a|s) (R(s, a) + gamma sum_s' P(s'|s, a) V(s')),
    (B* V)(s) = max_a (R(s, a) + gamma sum_s' P(s'|s, a) V(s')),
    (B^pi Q)(s, a) = R(s, a) + gamma sum_s' P(s'|s, a) sum_a' pi(a'|s') Q(s', a'),
    (B* Q)(s, a) = R(s, a) + gamma sum_s' P(s'|s, a) max_a' Q(s', a').

    The last state is the absorbing terminal state; the values given are 0 there, so a function that treats
    it as an ordinary absorbing state and one that hard-codes V(term) = 0 both conform. Tolerance:
    SAFETY * (S + A + 2) * u * (max |R| + gamma max |V|), the forward error of the sums in one application.
    """
    u = _unit_roundoff(precision)
    if target not in ("v", "q"):
        raise ValueError(f"target must be 'v' or 'q', got {target!r}")
    if layout not in ("SAS", "ASS"):
        raise ValueError(f"layout must be 'SAS' or 'ASS', got {layout!r}")

    def tol_of(c: _OperatorCase) -> float:
        scale = float(np.max(np.abs(c.mdp.r))) + c.mdp.gamma * float(np.max(np.abs(c.values)))
        return _tol(scale, c.mdp.n_states_plus + c.mdp.n_actions + 2, u)

    def call(c: _OperatorCase) -> tuple[Any, str | None, dict[str, Any]]:
        p, r = _standard_arrays(c.mdp, layout)
        name = "V" if target == "v" else "Q"
        if optimal:
            inputs: dict[str, Any] = {"P": p, "R": r, "gamma": c.mdp.gamma, name: c.values}
            got, err = _call(fn, p.copy(), r.copy(), c.mdp.gamma, c.values.copy())
        else:
            inputs = {"P": p, "R": r, "pi": c.pi, "gamma": c.mdp.gamma, name: c.values}
            got, err = _call(fn, p.copy(), r.copy(), c.pi.copy(), c.mdp.gamma, c.values.copy())
        return got, err, inputs

    check_one, evaluate = _compare_case(call, lambda c: _operator_expected(c, target, optimal), tol_of,
                                        lambda c: _operator_variants(c, target, optimal))

    pitfalls: list[tuple[str, _OperatorCase]] = []
    for case_name, (mdp, pi) in _solver_pitfalls():
        rng = np.random.default_rng(len(pitfalls))
        vals = np.round(rng.uniform(-5, 5, (mdp.n_states_plus, mdp.n_actions) if target == "q"
                                    else (mdp.n_states_plus,)))
        vals[mdp.term] = 0.0
        pitfalls.append((case_name, _OperatorCase(mdp, pi, vals)))
    op = ("B*" if optimal else "B^pi") + (" on V" if target == "v" else " on Q")
    spec = {("v", False): "BEL-06", ("q", False): "BEL-09", ("v", True): "BEL-14", ("q", True): "BEL-21"}
    return _run(f"Bellman operator {op} (layout {layout!r}, {precision})", spec[(target, optimal)], pitfalls,
                _operator_cases(target), check_one, examples=examples, evaluate=evaluate)


# -------------------------------------------------------------------------------------------- CLI
class _UsageError(Exception):
    """The check could not run (a target that does not load, an option that does not apply): exit status 2,
    as argparse's own usage errors, so that a script can tell 'never ran' from 'does not conform' (1)."""


def _load(target: str) -> Callable[..., Any]:
    mod, sep, attr = target.partition(":")
    if not sep or not mod or not attr:
        raise _UsageError(f"expected module:function, got {target!r}")
    try:
        obj: Any = importlib.import_module(mod)
    except (Exception, SystemExit) as exc:  # ModuleNotFoundError, the module's own import failing or exiting
        raise _UsageError(f"cannot import module {mod!r}: {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise _UsageError(f"module {mod!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise _UsageError(f"{target} is not callable")
    return obj  # type: ignore[no-any-return]


_OPTION_CHECKS: dict[str, tuple[str, ...]] = {
    # option (its argparse dest) -> the checks it applies to; given elsewhere it is an error, not ignored
    "sign": ("ppo-clip",), "reduction": ("ppo-clip",), "normalize_advantages": ("ppo-clip",),
    "no_std_scaling": ("grpo",), "layout": ("policy-evaluation", "optimal-value", "bellman-operator"),
    "operand": ("bellman-operator",), "optimal": ("bellman-operator",), "finite_k": ("td-k",),
    "atol": ("policy-evaluation", "optimal-value"), "policy_only": ("optimal-value",),
}


def main(argv: list[str] | None = None) -> int:
    """``python -m reference.testing.conformance CHECK module:function [options]``; exit 0 iff it passes."""
    ap = argparse.ArgumentParser(prog="python -m reference.testing.conformance",
                                 description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("check", choices=["gae", "ppo-clip", "tanh-gaussian", "grpo", "policy-evaluation",
                                      "optimal-value", "bellman-operator", "td-k", "rewards-to-go"])
    ap.add_argument("target", help="module:function of the implementation under test")
    ap.add_argument("--convention", choices=["reference", "sb3", "cleanrl", "pre_squash", "action", "episode", "batch"],
                    default=None, help="gae: reference (default), sb3, cleanrl; tanh-gaussian: pre_squash "
                                       "(default), action; rewards-to-go: episode (default), batch")
    ap.add_argument("--precision", choices=["float64", "float32"], default="float64")
    ap.add_argument("--examples", type=int, default=None, help="random examples after the pitfall cases")
    ap.add_argument("--sign", choices=["loss", "objective"], default="loss", help="ppo-clip only")
    ap.add_argument("--reduction", choices=["mean", "sum"], default="mean", help="ppo-clip only")
    ap.add_argument("--normalize-advantages", choices=["unbiased", "biased"], default=None, help="ppo-clip only")
    ap.add_argument("--no-std-scaling", action="store_true", help="grpo only: Dr. GRPO's r - mean(r)")
    ap.add_argument("--layout", choices=["SAS", "ASS"], default="SAS", help="solvers and operators only")
    ap.add_argument("--target", dest="operand", choices=["v", "q"], default="v",
                    help="bellman-operator only: act on V or on Q")
    ap.add_argument("--optimal", action="store_true", help="bellman-operator only: B* (fn(P, R, gamma, V))")
    ap.add_argument("--finite-k", action="store_true", help="td-k only: your function does not take k=None (inf)")
    ap.add_argument("--atol", type=float, default=None, help="solvers only: the solver's own accuracy")
    ap.add_argument("--policy-only", action="store_true", help="optimal-value only: check the returned policy alone")
    args = ap.parse_args(argv)
    conv = args.convention
    applies = {"gae": ("reference", "sb3", "cleanrl"), "tanh-gaussian": ("pre_squash", "action"),
               "rewards-to-go": ("episode", "batch")}
    if conv is not None and conv not in applies.get(args.check, ()):
        ap.error(f"--convention {conv} does not apply to {args.check}")
    defaults = {a.dest: a.default for a in ap._actions}
    for dest, checks in _OPTION_CHECKS.items():  # an option given to a check that does not read it was ignored
        if getattr(args, dest) != defaults[dest] and args.check not in checks:
            ap.error(f"--{dest.replace('_', '-')} does not apply to {args.check} (only to {', '.join(checks)})")
    if args.examples is not None and args.examples < 0:
        ap.error(f"--examples must be >= 0, got {args.examples}")
    try:
        fn = _load(args.target)
        rep = _run_check(args, fn, conv)
    except (_UsageError, ValueError) as exc:  # ValueError: an option value the check refuses (e.g. --atol -1)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(rep)
    return 0 if rep.passed else 1


def _run_check(args: argparse.Namespace, fn: Callable[..., Any], conv: Any) -> ConformanceReport:
    """The check named by ``args.check`` on ``fn`` (see :func:`main`)."""
    extra: dict[str, Any] = {} if args.examples is None else {"examples": args.examples}
    if args.check == "gae":
        rep = check_gae(fn, convention=conv or "reference", precision=args.precision, **extra)
    elif args.check == "tanh-gaussian":
        rep = check_tanh_gaussian_log_prob(fn, convention=conv or "pre_squash", precision=args.precision, **extra)
    elif args.check == "grpo":
        rep = check_grpo_advantages(fn, scale_by_std=not args.no_std_scaling, precision=args.precision, **extra)
    elif args.check == "ppo-clip":
        rep = check_ppo_clip_loss(fn, sign=args.sign, reduction=args.reduction,
                                  normalize_advantages=args.normalize_advantages or False, precision=args.precision,
                                  **extra)
    elif args.check == "rewards-to-go":
        rep = check_rewards_to_go(fn, convention=conv or "episode", precision=args.precision, **extra)
    elif args.check == "td-k":
        rep = check_td_k_advantages(fn, include_infinite=not args.finite_k, precision=args.precision, **extra)
    elif args.check == "bellman-operator":
        rep = check_bellman_operator(fn, target=args.operand, optimal=args.optimal, layout=args.layout,
                                     precision=args.precision, **extra)
    elif args.check == "policy-evaluation":
        rep = check_policy_evaluation(fn, layout=args.layout, precision=args.precision, atol=args.atol, **extra)
    else:
        rep = check_optimal_value(fn, layout=args.layout, precision=args.precision, atol=args.atol,
                                  check_value=not args.policy_only, **extra)
    return rep


if __name__ == "__main__":
    sys.exit(main())
