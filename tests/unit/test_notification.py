"""Notifications on in-memory stores, sent to a real SMTP server on localhost (aiosmtpd) and as
letters (PDF files): one per share and subject, bundled per consultation, retried, deferred
under a safety override until a professional ends the deferral, never sent twice."""

from __future__ import annotations

import copy
import dataclasses
import fcntl
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from keten.demo import CITIZEN
from services.notification.application import (
    DeferralDue,
    EndedDeferral,
    ExtendedDeferral,
    NotificationUseCases,
)
from shared.contracts.commands import EndDeferral, ExtendDeferral, RequestShareSchema
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.consent import Deferral, RecordedBy, SafetyOverrideRecorded
from shared.contracts.events.data_sharing import DataShared
from shared.errors import Conflict, NotAuthorised
from shared.sealed import KeyScope
from tests.factories import loaded, received, share_command
from tests.unit.test_retention import Platform


@pytest.fixture
def platform(memory_settings, mailbox, tmp_path):
    settings = dataclasses.replace(
        memory_settings,
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port,
        letter_dir=tmp_path / "letters",
        notify_bundle_seconds=0,
        notify_retry_seconds=1,
    )
    return Platform(settings)


def later(seconds: float = 1) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_a_share_reaches_the_citizen_by_email_in_plain_dutch_with_whom_to_ask(platform, mailbox):
    case_id = platform.register()
    share_id = platform.share(case_id)

    assert platform.notification.dispatch_due(later()) == 1
    [mail] = mailbox.messages
    assert mail["To"] == CITIZEN["email"]
    body = mail.get_content()
    assert f"Beste {CITIZEN['name']}" in body
    assert "Gemeente Utrecht" in body and "Kredietbank Utrecht" in body
    assert "casusregisseur schulden" in body  # the contact point
    assert "bezwaar" in body and "verbeteren" in body  # how to object or ask for correction
    assert "/inzage" in body
    # the ground names the law and article it rests on, as the decision recorded them
    assert "(Wet gemeentelijke schuldhulpverlening, art. 2 en 3)" in body
    overview = platform.notification.overview_for(platform.subject).to_json()
    [share] = overview["cases"][0]["shares"]
    assert share["share_id"] == str(share_id)
    assert share["provision"] == {"law": "Wet gemeentelijke schuldhulpverlening", "article": "art. 2 en 3"}
    assert share["provision_citation"] == "Wet gemeentelijke schuldhulpverlening, art. 2 en 3"
    assert share["notification"]["channel"] == "email" and share["notification"]["status"] == "sent"


def test_an_english_speaking_citizen_gets_the_english_text(platform, mailbox):
    command_subject = {**_subject(), "language": "en"}
    case_id = platform.register(subjects=[command_subject])
    platform.share(case_id)
    platform.notification.dispatch_due(later())
    [mail] = mailbox.messages
    assert "was shared" in mail["Subject"] or "shared information" in mail["Subject"]
    assert "Dear " in mail.get_content() and "contact point" in mail.get_content()


def test_redelivery_and_a_second_run_send_nothing_twice(platform, mailbox):
    case_id = platform.register()
    platform.share(case_id)
    [shared] = [e for e in received(platform.sharing) if e.name == "DataShared"]

    platform.notification.dispatch_due(later())
    platform.notification.dispatch_due(later(120))
    with pytest.raises(IntegrityError):  # the redelivered event fails on its tracking record
        platform.notification.notify_share(shared)
    platform.notification.dispatch_due(later(240))
    assert len(mailbox.messages) == 1


