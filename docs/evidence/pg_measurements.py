"""Measurements behind docs/policy_gradients.md (writes docs/evidence/pg_measurements.md).

Run: ``.venv/bin/python docs/evidence/pg_measurements.py`` from the repository root (about 4.5 minutes on
one core: 170 seeded policy-gradient runs of 1500-8000 updates; progress goes to stderr). Everything is
float64 and deterministic.

What it measures, section by section (inventory IDs of spec/pg.toml):

* PG-06, PG-08, PG-10, PG-12, PG-14, PG-15, PG-19, PG-25, PG-26: exact bias ||E g - grad J|| and trace-variance
  of the estimators #0..#4 on the fixture of "Measured numbers" (enumeration of all 584 trajectories), and
  ||grad J||.
* PG-29, PG-30: the gamma-trick (estimator #2 with b = 0, no gamma^t, artificial gamma~) on the gamma = 1 fixture.
* PG-15, PG-19: the seed-0 exhibit Var(#3, b = 0) > Var(#3, b = V^pi) > Var(#3, b*).
* PG-27, PG-32, PG-38, PG-39: Alg. #1 (k = inf), Alg. #2 (k = 2) and A2C (k = 5) on the 3x2x2 layered MDPs of
  tests/reference/test_pg_algorithms.py (seeds 0..7, stream default_rng(100 + seed)): the fraction of the
  initial gap left, the exact ||grad J|| at the final iterate (plateaus), Alg. #1 with the 4-feature linear
  critic, and Alg. #1 on seed 1 after 8000 updates.
* PG-27, PG-32, PG-38: the same three algorithms on the MDPs 0..5 with 8 other streams per MDP,
  default_rng(1000 + 8 * seed + j), j = 0..7 (48 runs per algorithm), every run listed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from reference.dp import v_star  # noqa: E402
from reference.exact import j_pi, q_pi, v_pi  # noqa: E402
from reference.generators import random_layered_mdp  # noqa: E402
from reference.gradients import (  # noqa: E402
    g_k_step,
    g_q_estimate,
    g_reward_to_go,
    g_state_baseline,
    g_total_return,
    grad_j_exact,
    optimal_baseline,
)
from reference.mdp import FiniteMDP, FloatArray, uniform_policy  # noqa: E402
from reference.pg_algorithms import (  # noqa: E402
    PGResult,
    a2c,
    policy_gradient_algorithm_1,
    policy_gradient_algorithm_2,
)
from reference.policies import softmax  # noqa: E402
from reference.sampling import enumerate_trajectories, exact_moments  # noqa: E402

OUT = ROOT / "docs" / "evidence" / "pg_measurements.md"
MARGIN = 0.05  # acceptance margin of tests/reference/test_pg_algorithms.py
LR_THETA, LR_PHI = 1.0, 0.2
TABLE_SEEDS = [(0, 0.9), (1, 0.9), (2, 1.0), (3, 0.9), (4, 0.9), (5, 0.9)]  # the tests' six seeds
EXTRA_SEEDS = [(6, 0.9), (7, 0.9)]  # not in the test set
N_STREAMS = 8
ALGS = ("Alg. #1", "Alg. #2", "A2C")
_T0 = time.monotonic()


def _log(msg: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f} s] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ estimators (exact)
def _fixture(seed: int, gamma: float) -> tuple[FiniteMDP, FloatArray]:
    """The fixture of tests/reference/test_gradients.py::_fixture: theta ~ N(0, 1) from the MDP's generator."""
    rng = np.random.default_rng(seed)
    mdp = random_layered_mdp(rng, 3, 2, 2, gamma=gamma, reward_outcomes=2, early_stop_prob=0.2)
    theta = rng.normal(size=(mdp.n_states_plus, mdp.n_actions))
    return mdp, theta


