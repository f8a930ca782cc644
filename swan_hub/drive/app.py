"""``swan_hub.drive.app.DriveService`` and ``main``, the names admins' configurations and scripts
use for the drive service, defined in `service` (the routes, sign-in and pages have their own
modules: `routes`, `auth`, `web`). Nothing else belongs here.
"""

from .service import DriveService, main

__all__ = ["DriveService", "main"]