def test_a_notice_the_store_would_not_record_as_sent_goes_out_once_and_is_recorded_later(platform, mailbox):
    """Issue 12: the mail server accepted the notice, saving "sent" failed; the retry five
    minutes later must not send it again. The store itself refuses the write (a trigger), the
    mail goes to a real SMTP server."""
    case_id = platform.register()
    platform.share(case_id)
    with store_refuses(platform.notification, "NotificationSent"):
        assert platform.notification.dispatch_due(later()) == 1
        assert len(mailbox.messages) == 1
        [share] = platform.notification.overview_for(platform.subject).to_json()["cases"][0]["shares"]
        assert share["notification"]["status"] == "sending", "not on record as sent"
        # Past the stale-claim time, the store still refusing: the record is tried, not the send.
        assert platform.notification.dispatch_due(later(600)) == 0
    assert len(mailbox.messages) == 1
    assert platform.notification.dispatch_due(later(900)) == 0  # the store takes it now
    [share] = platform.notification.overview_for(platform.subject).to_json()["cases"][0]["shares"]
    assert share["notification"]["status"] == "sent"
    assert platform.notification.dispatch_due(later(3600)) == 0
    [mail] = mailbox.messages
    assert mail["Message-ID"] == f"<{delivered_message_id(platform)}@keten.invalid>"


def test_two_dispatchers_of_one_store_send_a_notice_once_whoever_claims_it(platform, mailbox):
    """Two replicas of notification each run a dispatcher over the same delivery queue. The
    second reads the notice as due, and loads it while the first, having claimed it, is
    handing it to the mail server: the claim is the first's alone, one e-mail."""
    case_id = platform.register()
    platform.share(case_id)
    app = platform.notification
    first = app.dispatcher
    second = copy.copy(first)
    second._unrecorded = {}
    now = later()
    due = app.deliveries.due_bundles(now)  # the second's look at the queue, before any claim
    second.queue = _ReadEarlier(app.deliveries, due)
    taken: list[int] = []

    class SecondRunsMeanwhile:
        """The first's mail channel: the second's run happens while the first is sending."""

        available = True

        def send(self, notice: Any, to: str) -> None:
            taken.append(second.dispatch_due(now))
            first_email.send(notice, to)

    first_email = first.email
    first.email = SecondRunsMeanwhile()
    try:
        assert first.dispatch_due(now) == 1
    finally:
        first.email = first_email
    assert taken == [0], "the second sent nothing: the notice was claimed"
    assert len(mailbox.messages) == 1
    assert second.dispatch_due(later(600)) == 0, "sent and on record: not even a stale claim"
    assert len(mailbox.messages) == 1


class _ReadEarlier:
    """A delivery queue as a dispatcher read it before another claimed what it held."""

    def __init__(self, queue: Any, bundles: list[Any]):
        self.queue = queue
        self.bundles = bundles
        self.stale_after = queue.stale_after

    def due_bundles(self, now: datetime) -> list[Any]:
        bundles, self.bundles = self.bundles, []
        return bundles or self.queue.due_bundles(now)


def test_a_mail_server_that_stumbles_over_goodbye_after_accepting_gets_the_notice_once(platform, mailbox):
    mailbox.goodbye = "421 closing down"  # after it took the message
    case_id = platform.register()
    platform.share(case_id)
    assert platform.notification.dispatch_due(later()) == 1
    assert platform.notification.dispatch_due(later(600)) == 0
    assert len(mailbox.messages) == 1
    [share] = platform.notification.overview_for(platform.subject).to_json()["cases"][0]["shares"]
    assert share["notification"]["status"] == "sent"


def test_shares_of_one_consultation_come_in_one_message_that_lists_every_share(platform, mailbox):
    case_id = platform.register()
    platform.share(case_id, meeting_id="overleg-12", categories=["debts"], form="oral")
    platform.share(case_id, meeting_id="overleg-12", categories=["income"], form="oral")
    platform.share(case_id, meeting_id="overleg-13", categories=["income"], form="oral")

    assert platform.notification.dispatch_due(later()) == 3
    bundled, single = sorted((m.get_content() for m in mailbox.messages), key=len, reverse=True)
    assert "Deling 1 van 2" in bundled and "Deling 2 van 2" in bundled and "Deling" not in single
    assert "schulden" in bundled and "inkomen" in bundled and "mondeling" in bundled
    shares = platform.notification.overview_for(platform.subject).to_json()["cases"][0]["shares"]
    assert [s["notification"]["status"] for s in shares] == ["sent", "sent", "sent"]


