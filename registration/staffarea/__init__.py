"""Pages for staff: sign-in, the door, and the admin tools."""

from registration.staffarea.views import bp

__all__ = ["bp"]
