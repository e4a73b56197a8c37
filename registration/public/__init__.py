"""The public blueprint: what attendees see."""

from registration.public.views import bp

__all__ = ["bp"]