def test_a_mail_server_that_is_down_is_retried_with_backoff_and_then_sends(platform, mailbox):
    case_id = platform.register()
    platform.share(case_id)
    mailbox.stop()
    assert platform.notification.dispatch_due(later()) == 0
    [share] = platform.notification.overview_for(platform.subject).to_json()["cases"][0]["shares"]
    assert share["notification"]["status"] == "retrying"
    mailbox.start()
    assert platform.notification.dispatch_due(later(0.5)) == 0, "not before its retry time"
    assert platform.notification.dispatch_due(later(5)) == 1
    assert len(mailbox.messages) == 1


def test_a_mailbox_refused_for_good_gets_a_letter_instead_never_nothing(platform, mailbox):
    mailbox.refused.add(CITIZEN["email"])
    case_id = platform.register()
    platform.share(case_id)
    assert platform.notification.dispatch_due(later()) == 0
    [share] = platform.notification.overview_for(platform.subject).to_json()["cases"][0]["shares"]
    assert (share["notification"]["channel"], share["notification"]["status"]) == ("letter", "scheduled")
    assert platform.notification.dispatch_due(later()) == 1
    assert platform.notification.render_letters() == 1
    assert mailbox.messages == [] and len(list(platform.settings.letters.glob("*.pdf"))) == 1


def test_a_minors_notice_goes_to_the_representative_and_says_so(platform, mailbox):
    parent = {
        **_subject(),
        "bsn": "111222333",
        "role": "parent",
        "name": "Ria de Vries",
        "email": "ria@example.org",
    }
    minor = {**_subject(), "minor": True, "email": None, "represented_by_bsn": parent["bsn"]}
    case_id = platform.register(subjects=[minor, parent])
    platform.share(case_id)  # about the minor
    platform.notification.dispatch_due(later())
    [mail] = mailbox.messages
    assert mail["To"] == "ria@example.org" and "Beste Ria de Vries" in mail.get_content()
    assert "ouder of wettelijk vertegenwoordiger" in mail.get_content() and "uw kind" in mail.get_content()


def test_a_citizen_who_prefers_letters_gets_a_pdf_letter(platform, mailbox):
    case_id = platform.register(subjects=[{**_subject(), "preferred_channel": "letter"}])
    platform.share(case_id)
    platform.notification.dispatch_due(later())
    platform.notification.render_letters()
    [letter] = list(platform.settings.letters.glob("*.pdf"))
    assert letter.read_bytes().startswith(b"%PDF")
    assert mailbox.messages == []
    [share] = platform.notification.overview_for(platform.subject).to_json()["cases"][0]["shares"]
    assert share["notification"] == {**share["notification"], "channel": "letter", "status": "sent"}


def test_without_a_mail_server_an_email_citizen_gets_a_letter_instead(memory_settings, tmp_path):
    platform = Platform(dataclasses.replace(memory_settings, letter_dir=tmp_path, notify_bundle_seconds=0))
    case_id = platform.register()
    platform.share(case_id)
    platform.notification.dispatch_due(later())
    platform.notification.render_letters()
    assert len(list(tmp_path.glob("*.pdf"))) == 1


def test_a_deferred_notification_goes_out_only_when_the_deferral_ends_with_the_explanation(platform, mailbox):
    case_id = platform.register()
    override_id = uuid.uuid4()
    explanation = "Wij moesten de veiligheid van uw kinderen beschermen."
    platform.notification.learn(override_event(platform, case_id, override_id, explanation, defer=True))
    share_under_override(platform, case_id, override_id)

    assert platform.notification.dispatch_due(later(3600)) == 0
    assert mailbox.messages == []
    case = platform.notification.overview_for(platform.subject).to_json()["cases"][0]
    assert case["shares"] == [] and case["overrides"] == [], "nothing told while deferred"

    review = date.today() + timedelta(days=7)  # the override's deferral review date
    assert platform.notification.deferrals_due("gemeente-utrecht", review - timedelta(days=1)) == []
    assert platform.notification.deferrals_due("gemeente-utrecht", review) == [
        DeferralDue(override_id=override_id, case_id=case_id, review_on=review, held=1)
    ]
    assert platform.notification.deferrals_due("kredietbank-utrecht", review) == []
    with pytest.raises(NotAuthorised):
        platform.notification.end_deferral(EndDeferral(agency="kredietbank-utrecht", override_id=override_id))
    with pytest.raises(Conflict):
        platform.notification.extend_deferral(extend(override_id, date.today()))
    assert platform.notification.extend_deferral(extend(override_id, review + timedelta(days=30))) == (
        ExtendedDeferral(override_id, review_on=review + timedelta(days=30))
    )
    assert platform.notification.deferrals_due("gemeente-utrecht", review) == []
    assert platform.notification.dispatch_due(later(3600)) == 0

    ended = platform.notification.end_deferral(
        EndDeferral(agency="gemeente-utrecht", override_id=override_id)
    )
    assert ended == EndedDeferral(override_id, released=1)
    assert platform.notification.dispatch_due(later()) == 1
    [mail] = mailbox.messages
    assert explanation in mail.get_content() and "later gestuurd" in mail.get_content()
    case = platform.notification.overview_for(platform.subject).to_json()["cases"][0]
    assert case["overrides"][0]["explanation"] == explanation
    assert case["shares"][0]["notification"]["was_deferred"] is True
    with pytest.raises(Conflict):
        platform.notification.end_deferral(EndDeferral(agency="gemeente-utrecht", override_id=override_id))


