"""``python tests/train/ddp_main.py CONFIG [--set ...] [--resume]``: ``boxlib.train.main`` with the
toy components registered. Fabric starts the other DDP processes by re-running this script."""

import faulthandler
import sys
from pathlib import Path

# A hung process (a collective waiting forever) prints every thread's stack and exits,
# well before the test gives up on it.
faulthandler.dump_traceback_later(90, exit=True)

sys.path.insert(0, str(Path(__file__).parent))

from train_toy import ToyPlugin  # noqa: E402

import boxlib  # noqa: E402
from boxlib.train import main  # noqa: E402

boxlib.register(ToyPlugin(), name="boxlib-tests-train-toy")  # also in processes ddp_spawn starts

if __name__ == "__main__":
    sys.exit(main())
