"""SQL datastores: PostgreSQL through psycopg2, SQLite through the eventsourcing library.

Why psycopg2 for PostgreSQL: nameko runs on eventlet, and every database call must yield to the
hub. eventlet makes psycopg2 cooperative itself (a wait callback); the eventsourcing library's
own PostgreSQL module uses psycopg 3, whose C implementation blocks the hub and whose pure-Python
mode is slow (measured in README "Storage"). So event stores, read models, tracking and the key
store all share one psycopg2 pool per process.

Both datastores offer ``transaction(commit=...)`` yielding a cursor whose rows can be read by
column name, and raise the eventsourcing library's persistence errors (``IntegrityError``,
``OperationalError``, ...), so code above this module handles one family of errors.
"""

from __future__ import annotations

import queue
import re
import select
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import greenlet
import psycopg2
import psycopg2.errors
import psycopg2.extras
from eventsourcing import persistence as es
from eventsourcing.sqlite import SQLiteDatastore

from shared import logs
from shared.config import MEMORY_DATABASE_URL, Settings

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _session_name() -> str:
    """What PostgreSQL shows as the session's ``application_name``: ``keten-<service>`` in a
    process that runs one service, so an operator's ``pg_stat_activity`` (and a statement log
    with ``%a``) says which service a session belongs to."""
    service = logs.process_service()
    return f"keten-{service}" if service else "keten"


class PgDatastore:
    """A small green-thread friendly pool of psycopg2 connections to one schema."""

    dialect = "postgresql"

    def __init__(self, dsn: str, schema: str = "public", pool_size: int = 10, timeout: float = 10.0):
        if not _SCHEMA_NAME.match(schema):
            raise ValueError("DATABASE_SCHEMA must be a lower-case SQL identifier")
        self.dsn = dsn
        self.schema = schema
        self.pool_size = pool_size
        self.timeout = timeout
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._closed = False
        #: Green threads working inside an open batch transaction (``join``), and its cursor.
        self._bound: dict[Any, Any] = {}
        self._ensure_schema()

    def _ensure_schema(self) -> None:
        conn = self._connect(search_path=False)
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            conn.commit()
        except psycopg2.errors.UniqueViolation:
            conn.rollback()  # created concurrently by another process: fine
        finally:
            conn.close()

    def _connect(self, search_path: bool = True) -> Any:
        """A new connection; a refused one is tried again shortly (a database restarting, a
        failover) before the caller gets ``OperationalError`` (and its caller a 503)."""
        options = f"-c search_path={self.schema}" if search_path else ""
        for pause in (*CONNECT_RETRY_PAUSES, None):
            try:
                return psycopg2.connect(
                    self.dsn,
                    options=options,
                    connect_timeout=int(self.timeout),
                    application_name=_session_name(),
                )
            except psycopg2.OperationalError as exc:
                if pause is None:
                    raise es.OperationalError(_describe(exc)) from None
                time.sleep(pause)
        raise AssertionError("unreachable")

    def _idle_connection(self) -> Any:
        """An idle connection of the pool that is still open, or ``None``.

        A connection the server ended while it sat idle (the database restarted, an operator
        terminated it) has its socket readable: the server's goodbye or EOF is waiting there.
        It is dropped here, before a request uses it and fails.
        """
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return None
            if not conn.closed and not has_pending_input(conn):
                return conn
            conn.close()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        if self._closed:
            raise es.InterfaceError("datastore is closed")
        if not self._slots.acquire(timeout=self.timeout):
            raise es.OperationalError("timed out waiting for a database connection")
        conn = None
        try:
            conn = self._idle_connection() or self._connect()
            yield conn
        except BaseException:
            if conn is not None and not conn.closed:
                conn.close()  # never reuse a connection in an unknown state
            conn = None
            raise
        finally:
            if conn is not None and not conn.closed:
                if self._closed:
                    conn.close()  # in use while the pool closed: not kept open for nobody
                else:
                    self._idle.put(conn)
            self._slots.release()

    def join(self, thread: Any, cursor: Any) -> None:
        """Every transaction of green thread ``thread`` that joins batches runs inside
        ``cursor``'s transaction (a consumer's batch, ``KetenApplication.batch``) until it
        ``leave``s."""
        self._bound[thread] = cursor

    def leave(self, thread: Any) -> None:
        self._bound.pop(thread, None)

    @contextmanager
    def transaction(self, *, commit: bool, joins_batch: bool = True) -> Iterator[Any]:
        """A transaction whose statements commit together (``commit=True``), or reads
        (``commit=False``), which run each statement on its own, so that a read is one round
        trip instead of three (``BEGIN``, the query, ``ROLLBACK``); under READ COMMITTED what
        each statement sees is the same either way (its own snapshot).

        The connection is in autocommit and a transaction that commits sends its ``BEGIN`` in
        the same round trip as its first statement (``_BeginningCursor``), then ``COMMIT``:
        psycopg2 on its own sends ``BEGIN`` as a round trip of its own.

        Inside a consumer's batch (``join``) every transaction of its green thread runs in the
        batch's transaction instead, unless ``joins_batch`` is False."""
        batch = self._bound.get(greenlet.getcurrent()) if joins_batch and self._bound else None
        if batch is not None:
            # Inside a batch: its transaction commits (or rolls back) as a whole, later.
            try:
                yield batch
            except psycopg2.Error as exc:
                raise _translate(exc) from None
            return
        with self.connection() as conn:
            conn.autocommit = True  # client side only: psycopg2 sends nothing for it
            cur = conn.cursor(cursor_factory=_BeginningCursor if commit else psycopg2.extras.DictCursor)
            try:
                with cur:
                    yield cur
                    if commit and cur.began:
                        cur.execute("COMMIT")
            except psycopg2.Error as exc:
                _abandon(conn, cur)
                raise _translate(exc) from None
            except BaseException:
                _abandon(conn, cur)
                raise

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break