def test_the_rebuilt_overview_equals_the_live_one(platform, mailbox):
    case_id = platform.register()
    platform.give_consent(case_id)
    platform.share(case_id)
    override_id = uuid.uuid4()
    override = override_event(platform, case_id, override_id, "Uitleg.", defer=True)
    platform.notification.learn(override)
    under_override = share_under_override(platform, case_id, override_id)
    platform.notification.dispatch_due(later())
    platform.notification.end_deferral(EndDeferral(agency="gemeente-utrecht", override_id=override_id))
    platform.notification.dispatch_due(later())
    platform.close(case_id)
    live = platform.notification.overview_for(platform.subject).to_json()

    upstream = [
        under_override if e.name == "DataShared" and e.data.share_id == under_override.data.share_id else e
        for e in [*received(platform.registration), *received(platform.consent), *received(platform.sharing)]
    ]
    platform.notification.overview.rebuild([*upstream, override])
    assert platform.notification.overview_for(platform.subject).to_json() == live
    case = live["cases"][0]
    assert len(case["shares"]) == 2 and case["overrides"] and case["consents"] and case["status"] == "closed"
    minutes, shares = case["retention"]
    assert minutes["record_kind"] == "case_records" and minutes["due_at"] > case["ended_at"]
    assert shares["record_kind"] == "share_records" and shares["due_at"] > minutes["due_at"]


# -- helpers --------------------------------------------------------------------------------------
@contextmanager
def store_refuses(app: NotificationUseCases, event_name: str) -> Iterator[None]:
    """The application's SQLite store refuses to save ``event_name`` events while inside: a
    trigger on its events table aborts the write, as a failing database would."""
    trigger = f"test_refuse_{event_name}"
    with app.sql.transaction() as cur:
        cur.execute(
            f"CREATE TRIGGER {trigger} BEFORE INSERT ON {app.recorder.events_table_name}"  # type: ignore[attr-defined]
            f" WHEN NEW.topic LIKE '%.{event_name}' BEGIN SELECT RAISE(ABORT, 'refused for the test'); END"
        )
    try:
        yield
    finally:
        with app.sql.transaction() as cur:
            cur.execute(f"DROP TRIGGER {trigger}")


def delivered_message_id(platform: Platform) -> str:
    """The Message-ID of the one ``NotificationSent`` on record."""
    [sent] = [
        e
        for e in (
            platform.notification.mapper.to_domain_event(n)
            for n in platform.notification.recorder.select_notifications(start=1, limit=1000)
        )
        if type(e).__name__ == "NotificationSent"
    ]
    return str(sent.message_id)  # type: ignore[attr-defined]


def extend(override_id: uuid.UUID, review_on: date) -> ExtendDeferral:
    return ExtendDeferral(
        agency="gemeente-utrecht", override_id=override_id, review_on=review_on, reason="nog steeds gevaar"
    )


