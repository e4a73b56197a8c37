"""Pages for staff: sign-in, the door, and the admin console."""

from registration.staffarea.views import bp

# Each module adds its routes to the one blueprint.
from registration.staffarea import (admin, admin_exports, admin_registrants, admin_reminders,  # noqa: E402,F401
                                    door_app)

__all__ = ["bp"]
