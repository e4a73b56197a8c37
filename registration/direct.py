"""Core statements run straight on the DBAPI cursor: for the few statements every door scan runs."""

from collections import namedtuple

from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError


class DirectStatement:
    """A Core statement compiled once per dialect, then executed on the DBAPI cursor under a SQLAlchemy connection.

    SQLAlchemy still writes the SQL and converts the column types (UTCDateTime included); what is skipped is its
    per-execution work (execution context, result object), which costs a door scan a fifth more instructions
    (bench/RESULTS.md). Measured 2026-11-30: plain `connection.execute` of the same statements gave 0.79x the
    ceiling's first-scan throughput (the target is 0.8x), this 0.85x; `exec_driver_sql` saved nothing. The statement
    runs in the connection's transaction, so the caller's commit or rollback covers it; the engine's
    before/after_cursor_execute listeners see it (without a context); errors come back as SQLAlchemy's own.
    """

    def __init__(self, statement, *params: str):
        self.statement, self.params = statement, params
        self.row = namedtuple("Row", [column.key for column in statement.exported_columns])
        self._compiled: dict[str, tuple] = {}

    def first(self, connection: Connection, **values):
        """The first row (a named tuple with the statement's column keys), or None."""
        sql, binds, results = self._compiled.get(connection.dialect.name) or self._compile(connection.dialect)
        parameters = {name: process(values[name]) if process else values[name] for name, process in binds}
        dbapi_connection = connection.connection.dbapi_connection
        cursor = dbapi_connection.cursor()
        try:
            for listener in connection.dispatch.before_cursor_execute:
                listener(connection, cursor, sql, parameters, None, False)
            cursor.execute(sql, parameters)
            for listener in connection.dispatch.after_cursor_execute:
                listener(connection, cursor, sql, parameters, None, False)
            row = cursor.fetchone()
        except connection.dialect.loaded_dbapi.Error as error:
            # As SQLAlchemy's own execute would: the error wrapped in sqlalchemy.exc (IntegrityError,
            # OperationalError...), and a dropped connection invalidated, so that the pool replaces it.
            dropped = connection.dialect.is_disconnect(error, dbapi_connection, cursor)
            if dropped:
                connection.invalidate(error)
            raise DBAPIError.instance(sql, parameters, error, connection.dialect.loaded_dbapi.Error,
                                      connection_invalidated=dropped, dialect=connection.dialect) from error
        finally:
            if not connection.invalidated:
                cursor.close()
        if row is None:
            return None
        if results:
            row = list(row)
            for index, process in results:
                row[index] = process(row[index])
        return self.row._make(row)

    def scalar(self, connection: Connection, **values):
        """The first column of the first row, or None."""
        row = self.first(connection, **values)
        return None if row is None else row[0]

    def _compile(self, dialect) -> tuple:
        if dialect.name == "sqlite":
            dialect = sqlite.dialect(paramstyle="named")  # the sqlite3 module takes :name with a dict, as psycopg %(name)s
        compiled = self.statement.compile(dialect=dialect, column_keys=list(self.params))
        binds = [(name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                 for name in self.params]
        results = [(index, process) for index, column in enumerate(self.statement.exported_columns)
                   if (process := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None]
        self._compiled[dialect.name] = entry = (compiled.string, binds, results)
        return entry