def _subject() -> dict[str, Any]:
    return {
        "bsn": CITIZEN["bsn"],
        "role": "citizen",
        "name": CITIZEN["name"],
        "email": CITIZEN["email"],
        "postal_address": CITIZEN["postal_address"],
        "preferred_channel": "email",
        "language": "nl",
    }


def override_event(
    platform: Any,
    case_id: uuid.UUID,
    override_id: uuid.UUID,
    explanation: str,
    defer: bool,
    review_on: date | None = None,
    app: NotificationUseCases | None = None,
    subject: str | None = None,
) -> ReceivedEvent[SafetyOverrideRecorded]:
    """consent's ``SafetyOverrideRecorded`` (issue 3) as the notification service receives it."""
    app = app or platform.notification
    subject = subject or platform.subject
    sealed = app.vault.seal(KeyScope(case_id), explanation)
    review_on = review_on or date.today() + timedelta(days=7)
    deferral = (
        Deferral(reason=app.vault.seal(KeyScope(case_id), "gevaar"), review_on=review_on) if defer else None
    )
    return ReceivedEvent(
        name="SafetyOverrideRecorded",
        source="consent",
        position=10_000,
        message_id=uuid.uuid5(override_id, "message"),
        occurred_at=datetime.now(UTC),
        aggregate_id=override_id,
        aggregate_version=1,
        correlation_id=None,
        data=SafetyOverrideRecorded(
            override_id=override_id,
            case_id=case_id,
            subjects=(subject,),
            categories=("debts",),
            recipients=("kredietbank-utrecht",),
            ground="vital_interest",
            reasons=None,
            recorded_by=RecordedBy(agency="gemeente-utrecht", function="casusregisseur"),
            ends_on=date.today() + timedelta(days=30),
            explanation=sealed,
            deferral=deferral,
            catalogue_version="test",
        ),
    )


def share_under_override(
    platform: Platform, case_id: uuid.UUID, override_id: uuid.UUID
) -> ReceivedEvent[DataShared]:
    """A ``DataShared`` made under the override, as data_sharing records it under issue 3."""
    command = share_command(str(case_id))
    platform.sharing.request_share(loaded(RequestShareSchema, command, platform.settings))
    last = [e for e in received(platform.sharing) if e.name == "DataShared"][-1]
    under_override = dataclasses.replace(last, data=dataclasses.replace(last.data, override_id=override_id))
    platform.notification.notify_share(under_override)
    platform.sync()
    return under_override


def test_the_delivery_timer_rests_while_nothing_is_due_and_sends_a_share_as_soon_as_it_comes(
    platform, mailbox
):
    case_id = platform.register()
    assert platform.notification.dispatch_when_due() == 0
    assert platform.notification.deliveries.nothing_due(later()), "the timer's next runs skip the store"

    platform.share(case_id)

    assert platform.notification.dispatch_when_due() == 1
    assert len(mailbox.messages) == 1
    assert platform.notification.dispatch_when_due() == 0
    assert len(mailbox.messages) == 1


def test_a_letter_is_laid_out_apart_from_delivery_and_handed_to_the_printer_exactly_once(platform, mailbox):
    letters = platform.settings.letters
    first = platform.register(subjects=[{**_subject(), "preferred_channel": "letter"}])
    platform.share(first)
    assert platform.notification.dispatch_due(later()) == 1
    assert list(letters.glob("*.pdf")) == [], "the delivery run only hands the letter over"
    [share] = platform.notification.overview_for(platform.subject).to_json()["cases"][0]["shares"]
    assert share["notification"]["status"] == "sent"

    # A renderer that stopped after laying the letter out, before moving it: the next run moves
    # that PDF and lays out nothing again.
    [pending] = list((letters / "pending").glob("*.letter"))
    channel = platform.notification.letters
    order = pending.read_bytes()
    assert b"%PDF" not in order
    assert channel.render_pending() == 1
    [letter] = list(letters.glob("*.pdf"))
    pdf = letter.read_bytes()
    pending.write_bytes(pdf)
    letter.unlink()
    assert channel.render_pending() == 1
    assert [p.read_bytes() for p in letters.glob("*.pdf")] == [pdf]

    # Collected by the printing service: no run makes it again.
    letter.unlink()
    assert channel.render_pending() == 0
    assert platform.notification.dispatch_due(later(600)) == 0
    assert channel.render_pending() == 0
    assert list(letters.glob("*.pdf")) == [] and list((letters / "pending").iterdir()) == []


