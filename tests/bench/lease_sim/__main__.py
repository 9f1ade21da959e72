"""`python -m tests.bench.lease_sim`: every simulation, or the one its flag names."""

import sys

from tests.bench.lease_sim import main

sys.exit(main())
