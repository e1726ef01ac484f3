"""Imitation learning: behaviour cloning and DAgger on finite MDPs (MDP-12..MDP-16).

Conventions: see :mod:`reference.mdp` (term is the last state index; policies are [S, A] arrays over S+)
and :mod:`reference.sampling`. A dataset D = {(s_i, a_i)} is a :class:`Dataset` of two int arrays (no
rewards). The learner is the tabular softmax pi_theta(a | s) = softmax(theta[s])_a, trained with the
cross-entropy loss of MDP-12; its minimiser on D is the table of empirical action frequencies
(:func:`fit_bc_counts`), with the untrained uniform row on states D never shows.

*Deployment.* A trained softmax policy is deployed either as is (``"stochastic"``) or greedily
(``"greedy"``: argmax with the project's tie-break, lowest index, open choice 1). Greedily, a state
never seen in D takes action 0.

The expert is an optimal deterministic policy computed by the exact solver (:func:`expert_policy`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from reference.dp import policy_iteration
from reference.errors import InvalidPolicyError, ShapeError
from reference.exact import Improper, j_pi
from reference.mdp import (
    FiniteMDP,
    FloatArray,
    IntArray,
    deterministic_policy,
    from_outcomes,
    greedy,
    off_simplex_rows,
    validate_actions,
    validate_indices,
    validate_int,
    validate_policy,
    validate_step_size,
)
from reference.sampling import Trajectories, sample_trajectories

__all__ = [
    "CompoundingChain",
    "DaggerResult",
    "Dataset",
    "Deploy",
    "behaviour_cloning",
    "compounding_error_mdp",
    "cross_entropy",
    "dagger",
    "dataset_from_trajectories",
    "deploy",
    "expert_policy",
    "fit_bc_counts",
    "fit_bc_softmax",
    "label_states",
    "on_expert_error",
    "policy_cost",
]

Deploy = Literal["greedy", "stochastic"]


@dataclass(frozen=True)
class Dataset:
    """D = {(s_i, a_i)}: int arrays ``states`` [N] and ``actions`` [N] (no rewards, MDP-12).

    Validated on construction with :func:`reference.mdp.validate_indices` and stored as int64: indices must
    be >= 0 (a negative index raised nothing and was wrapped by NumPy to the last state, i.e. term, or the
    last action), integral (a float 0.9 is refused, never truncated; 2.0 is read as 2) and of an integer or
    float dtype; a bad state raises :class:`ShapeError`, a bad action :class:`InvalidPolicyError` (as in
    :func:`label_states`). Both must be 1-D of the same length (ShapeError). Upper bounds depend on the
    consumer (:func:`cross_entropy`: theta's shape; :func:`fit_bc_counts`: n_states_plus, n_actions).
    """

    states: IntArray
    actions: IntArray

    def __post_init__(self) -> None:
        if np.ndim(self.states) != 1 or np.ndim(self.actions) != 1 or np.size(self.states) != np.size(self.actions):
            raise ShapeError(f"Dataset states and actions must be 1-D of the same length N, got shapes "
                             f"{list(np.shape(self.states))} and {list(np.shape(self.actions))}")
        s = validate_indices(self.states, None, name="Dataset.states", what="state", error=ShapeError)
        a = validate_indices(self.actions, None, name="Dataset.actions", what="action", error=InvalidPolicyError)
        object.__setattr__(self, "states", s)  # frozen: the validated int64 copies replace the inputs
        object.__setattr__(self, "actions", a)

    def __len__(self) -> int:
        return int(self.states.size)

    def __or__(self, other: Dataset) -> Dataset:
        """Aggregation D ∪ D' (as a multiset: every pair is kept, MDP-16 step 4)."""
        return Dataset(np.concatenate([self.states, other.states]),
                       np.concatenate([self.actions, other.actions]))


def expert_policy(mdp: FiniteMDP) -> IntArray:
    """An optimal deterministic policy pi_expert(s), int [S], from exact policy iteration (BEL-33).

    Spec: MDP-12 (the expert of the demonstrations). Ties: lowest index / keep current (open choice 1).
    """
    return policy_iteration(mdp).policy


def dataset_from_trajectories(traj: Trajectories) -> Dataset:
    """Step 1 of BC: the pairs (s_t, a_t), t < T, of every trajectory (rewards dropped). Spec: MDP-12."""
    v = traj.valid
    return Dataset(traj.states[:, :-1][v].astype(np.int64), traj.actions[v].astype(np.int64))


def label_states(states: IntArray, expert: IntArray) -> Dataset:
    """DAgger step 3: the expert labels states s_i with a_i = pi_expert(s_i). Spec: MDP-16.

    ``expert`` int [S] (actions >= 0), ``states`` int [N] in 0..S-1 (:func:`reference.mdp.validate_indices`:
    a float 0.9 is refused, never truncated to 0; 2.0 is read as 2). A non-integral expert action raises
    InvalidPolicyError, a bad state ShapeError.
    """
    if np.ndim(expert) != 1:
        raise ShapeError(f"expert must be a deterministic policy of shape [S], got shape {np.shape(expert)}")
    ex = validate_indices(expert, None, name="expert", what="action", error=InvalidPolicyError)
    s = validate_indices(states, ex.size, name="states", what="state", error=ShapeError)
    return Dataset(s, ex[s])


def cross_entropy(theta: FloatArray, data: Dataset) -> tuple[float, FloatArray]:
    """Mean cross-entropy (1/N) sum_i l(pi_theta(s_i), a_i) = -(1/N) sum_i log softmax(theta[s_i])_{a_i}.

    Spec: MDP-12 (the text sums; the mean only rescales the step, open choice 8). Returns the loss and
    its gradient (1/N) sum_i (pi_theta(. | s_i) - e_{a_i}) on row s_i; shapes theta [S, A] -> (float, [S, A]).
    States must lie in 0..S-1 (ShapeError) and actions in 0..A-1 (InvalidPolicyError), with S, A = theta.shape
    (:func:`reference.mdp.validate_indices`; :class:`Dataset` already refuses negative or fractional ones).
    """
    th = np.asarray(theta, dtype=np.float64)
    if th.ndim != 2:
        raise ShapeError(f"theta must have shape [S, A], got {list(th.shape)}")
    if not np.all(np.isfinite(th)):
        s_bad = int(np.argwhere(~np.isfinite(th))[0][0])
        raise InvalidPolicyError(f"theta has a non-finite logit in row {s_bad} (the loss would be NaN)")
    if len(data) == 0:
        raise ShapeError("cross_entropy of an empty dataset")
    validate_indices(data.states, th.shape[0], name="data.states", what="state", error=ShapeError)
    validate_indices(data.actions, th.shape[1], name="data.actions", what="action", error=InvalidPolicyError)
    z = th - th.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = len(data)
    loss = -float(logp[data.states, data.actions].sum()) / n
    grad = np.zeros_like(th)
    np.add.at(grad, data.states, np.exp(logp[data.states]))
    np.add.at(grad, (data.states, data.actions), -1.0)
    return loss, grad / n


def fit_bc_counts(data: Dataset, *, n_states_plus: int, n_actions: int) -> FloatArray:
    """Closed-form tabular BC: pi(a | s) = #{i: s_i = s, a_i = a} / #{i: s_i = s}; uniform on unseen s.

    Spec: MDP-12, MDP-13 (the tabular cross-entropy minimiser is the empirical conditional: next-token
    prediction's count model). Rows with a deterministic label are one-hot: the infimum of the
    cross-entropy, approached by softmax logits as theta -> infinity. Shape [S, A]. States must lie in
    0..n_states_plus-1 (ShapeError), labels in 0..n_actions-1 (InvalidPolicyError), via
    :func:`reference.mdp.validate_indices`: a negative one is refused, never wrapped to the last row / action.
    """
    n_states_plus = validate_int(n_states_plus, "n_states_plus", minimum=1, error=ShapeError)
    n_actions = validate_int(n_actions, "n_actions", minimum=1, error=ShapeError)
    validate_indices(data.states, n_states_plus, name="data.states", what="state", error=ShapeError,
                     where=lambda i: f"pair {i} (data.states[{i}])")
    validate_indices(data.actions, n_actions, name="data.actions", what="label", error=InvalidPolicyError,
                     where=lambda i: f"pair {i} (data.actions[{i}])")
    counts = np.zeros((n_states_plus, n_actions))
    np.add.at(counts, (data.states, data.actions), 1.0)
    tot = counts.sum(axis=1, keepdims=True)
    return np.where(tot > 0, counts / np.maximum(tot, 1.0), 1.0 / n_actions)


def fit_bc_softmax(data: Dataset, *, n_states_plus: int, n_actions: int, lr: float, n_iters: int,
                   theta0: FloatArray | None = None) -> FloatArray:
    """BC step 2 by gradient descent: minimise_theta (1/N) sum_i l(pi_theta(s_i), a_i); returns theta [S, A].

    Spec: MDP-12. theta0 defaults to 0 (the uniform policy); rows of states absent from D keep theta0, which
    must have shape [n_states_plus, n_actions] (ShapeError). ``lr`` is a finite step > 0 (``ReferenceError_``: a
    negative one ascended the loss, NaN filled theta with NaN).
    """
    n_iters = validate_int(n_iters, "n_iters")
    step = validate_step_size(lr, "lr")
    shape = (validate_int(n_states_plus, "n_states_plus", minimum=1), validate_int(n_actions, "n_actions", minimum=1))
    th = np.zeros(shape) if theta0 is None else np.array(theta0, dtype=np.float64)
    if th.shape != shape:
        raise ShapeError(f"theta0 must have shape {list(shape)} (n_states_plus, n_actions), got {list(th.shape)}")
    if not np.all(np.isfinite(th)):  # with n_iters = 0 a NaN theta0 came back as the fit
        raise InvalidPolicyError(f"theta0 has a non-finite entry at {np.argwhere(~np.isfinite(th))[0].tolist()}")
    for _ in range(n_iters):
        th -= step * cross_entropy(th, data)[1]
    return th


def deploy(pi: FloatArray, mode: Deploy) -> FloatArray:
    """The policy actually run: ``pi`` itself, or its greedy one-hot version (ties: lowest index).

    Spec: MDP-12, MDP-15 (the deployed policy, see the module docstring).
    """
    if mode not in ("stochastic", "greedy"):
        raise ValueError(f"mode must be 'greedy' or 'stochastic', got {mode!r}")
    p = np.asarray(pi, dtype=np.float64)
    if p.ndim != 2:
        raise ShapeError(f"pi must have shape [S, A], got {list(p.shape)}")
    bad = np.flatnonzero(off_simplex_rows(p))
    if bad.size:  # [[1.5, -0.5]] was deployed as is
        raise InvalidPolicyError(f"pi(. | s={int(bad[0])}) = {p[bad[0]].tolist()} is not a distribution")
    if mode == "stochastic":
        return p
    return deterministic_policy(greedy(p), p.shape[1])


def behaviour_cloning(mdp: FiniteMDP, expert: IntArray, *, n_traj: int, horizon: int,
                      rng: np.random.Generator,
                      mode: Deploy = "greedy") -> tuple[FloatArray, Dataset]:
    """Behaviour cloning (MDP-12): sample tau ~ (p0, pi_expert, p), D = {(s_i, a_i)}, fit by cross-entropy.

    Spec: MDP-12, MDP-15 (off-policy: D comes from the expert's state distribution). Returns the deployed
    policy [S, A] and D.
    """
    n_traj = validate_int(n_traj, "n_traj", minimum=1, error=ShapeError)
    pe = deterministic_policy(expert, mdp.n_actions)
    data = dataset_from_trajectories(sample_trajectories(mdp, pe, rng=rng, n=n_traj, horizon=horizon))
    pi = fit_bc_counts(data, n_states_plus=mdp.n_states_plus, n_actions=mdp.n_actions)
    return deploy(pi, mode), data


@dataclass(frozen=True)
class DaggerResult:
    """DAgger's trained policies, one per round ([R, S, A], deployed form) and the final aggregated D."""

    policies: FloatArray
    data: Dataset
    sizes: IntArray


def dagger(mdp: FiniteMDP, expert: IntArray, *, n_rounds: int, n_traj: int, horizon: int,
           rng: np.random.Generator, mode: Deploy = "greedy",
           fit: Callable[[Dataset], FloatArray] | None = None) -> DaggerResult:
    """DAgger (MDP-16) with the exact expert as labelling oracle.

    0. tau ~ (p0, pi_expert, p), D <- D_expert; then for each round: 1. train pi_theta on D (``fit``,
    default :func:`fit_bc_counts`; deployed by ``mode``); 2. tau ~ (p0, pi_theta, p), D_pi = {s_i};
    3. label a_i = pi_expert(s_i); 4. D <- D ∪ D_pi. ``n_rounds`` policies are trained; the last is trained
    on D after ``n_rounds - 1`` aggregations, so the data budget is ``n_rounds * n_traj`` trajectories.
    """
    n_rounds = validate_int(n_rounds, "n_rounds", minimum=1, error=ShapeError)
    n_traj = validate_int(n_traj, "n_traj", minimum=1, error=ShapeError)
    pe = deterministic_policy(expert, mdp.n_actions)
    data = dataset_from_trajectories(sample_trajectories(mdp, pe, rng=rng, n=n_traj, horizon=horizon))

    def default_fit(d: Dataset) -> FloatArray:
        return fit_bc_counts(d, n_states_plus=mdp.n_states_plus, n_actions=mdp.n_actions)

    train = default_fit if fit is None else fit
    pols = []
    sizes = []
    for r in range(n_rounds):
        fitted = np.asarray(train(data), dtype=np.float64)
        if fitted.shape not in ((mdp.n_states_plus, mdp.n_actions), (mdp.n_states, mdp.n_actions)):
            # a custom fit of the wrong shape was returned as the last round's policy unchecked
            raise ShapeError(f"fit returned a policy of shape {list(fitted.shape)}, expected "
                             f"[{mdp.n_states_plus}, {mdp.n_actions}] or [{mdp.n_states}, {mdp.n_actions}]")
        pi = deploy(fitted, mode)
        pols.append(pi)
        sizes.append(len(data))
        if r == n_rounds - 1:
            break
        traj = sample_trajectories(mdp, pi, rng=rng, n=n_traj, horizon=horizon)
        visited = traj.states[:, :-1][traj.valid]
        data = data | label_states(visited, expert)
    return DaggerResult(np.stack(pols), data, np.asarray(sizes, dtype=np.int64))


# ================================================================ the compounding-error chain
@dataclass(frozen=True)
class CompoundingChain:
    """The MDP of :func:`compounding_error_mdp` with its index maps.

    good: int [H, W] (state of good slot j at step t), bad: int [H], correct: int [H, W] (the right
    action at good(t, j)), recover: the right action at bad states.
    """

    mdp: FiniteMDP
    good: IntArray
    bad: IntArray
    correct: IntArray
    recover: int


def compounding_error_mdp(*, horizon: int, width: int, rng: np.random.Generator,
                          recover: int = 1) -> CompoundingChain:
    """A layered MDP (gamma = 1) where a learner that never saw off-expert states compounds its errors.

    Spec: MDP-14 (covariate shift). Step t has W "good" states and one "bad" state; 2 actions.
    good(t, j), correct action c(t, j) (a random bit): reward 0, to a uniform good state of step t+1;
    wrong action: reward -1, to bad(t+1). bad(t): reward -1 for either action; ``recover`` leads to a
    uniform good state of step t+1, the other action to bad(t+1). Step H-1 leads to term. p0 uniform on
    the good states of step 0. The expert (never wrong) has cost 0 and never visits a bad state, so BC
    never sees one; greedily deployed, BC takes action 0 there (tie-break), never ``recover = 1``, and each
    early mistake costs up to H steps (the O(eps H^2) case of Ross & Bagnell 2010), while DAgger's
    rollouts visit bad states and the expert labels them.
    """
    horizon = validate_int(horizon, "horizon", minimum=1, error=ShapeError)
    width = validate_int(width, "width", minimum=1, error=ShapeError)
    if isinstance(recover, bool) or not isinstance(recover, int | np.integer) or recover not in (0, 1):
        raise ShapeError(f"recover must be the action 0 or 1 (an int), got {recover!r}")  # 1.0 was stored as is
    recover = int(recover)
    per = width + 1
    n = horizon * per
    good = np.arange(n).reshape(horizon, per)[:, :width].copy()
    bad = np.arange(n).reshape(horizon, per)[:, width].copy()
    correct = rng.integers(0, 2, size=(horizon, width)).astype(np.int64)
    term = n
    indptr = [0]
    nxt: list[int] = []
    rew: list[float] = []
    prob: list[float] = []

    def add(succ: list[int], r: float) -> None:
        nxt.extend(succ)
        rew.extend([r] * len(succ))
        prob.extend([1.0 / len(succ)] * len(succ))
        indptr.append(len(nxt))

    for t in range(horizon):
        last = t == horizon - 1
        goods = [term] if last else [int(s) for s in good[t + 1]]
        to_bad = [term] if last else [int(bad[t + 1])]
        for j in range(width):
            for a in range(2):
                if a == correct[t, j]:
                    add(goods, 0.0)
                else:
                    add(to_bad, -1.0)
        for a in range(2):
            add(goods if a == recover else to_bad, -1.0)
    p0 = np.zeros(n)
    p0[good[0]] = 1.0 / width
    mdp = from_outcomes(n, 2, indptr, nxt, rew, prob, p0, gamma=1.0,
                        name=f"compounding(H={horizon},W={width})")
    return CompoundingChain(mdp, good, bad, correct, recover)


def policy_cost(mdp: FiniteMDP, pi: FloatArray, *, improper: Improper = "raise") -> float:
    """Expected cost -J(pi) = -E_{s_0 ~ p0}[V^pi(s_0)], exact by a linear solve (MDP-17).

    ``improper`` as :func:`reference.exact.v_pi`: at gamma = 1 an improper ``pi`` (some state never reaches
    term) raises ImproperPolicyError unless ``"finite"``, which evaluates it where its expected total reward is
    finite (e.g. the reward-free loop :func:`expert_policy` may return when such a loop is optimal).
    """
    return -j_pi(mdp, pi, improper=improper)


def on_expert_error(mdp: FiniteMDP, pi: FloatArray, expert: IntArray, *, horizon: int) -> float:
    """eps = (1/H) sum_{t<H} E_{s_t ~ d_t^expert}[pi(a != pi_expert(s_t) | s_t)], exact; Spec: MDP-14.

    The per-step error of the learner on the expert's own state distribution d_t^expert (what supervised
    learning controls). Ross & Bagnell (2010, Thm 2.1; external to the text) bound the cost of imitation by it:
    cost(pi) - cost(pi_expert) <= H^2 eps **when every episode ends within H steps under every policy** (T <= H,
    their fixed task horizon) and each step costs in [0, 1] (rewards in [-1, 0]). Without T <= H the bound fails:
    eps looks at the first H steps only, :func:`policy_cost` at the whole episode (a learner that strays with
    probability delta into a 10-step chain costing 1 per step has gap 10 delta against H^2 eps = H delta). ``expert``
    [S+1] or [S] (the term entry is irrelevant, MDP-11); ``pi`` [S+1, A] or [S, A].
    """
    horizon = validate_int(horizon, "horizon", minimum=1)
    # pi [S+1, A] or [S, A]: every non-terminal row finite and on the simplex (InvalidPolicyError naming the state;
    # a row [2, -1] gave a negative "error rate", a NaN row NaN); the term row is ignored (MDP-11).
    p = validate_policy(mdp, pi)
    e = validate_actions(expert, mdp.n_actions, name="expert")  # 0.9 is refused, not truncated to 0
    if e.shape == (mdp.n_states,):  # no entry for term, as behaviour_cloning / dagger accept it
        e = np.append(e, 0)
    if e.shape != (p.shape[0],):
        raise ShapeError(f"expert must hold one action per state, shape [{mdp.n_states}] or [{p.shape[0]}], "
                         f"got {list(e.shape)}")
    pe = deterministic_policy(e, mdp.n_actions)
    m = mdp.transition_pi(pe)  # dense [S+, S+] or CSR (kept sparse: densifying a large sparse MDP is O(S^2))
    miss = 1.0 - p[np.arange(p.shape[0]), e]
    miss[mdp.term] = 0.0
    d = np.asarray(mdp.p0, dtype=np.float64).copy()
    tot = 0.0
    for _ in range(horizon):
        tot += float(d @ miss)
        d = np.asarray(m.T @ d, dtype=np.float64).ravel()  # d_{t+1} = d_t P_expert
    return tot / horizon

