"""`python -m ferroscore`: the same as the `ferroscore` command."""

import sys

from ferroscore.cli import main

sys.exit(main())
