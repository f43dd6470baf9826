"""The index of citizens' requests in consent's store (``consent_citizen_requests``): one row per
request with who must answer, its status and deadline; no personal data but the pseudonym.

Written in the same transaction as the request's events, so the listings and the escalation
never miss a request that was saved."""

from __future__ import annotations

from uuid import UUID

from shared.db import Cursor, SqlStore

TABLE = "consent_citizen_requests"

CREATE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    " request_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, subject TEXT NOT NULL,"
    " agency TEXT NOT NULL, status TEXT NOT NULL, due_on TEXT NOT NULL, received_at TEXT NOT NULL)"
)
#: The read paths: a subject's requests, what an agency must answer, what is still open.
INDEXES = (
    f"CREATE INDEX IF NOT EXISTS {TABLE}_subject ON {TABLE} (subject, received_at)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_agency ON {TABLE} (agency, status, due_on)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_status ON {TABLE} (status, due_on)",
)


def write_row(
    cur: Cursor,
    *,
    request_id: UUID,
    case_id: UUID,
    subject: str,
    agency: str,
    status: str,
    due_on: str,
    received_at: str,
) -> None:
    cur.execute(
        f"INSERT INTO {TABLE} (request_id, case_id, subject, agency, status, due_on, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO UPDATE SET"
        " status = excluded.status, due_on = excluded.due_on",
        (str(request_id), str(case_id), subject, agency, status, due_on, received_at),
    )


def _ids(sql: SqlStore, where: str, args: tuple[str, ...], order: str) -> list[UUID]:
    with sql.transaction(commit=False) as cur:
        rows = cur.execute(f"SELECT request_id FROM {TABLE} WHERE {where} ORDER BY {order}", args).fetchall()
    return [UUID(row[0]) for row in rows]


def of_subject(sql: SqlStore, subject: str) -> list[UUID]:
    """The subject's requests, newest first."""
    return _ids(sql, "subject = ?", (subject,), "received_at DESC, request_id")


def open_for(sql: SqlStore, agency: str) -> list[UUID]:
    """What ``agency`` must still answer, soonest deadline first."""
    return _ids(
        sql, "agency = ? AND status IN ('open', 'overdue')", (agency,), "due_on, received_at, request_id"
    )


def still_open(sql: SqlStore) -> list[UUID]:
    """Every request waiting for an answer within its deadline, soonest deadline first (an
    overdue one has nothing left to escalate)."""
    return _ids(sql, "status = 'open'", (), "due_on, received_at, request_id")


def count_overdue(sql: SqlStore) -> int:
    with sql.transaction(commit=False) as cur:
        row = cur.execute(f"SELECT COUNT(*) FROM {TABLE} WHERE status = 'overdue'").fetchone()
    return int(row[0]) if row else 0
