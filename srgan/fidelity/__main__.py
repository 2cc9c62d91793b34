import sys

from srgan.fidelity.cli import main

sys.exit(main())
