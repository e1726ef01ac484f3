"""Main job: solve a few MDPs exactly and print every checked theorem of the core with its residual.

Run: ``./run.sh report`` (or ``python -m reference.report [--seed N]``). Each line shows the inventory
ID, what is checked, the measured residual and the bound it must respect (a derived float tolerance or
the theorem's own bound). The exit status is 1 if any check fails.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from reference import exact
from reference.bellman import bellman_optimality_q, bellman_optimality_v, bellman_q, bellman_v, sup_norm
from reference.dp import (
    anchored_value_iteration,
    ancvi_beta,
    ancvi_bound,
    ancvi_default_u0,
    policy_iteration,
    q_value_iteration,
    solve_value_iteration,
    value_iteration,
)
from reference.errors import DivergentReturnError, ImproperPolicyError, NonSummableReturnError
from reference.generators import (
    alternating_reward_mdp,
    positive_cycle_mdp,
    random_layered_mdp,
    random_mdp,
    stay_or_go_mdp,
)
from reference.mdp import FiniteMDP, deterministic_policy, softmax_policy
from reference.sampling import discounted_returns, enumerate_trajectories
from reference.testing.oracles import expectation_by_outcomes, value_tolerance
from reference.tolerance import discount_condition, tolerance


@dataclass
class Line:
    spec: str
    what: str
    measured: float
    bound: float

    @property
    def ok(self) -> bool:
        return bool(self.measured <= self.bound)


def _q_pi_direct(mdp: FiniteMDP, pi: np.ndarray) -> np.ndarray:
    """Q^pi from its own linear system Q = r + gamma P Pi Q over the (s, a) pairs of S (term's Q is 0), one
    dense solve: shares no code with exact.v_pi / q_from_v, so V = E_pi Q and max_a Q* = V* are real checks."""
    n, na, term = mdp.n_states_plus, mdp.n_actions, mdp.term
    p = mdp.transition_dense.reshape(n, na, n) if not mdp.is_sparse else mdp.transition_csr.toarray().reshape(n, na, n)
    live = np.array([s for s in range(n) if s != term], dtype=np.int64)
    k = live.size * na
    m = np.eye(k) - mdp.gamma * np.einsum("sat,tb->satb", p[live][:, :, live], pi[live]).reshape(k, k)
    q = np.zeros((n, na))
    q[live] = np.linalg.solve(m, mdp.r[live].reshape(k)).reshape(live.size, na)
    return q


def _operator_lines(mdp: FiniteMDP, pi: np.ndarray, rng: np.random.Generator) -> list[Line]:
    """The Bellman operators away from their fixed points (a wrong operator with the right fixed point, such as
    (X + B X) / 2, passed every line evaluated at V^pi, V* or Q* only): B^pi and B* on V and on Q at random
    points against the outcome loop of ``expectation_by_outcomes`` (BEL-06, BEL-09, BEL-14, BEL-21), and the
    contraction of each (BEL-08, BEL-15, BEL-22) over random pairs."""
    lines: list[Line] = []
    n, na = mdp.n_states_plus, mdp.n_actions
    scale = max(mdp.max_abs_reward, 1.0) / (1 - mdp.gamma)
    # each side of a comparison sums at most `width` outcome terms and na action terms of size <= R + g scale
    width = max(len(mdp.outcomes(s, a)[0]) for s in range(n) for a in range(na))
    op_tol = 2 * tolerance(mdp.max_abs_reward + mdp.gamma * scale, terms=width + na)
    gap = {"BEL-06": 0.0, "BEL-14": 0.0, "BEL-09": 0.0, "BEL-21": 0.0}
    for _ in range(5):
        x = rng.uniform(-scale, scale, n)
        xq = rng.uniform(-scale, scale, (n, na))
        x[mdp.term], xq[mdp.term] = 0.0, 0.0
        gap["BEL-06"] = max(gap["BEL-06"], sup_norm(bellman_v(mdp, pi, x)
                                                    - (pi * expectation_by_outcomes(mdp, x)).sum(axis=1)))
        gap["BEL-14"] = max(gap["BEL-14"], sup_norm(bellman_optimality_v(mdp, x)
                                                    - expectation_by_outcomes(mdp, x).max(axis=1)))
        want_q = expectation_by_outcomes(mdp, (pi * xq).sum(axis=1))
        want_q[mdp.term] = 0.0
        gap["BEL-09"] = max(gap["BEL-09"], sup_norm(bellman_q(mdp, pi, xq) - want_q))
        want_q = expectation_by_outcomes(mdp, xq.max(axis=1))
        want_q[mdp.term] = 0.0
        gap["BEL-21"] = max(gap["BEL-21"], sup_norm(bellman_optimality_q(mdp, xq) - want_q))
    names = {"BEL-06": "B^pi V", "BEL-14": "B* V", "BEL-09": "B^pi Q", "BEL-21": "B* Q (max inside)"}
    for spec, value in gap.items():
        lines.append(Line(spec, f"{names[spec]} at 5 random points = the outcome loop's E[r + g ...]", value, op_tol))
    ops: list[tuple[str, str, Callable[[np.ndarray], np.ndarray], tuple[int, ...]]] = [
        ("BEL-08", "B^pi", lambda z: bellman_v(mdp, pi, z), (n,)),
        ("BEL-15", "B*", lambda z: bellman_optimality_v(mdp, z), (n,)),
        ("BEL-22", "B* on Q", lambda z: bellman_optimality_q(mdp, z), (n, na))]
    for spec, name, op, shape in ops:
        worst = 0.0
        allowance = 0.0
        for _ in range(200):
            x, y = rng.uniform(-scale, scale, (2, *shape))
            dist = sup_norm(x - y)
            worst = max(worst, sup_norm(op(x) - op(y)) / dist)
            # each evaluation rounds by at most tolerance(R + gamma * scale, |S+| + A terms): twice that over
            # ||x - y||
            allowance = max(allowance, 2 * tolerance(mdp.max_abs_reward + mdp.gamma * scale,
                                                     terms=n + na) / dist)
        lines.append(Line(spec, f"max ratio ||{name} x - {name} y|| / ||x - y|| (200 pairs) <= gamma", worst,
                          mdp.gamma + allowance))
    return lines


def _checks_on(mdp: FiniteMDP, rng: np.random.Generator) -> tuple[list[Line], np.ndarray]:
    """The core's checks on one MDP; returns the lines and the checked V* (policy iteration's)."""
    lines: list[Line] = []
    tol = value_tolerance(mdp)
    pi = softmax_policy(rng.normal(size=(mdp.n_states_plus, mdp.n_actions)))
    v = exact.v_pi(mdp, pi)
    # V(term) = 0 is what the model makes true: term absorbing with reward 0 under every action (MDP-11)
    term_row = max(max(abs(float(np.sum(pr[ns == mdp.term])) - 1.0), float(np.max(np.abs(rw)))) for pr, rw, ns in
                   (mdp.outcomes(mdp.term, a) for a in range(mdp.n_actions)))
    lines.append(Line("MDP-11/20", "term absorbing, reward 0: max(max_a |P(term|term,a) - 1|, |r|, |V^pi(term)|)",
                      max(term_row, abs(float(v[mdp.term]))), 0.0))
    small = mdp.n_states * mdp.n_actions <= 4000  # the dense (s, a) systems below; larger MDPs skip those lines
    if small:
        q_direct = _q_pi_direct(mdp, pi)
        lines.append(Line("MDP-22", "V^pi = E_pi Q^pi (Q^pi from its own (s, a) linear system)",
                          sup_norm(v - (pi * q_direct).sum(axis=1)), tol))
        lines.append(Line("BEL-09", "||B^pi Q^pi - Q^pi|| (Q^pi from its own (s, a) linear system)",
                          sup_norm(bellman_q(mdp, pi, q_direct) - q_direct), tol))
    lines.append(Line("MDP-24", "V^pi = E[r + g V^pi(s')] (outcome loop)",
                      sup_norm(v - (pi * expectation_by_outcomes(mdp, v)).sum(axis=1)), tol))
    lines.append(Line("BEL-04", "||B^pi V^pi - V^pi||", sup_norm(bellman_v(mdp, pi, v) - v), tol))
    lines.extend(_operator_lines(mdp, pi, rng))
    res = policy_iteration(mdp)
    vs = res.value
    lines.append(Line("BEL-12", "||B* V* - V*||", sup_norm(bellman_optimality_v(mdp, vs) - vs), tol))
    if small:
        q_opt = _q_pi_direct(mdp, deterministic_policy(res.policy, mdp.n_actions))
        lines.append(Line("BEL-21", "||B* Q* - Q*|| (Q* = Q^{pi*} from its own (s, a) linear system)",
                          sup_norm(bellman_optimality_q(mdp, q_opt) - q_opt), tol))
        lines.append(Line("BEL-23", "||max_a Q* - V*|| (Q* = Q^{pi*} from its own (s, a) linear system)",
                          sup_norm(q_opt.max(axis=1) - vs), tol))
    # V* dominates every policy: a random one, and the greedy policy of a solver that shares no code with PI
    # (certified value iteration, also used by BEL-25 below), which is near-optimal, so a V* short of optimal
    # shows here (a random policy alone let an earlier PI iterate pass)
    sol = solve_value_iteration(mdp, eps=1e-8)
    v_greedy = exact.v_pi(mdp, deterministic_policy(sol.policy, mdp.n_actions))
    lines.append(Line("BEL-10", "max_s (V^pi - V*) over a random pi and VI's greedy policy (signed)",
                      float(max(np.max(v - vs), np.max(v_greedy - vs))), tol))
    lines.append(Line("BEL-34", "PI: max decrease of V^{pi_k} across iterations",
                      max(0.0, float(np.max(res.values[:-1] - res.values[1:]))), tol))
    # One sweep of B* rounds by at most delta = tolerance(R + gamma max|V|, |S+| terms) (value_scale: the
    # iterates stay within max(|V^0|, R / (1 - gamma)) + |V*|); the lines below allow counted multiples of it.
    vi = value_iteration(mdp, np.zeros(mdp.n_states_plus), num_iters=50)
    big = max(float(np.max(np.abs(vi.values))), sup_norm(vs))
    delta = tolerance(mdp.max_abs_reward + mdp.gamma * big, terms=mdp.n_states_plus)
    lines.append(Line("BEL-25", "VI is its definition: max_k ||V^{k+1} - B* V^k|| (operator module)",
                      max(sup_norm(vi.values[k + 1] - bellman_optimality_v(mdp, vi.values[k])) for k in range(50)),
                      2 * delta))
    # BEL-26: Q-value iteration, checked against the operator module's B* on Q (until 2026-12-07 the V-VI line
    # above was labelled BEL-26); Q^k is within the same kind of sweep rounding (one more term: the action max)
    qvi = q_value_iteration(mdp, np.zeros((mdp.n_states_plus, mdp.n_actions)), num_iters=50)
    big_q = max(float(np.max(np.abs(qvi.values))), sup_norm(vs))
    delta_q = tolerance(mdp.max_abs_reward + mdp.gamma * big_q, terms=mdp.n_states_plus + 1)
    lines.append(Line("BEL-26", "Q-VI is its definition: max_k ||Q^{k+1} - B* Q^k|| (operator module)",
                      max(sup_norm(qvi.values[k + 1] - bellman_optimality_q(mdp, qvi.values[k])) for k in range(50)),
                      2 * delta_q))
    if small:  # BEL-27's "and the same for Q", step by step as for V below, against Q* from its own system
        step_q = max(sup_norm(qvi.values[k + 1] - q_opt) - mdp.gamma * sup_norm(qvi.values[k] - q_opt)
                     for k in range(50))
        lines.append(Line("BEL-27", "Q-VI: max_k ||Q^{k+1} - Q*|| - g ||Q^k - Q*|| (signed)", step_q, delta_q + tol))
    # BEL-27 step by step: ||V^{k+1} - V*|| <= gamma ||V^k - V*|| + (one sweep's rounding + ||B* V* - V*||); a
    # sweep that contracts towards another fixed point fails it once near that point (the cumulative form
    # g^k ||V^0 - V*|| stays above the error for all 50 sweeps at gamma = 0.99)
    step = max(sup_norm(vi.values[k + 1] - vs) - mdp.gamma * sup_norm(vi.values[k] - vs) for k in range(50))
    lines.append(Line("BEL-27", "max_k ||V^{k+1} - V*|| - g ||V^k - V*|| (signed)", step, delta + tol))
    u0 = ancvi_default_u0(mdp)
    # the bound below needs U^0 <= B* U^0 (E-10): checked, not assumed (ancvi_default_u0 = r_min / (1 - gamma))
    lines.append(Line("BEL-30", "hypothesis of the bound (E-10): max(U^0 - B* U^0) (signed)",
                      float(np.max(u0 - bellman_optimality_v(mdp, u0))),
                      tolerance(mdp.max_abs_reward + mdp.gamma * sup_norm(u0), terms=mdp.n_states_plus)))
    anc = anchored_value_iteration(mdp, u0, num_iters=50)
    big_u = max(float(np.max(np.abs(anc.values))), sup_norm(u0))
    delta_u = tolerance(mdp.max_abs_reward + mdp.gamma * big_u, terms=mdp.n_states_plus + 2)
    # beta_k and the bound's constant are computed here from the text's formulas, not read from reference.dp
    # (a wrong ancvi_beta, even beta = 0 after k = 0, i.e. plain VI, passed when both sides used it)
    def beta(k: int) -> float:  # 1 / sum_{i<=k} gamma^{-2i} = gamma^{2k} / sum_{j<=k} gamma^{2j}
        return float(mdp.gamma ** (2 * k) / math.fsum(mdp.gamma ** (2 * j) for j in range(k + 1)))

    def c_text(k: int) -> float:  # (gamma^-1 - gamma)(1 + gamma - gamma^{k+1}) / (gamma^{-(k+1)} - gamma^{k+1})
        g = mdp.gamma
        lead = 1.0 + g - g ** (k + 1)
        if g == 1.0:
            return lead / (k + 1)
        return float((1.0 / g - g) * lead / (g ** (-(k + 1)) - g ** (k + 1)))

    defn = max(sup_norm(anc.values[k] - (beta(k) * u0 + (1.0 - beta(k))
                                         * bellman_optimality_v(mdp, anc.values[k - 1]))) for k in range(1, 51))
    lines.append(Line("BEL-29", "AncVI is its definition: max_k ||U^k - (b_k U^0 + (1 - b_k) B* U^{k-1})||",
                      defn, 2 * delta_u))
    du = sup_norm(u0 - vs)
    excess = max(sup_norm(bellman_optimality_v(mdp, anc.values[k]) - anc.values[k])
                 - c_text(k) * du for k in range(51))
    # the package's constant is the text's (to rounding; its stable form differs by a few ulps)
    lines.append(Line("BEL-30", "max_k |ancvi_bound - the text's constant| / constant",
                      max(abs(ancvi_bound(mdp.gamma, k) - c_text(k)) / c_text(k) for k in range(51)),
                      tolerance(1.0, terms=4 * 51)))
    lines.append(Line("BEL-29", "max_k |ancvi_beta - 1 / sum_i gamma^{-2i}| / beta_k",
                      max(abs(ancvi_beta(mdp.gamma, k) - beta(k)) / beta(k) for k in range(51)),
                      tolerance(1.0, terms=2 * 51)))
    # the bound is on exact iterates: each computed step adds at most delta_u, and a step is a
    # (1 - b_k) gamma-contraction, so U^k is within k delta_u of the exact one, which moves its residual by at most
    # (1 + gamma) k delta_u; one more delta_u for the residual's own sweep: (2 * 50 + 1) delta_u at k = 50
    lines.append(Line("BEL-30", "max_k AncVI residual - bound (signed)", excess, (2 * 50 + 1) * delta_u))
    lines.append(Line("BEL-27", f"VI's certified stop ({sol.iterations} sweeps; the rate as a certificate): "
                      f"||V - V*|| <= 1e-8", sup_norm(sol.value - vs), 1e-8))  # the certificate itself: the
    # worst-case rounding bound of V* (value_tolerance, 3.54e-7 on Taxi) would swamp the claim; measured ~1e-14
    return lines, vs


def _gym_oracle(env_id: str, gamma: float, vs: np.ndarray) -> tuple[list[Line], str]:
    """V* and J against a value iteration written here on gymnasium's own ``env.unwrapped.P`` (not
    ``from_gymnasium``'s MDP): a wrong builder (the slippery flag dropped, the gamma ignored, the rewards of
    ``done`` transitions lost) passed every other line. Compared on the states an episode can occupy (the
    start states and those entered by a transition that is not ``done``); a ``done`` transition's next value is
    0. Iterated until the VI error bound g ||V^{k+1} - V^k|| / (1 - g) is below 1e-12 (BEL-27). Returns the
    lines and a one-line summary (V*(s0), J) for the report."""
    from reference.mdp import toy_text_tables

    table, isd = toy_text_tables(env_id)
    n = len(table)
    v = np.zeros(n)
    bound = math.inf
    sweeps = 0
    while bound > 1e-12 and sweeps < 100_000:
        new = np.array([max(math.fsum(p * (r + (0.0 if done else gamma * v[s2])) for p, s2, r, done in table[s][a])
                            for a in table[s]) for s in range(n)])
        bound = gamma * float(np.max(np.abs(new - v))) / (1.0 - gamma)
        v = new
        sweeps += 1
    occupied = np.zeros(n, dtype=bool)
    stack = [int(s) for s in np.flatnonzero(isd > 0)]
    occupied[stack] = True
    while stack:
        s = stack.pop()
        for a in table[s]:
            for p, s2, _r, done in table[s][a]:
                if p > 0 and not done and not occupied[s2]:
                    occupied[s2] = True
                    stack.append(int(s2))
    diff = float(np.max(np.abs(v[occupied] - vs[:n][occupied])))
    j_gym, j_ours = float(isd @ v), float(isd @ vs[:n])
    allowance = bound + tolerance(max(float(np.max(np.abs(v))), 1.0), terms=n, condition=discount_condition(gamma))
    lines = [Line("MDP-04", f"V* = VI on gymnasium's own P ({sweeps} sweeps, {int(occupied.sum())} occupiable states)",
                  diff, allowance),
             Line("MDP-17", "J = E_p0 V*: |ours - gymnasium P's|", abs(j_gym - j_ours), allowance)]
    return lines, f"J = E_p0 V*(s0) = {j_ours:.10g}"


def _pathologies() -> list[Line]:
    lines: list[Line] = []
    mdp = stay_or_go_mdp()
    res = value_iteration(mdp, np.array([5.0, 0.0]), num_iters=10)
    lines.append(Line("BEL-35/E-12", "VI from V0 = 5 on stay-or-go never moves: |V^10 - 5|",
                      abs(res.values[-1, 0] - 5.0), 0.0))
    try:
        exact.v_pi(mdp, deterministic_policy([0, 0], 2))
        raised = 0.0
    except ImproperPolicyError as e:  # exactly this class: its subclasses (divergent, non-summable) are other claims
        raised = 1.0 if type(e) is ImproperPolicyError else 0.0
    lines.append(Line("BEL-35", "improper policy at gamma = 1 raises ImproperPolicyError (0 = raised)",
                      1.0 - raised, 0.0))
    # another exception (a misclassification) is a FAIL line of its own, not a traceback that loses the summary
    div, got = 0.0, "no error"
    try:
        exact.v_pi(positive_cycle_mdp(), deterministic_policy([0, 0, 0], 2))
    except DivergentReturnError:
        div, got = 1.0, "DivergentReturnError"
    except Exception as exc:
        got = type(exc).__name__
    lines.append(Line("BEL-36", f"positive-reward cycle detected as V = +inf (0 = detected; got {got})",
                      1.0 - div, 0.0))
    alt = alternating_reward_mdp()
    ns, got = 0.0, "no error"
    try:
        exact.v_pi(alt, np.ones((3, 1)))
    except NonSummableReturnError:
        ns, got = 1.0, "NonSummableReturnError"
    except Exception as exc:
        got = type(exc).__name__
    lines.append(Line("BEL-38", f"+1,-1,... detected as non-summable (0 = detected; got {got})", 1.0 - ns, 0.0))
    h = exact.bias_value(alt, np.ones((3, 1)))
    lines.append(Line("BEL-38", "Cesaro/Abel values: max(|h(0) - 1/2|, |h(1) + 1/2|) (+1,-1,... and -1,+1,...)",
                      max(abs(h[0] - 0.5), abs(h[1] + 0.5)), tolerance(1.0, terms=alt.n_states_plus)))
    g_abel = 0.999999
    abel = alternating_reward_mdp(gamma=g_abel)
    v_abel = exact.v_pi(abel, np.ones((3, 1)))[0]
    # V_gamma(0) = 1 - gamma + gamma^2 - ... = 1 / (1 + gamma), which tends to the Abel value 1/2 as gamma -> 1
    # solve rounding: kappa(I - gamma P) = (1 + gamma) / (1 - gamma) times eps times |V| <= 1 (the values here
    # are at most 1, far below the generic bound R / (1 - gamma) that value_tolerance assumes)
    lines.append(Line("BEL-38", "Abel: |V_{gamma=1-1e-6}(0) - 1/(1 + gamma)| (-> 1/2)", abs(v_abel - 1 / (1 + g_abel)),
                      tolerance(1.0, terms=abel.n_states_plus, condition=discount_condition(g_abel))))
    return lines


def _enumeration_check(rng: np.random.Generator) -> list[Line]:
    mdp = random_layered_mdp(rng, 4, 2, 2, gamma=1.0, reward_outcomes=2, early_stop_prob=0.2)
    pi = softmax_policy(rng.normal(size=(mdp.n_states_plus, 2)))
    tr = enumerate_trajectories(mdp, pi)
    j = float(tr.weights @ discounted_returns(tr.rewards, mdp.gamma)[:, 0])
    return [Line("MDP-20", f"gamma = 1 layered MDP: |sum_tau p(tau) G_0 - J| over {tr.n} trajectories",
                 abs(j - exact.j_pi(mdp, pi)), value_tolerance(mdp, horizon=4.0))]


def main(argv: list[str] | None = None) -> int:
    """Print the report (``./run.sh report``); exit status 0 if every check passed, else 1.

    Spec: none (the command itself; each line of the report names its inventory ID).
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random MDPs and policies (>= 0)")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    rng = np.random.default_rng(args.seed)
    sections: list[tuple[str, Callable[[], list[Line]]]] = []
    try:
        import gymnasium

        from reference.mdp import from_gymnasium

        summaries: dict[str, str] = {}
        frozen_v: list[np.ndarray] = []

        def toy(env_id: str, gamma: float) -> Callable[[], list[Line]]:
            def run() -> list[Line]:
                lines, vs = _checks_on(from_gymnasium(env_id, gamma=gamma), rng)
                extra, summaries[env_id] = _gym_oracle(env_id, gamma, vs)
                if env_id == "FrozenLake-v1":
                    frozen_v.append(vs)
                return lines + extra
            return run

        limits = {e: gymnasium.spec(e).max_episode_steps for e in ("FrozenLake-v1", "Taxi-v4", "CliffWalking-v1")}
        flags = {"FrozenLake-v1": "is_slippery=True, the 4x4 map"}
        for env_id, gamma in (("FrozenLake-v1", 0.99), ("Taxi-v4", 0.99), ("CliffWalking-v1", 0.99)):
            limit = (f"gymnasium's registered {limits[env_id]}-step time limit is not part of the MDP"
                     if limits[env_id] else "no registered time limit")
            sections.append((f"{env_id} (gamma = {gamma}; {flags.get(env_id, 'default options')}; gymnasium "
                             f"{gymnasium.__version__}; {limit})", toy(env_id, gamma)))
    except ImportError:
        print("(gymnasium not installed: skipping the toy-text environments)")
        summaries, frozen_v = {}, []
    sections.append(("random MDP S=50 A=4 gamma=0.95 (stochastic rewards, terminal transitions)",
                     lambda: _checks_on(random_mdp(rng, 50, 4, gamma=0.95, branching=5, terminal_prob=0.05,
                                                   reward_outcomes=2), rng)[0]))
    sections.append(("exact trajectory enumeration", lambda: _enumeration_check(rng)))
    sections.append(("gamma = 1 pathologies", _pathologies))
    print("Each line: its status (ok, or a failure), the inventory ID, what is checked, the measured quantity and "
          "the bound it must "
          "respect.\nA residual is a sup-norm ||.||_inf over the states (a derived float tolerance on the right); "
          "(signed) lines\nmay be negative; a bound from a theorem (gamma, a rate) carries the rounding allowance "
          "of its computation.")
    failures = 0
    for title, fn in sections:
        t0 = time.perf_counter()
        lines = fn()
        print(f"\n== {title}  ({time.perf_counter() - t0:.2f} s)")
        for ln in lines:
            failures += not ln.ok
            print(f"  {'ok ' if ln.ok else 'FAIL'} {ln.spec:12s} {ln.what:70s} {ln.measured:10.3e} <= {ln.bound:.3e}")
        for env_id, summary in summaries.items():
            if title.startswith(env_id + " "):
                print(f"  {summary}")
    if frozen_v:  # the V* the lines above checked (policy iteration's), not a second solve
        print("\nFrozenLake-v1 (gamma = 0.99, slippery, 4x4) V*, the checked policy-iteration value:")
        for row in frozen_v[0][:16].reshape(4, 4):
            print("   " + " ".join(f"{x:6.3f}" for x in row))
    print(f"\n{'all checks passed' if failures == 0 else f'{failures} check(s) FAILED'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
