"""BEL-35..BEL-38 support: reference.chains.solve_linear reports a singular system the same way on every path."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from reference.chains import solve_linear


@pytest.mark.parametrize("sparse", [False, True])
def test_BEL_35_singular_system_raises_LinAlgError_on_dense_and_sparse_paths(sparse: bool) -> None:
    """A rank-1 matrix: the dense path (LAPACK) raised LinAlgError, the sparse path (SuperLU) returned
    [nan, nan] with only a MatrixRankWarning. Both raise now; a regular sparse system still solves."""
    a = np.array([[1.0, 1.0], [1.0, 1.0]])
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        solve_linear(sp.csr_array(a) if sparse else a, np.ones(2))
    good = np.array([[2.0, 0.0], [1.0, 4.0]])
    x = solve_linear(sp.csr_array(good) if sparse else good, np.array([2.0, 5.0]))
    np.testing.assert_array_equal(x, [1.0, 1.0])  # 2 x = 2, x + 4 y = 5: exact in binary


def test_BEL_04_gmres_path_refines_until_the_documented_residual_and_matches_the_dense_solve(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """solve_linear's GMRES path (n > DIRECT_SOLVE_MAX, lowered so a 200-state chain takes it) is documented as
    GMRES followed by up to 3 steps of iterative refinement, then ||b - a x||_inf <= 10 rtol ||b||_inf. With one
    restart cycle per GMRES call (maxiter=1) the first call leaves a residual far above that (gamma = 0.999), and
    the refinement steps bring it down. Oracle: the dense LAPACK solve; ||x - x*||_inf <= ||a^-1||_inf ||res||_inf
    with ||(I - gamma P)^-1||_inf = 1 / (1 - gamma), plus the dense solve's own rounding."""
    import scipy.linalg as sla

    from reference import chains
    from reference.tolerance import discount_condition, tolerance

    monkeypatch.setattr(chains, "DIRECT_SOLVE_MAX", 10)
    n, g, rtol = 200, 0.999, 1e-13
    p = sp.random_array((n, n), density=3 / n, random_state=1, format="csr") + sp.eye_array(n, format="csr") * 0.01
    a = sp.csr_array(sp.eye_array(n, format="csr") - g * sp.csr_array(p / p.sum(axis=1)[:, None]))
    b = np.random.default_rng(0).standard_normal(n)
    x = chains.solve_linear(a, b, rtol=rtol, maxiter=1)
    bnorm = float(np.max(np.abs(b)))
    assert float(np.max(np.abs(b - a @ x))) <= 10 * rtol * bnorm
    dense = sla.solve(a.toarray(), b)
    assert float(np.max(np.abs(x - dense))) <= 10 * rtol * bnorm / (1.0 - g) + tolerance(
        bnorm / (1.0 - g), terms=n, condition=discount_condition(g))
