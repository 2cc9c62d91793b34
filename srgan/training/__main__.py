"""``python -m srgan.training``: the training command line (see :mod:`srgan.training.train`)."""

import sys

from srgan.training.train import main

sys.exit(main())
