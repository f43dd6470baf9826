"""The retention schedule: when each record's time is up, learnt from the event stream."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from shared.application import KetenApplication
from shared.casefacts import CaseFacts
from shared.catalogue import Catalogue, load_catalogue
from shared.config import Settings
from shared.contracts.envelope import ReceivedEvent
from shared.db import Cursor


class Retention(KetenApplication):
    name = "retention"

    def __init__(self, settings: Settings, catalogue: Catalogue | None = None):
        self.catalogue = catalogue or load_catalogue()
        super().__init__(settings)
        self.cases = CaseFacts(self)
        self.schedule_table = f"{self.name}_schedule"
        self.sql.execute_script(
            [
                f"CREATE TABLE IF NOT EXISTS {self.schedule_table} ("
                " record_id TEXT PRIMARY KEY,"  # the case id, or the share id for a share record
                " case_id TEXT NOT NULL,"
                " record_kind TEXT NOT NULL,"
                " rule TEXT NOT NULL,"  # retention class / record kind @ catalogue version
                " counted_from TEXT,"
                " due_at TEXT,"  # NULL: not yet known, or kept
                " status TEXT NOT NULL)",
                f"CREATE INDEX IF NOT EXISTS {self.schedule_table}_due"
                f" ON {self.schedule_table} (status, due_at)",
                f"CREATE INDEX IF NOT EXISTS {self.schedule_table}_case ON {self.schedule_table} (case_id)",
            ]
        )

    def _rule(self, retention_class: str, record_kind: str) -> tuple[str, Any]:
        rule = self.catalogue.retention_classes[retention_class].rules[record_kind]
        return f"{retention_class}/{record_kind}@{self.catalogue.version}", rule

    def _upsert(
        self,
        cur: Cursor,
        record_id: Any,
        case_id: Any,
        kind: str,
        rule: str,
        counted_from: datetime | None,
        due_at: datetime | None,
        status: str,
    ) -> None:
        cur.execute(
            f"INSERT INTO {self.schedule_table}"
            " (record_id, case_id, record_kind, rule, counted_from, due_at, status)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (record_id) DO UPDATE SET"
            " rule = excluded.rule, counted_from = excluded.counted_from, due_at = excluded.due_at,"
            " status = excluded.status",
            (
                str(record_id),
                str(case_id),
                kind,
                rule,
                counted_from.isoformat() if counted_from else None,
                due_at.isoformat() if due_at else None,
                status,
            ),
        )

    def record_case_registered(self, event: ReceivedEvent) -> None:
        data = event.data

        def write(cur: Cursor) -> None:
            self.cases.record_registered(cur, event)
            rule, _ = self._rule(data["retention_class"], "case_records")
            # Due once the case ends; the end is not known yet.
            self._upsert(cur, data["case_id"], data["case_id"], "case_records", rule, None, None, "open")

        self.save_tracked(event.tracking, write=write)

    def record_case_closed(self, event: ReceivedEvent) -> None:
        case_id = event.data["case_id"]

        def write(cur: Cursor) -> None:
            self.cases.record_ended(cur, case_id, "closed", event.occurred_at, event.data["outcome"])
            case = self._case_in(cur, case_id)
            if case is None:
                return
            name, rule = self._rule(case, "case_records")
            due = rule.keep.after(event.occurred_at) if rule.keep else None
            self._upsert(
                cur,
                case_id,
                case_id,
                "case_records",
                name,
                event.occurred_at,
                due,
                "scheduled" if due else "kept",
            )

        self.save_tracked(event.tracking, write=write)

    def record_data_shared(self, event: ReceivedEvent) -> None:
        data = event.data

        def write(cur: Cursor) -> None:
            retention_class = self._case_in(cur, data["case_id"])
            if retention_class is None:
                return
            name, rule = self._rule(retention_class, "share_records")
            due = rule.keep.after(event.occurred_at) if rule.keep else None
            self._upsert(
                cur,
                data["share_id"],
                data["case_id"],
                "share_records",
                name,
                event.occurred_at,
                due,
                "scheduled" if due else "kept",
            )

        self.save_tracked(event.tracking, write=write)

    def _case_in(self, cur: Cursor, case_id: UUID) -> str | None:
        row = cur.execute(
            f"SELECT facts FROM {self.cases.table} WHERE case_id = ?", (str(case_id),)
        ).fetchone()
        return None if row is None else str(json.loads(row[0])["retention_class"])

    def schedule_for(self, case_id: UUID) -> list[dict[str, Any]]:
        with self.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                "SELECT record_id, record_kind, rule, counted_from, due_at, status"
                f" FROM {self.schedule_table}"
                " WHERE case_id = ? ORDER BY record_kind, record_id",
                (str(case_id),),
            ).fetchall()
        keys = ("record_id", "record_kind", "rule", "counted_from", "due_at", "status")
        return [dict(zip(keys, row, strict=True)) for row in rows]
