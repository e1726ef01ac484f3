"""DP performance benchmark: this project's solvers against pymdptoolbox on the same MDPs.

Run by hand (not a test):  ``python benchmarks/bench_dp.py [--quick]``  (from the repository root).
Writes ``benchmarks/results/dp.md`` (or ``--out``). Every case runs in its own subprocess so that its
peak memory (``ru_maxrss``) is its own and the BLAS thread count can be set before NumPy loads.

Cases
-----
* dense S=2000, A=4, gamma=0.99 (``random_mdp(default_rng(0), 2000, 4, gamma=0.99)``, no term mass),
  once with 1 and once with 2 BLAS threads: time per VI sweep (ours: one GEMV with the flat
  [S*A, S] P; pymdptoolbox: ``ValueIteration._bellmanOperator``, A GEMVs with [S, S] blocks) next to
  the memory-bandwidth limit ``bytes of P / copy bandwidth``; copy bandwidth = 2 * nbytes / time of
  ``np.copyto`` of a 512 MiB array (read + write counted, best of 5), measured in the same process.
  Then the wall time to a V* certified to ``||V - V*||_inf <= 1e-8`` (ours) against pymdptoolbox's
  solvers run until their measured error against a reference V* (certified to 1e-11) is <= 1e-8.
* sparse S=2e5 and 1e6, A=4, 5 successors per (s, a): build, exact V^pi of the uniform policy with a
  residual certificate, V* certified to 1e-8, peak RSS; pymdptoolbox is asked to load the 2e5 MDP under
  an address-space limit to show where it fails.

Certificates (gamma < 1, float64): ``||V - V*|| <= ||B^* V - V||_inf / (1 - gamma)`` and
``||V - V^pi|| <= ||B^pi V - V||_inf / (1 - gamma)``, recomputed here with the reference's own
``FiniteMDP.lookahead`` (independent of the solver's kernel).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GAMMA = 0.99
TARGET = 1e-8


def _now() -> float:
    return time.perf_counter()


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _copy_bandwidth(nbytes: int = 512 * 2**20, reps: int = 5) -> float:
    import numpy as np

    a = np.ones(nbytes // 8)
    b = np.empty_like(a)
    np.copyto(b, a)
    best = min(_timed(lambda: np.copyto(b, a)) for _ in range(reps))
    return 2.0 * a.nbytes / best


def _timed(f: Any) -> float:
    t = _now()
    f()
    return _now() - t


def _stats(ts: list[float]) -> dict[str, float]:
    s = sorted(ts)
    return {"min": s[0], "median": s[len(s) // 2]}


def _to_pymdptoolbox(mdp: Any) -> tuple[Any, Any]:
    """Our dense P [S+ A, S+] / r [S+, A] -> pymdptoolbox P [A, S, S], R [S, A] (term dropped).

    pymdptoolbox demands |row sum - 1| <= 10 eps; a 2000-term row sum of ours is off by up to ~4e-15,
    so the residue is moved onto each row's largest entry (a change of ~1e-15 in P, which moves V* by
    < 1e-11 here: far below the 1e-8 accuracy compared).
    """
    import numpy as np

    n = mdp.n_states
    assert float(np.abs(mdp.P[:n, :, n]).max()) == 0.0, "the benchmark MDP has no term mass"
    P = np.ascontiguousarray(mdp.P[:n, :, :n].transpose(1, 0, 2))
    R = np.ascontiguousarray(mdp.r[:n])
    for _ in range(3):
        j = P.argmax(axis=-1)[..., None]
        np.put_along_axis(P, j, np.take_along_axis(P, j, -1) + (1.0 - P.sum(-1))[..., None], -1)
    return P, R


# ============================================================================== dense case
def run_dense(quick: bool) -> dict[str, Any]:
    import mdptoolbox.mdp as tb
    import numpy as np

    from reference import dp, solvers
    from reference.generators import random_mdp

    out: dict[str, Any] = {"blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")}
    bw = _copy_bandwidth()
    out["copy_bw"] = bw
    t = _now()
    mdp = random_mdp(np.random.default_rng(0), 2000, 4, gamma=GAMMA, backend="dense")
    _ = mdp.transition_dense
    out["build_s"] = _now() - t
    P, R = _to_pymdptoolbox(mdp)
    n = mdp.n_states

    # ---- sweeps
    reps = 20 if quick else 60
    kern = solvers.BellmanKernel(mdp)
    v = np.zeros(mdp.n_states_plus)
    ours = []
    for _ in range(reps):
        t = _now()
        v, _q = kern.optimality(v)
        ours.append(_now() - t)
    vi = tb.ValueIteration(P, R, GAMMA)
    vt = np.zeros(n)
    theirs = []
    for _ in range(reps):
        t = _now()
        _p, vt = vi._bellmanOperator(vt)
        theirs.append(_now() - t)
    out["sweep_ours"] = _stats(ours)
    out["sweep_tb"] = _stats(theirs)
    out["bytes_ours"] = kern.bytes_per_sweep
    out["bytes_tb"] = int(P.nbytes)

    # ---- reference V* (certified far below the target) and our certified solve
    ref = solvers.solve_optimal(mdp, eps=1e-11, forcing=1e-6)
    vref = ref.value[:n]
    out["ref_bound"] = ref.bound
    times = []
    for _ in range(3 if quick else 7):
        t = _now()
        sol = solvers.solve_optimal(mdp, eps=TARGET)
        times.append(_now() - t)
    bound_check = float(np.max(np.abs(mdp.lookahead(sol.value).max(axis=1) - sol.value))) / (1 - GAMMA)
    out["ours_solve"] = {**_stats(times), "bound": sol.bound, "bound_recomputed": bound_check,
                         "iterations": sol.iterations, "err_vs_ref": float(np.max(np.abs(sol.value[:n] - vref)))}
    t = _now()
    lu = dp.solve_optimal(mdp, eps=TARGET)
    out["dp_solve"] = {"min": _now() - t, "median": _now() - t, "bound": lu.bound, "iterations": lu.iterations}

    # ---- pymdptoolbox solvers until <= 1e-8 against vref
    tbres: dict[str, Any] = {}

    def record(name: str, make: Any, note: str) -> None:
        t0 = _now()
        solver = make()
        t1 = _now()
        solver.run()
        t2 = _now()
        err = float(np.max(np.abs(np.asarray(solver.V) - vref)))
        tbres[name] = {"init_s": t1 - t0, "run_s": t2 - t1, "err": err, "iter": int(solver.iter), "note": note}

    record("PolicyIteration", lambda: tb.PolicyIteration(P, R, GAMMA), "eval_type='matrix' (LU each step)")
    vnorm = float(np.max(np.abs(vref)))
    n_vi = int(np.ceil(np.log(TARGET / vnorm) / np.log(GAMMA)))

    def make_vi() -> Any:
        s = tb.ValueIteration(P, R, GAMMA, epsilon=1e-300)
        s.max_iter = n_vi
        return s

    if not quick:
        record("ValueIteration", make_vi,
               f"max_iter={n_vi} = ceil(log(1e-8/||V*||)/log gamma) (a-priori rate), span rule disabled")
    for eps in ([1e-8, 1e-10] if quick else [1e-6, 1e-8, 1e-10, 1e-12]):
        record(f"PolicyIterationModified(epsilon={eps:g})",
               lambda eps=eps: tb.PolicyIterationModified(P, R, GAMMA, epsilon=eps, max_iter=10_000),
               "span stopping rule")
        if tbres[f"PolicyIterationModified(epsilon={eps:g})"]["err"] <= TARGET:
            break
    gs = tb.ValueIterationGS(P, R, GAMMA, epsilon=1e-300, max_iter=3)
    t = _now()
    gs.run()
    out["gs_sweep_s"] = (_now() - t) / max(1, int(gs.iter))
    out["tb"] = tbres
    out["vi_sweeps_needed"] = n_vi
    out["rss_gib"] = _rss_gib()
    return out


# ============================================================================= sparse case
def run_sparse(n_states: int, try_toolbox: bool) -> dict[str, Any]:
    import numpy as np

    from reference import solvers
    from reference.generators import random_mdp
    from reference.mdp import uniform_policy

    out: dict[str, Any] = {"n": n_states}
    t = _now()
    mdp = random_mdp(np.random.default_rng(0), n_states, 4, gamma=GAMMA, branching=5, backend="sparse")
    _ = mdp.transition_csr
    out["build_s"] = _now() - t
    out["nnz"] = int(mdp.transition_csr.nnz)
    out["rss_after_build_gib"] = _rss_gib()
    pi = uniform_policy(mdp)
    t = _now()
    ev = solvers.evaluate_policy(mdp, pi, eps=1e-10)
    out["vpi_s"] = _now() - t
    bpi = np.einsum("sa,sa->s", pi, mdp.lookahead(ev.value))
    out["vpi_bound"] = ev.bound
    out["vpi_bound_recomputed"] = float(np.max(np.abs(bpi - ev.value))) / (1 - GAMMA)
    t = _now()
    sol = solvers.solve_optimal(mdp, eps=TARGET)
    out["vstar_s"] = _now() - t
    out["vstar_bound"] = sol.bound
    out["vstar_iters"] = sol.iterations
    out["vstar_bound_recomputed"] = float(
        np.max(np.abs(mdp.lookahead(sol.value).max(axis=1) - sol.value))) / (1 - GAMMA)
    out["rss_gib"] = _rss_gib()
    if try_toolbox:
        out["toolbox"] = _try_toolbox_load(mdp)
    return out


def _try_toolbox_load(mdp: Any) -> str:
    """Hand pymdptoolbox the MDP as A sparse [S, S] matrices in a child limited to 16 GiB of address space."""
    import pickle
    import tempfile

    import scipy.sparse as sp

    n, na = mdp.n_states, mdp.n_actions
    csr = mdp.transition_csr
    mats = [sp.csr_matrix(csr[a: n * na: na][:, :n]) for a in range(na)]
    with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as fh:
        pickle.dump((mats, mdp.r[:n].copy()), fh)
        path = fh.name
    code = (
        "import pickle, resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (16 * 2**30, 16 * 2**30))\n"
        "import mdptoolbox.mdp as tb\n"
        f"P, R = pickle.load(open({path!r}, 'rb'))\n"
        "try:\n"
        "    tb.PolicyIteration(P, R, 0.99)\n"
        "    print('loaded')\n"
        "except BaseException as e:\n"
        "    print(type(e).__name__ + ': ' + str(e)[:200])\n"
    )
    try:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        return (res.stdout.strip() or res.stderr.strip().splitlines()[-1])[:300]
    finally:
        os.unlink(path)


# ================================================================================== driver
def _child(args: list[str], env_extra: dict[str, str]) -> dict[str, Any]:
    env = {**os.environ, **env_extra, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env, cwd=ROOT)
    if res.returncode != 0:
        raise RuntimeError(f"case {args} failed:\n{res.stderr[-3000:]}")
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def _ms(x: float) -> str:
    return f"{1e3 * x:.2f}"


def report(dense: list[dict[str, Any]], sparse: list[dict[str, Any]], quick: bool, wall: float) -> str:
    L: list[str] = []
    L.append("# DP benchmark: reference.solvers vs pymdptoolbox\n")
    L.append(f"Command: `python benchmarks/bench_dp.py{' --quick' if quick else ''}`; total wall {wall:.0f} s. "
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}.\n")
    L.append("Certificates (float64, gamma < 1): V* by `||V - V*||_inf <= ||B^*V - V||_inf / (1 - gamma)`, "
             "V^pi by `||V - V^pi||_inf <= ||B^pi V - V||_inf / (1 - gamma)`; 'recomputed' = the same bound "
             "evaluated with `FiniteMDP.lookahead` (the reference path, not the solver's kernel).\n")
    L.append("## Dense S=2000, A=4, gamma=0.99: one VI sweep\n")
    L.append("Limit = bytes of P read per sweep / copy bandwidth (copy bandwidth = 2 x 512 MiB / best "
             "`np.copyto` time, read + write counted). % of limit = limit / sweep time (best of the run; "
             "median in brackets).\n")
    L.append("| BLAS threads | copy BW GB/s | P bytes | limit ms | ours ms | ours % of limit | "
             "pymdptoolbox ms | pymdptoolbox % of limit |")
    L.append("|---|---|---|---|---|---|---|---|")
    for d in dense:
        lim_o = d["bytes_ours"] / d["copy_bw"]
        lim_t = d["bytes_tb"] / d["copy_bw"]
        so, st = d["sweep_ours"], d["sweep_tb"]
        L.append(f"| {d['blas_threads']} | {d['copy_bw'] / 1e9:.1f} | {d['bytes_ours'] / 1e6:.1f} MB | "
                 f"{_ms(lim_o)} | {_ms(so['min'])} ({_ms(so['median'])}) | "
                 f"{100 * lim_o / so['min']:.0f}% ({100 * lim_o / so['median']:.0f}%) | "
                 f"{_ms(st['min'])} ({_ms(st['median'])}) | "
                 f"{100 * lim_t / st['min']:.0f}% ({100 * lim_t / st['median']:.0f}%) |")
    L.append("")
    L.append("## Dense: wall time to a V* within 1e-8 (sup norm)\n")
    L.append(f"Reference V* for measuring pymdptoolbox's error: `solvers.solve_optimal(eps=1e-11)`, bound "
             f"{dense[0]['ref_bound']:.1e}. pymdptoolbox times are `run()` only (its `__init__`, which "
             "checks P, is listed separately).\n")
    L.append("| BLAS threads | solver | time s | iterations | error / bound | note |")
    L.append("|---|---|---|---|---|---|")
    best: dict[str, Any] = {}
    for d in dense:
        o = d["ours_solve"]
        L.append(f"| {d['blas_threads']} | ours: solvers.solve_optimal (Newton-Krylov PI) | {o['min']:.3f} "
                 f"(median {o['median']:.3f}) | {o['iterations']} | bound {o['bound']:.1e} (recomputed "
                 f"{o['bound_recomputed']:.1e}); err vs ref {o['err_vs_ref']:.1e} | certified |")
        p = d["dp_solve"]
        L.append(f"| {d['blas_threads']} | reference.dp.solve_optimal (PI, LU evaluation) | {p['min']:.3f} | "
                 f"{p['iterations']} | bound {p['bound']:.1e} | for comparison |")
        for name, r in d["tb"].items():
            ok = r["err"] <= TARGET
            L.append(f"| {d['blas_threads']} | pymdptoolbox {name} | {r['run_s']:.3f} (+init {r['init_s']:.2f}) | "
                     f"{r['iter']} | err {r['err']:.1e} {'<=' if ok else '>'} 1e-8 | {r['note']} |")
            if ok and (not best or r["run_s"] < best["t"]):
                best = {"t": r["run_s"], "name": name, "threads": d["blas_threads"]}
        L.append(f"| {d['blas_threads']} | pymdptoolbox ValueIterationGS | {d['gs_sweep_s']:.3f} per sweep | "
                 f"- | not run to 1e-8 | Python loop over states; needs ~{d['vi_sweeps_needed']} sweeps "
                 "at the gamma rate |")
    ours_best = min(d["ours_solve"]["min"] for d in dense)
    if best:
        L.append(f"\n**Speed-up**: fastest pymdptoolbox solver reaching <= 1e-8 = {best['name']} "
                 f"({best['t']:.3f} s, BLAS threads {best['threads']}); ours best {ours_best:.3f} s: "
                 f"**{best['t'] / ours_best:.1f}x**.\n")
    L.append("## Sparse, A=4, 5 successors per (s, a), gamma=0.99\n")
    L.append("V^pi: uniform policy, `solvers.evaluate_policy(eps=1e-10)`; V*: `solvers.solve_optimal(eps=1e-8)`. "
             "Peak memory = ru_maxrss of the case's own process (build included).\n")
    L.append("| S | nnz(P) | build s | V^pi s | V^pi bound (recomputed) | V* s | PI steps | V* bound "
             "(recomputed) | peak RSS GiB | pymdptoolbox load |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for s in sparse:
        L.append(f"| {s['n']:.0e} | {s['nnz']:.2e} | {s['build_s']:.1f} | {s['vpi_s']:.2f} | "
                 f"{s['vpi_bound']:.1e} ({s['vpi_bound_recomputed']:.1e}) | {s['vstar_s']:.2f} | {s['vstar_iters']} | "
                 f"{s['vstar_bound']:.1e} ({s['vstar_bound_recomputed']:.1e}) | {s['rss_gib']:.2f} | "
                 f"{s.get('toolbox', 'not tried')} |")
    L.append("")
    return "\n".join(L)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, smaller sparse cases (~1 min)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dp.md")
    ap.add_argument("--case", choices=["dense", "sparse"], help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--toolbox", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.case == "dense":
        print(json.dumps(run_dense(a.quick)))
        return
    if a.case == "sparse":
        print(json.dumps(run_sparse(a.n, a.toolbox)))
        return
    t0 = _now()
    quick = ["--quick"] if a.quick else []
    dense = []
    for threads in ("1", "2"):
        print(f"dense, BLAS threads {threads} ...", flush=True)
        dense.append(_child(["--case", "dense", *quick], {"OPENBLAS_NUM_THREADS": threads}))
    sparse = []
    sizes = [20_000, 200_000] if a.quick else [200_000, 1_000_000]
    for i, n in enumerate(sizes):
        print(f"sparse S={n} ...", flush=True)
        extra = ["--toolbox"] if (i == 0 and not a.quick) else []
        sparse.append(_child(["--case", "sparse", "--n", str(n), *extra], {}))
    text = report(dense, sparse, a.quick, _now() - t0)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
