"""The index of citizens' requests in consent's store (``consent_citizen_requests``): one row per
request with who must answer, its kind, status and (extended) deadline, when it came in and for
which deadline the agency was reminded; no personal data but the pseudonym.

Written in the same transaction as the request's events, so the listings and the escalation
never miss a request that was saved; they read their rows here and no aggregate is replayed to
list or to pass over a request (the escalation loads only those it changes). ``rebuild`` writes
every row again from the events alone (``keten rebuild requests``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from shared.db import Cursor, SqlStore

TABLE = "consent_citizen_requests"

CREATE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    " request_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, subject TEXT NOT NULL,"
    " agency TEXT NOT NULL, status TEXT NOT NULL, due_on TEXT NOT NULL, received_at TEXT NOT NULL,"
    " kind TEXT, extended INTEGER, reminded_for TEXT, submitted_by TEXT)"
)
#: The read paths: a subject's requests, what an agency must answer, what is still open.
INDEXES = (
    f"CREATE INDEX IF NOT EXISTS {TABLE}_subject ON {TABLE} (subject, received_at)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_agency ON {TABLE} (agency, status, due_on)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_status ON {TABLE} (status, due_on)",
)
#: Columns added since the table was first made (a store made before gets them on start, and
#: its rows are written again from the events: see ``missing_columns``).
ADDED_COLUMNS = {"kind": "TEXT", "extended": "INTEGER", "reminded_for": "TEXT", "submitted_by": "TEXT"}
COLUMNS = (
    "request_id, case_id, subject, agency, kind, status, due_on, received_at, extended, reminded_for,"
    " submitted_by"
)


@dataclass(frozen=True)
class RequestRow:
    """One request as the index holds it."""

    request_id: UUID
    case_id: UUID
    subject: str
    agency: str
    kind: str
    status: str
    due_on: date
    received_at: datetime
    extended: bool
    reminded_for: date | None
    #: ``subject``, or ``legal_representative`` when a minor's representative submitted it.
    submitted_by: str = "subject"

    @classmethod
    def of(cls, row: Iterable[object]) -> RequestRow:
        (request_id, case_id, subject, agency, kind, status, due_on, received_at, extended, reminded, by) = (
            row
        )
        return cls(
            request_id=UUID(str(request_id)),
            case_id=UUID(str(case_id)),
            subject=str(subject),
            agency=str(agency),
            kind=str(kind),
            status=str(status),
            due_on=date.fromisoformat(str(due_on)),
            received_at=datetime.fromisoformat(str(received_at)),
            extended=bool(extended),
            reminded_for=None if reminded is None else date.fromisoformat(str(reminded)),
            submitted_by=str(by or "subject"),
        )


def write_row(cur: Cursor, row: RequestRow) -> None:
    cur.execute(
        f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (request_id) DO UPDATE SET status = excluded.status, due_on = excluded.due_on,"
        " kind = excluded.kind, extended = excluded.extended, reminded_for = excluded.reminded_for,"
        " submitted_by = excluded.submitted_by",
        (
            str(row.request_id),
            str(row.case_id),
            row.subject,
            row.agency,
            row.kind,
            row.status,
            row.due_on.isoformat(),
            row.received_at.isoformat(),
            int(row.extended),
            None if row.reminded_for is None else row.reminded_for.isoformat(),
            row.submitted_by,
        ),
    )


def _rows(sql: SqlStore, where: str, args: tuple[str, ...], order: str) -> list[RequestRow]:
    with sql.transaction(commit=False) as cur:
        found = cur.execute(f"SELECT {COLUMNS} FROM {TABLE} WHERE {where} ORDER BY {order}", args).fetchall()
    return [RequestRow.of(row) for row in found]


def of_subject(sql: SqlStore, subject: str) -> list[RequestRow]:
    """The subject's requests, newest first."""
    return _rows(sql, "subject = ?", (subject,), "received_at DESC, request_id")


def open_for(sql: SqlStore, agency: str) -> list[RequestRow]:
    """What ``agency`` must still answer, soonest deadline first."""
    return _rows(
        sql, "agency = ? AND status IN ('open', 'overdue')", (agency,), "due_on, received_at, request_id"
    )


def to_escalate(sql: SqlStore, today: date, reminder_days: int) -> list[UUID]:
    """The open requests the clock changes ``today``: past their deadline (they become overdue),
    or due within ``reminder_days`` and not yet reminded for this deadline. Soonest first; the
    others (most of them, most days) are not read at all."""
    rows = _rows(
        sql,
        "status = 'open' AND due_on <= ? AND (due_on < ? OR reminded_for IS NULL OR reminded_for <> due_on)",
        ((today + timedelta(days=reminder_days)).isoformat(), today.isoformat()),
        "due_on, received_at, request_id",
    )
    return [row.request_id for row in rows]


def count_overdue(sql: SqlStore) -> int:
    with sql.transaction(commit=False) as cur:
        row = cur.execute(f"SELECT COUNT(*) FROM {TABLE} WHERE status = 'overdue'").fetchone()
    return int(row[0]) if row else 0


def missing_columns(sql: SqlStore) -> list[str]:
    """Adds the columns a table made before lacks; returns their names (then its rows need
    writing again from the events: ``rebuild``)."""
    with sql.transaction(commit=False) as cur:
        if sql.dialect == "postgresql":
            found = cur.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = ?",
                (TABLE,),
            ).fetchall()
        else:
            found = cur.execute(f"PRAGMA table_info({TABLE})").fetchall()
    have = {str(row[0] if sql.dialect == "postgresql" else row[1]) for row in found}
    missing = [name for name in ADDED_COLUMNS if name not in have]
    if missing:
        with sql.transaction() as cur:
            for name in missing:
                exists = " IF NOT EXISTS" if sql.dialect == "postgresql" else ""
                cur.execute(f"ALTER TABLE {TABLE} ADD COLUMN{exists} {name} {ADDED_COLUMNS[name]}")
    return missing


def rebuild(sql: SqlStore, rows: Iterable[RequestRow]) -> int:
    """Empties the index and writes ``rows`` (every request, from its events), in one transaction."""
    written = 0
    with sql.transaction() as cur:
        cur.execute(f"DELETE FROM {TABLE}")
        for row in rows:
            write_row(cur, row)
            written += 1
    return written