class _BeginningCursor(psycopg2.extras.DictCursor):
    """A cursor on a connection in autocommit that opens its transaction with its first
    statement, in the same round trip (``BEGIN; <statement>``)."""

    began = False

    def execute(self, query: Any, vars: Any = None) -> Any:
        if not self.began:
            self.began = True
            query = b"BEGIN; " + query if isinstance(query, bytes) else "BEGIN; " + str(query)
        return super().execute(query, vars)

    def _begin(self) -> None:
        if not self.began:
            self.execute("SELECT 1")

    def executemany(self, query: Any, vars_list: Any) -> Any:
        rows = list(vars_list)
        if not self.began and rows:
            self.execute(query, rows.pop(0))  # the first row carries the BEGIN
        return super().executemany(query, rows)

    def copy_expert(self, *args: Any, **kwargs: Any) -> Any:
        self._begin()
        return super().copy_expert(*args, **kwargs)

    def copy_from(self, *args: Any, **kwargs: Any) -> Any:
        self._begin()
        return super().copy_from(*args, **kwargs)


def _abandon(conn: Any, cur: Any) -> None:
    """Ends a transaction that failed: rolled back, or the connection closed (and not reused)."""
    if conn.closed or not getattr(cur, "began", False):
        return
    try:
        with conn.cursor() as rollback:
            rollback.execute("ROLLBACK")
    except psycopg2.Error:
        conn.close()


#: Pauses (seconds) between attempts to open a connection: about one second in all.
CONNECT_RETRY_PAUSES = (0.1, 0.3, 0.6)


