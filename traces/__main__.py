"""Entry point of `python -m traces`."""

import sys

from traces.cli import main

sys.exit(main())
