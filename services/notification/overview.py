"""The citizen's overview (inzage): a projection of the event stream, per data subject.

Three tables in the notification service's store:
- ``notification_overview_cases``: per subject and case, what the case is (table, purpose,
  agencies with role and ground, record holder, contact point, status, what was purged);
- ``notification_overview_entries``: per subject, what happened in a case, in time order: a
  share (from, to, categories, purpose, grounds, written or oral, the sealed content, whether
  and how the subject was told), a refusal the subject should know of, a consent, an
  objection, a safety override, an erasure request;
- ``notification_overview_notifications``: which entry each of the service's notifications tells of.

Rows hold personal data only sealed; they are written in the same transaction as the tracking
record of the event they come from (``apply`` for other services' events, ``apply_own`` for the
service's own), and can be rebuilt from the events alone (``rebuild``). Each row is a JSON
document inside this module; what leaves it are typed rows (``SubjectRecords``). How the
citizen reads them (labels, names, opened values) is ``services.notification.view``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from shared.application import KetenApplication
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.base import ContactPointRef
from shared.contracts.events.case_registration import (
    CaseActivated,
    CaseClosed,
    CaseRegistered,
    CaseResumed,
    CaseStopped,
    ParticipantAdded,
    ParticipantRemoved,
)
from shared.contracts.events.consent import (
    ConsentGiven,
    ConsentWithdrawn,
    ObjectionLodged,
    ObjectionWithdrawn,
    SafetyOverrideEnded,
    SafetyOverrideRecorded,
)
from shared.contracts.events.data_sharing import DataShared, ErasurePassedOn, ShareCorrected, ShareRefused
from shared.contracts.events.retention import ErasureGranted, ErasureRefused, RecordsPurged
from shared.contracts.typed import plain
from shared.crypto import ScopeShreddedError
from shared.db import Cursor
from shared.sealed import PURGED, KeyScope, Sealed, sealed_text

#: Fields of an entry that hold personal values (sealed); they go when the entry's scope is purged.
SEALED_FIELDS = ("content", "notice", "details", "description", "reason", "explanation")


def _json(value: Any) -> str:
    def default(obj: Any) -> Any:
        if hasattr(obj, "to_json"):
            return obj.to_json()
        if isinstance(obj, UUID | datetime):
            return str(obj) if isinstance(obj, UUID) else obj.isoformat()
        if hasattr(obj, "isoformat"):
            return obj.isoformat()
        raise TypeError(type(obj).__name__)

    return json.dumps(value, default=default, separators=(",", ":"))


#: The notification's status in the overview after each of its events.
NOTIFICATION_STATUS = {
    "NotificationDeferred": "deferred",
    "NotificationReleased": "scheduled",
    "DeliveryAttempted": "sending",
    "NotificationFailed": "retrying",
    "NotificationRerouted": "scheduled",
    "NotificationSent": "sent",
}


def notification_changes(own_event: Any) -> dict[str, Any] | None:
    """What one of a notification's own events changes in what its entry says of it (None:
    nothing, not a notification's event)."""
    name = type(own_event).__name__
    at = own_event.timestamp
    if name == "NotificationScheduled":
        return {"id": own_event.originator_id, "channel": own_event.channel, "status": "scheduled", "at": at}
    if name not in NOTIFICATION_STATUS:
        return None
    changes: dict[str, Any] = {"status": NOTIFICATION_STATUS[name], "at": at}
    if name == "NotificationReleased":
        changes["was_deferred"] = True
    elif name == "NotificationFailed":
        changes["retry_at"] = own_event.retry_at
    elif name == "NotificationRerouted":
        changes["channel"] = own_event.to_channel
    elif name == "NotificationSent":
        changes["status"] = "delivered" if own_event.channel == "portal" else "sent"
    return changes


def told_after(own_events: Iterable[Any]) -> dict[str, Any]:
    """What an entry says of its notification after ``own_events`` (one notification's, in
    order), as ``apply_own`` would leave it event by event."""
    told: dict[str, Any] = {}
    for own_event in own_events:
        changes = notification_changes(own_event)
        if changes is not None:
            told = json.loads(_json({**told, **changes}))
    return told


