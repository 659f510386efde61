"""``python -m autodlgym``."""

import sys

from autodlgym.cli import main

sys.exit(main())
