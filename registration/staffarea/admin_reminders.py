"""Who answered the closing-event reminder, and scheduled releases of unanswered seats. (Being written.)"""

from registration.staffarea.views import bp  # noqa: F401
