"""`python -m keras_selfie`: the `keras-selfie` command line."""

import sys

from keras_selfie.cli import main

if __name__ == "__main__":
    sys.exit(main())
