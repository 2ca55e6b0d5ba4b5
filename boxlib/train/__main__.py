"""``python -m boxlib.train CONFIG [--set KEY=VALUE ...] [--resume [CHECKPOINT]]``."""

import sys

from boxlib.train.run import main

if __name__ == "__main__":
    sys.exit(main())
