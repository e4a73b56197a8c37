"""URL converters: `<id:name>` for database ids."""

from werkzeug.routing import BaseConverter, ValidationError

#: The largest id the database holds: ids are INTEGER columns (PostgreSQL's 4-byte integer).
MAX_ID = 2**31 - 1


class IdConverter(BaseConverter):
    """A database id: ASCII digits without a leading zero, 1 to MAX_ID; anything else matches no route (404).

    Werkzeug's `int` takes Unicode digits ("١٢", "１２" are 12) and numbers of any size, which PostgreSQL refuses
    ("integer out of range") and SQLite cannot bind: a 500 instead of a 404.
    """

    regex = r"[1-9][0-9]{0,9}"  # [0-9], not \d: \d matches every script's digits
    part_isolating = True

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValidationError()
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))