def _estimators(mdp: FiniteMDP, theta: FloatArray) -> tuple[int, float, list[tuple[str, float, float]]]:
    """(number of trajectories, ||grad J||, [(name, bias, trace-variance)]) of the estimators #0..#4."""
    pi = softmax(theta)
    tr = enumerate_trajectories(mdp, pi)
    q, v = q_pi(mdp, pi), v_pi(mdp, pi)
    v_phi = v + np.random.default_rng(0).normal(size=v.size)  # V_phi = V^pi + N(0, 1), seed 0
    b_star = optimal_baseline(mdp, theta)
    zero = np.zeros_like(v)
    g, term = mdp.gamma, mdp.term
    rows: list[tuple[str, FloatArray]] = [
        ("#0 G_0 grad log p", g_total_return(theta, tr, gamma=g)),
        ("#1 reward-to-go", g_reward_to_go(theta, tr, gamma=g)),
        ("#2 b = V^pi", g_state_baseline(theta, tr, v, gamma=g)),
        ("#2 b = b*", g_state_baseline(theta, tr, b_star, gamma=g)),
        ("#3 Q^pi, b = 0", g_q_estimate(theta, tr, q, zero, gamma=g)),
        ("#3 Q^pi, b = V^pi", g_q_estimate(theta, tr, q, v, gamma=g)),
        ("#3 Q^pi, b = b*", g_q_estimate(theta, tr, q, b_star, gamma=g)),
        ("#4 k=1, V^pi", g_k_step(theta, tr, v, v, gamma=g, k=1, term=term)),
        ("#4 k=2, V^pi", g_k_step(theta, tr, v, v, gamma=g, k=2, term=term)),
        ("#4 k=1, V_phi", g_k_step(theta, tr, v_phi, v_phi, gamma=g, k=1, term=term)),
        ("#4 k=2, V_phi", g_k_step(theta, tr, v_phi, v_phi, gamma=g, k=2, term=term)),
    ]
    grad = grad_j_exact(mdp, theta)
    out = []
    for name, est in rows:
        m = exact_moments(est, tr.weights)
        out.append((name, float(np.linalg.norm(m.mean - grad)), m.trace_variance))
    return tr.n, float(np.linalg.norm(grad)), out


def _bias(x: float) -> str:
    return f"{x:.4f}" if x >= 1e-4 else f"{x:.0e}"


def estimator_table() -> list[str]:
    n9, norm9, r9 = _estimators(*_fixture(3, 0.9))
    n1, norm1, r1 = _estimators(*_fixture(3, 1.0))
    out = [f"Trajectories enumerated: {n9} (gamma = 0.9), {n1} (gamma = 1).", "",
           "| estimator | bias, gamma=0.9 | trace-var, gamma=0.9 | bias, gamma=1 | trace-var, gamma=1 |",
           "|---|---|---|---|---|"]
    for (name, b9, v9), (_, b1, v1) in zip(r9, r1, strict=True):
        out.append(f"| {name} | {_bias(b9)} | {v9:.4f} | {_bias(b1)} | {v1:.4f} |")
    out += ["", f"||grad J|| = {norm9:.3f} (gamma = 0.9), {norm1:.3f} (gamma = 1). Bias = ||E g - grad J||.", "",
            "The biases printed as `Ne-17` / `Ne-16` are rounding of an exactly unbiased estimator: their digits "
            "depend on the summation order of the BLAS (`w @ samples` in reference.sampling.exact_moments) and "
            "are not meant to be reproduced across machines; anything below 1e-15 is zero here."]
    return out


def gamma_trick() -> list[str]:
    mdp, theta = _fixture(3, 1.0)
    tr = enumerate_trajectories(mdp, softmax(theta))
    grad = grad_j_exact(mdp, theta)
    out = ["| gamma~ | bias \\|\\|E g - grad J\\|\\| | trace-var |", "|---|---|---|"]
    for gt in (1.0, 0.9, 0.5, 0.1):
        est = g_state_baseline(theta, tr, np.zeros(mdp.n_states_plus), gamma=gt, gamma_t=False)
        m = exact_moments(est, tr.weights)
        out.append(f"| {gt} | {float(np.linalg.norm(m.mean - grad)):.4f} | {m.trace_variance:.4f} |")
    return out


def baseline_exhibit() -> list[str]:
    mdp, theta = _fixture(0, 1.0)
    tr = enumerate_trajectories(mdp, softmax(theta))
    pi = softmax(theta)
    q, v = q_pi(mdp, pi), v_pi(mdp, pi)
    cells = []
    for name, b in (("b = 0", np.zeros_like(v)), ("b = V^pi", v), ("b = b*", optimal_baseline(mdp, theta))):
        var = exact_moments(g_q_estimate(theta, tr, q, b, gamma=1.0), tr.weights).trace_variance
        cells.append(f"Var(#3, {name}) = {var:.4f}")
    return ["Fixture seed 0, gamma = 1: " + ", ".join(cells) + "."]


