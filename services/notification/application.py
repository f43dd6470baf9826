"""Use cases of the notification service: tell subjects of shares, keep their overview."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError

from services.notification.channels import DeliveryFailed, EmailChannel, LetterChannel, NoticeTemplates
from services.notification.domain import (
    NOTIFICATION_NAMESPACE,
    Deferral,
    Notification,
    addressee_for,
    bundle_of,
    deferral_id,
)
from services.notification.overview import CitizenOverview, refusal_for_citizen
from shared import metrics
from shared.application import IntegrityError, KetenApplication
from shared.casefacts import CaseFacts
from shared.catalogue import Catalogue, load_catalogue
from shared.config import Settings
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.case_registration import CaseClosed, CaseRegistered
from shared.contracts.events.consent import SafetyOverrideRecorded
from shared.contracts.events.data_sharing import DataShared
from shared.contracts.events.retention import RecordsPurged
from shared.db import Cursor
from shared.errors import NotFound, domain_refusals
from shared.sealed import PURGED, KeyScope, Sealed

log = logging.getLogger(__name__)

#: A delivery attempt claimed this long ago and never finished was interrupted (a crash): retry.
STALE_ATTEMPT = timedelta(minutes=5)


class Notifications(KetenApplication):
    name = "notification"

    def __init__(self, settings: Settings, catalogue: Catalogue | None = None):
        self.catalogue = catalogue or load_catalogue()
        super().__init__(settings)
        self.cases = CaseFacts(self)
        self.overview = CitizenOverview(self)
        self.templates = NoticeTemplates()
        self.email = EmailChannel(settings)
        self.letters = LetterChannel(settings)
        self.deliveries_table = f"{self.name}_deliveries"
        self.deferrals_table = f"{self.name}_deferrals"
        self.sql.execute_script(
            [
                f"CREATE TABLE IF NOT EXISTS {self.deliveries_table} ("
                " notification_id TEXT PRIMARY KEY, bundle TEXT NOT NULL, override_id TEXT,"
                " status TEXT NOT NULL, due_at TEXT NOT NULL)",
                f"CREATE TABLE IF NOT EXISTS {self.deferrals_table} ("
                " override_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, recorded_by TEXT NOT NULL,"
                " review_on TEXT NOT NULL, ended INTEGER NOT NULL)",
            ]
        )

    # -- learning from the stream -----------------------------------------------------------
    def learn(self, event: ReceivedEvent[Any]) -> None:
        """Records what an event of another service changes in the case facts and the
        overview, with its tracking record, in one transaction."""
        data = event.data
        deferral = self._deferral_for(data) if isinstance(data, SafetyOverrideRecorded) else None

        def write(cur: Cursor) -> None:
            if isinstance(data, CaseRegistered):
                self.cases.record_registered(cur, event)
            elif isinstance(data, CaseClosed):
                self.cases.record_ended(cur, data.case_id, "closed", event.occurred_at, data.outcome)
            elif isinstance(data, RecordsPurged):
                self.cases.forget_purged(cur, event)
            self.overview.apply(cur, event)

        self._save(event.tracking, *([deferral] if deferral else []), write=write)
        if isinstance(data, RecordsPurged):
            self.forget_keys(event)

    def _deferral_for(self, data: SafetyOverrideRecorded) -> Deferral | None:
        if data.deferral is None:
            return None
        reason = data.deferral.reason
        return Deferral(
            override_id=data.override_id,
            case_id=data.case_id,
            subjects=tuple(data.subjects),
            recorded_by=data.recorded_by.agency,
            review_on=data.deferral.review_on,
            reason=reason if isinstance(reason, Sealed) else None,
        )

    def notify_share(self, event: ReceivedEvent[DataShared]) -> Notification:
        """One notification per share and subject, on the subject's channel, recorded with the
        overview entry; held when the share was made under an override whose notice is deferred."""
        data = event.data
        subject = data.subject
        case = self.cases.get(data.case_id)
        facts = case.subjects.get(subject) if case else None
        addressee = addressee_for(subject, facts.minor, facts.represented_by) if facts else subject
        notification = Notification(
            share_id=data.share_id,
            case_id=data.case_id,
            subject=subject,
            addressee=addressee,
            channel=self._channel_for(data.case_id, subject, addressee),
            bundle=bundle_of(data.case_id, addressee, data.meeting_id, data.request_id),
            correlation_id=event.correlation_id,
            override_id=data.override_id,
        )
        deferral = self._find_deferral(data.override_id)
        if deferral is not None and not deferral.ended:
            notification.defer(override_id=deferral.override_id, review_on=deferral.review_on)
        elif notification.channel == "portal":
            notification.mark_sent()  # delivered by the overview entry, in the same transaction
        self._save(event.tracking, notification, write=lambda cur: self.overview.apply(cur, event))
        if notification.status == "delivered":
            metrics.notifications.labels("portal", "sent").inc()
        return notification

    def _channel_for(self, case_id: UUID, subject: str, addressee: str) -> str:
        """The addressee's preferred channel, if it can work; else a letter; else the portal."""
        details = self._contact(case_id, subject, addressee)
        channel = details.get("channel", "portal")
        if channel == "email" and details.get("email") and self.email.available:
            return "email"
        if channel in ("email", "letter") and details.get("postal_address"):
            return "letter"
        return "portal"

    def _contact(self, case_id: UUID, subject: str, addressee: str) -> dict[str, Any]:
        """The addressee's contact details as registered (the representative's own if they are
        a subject of the case, else those given with the subject), or {} when purged."""
        case = self.cases.get(case_id)
        if case is None:
            return {}
        facts = case.subjects.get(addressee) or case.subjects.get(subject)
        opened = self.vault.open(facts.details) if facts and facts.details else None
        return opened if isinstance(opened, dict) else {}

    # -- deferral ------------------------------------------------------------------------------
    def _find_deferral(self, override_id: UUID | None) -> Deferral | None:
        if override_id is None:
            return None
        try:
            deferral: Deferral = self.repository.get(deferral_id(override_id))
        except AggregateNotFoundError:
            return None
        return deferral

    def _deferral(self, override_id: UUID) -> Deferral:
        deferral = self._find_deferral(override_id)
        if deferral is None:
            raise NotFound("unknown_deferral", "no deferred notification under this safety override")
        return deferral

    def end_deferral(self, agency: str, override_id: UUID) -> dict[str, Any]:
        """Ends a deferral: every notification held under the override goes out, explained."""
        deferral = self._deferral(override_id)
        with domain_refusals():
            deferral.end(agency)
        held: list[Notification] = [self.repository.get(UUID(n)) for n in self._held_under(override_id)]
        for notification in held:
            notification.release()
        self._save(None, deferral, *held)
        return {"override_id": str(override_id), "status": "ended", "released": len(held)}

    def extend_deferral(self, agency: str, override_id: UUID, review_on: date, reason: str) -> dict[str, Any]:
        deferral = self._deferral(override_id)
        with domain_refusals():
            deferral.extend(agency, review_on, self.vault.seal(KeyScope(deferral.case_id), reason), _today())
        self._save(None, deferral)
        return {"override_id": str(override_id), "status": "deferred", "review_on": review_on.isoformat()}

    def deferrals_due(self, agency: str, today: date | None = None) -> list[dict[str, Any]]:
        """The deferrals the agency recorded whose review date has come: a professional must
        end or extend each."""
        with self.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                f"SELECT override_id, case_id, review_on FROM {self.deferrals_table}"
                " WHERE recorded_by = ? AND ended = 0 AND review_on <= ? ORDER BY review_on, override_id",
                (agency, (today or _today()).isoformat()),
            ).fetchall()
            result = []
            for override_id, case_id, review_on in rows:
                held = cur.execute(
                    f"SELECT COUNT(*) FROM {self.deliveries_table}"
                    " WHERE override_id = ? AND status = 'deferred'",
                    (override_id,),
                ).fetchone()[0]
                result.append(
                    {"override_id": override_id, "case_id": case_id, "review_on": review_on, "held": held}
                )
        return result

    def count_deferrals_due(self, today: date | None = None) -> int:
        with self.sql.transaction(commit=False) as cur:
            row = cur.execute(
                f"SELECT COUNT(*) FROM {self.deferrals_table} WHERE ended = 0 AND review_on <= ?",
                ((today or _today()).isoformat(),),
            ).fetchone()
        return int(row[0])

    def _held_under(self, override_id: UUID) -> list[str]:
        with self.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                f"SELECT notification_id FROM {self.deliveries_table}"
                " WHERE override_id = ? AND status = 'deferred' ORDER BY notification_id",
                (str(override_id),),
            ).fetchall()
        return [row[0] for row in rows]

    # -- delivery -----------------------------------------------------------------------------
    def dispatch_due(self, now: datetime | None = None) -> int:
        """Sends every notification that is due, bundled per consultation and addressee;
        returns how many were sent. Each bundle is claimed on record before it is sent."""
        now = now or datetime.now(UTC)
        sent = 0
        for ids in self._due_bundles(now):
            found: list[Notification] = [self.repository.get(UUID(i)) for i in ids]
            notifications = [n for n in found if n.due]
            if not notifications:
                continue
            message_id = str(
                uuid5(NOTIFICATION_NAMESPACE, ",".join(sorted(str(n.id) for n in notifications)))
            )
            for notification in notifications:
                notification.attempt(message_id)
            try:
                self._save(None, *notifications)
            except IntegrityError:
                continue  # another dispatcher claimed it first
            channel = notifications[0].channel
            try:
                self._deliver(notifications, message_id)
            except DeliveryFailed as failure:
                log.warning(
                    "notification %s by %s failed: %s",
                    message_id,
                    channel,
                    failure.code,
                    extra={"channel": channel, "reason_code": failure.code},
                )
                for notification in notifications:
                    notification.mark_failed(
                        failure.code, failure.permanent, now, self.settings.notify_retry_seconds
                    )
                metrics.notifications.labels(channel, "failed").inc(len(notifications))
            else:
                for notification in notifications:
                    notification.mark_sent(message_id)
                metrics.notifications.labels(channel, "sent").inc(len(notifications))
                log.info("notification %s sent by %s (%d share(s))", message_id, channel, len(notifications))
                sent += len(notifications)
            self._save(None, *notifications)
        metrics.deferrals_due.set(self.count_deferrals_due(now.date()))
        return sent

    def _due_bundles(self, now: datetime) -> list[list[str]]:
        with self.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                f"SELECT notification_id, bundle FROM {self.deliveries_table}"
                " WHERE status IN ('scheduled', 'retrying', 'attempted') AND due_at <= ?"
                " ORDER BY due_at, notification_id",
                (now.isoformat(),),
            ).fetchall()
        bundles: dict[str, list[str]] = defaultdict(list)
        for notification_id, bundle in rows:
            bundles[bundle].append(notification_id)
        return list(bundles.values())

    def _deliver(self, notifications: list[Notification], message_id: str) -> None:
        first = notifications[0]
        contact = self._contact(first.case_id, first.subject, first.addressee)
        if first.channel == "portal":
            return
        language = contact.get("language", "nl")
        notice = self.templates.render(
            message_id, language, self.notice_context(notifications, contact, language)
        )
        if first.channel == "email":
            if not contact.get("email") or not self.email.available:
                raise DeliveryFailed("no_email_address", permanent=True)
            self.email.send(notice, contact["email"])
        elif first.channel == "letter":
            if not contact.get("postal_address"):
                raise DeliveryFailed("no_postal_address", permanent=True)
            self.letters.send(notice, contact.get("name"), contact["postal_address"])

    def notice_context(
        self, notifications: list[Notification], contact: dict[str, Any], language: str
    ) -> dict[str, Any]:
        """What the notice templates say: every share of the bundle in plain words, the
        override's explanation where one applies, whom to ask and how to object."""
        first = notifications[0]
        cases, entries = self.overview.documents(first.subject)
        case = next((c for c in cases if c["case_id"] == str(first.case_id)), None)
        by_id = {e.get("share_id") or e.get("override_id"): e for e in entries}
        shares = []
        for notification in notifications:
            entry = by_id.get(str(notification.share_id))
            if entry is not None:
                shares.append(self._share_words(entry, language))
        override = None
        explained = next((n for n in notifications if n.explain_override and n.override_id), None)
        if explained is not None:
            entry = by_id.get(str(explained.override_id)) or {}
            recorded_by = entry.get("recorded_by") or {}
            override = {
                "explanation": self._open_text(entry.get("explanation")),
                "recorded_by_name": self.catalogue.agency_name(recorded_by.get("agency", "")),
                "function": recorded_by.get("function", ""),
                "was_deferred": self._find_deferral(explained.override_id) is not None,
            }
        contact_point = dict(case["contact_point"]) if case else {"agency": "", "function": ""}
        contact_point["agency_name"] = self.catalogue.agency_name(contact_point["agency"])
        return {
            "name": contact.get("name"),
            "for_minor": first.addressee != first.subject,
            "shares": shares,
            "override": override,
            "contact": contact_point,
            "portal_url": self.settings.portal,
        }

    def _share_words(self, entry: dict[str, Any], language: str) -> dict[str, Any]:
        return {
            "when": entry["occurred_at"][:16].replace("T", " ") + " UTC",
            "from_name": self.catalogue.agency_name(entry["from_agency"]),
            "to_name": self.catalogue.agency_name(entry["to_agency"]),
            "category_labels": [self._category_label(c, language) for c in entry["categories"]],
            "purpose_label": self._purpose_label(entry["purpose"], language),
            "ground_label": self.catalogue.ground_label(entry["sender_ground"], language),
            "form": entry["form"],
        }

    # -- saving: events, their projections and the tracking record together -----------------
    def _save(self, tracking: Any, *aggregates: Any, write: Callable[[Cursor], None] | None = None) -> None:
        new_events = [e for aggregate in aggregates for e in aggregate.pending_events]

        def write_all(cur: Cursor) -> None:
            if write is not None:
                write(cur)
            for domain_event in new_events:
                self._project(cur, domain_event)

        self.save_tracked(tracking, *aggregates, write=write_all)

    def _project(self, cur: Cursor, domain_event: Any) -> None:
        """Applies one of the service's own events to its delivery queue, its deferrals and
        the overview."""
        name = type(domain_event).__name__
        notification_id = str(domain_event.originator_id)
        at = domain_event.timestamp
        if name == "NotificationScheduled":
            due = at + timedelta(seconds=self.settings.notify_bundle_seconds)
            cur.execute(
                f"INSERT INTO {self.deliveries_table} (notification_id, bundle, override_id, status, due_at)"
                " VALUES (?, ?, ?, 'scheduled', ?) ON CONFLICT (notification_id) DO NOTHING",
                (notification_id, domain_event.bundle, _text(domain_event.override_id), due.isoformat()),
            )
        elif name in DELIVERY_STATUS:
            status, due = DELIVERY_STATUS[name], at
            if name == "NotificationFailed":
                due = domain_event.retry_at
            elif name == "DeliveryAttempted":
                due = at + STALE_ATTEMPT
            cur.execute(
                f"UPDATE {self.deliveries_table} SET status = ?, due_at = ? WHERE notification_id = ?",
                (status, due.isoformat(), notification_id),
            )
        elif name == "DeferralStarted":
            cur.execute(
                f"INSERT INTO {self.deferrals_table} (override_id, case_id, recorded_by, review_on, ended)"
                " VALUES (?, ?, ?, ?, 0) ON CONFLICT (override_id) DO NOTHING",
                (
                    str(domain_event.override_id),
                    str(domain_event.case_id),
                    domain_event.recorded_by,
                    domain_event.review_on.isoformat(),
                ),
            )
        elif name in ("DeferralExtended", "DeferralEnded"):
            override_id = str(domain_event.override_id)
            if name == "DeferralExtended":
                cur.execute(
                    f"UPDATE {self.deferrals_table} SET review_on = ? WHERE override_id = ?",
                    (domain_event.review_on.isoformat(), override_id),
                )
            else:
                cur.execute(
                    f"UPDATE {self.deferrals_table} SET ended = 1 WHERE override_id = ?", (override_id,)
                )
        self.overview.apply_own(cur, domain_event)

    # -- rebuilding the overview from the events alone ----------------------------------------
    def rebuild_overview(
        self, upstream: Iterable[ReceivedEvent[Any]], progress: Callable[[int], None] | None = None
    ) -> int:
        """Empties the overview and applies every upstream event (in time order across the
        services, each service's in its own order), then the service's own events, exactly as
        the live consumer does. Returns how many events were applied."""
        own = [
            self.mapper.to_domain_event(n) for n in self.recorder.select_notifications(start=1, limit=10**9)
        ]
        applied = 0
        with self.sql.transaction() as cur:
            self.overview.clear(cur)
            for event in sorted(upstream, key=lambda e: (e.occurred_at, e.source, e.position)):
                if event.name in self.overview.EVENTS:
                    self.overview.apply(cur, event)
                applied += 1
                if progress:
                    progress(1)
            for domain_event in own:
                self.overview.apply_own(cur, domain_event)
                applied += 1
                if progress:
                    progress(1)
        return applied

    # -- the citizen's overview ---------------------------------------------------------------
    def overview_for(self, subject: str, language: str = "nl") -> dict[str, Any]:
        """Everything on record about the subject, personal values opened (or marked purged).
        A share whose notification is deferred, and an override whose explanation is, are not
        shown until the deferral ends: showing them would tell what must not be told yet."""
        cases, entries = self.overview.documents(subject)
        by_case: dict[str, dict[str, Any]] = {}
        for document in cases:
            document = dict(document)
            document["table_name"] = (
                self.catalogue.tables[document["table"]].name
                if document["table"] in self.catalogue.tables
                else document["table"]
            )
            document["purpose_label"] = self._purpose_label(document["purpose"], language)
            for participant in document["participants"]:
                participant["name"] = self.catalogue.agency_name(participant["agency"])
                participant["legal_ground_label"] = self.catalogue.ground_label(
                    participant["legal_ground"], language
                )
            document["record_holder_name"] = self.catalogue.agency_name(document["record_holder"])
            document["contact_point"]["agency_name"] = self.catalogue.agency_name(
                document["contact_point"]["agency"]
            )
            document.update(
                shares=[], refusals=[], consents=[], objections=[], overrides=[], erasure_requests=[]
            )
            document["purged"] = [
                {**mark, "label": self._record_kind_label(mark["record_kind"], language)}
                for mark in document.get("purged", [])
            ]
            by_case[document["case_id"]] = document
        for entry in entries:
            case = by_case.get(entry["case_id"])
            if case is None:
                continue
            entry = dict(entry)
            kind = entry["kind"]
            if kind == "share":
                if (entry.get("notification") or {}).get("status") == "deferred":
                    continue
                entry["content"] = self._open(entry.get("content"))
                entry["category_labels"] = [self._category_label(c, language) for c in entry["categories"]]
                entry["from_name"] = self.catalogue.agency_name(entry["from_agency"])
                entry["to_name"] = self.catalogue.agency_name(entry["to_agency"])
                entry["ground_label"] = self.catalogue.ground_label(entry["sender_ground"], language)
                entry["purpose_label"] = self._purpose_label(entry["purpose"], language)
                for correction in entry.get("corrections", []):
                    reason = self.catalogue.correction_reasons.get(correction["reason_code"])
                    correction["by_name"] = self.catalogue.agency_name(correction["by"])
                    correction["reason"] = reason.label(language) if reason else correction["reason_code"]
                if entry.get("erasure_passed_on"):
                    told = entry["erasure_passed_on"]
                    told["recipient_names"] = [self.catalogue.agency_name(a) for a in told["recipients"]]
                case["shares"].append(entry)
            elif kind == "refusal":
                case["refusals"].append(refusal_for_citizen(entry, self.catalogue, language))
            elif kind == "consent":
                entry.pop("notice", None)
                entry["category_labels"] = [self._category_label(c, language) for c in entry["categories"]]
                case["consents"].append(entry)
            elif kind == "objection":
                entry["reason"] = self._open_text(entry.get("reason"))
                case["objections"].append(entry)
            elif kind == "override":
                if entry.get("deferred"):
                    continue
                entry.pop("reasons", None)
                entry["explanation"] = self._open_text(entry.get("explanation"))
                entry["ground_label"] = self.catalogue.ground_label(entry["ground"], language)
                entry["category_labels"] = [self._category_label(c, language) for c in entry["categories"]]
                entry["recipient_names"] = [self.catalogue.agency_name(a) for a in entry["recipients"]]
                case["overrides"].append(entry)
            elif kind == "erasure":
                reason = self.catalogue.erasure_refusals.get(entry.get("reason_code") or "")
                entry["reason"] = reason.label(language) if reason else None
                case["erasure_requests"].append(entry)
        for case in by_case.values():
            case["retention"] = self._retention_words(case, language)
        return {"subject": subject, "language": language, "cases": list(by_case.values())}

    def _retention_words(self, case: dict[str, Any], language: str) -> list[dict[str, Any]]:
        """When each kind of record goes, by the catalogue's rule in force when its period
        started: the minutes at a known date once the case ended; the share records not before
        their period after the last share (retention keeps the exact schedule)."""
        retention_class = self.catalogue.retention_classes.get(case["retention_class"])
        if retention_class is None:
            return []
        purged = {mark["record_kind"]: mark["purged_at"] for mark in case["purged"]}
        starts = {
            "case_records": case.get("ended_at"),
            "share_records": max((s["occurred_at"] for s in case["shares"]), default=None),
        }
        words = []
        for kind, started in starts.items():
            due = None
            if started:
                moment = datetime.fromisoformat(started)
                rule = retention_class.version_at(moment).rules.get(kind)
                due = rule.due(moment) if rule else None
            words.append(
                {
                    "record_kind": kind,
                    "label": self._record_kind_label(kind, language),
                    "due_at": due.isoformat() if due else None,
                    "purged_at": purged.get(kind),
                }
            )
        return words

    def _open(self, value: Any) -> Any:
        if not value:
            return None
        opened = self.vault.open(Sealed.from_json(value))
        return "purged" if opened is PURGED else opened

    def _open_text(self, value: Any) -> str | None:
        opened = self._open(value)
        if isinstance(opened, dict):
            opened = opened.get("text") or opened.get("content") or next(iter(opened.values()), None)
        return None if opened is None else str(opened)

    def _record_kind_label(self, code: str, language: str) -> str:
        label = self.catalogue.record_kinds.get(code)
        return label(language) if label else code

    def _category_label(self, code: str, language: str) -> str:
        category = self.catalogue.categories.get(code)
        return category.label(language) if category else code

    def _purpose_label(self, code: str, language: str) -> str:
        purpose = self.catalogue.purposes.get(code)
        return purpose.label(language) if purpose else code


#: A notification's place in the delivery queue after each of its events.
DELIVERY_STATUS = {
    "NotificationDeferred": "deferred",
    "NotificationReleased": "scheduled",
    "DeliveryAttempted": "attempted",
    "NotificationFailed": "retrying",
    "NotificationRerouted": "scheduled",
    "NotificationSent": "sent",
}


def _today() -> date:
    return datetime.now(UTC).date()


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
