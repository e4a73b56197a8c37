"""The closing-event reminder: sent once per seat holder, answered "coming" or "declined"; seats of the reminded who
do not answer are given back at a moment an admin chooses. (Being written: see issue 12.)"""

from registration.extensions import db  # noqa: F401


def run_due_releases() -> int:
    """Run the seat releases whose moment has come (each once, whichever process claims it); how many seats went."""
    return 0
