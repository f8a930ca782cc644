"""`python -m swan_hub` runs the `swan` command (same as the console script).

Owns nothing else; all behaviour lives in `swan_hub.cli`.
"""

import sys

from swan_hub.cli import main

sys.exit(main())
