import sys

from srgan.bench.cli import main

sys.exit(main())
