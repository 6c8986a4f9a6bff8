"""`python -m alexnet_lab` runs the same command line as the `alexnet` script."""

import sys

from alexnet_lab.cli import main

if __name__ == "__main__":
    sys.exit(main())