def test_a_letter_another_replica_is_laying_out_is_left_to_it(platform, mailbox):
    """Replicas of notification sharing the letters folder: the one that holds a pending letter
    (its lock) lays it out and hands it over; the other leaves it, then finds nothing to do."""
    letters = platform.settings.letters
    platform.share(platform.register(subjects=[{**_subject(), "preferred_channel": "letter"}]))
    assert platform.notification.dispatch_due(later()) == 1
    [pending] = list((letters / "pending").glob("*.letter"))
    channel = platform.notification.letters
    with pending.open("rb") as other_replica:
        fcntl.flock(other_replica, fcntl.LOCK_EX)
        assert channel.render_pending() == 0, "held by the other replica"
        assert pending.exists() and list(letters.glob("*.pdf")) == []
    assert channel.render_pending() == 1, "released (the other replica died): laid out here"
    assert len(list(letters.glob("*.pdf"))) == 1
    assert channel.render_pending() == 0


# -- a deferral holds every share in its scope, objection or not -------------------------------
def test_a_deferral_holds_the_notice_of_a_share_in_its_scope_without_any_objection(platform, mailbox):
    case_id = platform.register()
    override_id = uuid.uuid4()
    explanation = "Wij moesten eerst de veiligheid van uw huisgenoot regelen."
    # the override's scope: this subject, debts, to the credit bank; the subject never objected
    platform.notification.learn(override_event(platform, case_id, override_id, explanation, defer=True))
    held = platform.share(case_id)  # debts to the credit bank: in scope
    told_now = platform.share(case_id, categories=["income"])  # not in scope

    assert platform.notification.dispatch_due(later(3600)) == 1
    [first] = mailbox.messages
    assert "inkomen en uitkering" in first.get_content()
    assert "schulden en betalingsachterstanden" not in first.get_content()
    case = platform.notification.overview_for(platform.subject).to_json()["cases"][0]
    assert [s["share_id"] for s in case["shares"]] == [str(told_now)], "the held share is not shown yet"
    review = date.today() + timedelta(days=7)
    assert platform.notification.deferrals_due("gemeente-utrecht", review) == [
        DeferralDue(override_id=override_id, case_id=case_id, review_on=review, held=1)
    ]

    ended = platform.notification.end_deferral(
        EndDeferral(agency="gemeente-utrecht", override_id=override_id)
    )
    assert ended == EndedDeferral(override_id, released=1)
    assert platform.notification.dispatch_due(later(3600)) == 1
    second = mailbox.messages[1].get_content()
    # told now, with the explanation, and not as if they had objected
    assert (
        "schulden en betalingsachterstanden" in second
        and explanation in second
        and "later gestuurd" in second
    )
    assert "bezwaar had gemaakt" not in second and "nu pas" in second
    case = platform.notification.overview_for(platform.subject).to_json()["cases"][0]
    shown = {s["share_id"]: s for s in case["shares"]}
    assert shown[str(held)]["notification"]["was_deferred"] is True


def test_a_deferral_nobody_reviews_ends_when_its_review_date_has_passed(platform, mailbox):
    case_id = platform.register()
    override_id = uuid.uuid4()
    platform.notification.learn(override_event(platform, case_id, override_id, "Uitleg.", defer=True))
    platform.share(case_id)
    review = date.today() + timedelta(days=7)
    on_review_day = datetime.combine(review, datetime.min.time(), UTC) + timedelta(hours=12)
    assert platform.notification.dispatch_due(on_review_day) == 0, "still held on its review date"
    assert platform.notification.dispatch_due(on_review_day + timedelta(days=1)) == 1
    assert "Uitleg." in mailbox.messages[0].get_content()
    assert platform.notification.deferrals_due("gemeente-utrecht", review + timedelta(days=1)) == []
    # a share made after it lapsed is told at once
    platform.share(case_id)
    assert platform.notification.dispatch_due(on_review_day + timedelta(days=2)) == 1
