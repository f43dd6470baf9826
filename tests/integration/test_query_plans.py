"""Every read path has an index: the services' read-model queries, as they run in a day of a
case (registered, shared, consented, notified, looked at, closed, erased, purged), each
explained by PostgreSQL against its tables filled with 100,000 rows. A sequential scan of
such a table is a read that grows with the store (and a purge of many cases that grows with its
square): the test fails and names the query."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any

import psycopg2
import pytest

from services.consent import request_index
from services.data_sharing.ledger import LedgerQuery
from shared.config import Settings
from shared.db import Cursor
from tests.conftest import secrets_env
from tests.unit.test_retention import Platform

pytestmark = pytest.mark.integration

ROWS = 100_000
#: Queries that read a whole table on purpose, and why.
WHOLE_TABLE = {
    # Re-wrapping every key under a new master key (keten rotate-master-key): all of them.
    "SELECT master_key_id, COUNT(*) FROM keten_keys WHERE wrapped_key IS NOT NULL GROUP BY master_key_id",
}


@pytest.fixture
def platform(postgres_dsn, pg_schema, tmp_path) -> Platform:
    settings = Settings.from_env(
        {"DATABASE_URL": postgres_dsn, "DATABASE_SCHEMA": pg_schema, **secrets_env()}
    )
    return Platform(dataclasses.replace(settings, letter_dir=tmp_path / "letters", notify_bundle_seconds=0))


@pytest.fixture
def statements(monkeypatch) -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """Every statement the read models run through ``shared.db.Cursor`` (and its parameters)."""
    seen: list[tuple[str, tuple[Any, ...]]] = []
    execute, executemany = Cursor.execute, Cursor.executemany

    def recording_execute(self: Cursor, statement: str, params: Sequence[Any] = ()) -> Cursor:
        seen.append((statement, tuple(params)))
        return execute(self, statement, params)

    def recording_executemany(self: Cursor, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        seen.extend((statement, tuple(row)) for row in rows[:1])
        executemany(self, statement, rows)

    monkeypatch.setattr(Cursor, "execute", recording_execute)
    monkeypatch.setattr(Cursor, "executemany", recording_executemany)
    yield seen


def a_day_of_a_case(platform: Platform) -> None:
    case_id = platform.register()
    platform.give_consent(case_id)
    platform.share(case_id)
    platform.notification.dispatch_when_due()
    platform.notification.overview_for(platform.subject)
    platform.notification.deferrals_due("gemeente-utrecht")
    platform.retention.schedule_for(case_id)
    # The citizens' requests and the agencies' ledger, read as their listings read them.
    request_index.of_subject(platform.consent.sql, platform.subject)
    request_index.open_for(platform.consent.sql, "gemeente-utrecht")
    request_index.to_escalate(platform.consent.sql, date.today(), 7)
    request_index.count_overdue(platform.consent.sql)
    platform.consent.represented(platform.subject)  # the minors a representative acts for
    platform.sharing.ledger.entries(LedgerQuery(agency="gemeente-utrecht", case_id=case_id))
    other = platform.register()
    platform.share(other)
    platform.erase(other)
    platform.close(case_id)
    platform.purge(timedelta(days=365 * 20))


#: PostgreSQL's types of the read models' columns, and a value for row ``i`` of each (distinct
#: per row, so that unique keys hold).
FILL = {
    "text": "md5(i::text || '{column}')",
    "integer": "i % 2",
    "bigint": "i",
    "double precision": "i::float8",
    "bytea": "decode(md5(i::text), 'hex')",
    "uuid": "md5(i::text || '{column}')::uuid",
    "boolean": "i % 2 = 0",
}


def fill(cur: Any, schema: str, table: str) -> None:
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    )
    columns = cur.fetchall()
    values = ", ".join(FILL[kind].format(column=name) for name, kind in columns)
    names = ", ".join(name for name, _ in columns)
    cur.execute(
        f'INSERT INTO "{schema}".{table} ({names}) SELECT {values}'
        f" FROM generate_series(1, {ROWS}) AS i ON CONFLICT DO NOTHING"
    )
    cur.execute(f'ANALYZE "{schema}".{table}')


TABLE = re.compile(r"\b(?:FROM|UPDATE|JOIN)\s+(\w+)", re.IGNORECASE)


def explained(statement: str) -> bool:
    """Whether the statement reads rows by a condition (the ones an index must serve)."""
    first = statement.lstrip().split(None, 1)[0].upper()
    return first in {"SELECT", "UPDATE", "DELETE"} and " WHERE " in f" {statement} ".replace("\n", " ")


def test_every_read_model_query_uses_an_index_on_a_table_of_100000_rows(
    platform, statements, postgres_dsn, pg_schema
):
    a_day_of_a_case(platform)
    queries = {
        re.sub(r"\s+", " ", platform.sharing.sql.sql(s)).strip(): p for s, p in statements if explained(s)
    }
    assert len(queries) > 20, "the day of a case ran the read models' queries"

    conn = psycopg2.connect(postgres_dsn, options=f"-c search_path={pg_schema}")
    conn.autocommit = True
    slow = []
    with conn.cursor() as cur:
        for table in sorted({t for query in queries for t in TABLE.findall(query)}):
            fill(cur, pg_schema, table)
        for query, params in sorted(queries.items()):
            if query in WHOLE_TABLE:
                continue
            cur.execute(f"EXPLAIN {query}", params)
            plan = "\n".join(row[0] for row in cur.fetchall())
            if "Seq Scan" in plan:
                slow.append(f"{query}\n{plan}")
    conn.close()
    assert not slow, "sequential scans:\n\n" + "\n\n".join(slow)


def test_the_agency_listing_reads_each_requests_first_event_by_the_primary_key(
    platform, postgres_dsn, pg_schema
):
    """The agency's listing reads the words of every open request in one query on consent's
    events (``select_first_events``): by the primary key, not a scan of the store."""
    recorder = platform.consent.recorder
    ids = [uuid.uuid4() for _ in range(500)]
    assert recorder.select_first_events(ids) == {}
    conn = psycopg2.connect(postgres_dsn, options=f"-c search_path={pg_schema}")
    conn.autocommit = True
    with conn.cursor() as cur:
        fill(cur, pg_schema, recorder.events_table)
        cur.execute(
            f"EXPLAIN SELECT originator_id, originator_version, topic, state FROM {recorder.events_table}"
            " WHERE originator_id = ANY(%s::uuid[]) AND originator_version = 1",
            [[str(i) for i in ids]],
        )
        plan = "\n".join(row[0] for row in cur.fetchall())
    conn.close()
    assert "Seq Scan" not in plan, plan
