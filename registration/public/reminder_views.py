"""The reminder's two answers, each a page with a confirming button: /me/<secret>/coming and /me/<secret>/not-coming.
(Being written: see issue 12.)"""

from registration.public.views import bp  # noqa: F401
