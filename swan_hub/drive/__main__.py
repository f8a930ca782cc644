"""`python -m swan_hub.drive` runs the drive service (the hub starts it this way).

Owns nothing else; all behaviour lives in `swan_hub.drive.app`.
"""

from swan_hub.drive.app import main

main()
