"""``python -m boxlib``, the same as the ``boxlib`` command."""

import sys

from boxlib.cli import main

sys.exit(main())
