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
