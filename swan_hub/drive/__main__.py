"""`python -m swan_hub.drive` runs the drive service (the hub starts it this way).

Owns nothing else; the service is `swan_hub.drive.service`.
"""

from swan_hub.drive.service import main

main()