# ------------------------------------------------------------------------------ PG algorithms
def _mdp(seed: int, gamma: float) -> FiniteMDP:
    """The MDP of tests/reference/test_pg_algorithms.py::_mdp."""
    return random_layered_mdp(np.random.default_rng(seed), 3, 2, 2, gamma=gamma, reward_outcomes=2)


def _layer_features(mdp: FiniteMDP) -> FloatArray:
    """The 4-feature linear critic of the tests: one-hot layer + in-layer index."""
    x = np.zeros((mdp.n_states_plus, 4))
    s = np.arange(mdp.n_states)
    x[s, s // 2] = 1.0
    x[s, 3] = s % 2
    return x


class _Gap:
    """(J* - J_final) / (J* - J(uniform)) with J* from policy iteration, J exact."""

    def __init__(self, mdp: FiniteMDP) -> None:
        self.mdp = mdp
        self.j_star = float(mdp.p0 @ v_star(mdp))
        self.j0 = j_pi(mdp, uniform_policy(mdp))
        assert self.j_star > self.j0

    def __call__(self, res: PGResult) -> float:
        return (self.j_star - float(res.j_history[-1])) / (self.j_star - self.j0)


Run = tuple[float, float]  # (gap fraction, ||grad J|| at the final iterate)


def _run(alg: str, mdp: FiniteMDP, gap: _Gap, stream: int, updates: int | None = None) -> Run:
    rng = np.random.default_rng(stream)
    if alg == "Alg. #1":
        res = policy_gradient_algorithm_1(mdp, rng=rng, num_iters=updates or 1500, k=None, lr_theta=LR_THETA,
                                          lr_phi=LR_PHI)
    elif alg == "Alg. #2":
        res = policy_gradient_algorithm_2(mdp, rng=rng, num_iters=updates or 1500, k=2, lr_theta=LR_THETA,
                                          lr_phi=LR_PHI)
    else:
        res = a2c(mdp, rng=rng, num_updates=updates or 2000, k=5, lr_theta=LR_THETA, lr_phi=LR_PHI)
    return gap(res), float(np.linalg.norm(grad_j_exact(mdp, res.theta)))


def _cell(x: float) -> str:
    return f"**{x:.3f}**" if x > MARGIN else f"{x:.3f}"


def algorithm_tables() -> list[str]:
    runs: dict[tuple[int, str], Run] = {}
    for seed, gamma in TABLE_SEEDS + EXTRA_SEEDS:
        mdp = _mdp(seed, gamma)
        gap = _Gap(mdp)
        for alg in ALGS:
            runs[seed, alg] = _run(alg, mdp, gap, 100 + seed)
            _log(f"stream 100 + {seed}: MDP {seed} {alg}: {runs[seed, alg][0]:.4f}")
    out = ["Stream `default_rng(100 + seed)`; bold: above the 0.05 margin.", "",
           "| seed / gamma | Alg. #1 (k = inf, 1500 updates) | Alg. #2 (k = 2, 1500 updates) | "
           "A2C (k = 5, 2000 segments) |", "|---|---|---|---|"]
    for seed, gamma in TABLE_SEEDS + EXTRA_SEEDS:
        note = "" if seed < 6 else " (not in the test set)"
        out.append(f"| {seed} / {gamma}{note} | " + " | ".join(_cell(runs[seed, a][0]) for a in ALGS) + " |")
    out += ["", "Exact ||grad J|| at the final iterate of the same runs:", "",
            "| seed | Alg. #1 | Alg. #2 | A2C |", "|---|---|---|---|"]
    for seed, _ in TABLE_SEEDS + EXTRA_SEEDS:
        out.append(f"| {seed} | " + " | ".join(f"{runs[seed, a][1]:.1e}" for a in ALGS) + " |")

    mdp = _mdp(2, 0.9)
    res = policy_gradient_algorithm_1(mdp, rng=np.random.default_rng(7), num_iters=1500, k=1, lr_theta=LR_THETA,
                                      lr_phi=LR_PHI, features=_layer_features(mdp))
    lin = _Gap(mdp)(res)
    _log(f"linear critic: {lin:.4f}")
    mdp = _mdp(1, 0.9)
    long_gap, long_norm = _run("Alg. #1", mdp, _Gap(mdp), 101, updates=8000)
    _log(f"Alg. #1 seed 1, 8000 updates: {long_gap:.4f}")
    out += ["", f"Alg. #1, k = 1, linear critic with 4 features (one-hot layer + in-layer index), MDP seed 2 / "
            f"gamma 0.9, stream `default_rng(7)` (the stream of "
            f"`test_PG_27_algorithm_1_with_k_step_and_linear_critic_reaches_optimal_J`), 1500 updates: {lin:.3f}.",
            "", f"Alg. #1 on seed 1 (stream `default_rng(101)`) after 8000 updates: gap fraction {long_gap:.3f}, "
            f"||grad J|| = {long_norm:.1e}."]
    return out


def other_streams() -> list[str]:
    runs: dict[tuple[str, int, int], Run] = {}
    for seed, gamma in TABLE_SEEDS:
        mdp = _mdp(seed, gamma)
        gap = _Gap(mdp)
        for alg in ALGS:
            for j in range(N_STREAMS):
                runs[alg, seed, j] = _run(alg, mdp, gap, 1000 + N_STREAMS * seed + j)
            _log(f"other streams: MDP {seed} {alg}: " + " ".join(f"{runs[alg, seed, j][0]:.3f}"
                                                                   for j in range(N_STREAMS)))
    out = [f"Streams `default_rng(1000 + {N_STREAMS} * seed + j)`, j = 0..{N_STREAMS - 1} (so MDP 0 uses 1000..1007, "
           f"MDP 5 uses 1040..1047); everything else as in the table above. Bold: above the 0.05 margin.", ""]
    summary = ["| algorithm | misses (of 48) | missed values by MDP |", "|---|---|---|"]
    for alg in ALGS:
        out += [f"### {alg}", "",
                "| MDP seed / gamma | " + " | ".join(f"j = {j}" for j in range(N_STREAMS)) + " | misses |",
                "|---|" + "---|" * (N_STREAMS + 1)]
        by_mdp = []
        total = 0
        for seed, gamma in TABLE_SEEDS:
            vals = [runs[alg, seed, j][0] for j in range(N_STREAMS)]
            missed = sorted(v for v in vals if v > MARGIN)
            total += len(missed)
            out.append(f"| {seed} / {gamma} | " + " | ".join(_cell(v) for v in vals) + f" | {len(missed)} |")
            if missed:
                by_mdp.append(f"MDP {seed}: " + ", ".join(f"{v:.3f}" for v in missed))
        out += ["", f"||grad J|| at the final iterate of the {alg} runs above the margin:", ""]
        out += [f"* MDP {seed}, j = {j} (stream {1000 + N_STREAMS * seed + j}): gap {runs[alg, seed, j][0]:.3f}, "
                f"||grad J|| = {runs[alg, seed, j][1]:.1e}"
                for seed, _ in TABLE_SEEDS for j in range(N_STREAMS) if runs[alg, seed, j][0] > MARGIN] or ["* none"]
        out.append("")
        summary.append(f"| {alg} | {total} | {'; '.join(by_mdp) or '-'} |")
    return ["Summary:", "", *summary, "", *out]


def main() -> None:
    sections: list[tuple[str, Callable[[], list[str]]]] = [
        ("## PG-06 / PG-08 / PG-10 / PG-12 / PG-14 / PG-15 / PG-19 / PG-25 / PG-26: estimators #0..#4, exact "
         "(random_layered_mdp(default_rng(3), 3, 2, 2, reward_outcomes=2, early_stop_prob=0.2), theta ~ N(0, 1) "
         "from the same generator, V_phi = V^pi + N(0, 1) from default_rng(0))", estimator_table),
        ("## PG-29 / PG-30: the gamma-trick on the gamma = 1 fixture (#2 with b = 0, no gamma^t)", gamma_trick),
        ("## PG-15 / PG-19: the value baseline is not variance-optimal (exhibit)", baseline_exhibit),
        ("## PG-27 / PG-32 / PG-38 / PG-39: fraction of the initial gap (J* - J_final) / (J* - J(uniform)) left "
         "(random_layered_mdp(default_rng(seed), 3, 2, 2, gamma, reward_outcomes=2), theta0 = 0, tabular critic "
         "unless stated, lr_theta = 1, lr_phi = 0.2)", algorithm_tables),
        ("## PG-27 / PG-32 / PG-38: the six test MDPs with 8 other streams each", other_streams),
    ]
    parts = ["# PG measurements (generated by docs/evidence/pg_measurements.py; do not edit)", "",
             "Numbers quoted in docs/policy_gradients.md, sections \"Measured numbers\" and \"PG algorithms\".", ""]
    for title, fn in sections:
        _log(title.split(":")[0])
        parts += [title, "", *fn(), ""]
    OUT.write_text("\n".join(parts), encoding="utf-8")
    _log(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
