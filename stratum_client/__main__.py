"""Allow ``python -m stratum_client``."""

import sys

from stratum_client.cli import main

sys.exit(main())
