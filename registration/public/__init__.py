"""The public blueprint: what attendees see."""

from registration.public import calendar_views  # noqa: F401 - adds /me/<secret>/closing-event.ics to bp
from registration.public.views import bp

__all__ = ["bp"]
