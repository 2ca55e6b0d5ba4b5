"""``python -m boxlib.bench [SUITE] [OPTIONS]``, the same as ``boxlib bench``."""

import sys

from boxlib.bench import main

sys.exit(main())
