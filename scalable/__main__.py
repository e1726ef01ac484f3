"""``python -m scalable train|eval|plot|resume`` (see :mod:`scalable.cli`)."""

import sys

from scalable.cli import main

sys.exit(main())