class CitizenOverview:
    """The overview's tables: written from events, read as ``SubjectRecords``."""

    def __init__(self, app: KetenApplication) -> None:
        self.app = app
        self.cases_table = f"{app.name}_overview_cases"
        self.entries_table = f"{app.name}_overview_entries"
        self.notifications_table = f"{app.name}_overview_notifications"
        app.sql.execute_script(
            [
                f"CREATE TABLE IF NOT EXISTS {self.cases_table} ("
                " subject TEXT NOT NULL, case_id TEXT NOT NULL, document TEXT NOT NULL,"
                " PRIMARY KEY (subject, case_id))",
                f"CREATE INDEX IF NOT EXISTS {self.cases_table}_case ON {self.cases_table} (case_id)",
                f"CREATE TABLE IF NOT EXISTS {self.entries_table} ("
                " subject TEXT NOT NULL, entry_id TEXT NOT NULL, case_id TEXT NOT NULL,"
                " kind TEXT NOT NULL, occurred_at TEXT NOT NULL, document TEXT NOT NULL,"
                " PRIMARY KEY (subject, entry_id))",
                f"CREATE INDEX IF NOT EXISTS {self.entries_table}_case ON {self.entries_table} (case_id)",
                f"CREATE INDEX IF NOT EXISTS {self.entries_table}_entry ON {self.entries_table} (entry_id)",
                f"CREATE TABLE IF NOT EXISTS {self.notifications_table} ("
                " notification_id TEXT PRIMARY KEY, subject TEXT NOT NULL, entry_id TEXT NOT NULL)",
            ]
        )

    # -- applying events: the one place the projection changes, live and on a rebuild ------
    #: The other services' events the overview follows.
    EVENTS = (
        "CaseRegistered",
        "CaseActivated",
        "CaseStopped",
        "CaseResumed",
        "CaseClosed",
        "ParticipantAdded",
        "ParticipantRemoved",
        "ConsentGiven",
        "ConsentWithdrawn",
        "ObjectionLodged",
        "ObjectionWithdrawn",
        "SafetyOverrideRecorded",
        "SafetyOverrideEnded",
        "DataShared",
        "ShareRefused",
        "ShareCorrected",
        "ErasurePassedOn",
        "RecordsPurged",
        "ErasureGranted",
        "ErasureRefused",
    )

    def apply(
        self, cur: Cursor, event: ReceivedEvent[Any], told: Mapping[str, dict[str, Any]] | None = None
    ) -> None:
        """Applies one event of another service to the overview. ``told``: per subject, the
        state of the share's notification saved with it (``told_after``), written with its
        entry (so that the notification's own events need not change the entry again)."""
        data = event.data
        if isinstance(data, CaseRegistered):
            self.add_case(cur, event)
        elif isinstance(data, CaseActivated):
            self.change_case(cur, data.case_id, None, {"status": "active"})
        elif isinstance(data, CaseStopped | CaseResumed):
            status = "stopped" if isinstance(data, CaseStopped) else "active"
            changes: dict[str, Any] = {"status": status}
            if isinstance(data, CaseResumed) or data.status == "stopped":
                # Stopped for every subject: the case has ended and its records' time counts
                # from now (as retention's schedule counts it); resumed: it runs again.
                changes["ended_at"] = event.occurred_at.isoformat() if isinstance(data, CaseStopped) else None
            self.change_case(cur, data.case_id, data.subject, changes)
        elif isinstance(data, CaseClosed):
            self.end_case(cur, data.case_id, "closed", event.occurred_at, data.outcome)
        elif isinstance(data, ParticipantAdded):
            joined = {**plain(data.participant), "added_at": event.occurred_at.isoformat()}
            self.change_case(cur, data.case_id, None, {}, add_participant=joined)
        elif isinstance(data, ParticipantRemoved):
            self.change_case(cur, data.case_id, None, {}, remove_participant=(data.agency, event.occurred_at))
        elif isinstance(data, ConsentGiven):
            self.add_entry(cur, data.subject, event.message_id, "consent", event, {"status": "given"})
        elif isinstance(data, ConsentWithdrawn):
            self.change_entries(
                cur,
                {"status": "withdrawn", "withdrawn_at": event.occurred_at},
                subject=data.subject,
                case_id=data.case_id,
                kind="consent",
            )
        elif isinstance(data, ObjectionLodged):
            self.add_entry(cur, data.subject, data.objection_id, "objection", event, {"status": "lodged"})
        elif isinstance(data, ObjectionWithdrawn):
            self.change_entries(
                cur,
                {"status": "withdrawn", "withdrawn_at": event.occurred_at},
                subject=data.subject,
                entry_id=data.objection_id,
            )
        elif isinstance(data, SafetyOverrideRecorded):
            # The professional's own reasons and the deferral's stay out: the citizen is owed the
            # explanation, and the override only once it is no longer deferred.
            shown = {k: v for k, v in plain(data).items() if k not in ("deferral", "reasons", "subjects")}
            override = {"status": "active", "deferred": data.deferral is not None}
            for subject in data.subjects:
                # Sealed again under the subject's key, as the explanation (see ``_for_subject``).
                function = self.app.reseal(KeyScope(data.case_id, subject), data.recorded_by.function)
                explained = {
                    **shown,
                    "explanation": self._for_subject(data, subject),
                    "recorded_by": {"agency": data.recorded_by.agency, "function": function},
                }
                self.add_entry(cur, subject, data.override_id, "override", event, override, data=explained)
        elif isinstance(data, SafetyOverrideEnded):
            self.change_entries(
                cur,
                {"status": "ended", "ended_at": event.occurred_at, "end_reason_code": data.reason_code},
                entry_id=data.override_id,
            )
        elif isinstance(data, DataShared):
            # Everyone the content is about has it on their overview, each as their own entry
            # (their own pseudonym, none of the others').
            scope = KeyScope(data.case_id, data.subject)
            shown = {k: v for k, v in plain(data).items() if k != "also_about"}
            shown["contact_point"] = self._contact_point(data.contact_point, scope)
            for subject in data.subjects:
                entry = {**shown, "subject": subject}
                if told and subject in told:
                    entry["notification"] = told[subject]
                self.add_entry(cur, subject, data.share_id, "share", event, data=entry)
        elif isinstance(data, ShareRefused):
            if data.visible_to_subject:
                self.add_entry(cur, data.subject, data.share_id, "refusal", event)
        elif isinstance(data, ShareCorrected):
            self.correct_share(cur, event)
        elif isinstance(data, ErasurePassedOn):
            # The recipients were told to erase their own copy (rule 6): the citizen sees it.
            passed_on = {"at": data.purged_at, "recipients": list(data.recipients), "reason": data.reason}
            self.change_entries(cur, {"erasure_passed_on": passed_on}, entry_id=data.share_id, kind="share")
        elif isinstance(data, RecordsPurged):
            self.mark_purged(cur, event)
        elif isinstance(data, ErasureGranted | ErasureRefused):
            decision = {"decision": "granted" if isinstance(data, ErasureGranted) else "refused"}
            self.add_entry(cur, data.subject, event.message_id, "erasure", event, decision)

    def _contact_point(self, contact_point: ContactPointRef, scope: KeyScope) -> dict[str, Any]:
        """A contact point as the overview keeps it: the function sealed under ``scope`` (as the
        event carries it; one stored before it was sealed is sealed now)."""
        return {"agency": contact_point.agency, "function": self.app.reseal(scope, contact_point.function)}

    def _for_subject(self, data: SafetyOverrideRecorded, subject: str) -> Any:
        """The override's explanation sealed again under the subject's own key: consent seals it
        under the case's key, which goes with the minutes after weeks, while the subject's share
        records, which the explanation is owed for, are kept for years."""
        opened = self.app.vault.open(data.explanation)
        if opened is None or opened is PURGED:
            return data.explanation
        try:
            return self.app.seal(KeyScope(data.case_id, subject), opened)
        except ScopeShreddedError:
            return None

    def apply_own(self, cur: Cursor, own_event: DomainEventProtocol[UUID]) -> None:
        """Applies one of the notification service's own events: whether and how the subject
        was told of a share, and whether an override may be shown yet."""
        name = type(own_event).__name__
        # The aggregates' events are classes eventsourcing makes from the decorated methods
        # (services/notification/domain.py): read by name, attributes as the methods name them.
        domain_event: Any = own_event
        at = domain_event.timestamp
        if name in ("DeferralEnded", "DeferralLapsed"):
            self.change_entries(
                cur, {"deferred": False, "deferral_ended_at": at}, entry_id=domain_event.override_id
            )
        elif name == "NotificationScheduled":
            self.add_notifications(cur, [domain_event])
            self._change_notification(
                cur, domain_event.originator_id, notification_changes(domain_event) or {}
            )
        elif name in NOTIFICATION_STATUS:
            self._change_notification(
                cur, domain_event.originator_id, notification_changes(domain_event) or {}
            )

    def add_notifications(self, cur: Cursor, scheduled: Sequence[Any]) -> None:
        """Which entry each newly scheduled notification tells of (``NotificationScheduled``
        events), in one statement."""
        if not scheduled:
            return
        rows = [(str(e.originator_id), e.subject, str(e.share_id)) for e in scheduled]
        cur.execute(
            f"INSERT INTO {self.notifications_table} (notification_id, subject, entry_id)"
            f" VALUES {', '.join(['(?, ?, ?)'] * len(rows))} ON CONFLICT (notification_id) DO NOTHING",
            [value for row in rows for value in row],
        )

    def change_notifications(self, cur: Cursor, own_events: Iterable[Any]) -> None:
        """``apply_own`` of the notification events of several notifications (in order): the
        entries they tell of read in one statement, each written once, as its events leave it."""
        changes: dict[str, list[dict[str, Any]]] = {}
        for domain_event in own_events:
            change = notification_changes(domain_event)
            if change is not None:
                changes.setdefault(str(domain_event.originator_id), []).append(change)
        if not changes:
            return
        ids = sorted(changes)
        rows = cur.execute(
            f"SELECT n.notification_id, n.subject, n.entry_id, e.document FROM {self.notifications_table} n"
            f" JOIN {self.entries_table} e ON e.subject = n.subject AND e.entry_id = n.entry_id"
            f" WHERE n.notification_id IN ({', '.join(['?'] * len(ids))})",
            ids,
        ).fetchall()
        documents: dict[tuple[str, str], dict[str, Any]] = {}
        for notification_id, subject, entry_id, raw in rows:
            document = documents.get((subject, entry_id)) or dict(json.loads(raw))
            told = document.get("notification", {})
            for change in changes[notification_id]:
                told = json.loads(_json({**told, **change}))
            documents[(subject, entry_id)] = {**document, "notification": told}
        if self.app.sql.dialect != "postgresql" or len(documents) == 1:
            for (subject, entry_id), document in documents.items():
                self._write_entry(cur, subject, entry_id, document)
            return
        values = ", ".join(["(?, ?, ?)"] * len(documents))
        cur.execute(
            f"UPDATE {self.entries_table} AS e SET document = v.document"
            f" FROM (VALUES {values}) AS v (subject, entry_id, document)"
            " WHERE e.subject = v.subject AND e.entry_id = v.entry_id",
            [
                value
                for (subject, entry_id), document in documents.items()
                for value in (subject, entry_id, _json(document))
            ],
        )

    def _change_notification(self, cur: Cursor, notification_id: UUID, changes: dict[str, Any]) -> None:
        """The notification's status on its entry: the entry found and read in one statement,
        written in one more."""
        row = cur.execute(
            f"SELECT n.subject, n.entry_id, e.document FROM {self.notifications_table} n"
            f" JOIN {self.entries_table} e ON e.subject = n.subject AND e.entry_id = n.entry_id"
            " WHERE n.notification_id = ?",
            (str(notification_id),),
        ).fetchone()
        if row is None:
            return
        subject, entry_id, document = row[0], row[1], dict(json.loads(row[2]))
        told = json.loads(_json({**document.get("notification", {}), **changes}))
        self._write_entry(cur, subject, entry_id, {**document, "notification": told})

    # -- writing ---------------------------------------------------------------------------
    def add_case(self, cur: Cursor, event: ReceivedEvent[CaseRegistered]) -> None:
        data = event.data
        for subject in data.subjects:
            document = {
                "case_id": data.case_id,
                "table": data.table,
                "purpose": data.purpose,
                "role": subject.role,
                "minor": subject.minor,
                "participants": plain(data.participants),
                "record_holder": data.record_holder,
                "retention_class": data.retention_class,
                "contact_point": self._contact_point(data.contact_point, KeyScope(data.case_id)),
                "participation": data.participation,
                "informed_beforehand": data.informed_beforehand,
                "status": "registered",
                "registered_at": event.occurred_at,
                "ended_at": None,
                "outcome": None,
            }
            cur.execute(
                f"INSERT INTO {self.cases_table} (subject, case_id, document) VALUES (?, ?, ?)"
                " ON CONFLICT (subject, case_id) DO NOTHING",
                (subject.pseudonym, str(data.case_id), _json(document)),
            )

    def end_case(
        self, cur: Cursor, case_id: UUID, status: str, ended_at: datetime, outcome: str | None
    ) -> None:
        rows = cur.execute(
            f"SELECT subject, document FROM {self.cases_table} WHERE case_id = ?", (str(case_id),)
        ).fetchall()
        for subject, raw in rows:
            document = json.loads(raw)
            document.update(status=status, ended_at=ended_at.isoformat(), outcome=outcome)
            cur.execute(
                f"UPDATE {self.cases_table} SET document = ? WHERE subject = ? AND case_id = ?",
                (_json(document), subject, str(case_id)),
            )

    def add_entry(
        self,
        cur: Cursor,
        subject: str,
        entry_id: UUID,
        kind: str,
        event: ReceivedEvent[Any],
        extra: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        document = {**(plain(event.data) if data is None else data), **(extra or {}), "kind": kind}
        document["occurred_at"] = event.occurred_at
        cur.execute(
            f"INSERT INTO {self.entries_table} (subject, entry_id, case_id, kind, occurred_at, document)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (subject, entry_id) DO NOTHING",
            (
                subject,
                str(entry_id),
                str(event.data.case_id),
                kind,
                event.occurred_at.isoformat(),
                _json(document),
            ),
        )

    def _entry(self, cur: Cursor, subject: str, entry_id: str | UUID) -> dict[str, Any] | None:
        row = cur.execute(
            f"SELECT document FROM {self.entries_table} WHERE subject = ? AND entry_id = ?",
            (subject, str(entry_id)),
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def correct_share(self, cur: Cursor, event: ReceivedEvent[ShareCorrected]) -> None:
        """A share's content was corrected (and the correction passed on to its recipient): the
        citizen reads the corrected content, and when and why it was corrected. Repeat-safe by
        the correction's id."""
        data = event.data
        document = self._entry(cur, data.subject, data.share_id)
        if document is None:
            return
        corrections = document.get("corrections", [])
        if any(c["correction_id"] == str(data.correction_id) for c in corrections):
            return
        correction = {
            "correction_id": str(data.correction_id),
            "at": event.occurred_at.isoformat(),
            "by": data.corrected_by,
            "reason_code": data.reason_code,
        }
        changes: dict[str, Any] = {"corrections": [*corrections, correction]}
        if data.content is not None:
            changes["content"] = data.content
        self.update_entry(cur, data.subject, data.share_id, changes)

    def update_entry(self, cur: Cursor, subject: str, entry_id: str | UUID, changes: dict[str, Any]) -> None:
        document = self._entry(cur, subject, entry_id)
        if document is None:
            return
        self._write_entry(cur, subject, entry_id, {**document, **changes})

    def _write_entry(self, cur: Cursor, subject: str, entry_id: str | UUID, document: dict[str, Any]) -> None:
        cur.execute(
            f"UPDATE {self.entries_table} SET document = ? WHERE subject = ? AND entry_id = ?",
            (_json(document), subject, str(entry_id)),
        )

    def change_entries(
        self,
        cur: Cursor,
        changes: dict[str, Any],
        subject: str | None = None,
        entry_id: UUID | None = None,
        case_id: UUID | None = None,
        kind: str | None = None,
    ) -> None:
        """Changes every entry that matches all the given criteria."""
        criteria = {"subject": subject, "entry_id": entry_id, "case_id": case_id, "kind": kind}
        given = {column: str(value) for column, value in criteria.items() if value is not None}
        where = " AND ".join(f"{column} = ?" for column in given)
        rows = cur.execute(
            f"SELECT subject, entry_id FROM {self.entries_table} WHERE {where}", tuple(given.values())
        ).fetchall()
        for row_subject, row_entry in rows:
            self.update_entry(cur, row_subject, row_entry, changes)

    def change_case(
        self,
        cur: Cursor,
        case_id: UUID,
        subject: str | None,
        changes: dict[str, Any],
        add_participant: dict[str, Any] | None = None,
        remove_participant: tuple[str, datetime] | None = None,
    ) -> None:
        """Changes the case's document of one subject, or of every subject when ``subject`` is None."""
        query = f"SELECT subject, document FROM {self.cases_table} WHERE case_id = ?"
        rows = cur.execute(
            query + (" AND subject = ?" if subject else ""),
            (str(case_id), subject) if subject else (str(case_id),),
        ).fetchall()
        for row_subject, raw in rows:
            document = {**json.loads(raw), **changes}
            if add_participant is not None:
                document["participants"] = [
                    *(p for p in document["participants"] if p["agency"] != add_participant["agency"]),
                    add_participant,
                ]
            if remove_participant is not None:
                agency, at = remove_participant
                for participant in document["participants"]:
                    if participant["agency"] == agency:
                        participant["removed_at"] = at.isoformat()
            cur.execute(
                f"UPDATE {self.cases_table} SET document = ? WHERE subject = ? AND case_id = ?",
                (_json(document), row_subject, str(case_id)),
            )

    def clear(self, cur: Cursor) -> None:
        """Empties the projection, before a rebuild."""
        for table in (self.cases_table, self.entries_table, self.notifications_table):
            cur.execute(f"DELETE FROM {table}")

    def mark_purged(self, cur: Cursor, purge: ReceivedEvent[RecordsPurged]) -> None:
        """Applies ``RecordsPurged``: the sealed values of the purged scope leave the overview;
        what happened (a share: from, to, what kind of data, on what ground, when) stays, with
        when and why it was purged."""
        data = purge.data
        mark = {"record_kind": data.record_kind, "purged_at": purge.occurred_at, "reason": data.reason}
        case_id = str(data.case_id)
        if data.subject is None:
            rows = cur.execute(
                f"SELECT subject, document FROM {self.cases_table} WHERE case_id = ?", (case_id,)
            ).fetchall()
        else:
            rows = cur.execute(
                f"SELECT subject, document FROM {self.cases_table} WHERE case_id = ? AND subject = ?",
                (case_id, data.subject),
            ).fetchall()
        for subject, raw in rows:
            document = json.loads(raw)
            if data.subject is None:
                # The case's key is gone; a function kept in plain text before it was sealed goes too.
                document["contact_point"]["function"] = None
            document["purged"] = [
                *(p for p in document.get("purged", []) if p["record_kind"] != data.record_kind),
                mark,
            ]
            cur.execute(
                f"UPDATE {self.cases_table} SET document = ? WHERE subject = ? AND case_id = ?",
                (_json(document), subject, case_id),
            )
        if data.subject is None:
            return
        entries = cur.execute(
            f"SELECT entry_id, document FROM {self.entries_table} WHERE subject = ? AND case_id = ?",
            (data.subject, case_id),
        ).fetchall()
        for entry_id, raw in entries:
            document = {k: v for k, v in json.loads(raw).items() if k not in SEALED_FIELDS}
            for who in ("contact_point", "recorded_by"):
                if isinstance(document.get(who), dict):  # a function kept in plain text before it was sealed
                    document[who]["function"] = None
            document.update(purged_at=purge.occurred_at, purge_reason=data.reason)
            cur.execute(
                f"UPDATE {self.entries_table} SET document = ? WHERE subject = ? AND entry_id = ?",
                (_json(document), data.subject, entry_id),
            )

    # -- rebuilding from the events alone ---------------------------------------------------
    def rebuild(
        self, upstream: Iterable[ReceivedEvent[Any]], progress: Callable[[int], None] | None = None
    ) -> int:
        """Empties the overview and applies every upstream event (in time order across the
        services, each service's in its own order), then the notification service's own events
        from its store, exactly as the live consumer does. Returns how many were applied."""
        app = self.app
        own = [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(start=1, limit=10**9)]
        applied = 0
        with app.sql.transaction() as cur:
            self.clear(cur)
            for event in sorted(upstream, key=lambda e: (e.occurred_at, e.source, e.position)):
                if event.name in self.EVENTS:
                    self.apply(cur, event)
                applied += 1
                if progress:
                    progress(1)
            for domain_event in own:
                self.apply_own(cur, domain_event)
                applied += 1
                if progress:
                    progress(1)
        return applied

    # -- reading ---------------------------------------------------------------------------
    def records_of(self, subjects: Iterable[str]) -> dict[str, SubjectRecords]:
        """``records`` of several subjects, in two statements for all."""
        wanted = sorted(set(subjects))
        if not wanted:
            return {}
        marks = ", ".join(["?"] * len(wanted))
        with self.app.sql.transaction(commit=False) as cur:
            cases = cur.execute(
                f"SELECT subject, document FROM {self.cases_table} WHERE subject IN ({marks})"
                " ORDER BY subject, case_id",
                wanted,
            ).fetchall()
            entries = cur.execute(
                f"SELECT subject, document FROM {self.entries_table} WHERE subject IN ({marks})"
                " ORDER BY subject, occurred_at, entry_id",
                wanted,
            ).fetchall()
        case_rows: dict[str, list[CaseRow]] = {subject: [] for subject in wanted}
        entry_rows: dict[str, list[EntryRow]] = {subject: [] for subject in wanted}
        for subject, raw in cases:
            case_rows[subject].append(case_row(json.loads(raw)))
        for subject, raw in entries:
            document = json.loads(raw)
            entry_rows[subject].append(ENTRY_ROWS[document["kind"]](document))
        return {
            subject: SubjectRecords(cases=tuple(case_rows[subject]), entries=tuple(entry_rows[subject]))
            for subject in wanted
        }

    def records(self, subject: str) -> SubjectRecords:
        """The subject's cases and entries (oldest first), personal values still sealed."""
        with self.app.sql.transaction(commit=False) as cur:
            cases = cur.execute(
                f"SELECT document FROM {self.cases_table} WHERE subject = ? ORDER BY case_id", (subject,)
            ).fetchall()
            entries = cur.execute(
                f"SELECT document FROM {self.entries_table} WHERE subject = ? ORDER BY occurred_at, entry_id",
                (subject,),
            ).fetchall()
        documents = [json.loads(row[0]) for row in entries]
        return SubjectRecords(
            cases=tuple(case_row(json.loads(row[0])) for row in cases),
            entries=tuple(ENTRY_ROWS[document["kind"]](document) for document in documents),
        )


# -- the rows the overview hands out ---------------------------------------------------------
#: Metadata of a field that the document holds only once it is set (``None`` or empty: absent).
ONLY_WHEN_SET: Mapping[str, bool] = MappingProxyType({"only_when_set": True})


@dataclass(frozen=True, kw_only=True)
class ParticipantRow:
    """An agency at the case's table, with its role and legal ground."""

    agency: str
    role: str
    legal_ground: str
    added_at: datetime | None = field(default=None, metadata=ONLY_WHEN_SET)
    removed_at: datetime | None = field(default=None, metadata=ONLY_WHEN_SET)


@dataclass(frozen=True, kw_only=True)
class ContactPointRow:
    """Whom the citizen can ask: an agency and a function (never a person's name). The function
    is sealed (the case's key for the case, the subject's for a share), None once purged; plain
    text only in a row kept before it was sealed."""

    agency: str
    function: Sealed | str | None


@dataclass(frozen=True, kw_only=True)
class PurgeMark:
    """A kind of record of the case that was purged, when and why."""

    record_kind: str
    purged_at: datetime
    reason: str


@dataclass(frozen=True, kw_only=True)
class CaseRow:
    """What a case is, for one of its subjects."""

    case_id: UUID
    table: str
    purpose: str
    role: str
    minor: bool
    participants: tuple[ParticipantRow, ...]
    record_holder: str
    retention_class: str
    contact_point: ContactPointRow
    participation: str
    informed_beforehand: bool
    status: str
    registered_at: datetime
    ended_at: datetime | None
    outcome: str | None
    purged: tuple[PurgeMark, ...] = field(default=(), metadata=ONLY_WHEN_SET)


@dataclass(frozen=True, kw_only=True)
class EntryRow:
    """Something that happened in a case, about one subject, in time order."""

    kind: str
    case_id: UUID
    occurred_at: datetime
    purged_at: datetime | None = field(default=None, metadata=ONLY_WHEN_SET)
    purge_reason: str | None = field(default=None, metadata=ONLY_WHEN_SET)


@dataclass(frozen=True, kw_only=True)
class Told:
    """Whether and how the subject was told of a share (its notification's state)."""

    id: UUID
    channel: str
    status: str
    at: datetime
    retry_at: datetime | None = field(default=None, metadata=ONLY_WHEN_SET)
    was_deferred: bool | None = field(default=None, metadata=ONLY_WHEN_SET)


@dataclass(frozen=True, kw_only=True)
class CorrectionRow:
    correction_id: UUID
    at: datetime
    by: str
    reason_code: str


@dataclass(frozen=True, kw_only=True)
class ErasurePassedOnRow:
    """The share's recipients were told to erase their copy (rule 6)."""

    at: datetime
    recipients: tuple[str, ...]
    reason: str


@dataclass(frozen=True, kw_only=True)
class ProvisionRow:
    """A provision of law: the national law and its article."""

    law: str
    article: str

    @property
    def citation(self) -> str:
        return f"{self.law}, {self.article}"


@dataclass(frozen=True, kw_only=True)
class ShareRow(EntryRow):
    subject: str
    share_id: UUID
    request_id: UUID
    from_agency: str
    to_agency: str
    categories: tuple[str, ...]
    purpose: str
    sender_ground: str
    recipient_ground: str
    special_grounds: Mapping[str, str]
    form: str
    meeting_id: str | None
    #: The shared content, sealed; gone once purged.
    content: Sealed | None
    direction: str
    override_id: UUID | None
    contact_point: ContactPointRow
    catalogue_version: str
    correlation_id: str | None
    #: The law and article the sender's ground rests on, as recorded in the decision (absent
    #: from shares decided before decisions named it).
    provision: ProvisionRow | None = field(default=None, metadata=ONLY_WHEN_SET)
    special_provisions: Mapping[str, ProvisionRow] = field(default_factory=dict, metadata=ONLY_WHEN_SET)
    notification: Told | None = field(default=None, metadata=ONLY_WHEN_SET)
    corrections: tuple[CorrectionRow, ...] = field(default=(), metadata=ONLY_WHEN_SET)
    erasure_passed_on: ErasurePassedOnRow | None = field(default=None, metadata=ONLY_WHEN_SET)


@dataclass(frozen=True, kw_only=True)
class RefusalRow(EntryRow):
    """A refused share the subject should know of (``visible_to_subject``)."""

    subject: str
    share_id: UUID
    request_id: UUID
    from_agency: str
    to_agency: str
    categories: tuple[str, ...]
    purpose: str
    reason_code: str
    #: The reason as the professional was answered; gone once purged.
    reason: str | None = field(default=None, metadata=ONLY_WHEN_SET)
    visible_to_subject: bool
    direction: str
    reason_details: Mapping[str, str]
    catalogue_version: str
    correlation_id: str | None
    #: The recipient's first decision on the request (the share of the categories that went
    #: through, or the first refusal) when the request was decided per category.
    part_of: UUID | None = field(default=None, metadata=ONLY_WHEN_SET)


@dataclass(frozen=True, kw_only=True)
class ConsentRow(EntryRow):
    """Consent the subject gave (the notice they were shown stays out of the overview)."""

    subject: str
    record_id: UUID
    purpose: str
    categories: tuple[str, ...]
    recipients: tuple[str, ...]
    valid_until: date
    notice_version: str
    given_how: str
    recorded_by: str
    status: str
    withdrawn_at: datetime | None = field(default=None, metadata=ONLY_WHEN_SET)


@dataclass(frozen=True, kw_only=True)
class ObjectionRow(EntryRow):
    subject: str
    record_id: UUID
    objection_id: UUID
    recorded_by: str
    #: The subject's own words, sealed; gone once purged.
    reason: Sealed | None
    status: str
    withdrawn_at: datetime | None = field(default=None, metadata=ONLY_WHEN_SET)


@dataclass(frozen=True, kw_only=True)
class RecordedByRow:
    """The agency and the function of the professional who recorded an override; the function
    sealed like the explanation (plain text only in a row kept before it was sealed)."""

    agency: str
    function: Sealed | str | None


@dataclass(frozen=True, kw_only=True)
class OverrideRow(EntryRow):
    """A safety override that covers the subject (the professional's reasons stay out)."""

    override_id: UUID
    categories: tuple[str, ...]
    recipients: tuple[str, ...]
    ground: str
    recorded_by: RecordedByRow
    ends_on: date
    #: What the subject is owed, sealed under their own key; gone once purged.
    explanation: Sealed | None
    catalogue_version: str
    status: str
    #: Its notice is deferred: nothing of it may be shown yet.
    deferred: bool
    ended_at: datetime | None = field(default=None, metadata=ONLY_WHEN_SET)
    end_reason_code: str | None = field(default=None, metadata=ONLY_WHEN_SET)
    deferral_ended_at: datetime | None = field(default=None, metadata=ONLY_WHEN_SET)


@dataclass(frozen=True, kw_only=True)
class ErasureRow(EntryRow):
    """The subject's request to erase their records of the case, granted or refused."""

    subject: str
    retention_id: UUID
    reason_code: str | None = field(default=None, metadata=ONLY_WHEN_SET)
    decision: str


@dataclass(frozen=True)
class SubjectRecords:
    """Everything the overview holds about one subject: their cases and, oldest first, what
    happened in them."""

    cases: tuple[CaseRow, ...]
    entries: tuple[EntryRow, ...]


# -- reading rows from their documents (JSON as the writing side above stores it) -----------
def _uuid(value: Any) -> UUID:
    return UUID(str(value))


def _moment(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


def _maybe_moment(value: Any) -> datetime | None:
    return None if value is None else _moment(value)


def _maybe_uuid(value: Any) -> UUID | None:
    return None if value is None else _uuid(value)


def _sealed(value: Any) -> Sealed | None:
    return Sealed.from_json(value) if value else None


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in value or ())


def _maybe_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _participant(doc: Mapping[str, Any]) -> ParticipantRow:
    return ParticipantRow(
        agency=doc["agency"],
        role=doc["role"],
        legal_ground=doc["legal_ground"],
        added_at=_maybe_moment(doc.get("added_at")),
        removed_at=_maybe_moment(doc.get("removed_at")),
    )


def _contact_point(doc: Mapping[str, Any]) -> ContactPointRow:
    return ContactPointRow(agency=doc["agency"], function=sealed_text(doc.get("function")))


def case_row(doc: Mapping[str, Any]) -> CaseRow:
    return CaseRow(
        case_id=_uuid(doc["case_id"]),
        table=doc["table"],
        purpose=doc["purpose"],
        role=doc["role"],
        minor=bool(doc["minor"]),
        participants=tuple(_participant(p) for p in doc["participants"]),
        record_holder=doc["record_holder"],
        retention_class=doc["retention_class"],
        contact_point=_contact_point(doc["contact_point"]),
        participation=doc["participation"],
        informed_beforehand=bool(doc["informed_beforehand"]),
        status=doc["status"],
        registered_at=_moment(doc["registered_at"]),
        ended_at=_maybe_moment(doc.get("ended_at")),
        outcome=doc.get("outcome"),
        purged=tuple(
            PurgeMark(record_kind=m["record_kind"], purged_at=_moment(m["purged_at"]), reason=m["reason"])
            for m in doc.get("purged", ())
        ),
    )


def _entry(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What every entry has: its kind, case, subject, when, and whether it was purged."""
    return {
        "kind": doc["kind"],
        "case_id": _uuid(doc["case_id"]),
        "occurred_at": _moment(doc["occurred_at"]),
        "purged_at": _maybe_moment(doc.get("purged_at")),
        "purge_reason": doc.get("purge_reason"),
    }


def _told(doc: Mapping[str, Any] | None) -> Told | None:
    if not doc:
        return None
    return Told(
        id=_uuid(doc["id"]),
        channel=doc["channel"],
        status=doc["status"],
        at=_moment(doc["at"]),
        retry_at=_maybe_moment(doc.get("retry_at")),
        was_deferred=doc.get("was_deferred"),
    )


def _share(doc: Mapping[str, Any]) -> ShareRow:
    passed_on = doc.get("erasure_passed_on")
    return ShareRow(
        **_entry(doc),
        subject=doc["subject"],
        share_id=_uuid(doc["share_id"]),
        request_id=_uuid(doc["request_id"]),
        from_agency=doc["from_agency"],
        to_agency=doc["to_agency"],
        categories=_strings(doc["categories"]),
        purpose=doc["purpose"],
        sender_ground=doc["sender_ground"],
        recipient_ground=doc["recipient_ground"],
        special_grounds=dict(doc.get("special_grounds") or {}),
        form=doc["form"],
        meeting_id=doc.get("meeting_id"),
        content=_sealed(doc.get("content")),
        direction=doc["direction"],
        override_id=_maybe_uuid(doc.get("override_id")),
        contact_point=_contact_point(doc["contact_point"]),
        catalogue_version=doc["catalogue_version"],
        correlation_id=doc.get("correlation_id"),
        provision=_provision(doc.get("provision")),
        special_provisions={
            code: ProvisionRow(law=p["law"], article=p["article"])
            for code, p in (doc.get("special_provisions") or {}).items()
        },
        notification=_told(doc.get("notification")),
        corrections=tuple(
            CorrectionRow(
                correction_id=_uuid(c["correction_id"]),
                at=_moment(c["at"]),
                by=c["by"],
                reason_code=c["reason_code"],
            )
            for c in doc.get("corrections", ())
        ),
        erasure_passed_on=None
        if passed_on is None
        else ErasurePassedOnRow(
            at=_moment(passed_on["at"]),
            recipients=_strings(passed_on["recipients"]),
            reason=passed_on["reason"],
        ),
    )


def _provision(doc: Mapping[str, Any] | None) -> ProvisionRow | None:
    return ProvisionRow(law=doc["law"], article=doc["article"]) if doc else None


def _refusal(doc: Mapping[str, Any]) -> RefusalRow:
    return RefusalRow(
        **_entry(doc),
        subject=doc["subject"],
        share_id=_uuid(doc["share_id"]),
        request_id=_uuid(doc["request_id"]),
        from_agency=doc["from_agency"],
        to_agency=doc["to_agency"],
        categories=_strings(doc["categories"]),
        purpose=doc["purpose"],
        reason_code=doc["reason_code"],
        reason=_maybe_str(doc.get("reason")),
        visible_to_subject=bool(doc["visible_to_subject"]),
        direction=doc["direction"],
        reason_details=dict(doc.get("reason_details") or {}),
        catalogue_version=doc["catalogue_version"],
        correlation_id=doc.get("correlation_id"),
        part_of=_maybe_uuid(doc.get("part_of")),
    )


def _consent(doc: Mapping[str, Any]) -> ConsentRow:
    return ConsentRow(
        **_entry(doc),
        subject=doc["subject"],
        record_id=_uuid(doc["record_id"]),
        purpose=doc["purpose"],
        categories=_strings(doc["categories"]),
        recipients=_strings(doc["recipients"]),
        valid_until=date.fromisoformat(doc["valid_until"]),
        notice_version=doc["notice_version"],
        given_how=doc["given_how"],
        recorded_by=doc["recorded_by"],
        status=doc["status"],
        withdrawn_at=_maybe_moment(doc.get("withdrawn_at")),
    )


def _objection(doc: Mapping[str, Any]) -> ObjectionRow:
    return ObjectionRow(
        **_entry(doc),
        subject=doc["subject"],
        record_id=_uuid(doc["record_id"]),
        objection_id=_uuid(doc["objection_id"]),
        recorded_by=doc["recorded_by"],
        reason=_sealed(doc.get("reason")),
        status=doc["status"],
        withdrawn_at=_maybe_moment(doc.get("withdrawn_at")),
    )


def _override(doc: Mapping[str, Any]) -> OverrideRow:
    return OverrideRow(
        **_entry(doc),
        override_id=_uuid(doc["override_id"]),
        categories=_strings(doc["categories"]),
        recipients=_strings(doc["recipients"]),
        ground=doc["ground"],
        recorded_by=RecordedByRow(
            agency=doc["recorded_by"]["agency"], function=sealed_text(doc["recorded_by"].get("function"))
        ),
        ends_on=date.fromisoformat(doc["ends_on"]),
        explanation=_sealed(doc.get("explanation")),
        catalogue_version=doc["catalogue_version"],
        status=doc["status"],
        deferred=bool(doc.get("deferred")),
        ended_at=_maybe_moment(doc.get("ended_at")),
        end_reason_code=doc.get("end_reason_code"),
        deferral_ended_at=_maybe_moment(doc.get("deferral_ended_at")),
    )


def _erasure(doc: Mapping[str, Any]) -> ErasureRow:
    return ErasureRow(
        **_entry(doc),
        subject=doc["subject"],
        retention_id=_uuid(doc["retention_id"]),
        reason_code=doc.get("reason_code"),
        decision=doc["decision"],
    )


#: How each kind of entry is read from its document.
ENTRY_ROWS: Mapping[str, Callable[[Mapping[str, Any]], EntryRow]] = MappingProxyType(
    {
        "share": _share,
        "refusal": _refusal,
        "consent": _consent,
        "objection": _objection,
        "override": _override,
        "erasure": _erasure,
    }
)
