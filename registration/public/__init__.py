"""The public blueprint: what attendees see."""

from registration.public.views import bp
# Modules of their own that add routes to bp: /me/<secret>/closing-event.ics, the reminder's answers.
from registration.public import calendar_views, reminder_views  # noqa: E402,F401

__all__ = ["bp"]
