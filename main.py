"""Start Cocompose: `python main.py` (add --help for the smoke-test options)."""

import sys

from ui.app import main

if __name__ == "__main__":
    sys.exit(main())
