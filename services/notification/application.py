"""Use cases of the notification service: tell subjects of shares, keep their overview."""

from __future__ import annotations

from typing import Any

from services.notification.domain import Notification, addressee_for
from services.notification.overview import CitizenOverview, refusal_for_citizen
from shared import metrics
from shared.application import KetenApplication
from shared.casefacts import CaseFacts
from shared.catalogue import Catalogue, load_catalogue
from shared.config import Settings
from shared.contracts.envelope import ReceivedEvent
from shared.db import Cursor
from shared.sealed import PURGED, Sealed


class Notifications(KetenApplication):
    name = "notification"

    def __init__(self, settings: Settings, catalogue: Catalogue | None = None):
        self.catalogue = catalogue or load_catalogue()
        super().__init__(settings)
        self.cases = CaseFacts(self)
        self.overview = CitizenOverview(self)

    # -- learning from the stream -----------------------------------------------------------
    def record_case_registered(self, event: ReceivedEvent) -> None:
        def write(cur: Cursor) -> None:
            self.cases.record_registered(cur, event)
            self.overview.add_case(cur, event)

        self.save_tracked(event.tracking, write=write)

    def record_case_closed(self, event: ReceivedEvent) -> None:
        case_id, outcome = event.data["case_id"], event.data["outcome"]

        def write(cur: Cursor) -> None:
            self.cases.record_ended(cur, case_id, "closed", event.occurred_at, outcome)
            self.overview.end_case(cur, case_id, "closed", event.occurred_at, outcome)

        self.save_tracked(event.tracking, write=write)

    def record_consent_given(self, event: ReceivedEvent) -> None:
        self.save_tracked(
            event.tracking,
            write=lambda cur: self.overview.add_entry(
                cur, event.data["subject"], event.message_id, "consent", event
            ),
        )

    def record_share_refused(self, event: ReceivedEvent) -> None:
        data = event.data
        if not data["visible_to_subject"]:
            self.save_tracked(event.tracking)  # nothing for the subject; the position still moves
            return
        self.save_tracked(
            event.tracking,
            write=lambda cur: self.overview.add_entry(
                cur, data["subject"], data["share_id"], "refusal", event
            ),
        )

    def notify_share(self, event: ReceivedEvent) -> Notification:
        """One notification per share and subject, recorded with the overview entry."""
        data = event.data
        subject = data["subject"]
        case = self.cases.get(data["case_id"])
        facts = case.subjects.get(subject) if case else None
        addressee = addressee_for(subject, facts.minor, facts.represented_by) if facts else subject
        notification = Notification(
            share_id=data["share_id"],
            case_id=data["case_id"],
            subject=subject,
            addressee=addressee,
            channel="portal",
            correlation_id=event.correlation_id,
        )
        # The portal is delivered by recording the overview entry in the same transaction.
        notification.mark_sent()
        entry = {
            "notification": {
                "id": notification.id,
                "channel": "portal",
                "status": "sent",
                "at": event.occurred_at,
            }
        }
        self.save_tracked(
            event.tracking,
            notification,
            write=lambda cur: self.overview.add_entry(cur, subject, data["share_id"], "share", event, entry),
        )
        metrics.notifications.labels("portal", "sent").inc()
        return notification

    def record_records_purged(self, event: ReceivedEvent) -> None:
        """Marks the purged scope in the overview and forgets its personal rows and keys."""

        def write(cur: Cursor) -> None:
            self.cases.forget_purged(cur, event)
            self.overview.mark_purged(cur, event)

        self.save_tracked(event.tracking, write=write)
        self.forget_keys(event)

    def record_erasure_decision(self, event: ReceivedEvent) -> None:
        """Puts the citizen's erasure request and its outcome (with the reason if refused) in
        their overview."""
        data = event.data
        decision = {"decision": "granted" if event.name == "ErasureGranted" else "refused"}
        self.save_tracked(
            event.tracking,
            write=lambda cur: self.overview.add_entry(
                cur, data["subject"], event.message_id, "erasure", event, decision
            ),
        )

    # -- the citizen's overview ---------------------------------------------------------------
    def overview_for(self, subject: str, language: str = "nl") -> dict[str, Any]:
        """Everything on record about the subject, personal values opened (or marked purged)."""
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
            document["contact_point"]["agency_name"] = self.catalogue.agency_name(
                document["contact_point"]["agency"]
            )
            document.update(shares=[], refusals=[], consents=[], erasure_requests=[])
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
            if entry["kind"] == "share":
                entry["content"] = self._open(entry.get("content"))
                entry["category_labels"] = [self._category_label(c, language) for c in entry["categories"]]
                entry["from_name"] = self.catalogue.agency_name(entry["from_agency"])
                entry["to_name"] = self.catalogue.agency_name(entry["to_agency"])
                case["shares"].append(entry)
            elif entry["kind"] == "refusal":
                case["refusals"].append(refusal_for_citizen(entry, self.catalogue, language))
            elif entry["kind"] == "consent":
                entry.pop("notice", None)
                case["consents"].append(entry)
            elif entry["kind"] == "erasure":
                reason = self.catalogue.erasure_refusals.get(entry.get("reason_code") or "")
                entry["reason"] = reason.label(language) if reason else None
                case["erasure_requests"].append(entry)
        return {"subject": subject, "language": language, "cases": list(by_case.values())}

    def _open(self, value: Any) -> Any:
        if not value:
            return None
        opened = self.vault.open(Sealed.from_json(value))
        return "purged" if opened is PURGED else opened

    def _record_kind_label(self, code: str, language: str) -> str:
        label = self.catalogue.record_kinds.get(code)
        return label(language) if label else code

    def _category_label(self, code: str, language: str) -> str:
        category = self.catalogue.categories.get(code)
        return category.label(language) if category else code

    def _purpose_label(self, code: str, language: str) -> str:
        purpose = self.catalogue.purposes.get(code)
        return purpose.label(language) if purpose else code
