"""``python -m hebm_core.cli …`` (what ``torchrun -m hebm_core.cli`` runs)."""

import sys

from hebm_core.cli import main

sys.exit(main())