def has_pending_input(conn: Any) -> bool:
    """Whether an idle connection's socket has something to read: nothing is expected there
    between transactions, so it is the server's termination notice or the connection's end."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _describe(exc: psycopg2.Error) -> str:
    # Server messages can quote row values; keep only the error class and SQLSTATE.
    return f"{type(exc).__name__} (SQLSTATE {getattr(exc, 'pgcode', None) or 'n/a'})"


def _translate(exc: psycopg2.Error) -> es.PersistenceError:
    mapping: Sequence[tuple[type[psycopg2.Error], type[es.PersistenceError]]] = (
        (psycopg2.IntegrityError, es.IntegrityError),
        (psycopg2.DataError, es.DataError),
        (psycopg2.OperationalError, es.OperationalError),
        (psycopg2.InternalError, es.InternalError),
        (psycopg2.ProgrammingError, es.ProgrammingError),
        (psycopg2.NotSupportedError, es.NotSupportedError),
        (psycopg2.InterfaceError, es.InterfaceError),
        (psycopg2.DatabaseError, es.DatabaseError),
    )
    for source, target in mapping:
        if isinstance(exc, source):
            return target(_describe(exc))
    return es.PersistenceError(_describe(exc))


class SqlStore:
    """Portable SQL on either datastore: write statements with ``?`` placeholders.

    Read models and the key store use this; it shares the datastore (and so the transaction)
    of the service's event store where it is given one.
    """

    def __init__(self, datastore: PgDatastore | SQLiteDatastore, joins_batch: bool = True):
        self.datastore = datastore
        #: Whether its transactions join a consumer's open batch (``PgDatastore.bound``); the
        #: key store's never do: a key must be stored before anything is sealed with it.
        self.joins_batch = joins_batch
        self.dialect = "postgresql" if isinstance(datastore, PgDatastore) else "sqlite"
        self.binary_type = "BYTEA" if self.dialect == "postgresql" else "BLOB"

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.dialect == "postgresql" else statement

    @contextmanager
    def transaction(self, *, commit: bool = True) -> Iterator[Cursor]:
        if isinstance(self.datastore, PgDatastore):
            with self.datastore.transaction(commit=commit, joins_batch=self.joins_batch) as cur:
                yield Cursor(self, cur)
        else:
            with self.datastore.transaction(commit=commit) as cur:
                yield Cursor(self, cur)

    def execute_script(self, statements: Sequence[str]) -> None:
        with self.transaction() as cur:
            if isinstance(self.datastore, PgDatastore):
                # CREATE ... IF NOT EXISTS is not safe against itself: processes starting at
                # once collide on the catalogue (UniqueViolation). One at a time, per schema,
                # under the same lock the event stores take for their tables.
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (self.datastore.schema,))
            for statement in statements:
                cur.execute(statement)


class Cursor:
    """Wraps a DB-API cursor so that ``?`` placeholders work on both dialects."""

    def __init__(self, store: SqlStore, cursor: Any):
        self.store = store
        self.raw = cursor

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Cursor:
        self.raw.execute(self.store.sql(statement), tuple(params))
        return self

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        self.raw.executemany(self.store.sql(statement), [tuple(row) for row in rows])

    def fetchone(self) -> Any:
        return self.raw.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self.raw.fetchall())

    @property
    def rowcount(self) -> int:
        # eventsourcing's SQLite cursor wrapper keeps the sqlite3 cursor inside.
        raw = getattr(self.raw, "sqlite_cursor", self.raw)
        return int(raw.rowcount)


_datastores: dict[tuple[str, str], PgDatastore] = {}
_datastores_lock = threading.Lock()


def postgres_datastore(settings: Settings) -> PgDatastore:
    """One pool per process, DSN and schema: every application of a process shares it."""
    assert settings.database_url
    key = (settings.database_url, settings.database_schema)
    with _datastores_lock:
        if key not in _datastores or _datastores[key]._closed:
            _datastores[key] = PgDatastore(settings.database_url, settings.database_schema)
        return _datastores[key]


def close_postgres_datastores(schema: str) -> None:
    """Closes this process's pools for ``schema`` (a test that is done with its own schema)."""
    with _datastores_lock:
        for key in [key for key in _datastores if key[1] == schema]:
            _datastores.pop(key).close()


def sqlite_path(settings: Settings, name: str) -> str:
    """Where the embedded default keeps a store; an in-memory database for unit tests."""
    if settings.database_url == MEMORY_DATABASE_URL:
        return f"file:{name}-{uuid4().hex}?mode=memory&cache=shared"
    if settings.database_url and settings.database_url.startswith("sqlite:///"):
        base = Path(settings.database_url.removeprefix("sqlite:///"))
    else:
        base = settings.var_dir
    base.mkdir(parents=True, exist_ok=True)
    return str(base / f"{name}.sqlite")


def open_store(settings: Settings, name: str) -> SqlStore:
    """A store that is not an event store (the key store): PostgreSQL or its own SQLite file."""
    if settings.uses_postgres:
        return SqlStore(postgres_datastore(settings), joins_batch=False)
    return SqlStore(SQLiteDatastore(sqlite_path(settings, name), lock_timeout=10))
