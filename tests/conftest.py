"""Hypothesis profiles. Select with HYPOTHESIS_PROFILE=dev|ci|thorough (default dev; CI uses ci).

* dev: fast local iteration (25 examples).
* ci: derandomized (reproducible on a clean clone), 100 examples per property, no deadline (no timing
  flakiness on a loaded 2-core runner), failing examples printed.
* thorough: 2000 examples per property, for a nightly run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
settings.register_profile("dev", max_examples=25, **_common)  # type: ignore[arg-type]
settings.register_profile("ci", max_examples=100, derandomize=True, print_blob=True,
                          **_common)  # type: ignore[arg-type]
settings.register_profile("thorough", max_examples=2000, **_common)  # type: ignore[arg-type]
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
