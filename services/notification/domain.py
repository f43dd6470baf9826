"""Telling a data subject about a share of their data.

Pure domain. One ``Notification`` per share and subject (its id derives from both), so a share
is told once however often its event is delivered. For a minor with a representative on record,
the representative is the addressee.

A notification is scheduled on the subject's channel; before each delivery attempt it is claimed
on record (``DeliveryAttempted``), so that two dispatchers never send it both; it is then sent,
or failed and retried with backoff, or rerouted to another channel when its own cannot work.
Under a safety override whose notification was deferred, it waits (``NotificationDeferred``)
until a professional ends the ``Deferral``; then it goes out with the override explained.
Nothing is ever dropped: the portal (the citizen's overview) always works.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from shared.errors import DomainError, Refusal
from shared.sealed import Sealed

NOTIFICATION_NAMESPACE = uuid5(NAMESPACE_URL, "https://keten.example/notifications")
DEFERRAL_NAMESPACE = uuid5(NAMESPACE_URL, "https://keten.example/deferrals")
CHANNELS = ("portal", "email", "letter")
#: Where a notification goes when its own channel cannot work (no address, refused for good).
FALLBACK = {"email": "letter", "letter": "portal"}
#: Attempts on one channel before it is given up for the fallback.
MAX_ATTEMPTS = 6
#: A delivery attempt claimed this long ago and never finished was interrupted (a crash): it may
#: be claimed again. Until then the claim is its dispatcher's alone. (The default of
#: ``KETEN_NOTIFY_STALE_SECONDS``.)
STALE_ATTEMPT = timedelta(minutes=5)


class NotificationError(DomainError):
    """A request that contradicts the notification's or deferral's record."""

    code = "notification_rule"
    refusal = Refusal.CONFLICT


class NotDueError(NotificationError):
    code = "not_due"


class NotYourDeferralError(NotificationError):
    code = "not_your_deferral"
    refusal = Refusal.NOT_AUTHORISED


class DeferralEndedError(NotificationError):
    code = "deferral_ended"


class ReviewDatePassedError(NotificationError):
    code = "review_date_passed"


def notification_id(share_id: UUID, subject: str) -> UUID:
    return uuid5(NOTIFICATION_NAMESPACE, f"{share_id}/{subject}")


def deferral_id(override_id: UUID) -> UUID:
    return uuid5(DEFERRAL_NAMESPACE, str(override_id))


def retry_delay(attempts: int, base_seconds: float) -> timedelta:
    """Exponential backoff: base, 2x, 4x, ... capped at an hour."""
    return timedelta(seconds=min(base_seconds * 2 ** max(attempts - 1, 0), 3600.0))


@dataclass(frozen=True)
class RequestStep:
    """What happened to a citizen's request that they are told of: the agency extended its
    deadline (``extended``), answered it (``answered``), or let it pass (``overdue``)."""

    request_id: UUID
    kind: str
    step: str
    agency: str
    due_on: date | None
    outcome: str | None
    reason: Sealed | None
    late: bool


def request_notice_id(request_id: UUID, step: str) -> UUID:
    """What a notification about a request's step stands on instead of a share."""
    return uuid5(NOTIFICATION_NAMESPACE, f"request/{request_id}/{step}")


class Notification(Aggregate):
    """The notice to one subject (or their representative) of one share, or of one step of a
    request of theirs (``request``; ``share_id`` is then ``request_notice_id``)."""

    @event("NotificationScheduled")
    def __init__(
        self,
        share_id: UUID,
        case_id: UUID,
        subject: str,
        addressee: str,
        channel: str,
        bundle: str,
        correlation_id: str | None,
        override_id: UUID | None = None,
        request: RequestStep | None = None,
        traceparent: str | None = None,
    ):
        self.request = request
        self.share_id = share_id
        self.case_id = case_id
        self.subject = subject
        self.addressee = addressee
        self.channel = channel
        self.bundle = bundle
        self.correlation_id = correlation_id
        self.override_id = override_id
        #: The trace of the share it tells of (W3C Trace Context): the notice, sent later, is
        #: logged in it (``shared.ldv``).
        self.traceparent = traceparent
        self.status = "scheduled"
        self.attempts = 0
        self.retry_at: datetime | None = None
        self.explain_override = override_id is not None
        #: The override whose deferral held it, whether or not the share was made under it.
        self.deferred_under: UUID | None = None

    @staticmethod
    def create_id(share_id: UUID, subject: str, **_: object) -> UUID:
        return notification_id(share_id, subject)

    @property
    def due(self) -> bool:
        """Waiting to be sent (scheduled, retrying, or claimed by an attempt), at some time."""
        return self.status in ("scheduled", "retrying", "attempted")

    def due_at(self, now: datetime, stale_after: timedelta = STALE_ATTEMPT) -> bool:
        """Whether a dispatcher may claim it at ``now``: scheduled, or retrying and its retry
        time come, or claimed by an attempt that went stale (``stale_after``). A claim another
        dispatcher (a replica) just made is not due, however it was found: only the claim's
        dispatcher sends it."""
        if self.status == "attempted":
            # The claim is the latest event: the aggregate was last modified by it.
            return now >= self.modified_on + stale_after
        if self.status == "retrying":
            return self.retry_at is None or now >= self.retry_at
        return self.status == "scheduled"

    # -- deferral under a safety override ---------------------------------------------------
    @event("NotificationDeferred")
    def defer(self, override_id: UUID, review_on: date) -> None:
        self.status = "deferred"
        self.deferred_under = override_id

    @property
    def explained_override(self) -> UUID | None:
        """The override the notice explains: the one the share was made under despite an
        objection, else the one whose deferral held the notice."""
        return self.override_id or self.deferred_under

    def release(self) -> None:
        """The deferral ended: the notification goes out, the override explained."""
        if self.status == "deferred":
            self._released(override_id=self.explained_override)

    @event("NotificationReleased")
    def _released(self, override_id: UUID | None) -> None:
        self.status = "scheduled"
        self.explain_override = True

    # -- delivery --------------------------------------------------------------------------
    def attempt(
        self, message_id: str, now: datetime | None = None, stale_after: timedelta = STALE_ATTEMPT
    ) -> None:
        """Claims the notification for one delivery attempt, before anything is sent; at
        ``now`` it must be due then (``due_at``)."""
        if not (self.due if now is None else self.due_at(now, stale_after)):
            raise NotDueError("this notification is not waiting to be sent")
        self._attempted(channel=self.channel, attempt=self.attempts + 1, message_id=message_id)

    @event("DeliveryAttempted")
    def _attempted(self, channel: str, attempt: int, message_id: str) -> None:
        self.status = "attempted"
        self.attempts = attempt

    def mark_sent(self, message_id: str | None = None) -> None:
        if self.status in ("sent", "delivered"):
            return
        self._sent(
            share_id=self.share_id,
            case_id=self.case_id,
            subject=self.subject,
            channel=self.channel,
            message_id=message_id,
            correlation_id=self.correlation_id,
            traceparent=self.traceparent,
        )

    @event("NotificationSent")
    def _sent(
        self,
        share_id: UUID,
        case_id: UUID,
        subject: str,
        channel: str,
        message_id: str | None,
        correlation_id: str | None,
        traceparent: str | None = None,
    ) -> None:
        # The portal is delivered when it is on the citizen's page; a mail or letter is sent
        # when the mail server accepted it or the letter was handed to the printing service.
        self.status = "delivered" if channel == "portal" else "sent"

    def mark_failed(self, reason_code: str, permanent: bool, now: datetime, retry_base: float) -> None:
        """A failed attempt: retried with backoff, or rerouted when the channel cannot work."""
        if permanent or self.attempts >= MAX_ATTEMPTS:
            self._rerouted(
                from_channel=self.channel, to_channel=FALLBACK[self.channel], reason_code=reason_code
            )
        else:
            self._failed(
                channel=self.channel,
                attempt=self.attempts,
                reason_code=reason_code,
                retry_at=now + retry_delay(self.attempts, retry_base),
            )

    @event("NotificationFailed")
    def _failed(self, channel: str, attempt: int, reason_code: str, retry_at: datetime) -> None:
        self.status = "retrying"
        self.retry_at = retry_at

    def reroute(self, reason_code: str) -> None:
        """The channel cannot be used at all (no address on record, or it was purged)."""
        self._rerouted(from_channel=self.channel, to_channel=FALLBACK[self.channel], reason_code=reason_code)

    @event("NotificationRerouted")
    def _rerouted(self, from_channel: str, to_channel: str, reason_code: str) -> None:
        self.channel = to_channel
        self.status = "scheduled"
        self.attempts = 0
        self.retry_at = None


class Deferral(Aggregate):
    """A professional's decision that telling the subjects of an override's shares now would
    endanger someone: held on record with a reason and a review date, until ended."""

    @event("DeferralStarted")
    def __init__(
        self,
        override_id: UUID,
        case_id: UUID,
        subjects: tuple[str, ...],
        recorded_by: str,
        review_on: date,
        reason: Sealed | None,
        categories: tuple[str, ...] = (),
        recipients: tuple[str, ...] = (),
    ):
        self.override_id = override_id
        self.case_id = case_id
        self.subjects = tuple(subjects)
        self.recorded_by = recorded_by
        self.review_on = review_on
        self.reason = reason
        self.categories = tuple(categories)
        self.recipients = tuple(recipients)
        self.ended = False

    def in_force(self, today: date) -> bool:
        """Holding notices: not ended, and its review date not passed."""
        return not self.ended and self.review_on >= today

    def holds(
        self, subjects: tuple[str, ...], categories: tuple[str, ...], recipient: str, today: date
    ) -> bool:
        """Whether a share falls in the override's scope, so that its notices wait, whether or
        not its subject objected: it is about someone in scope (telling any of them could
        endanger another), to a recipient in scope, and names a category in scope (the notice
        would tell it). A deferral recorded before its scope was kept holds only the shares made
        under its override."""
        return (
            self.in_force(today)
            and any(subject in self.subjects for subject in subjects)
            and recipient in self.recipients
            and any(code in self.categories for code in categories)
        )

    @staticmethod
    def create_id(override_id: UUID, **_: object) -> UUID:
        return deferral_id(override_id)

    def check_may_decide(self, agency: str) -> None:
        if agency != self.recorded_by:
            raise NotYourDeferralError(
                "only the agency that recorded the safety override decides its deferral"
            )
        if self.ended:
            raise DeferralEndedError("this deferral has ended already")

    def extend(self, agency: str, review_on: date, reason: Sealed, today: date) -> None:
        self.check_may_decide(agency)
        if review_on <= today:
            raise ReviewDatePassedError("the new review date must lie in the future")
        self._extended(agency=agency, override_id=self.override_id, review_on=review_on, reason=reason)

    @event("DeferralExtended")
    def _extended(self, agency: str, override_id: UUID, review_on: date, reason: Sealed) -> None:
        self.review_on = review_on
        self.reason = reason

    def end(self, agency: str) -> None:
        self.check_may_decide(agency)
        self._ended(agency=agency, override_id=self.override_id, case_id=self.case_id)

    @event("DeferralEnded")
    def _ended(self, agency: str, override_id: UUID, case_id: UUID) -> None:
        self.ended = True

    def due_for_review(self, today: date) -> bool:
        return not self.ended and self.review_on <= today

    def lapse(self, today: date) -> bool:
        """Its review date passed with nobody ending or extending it: it ends by itself, so a
        deferral never holds a notice longer than on record. False when it is not due to."""
        if self.ended or self.review_on >= today:
            return False
        self._lapsed(override_id=self.override_id, case_id=self.case_id, review_on=self.review_on)
        return True

    @event("DeferralLapsed")
    def _lapsed(self, override_id: UUID, case_id: UUID, review_on: date) -> None:
        self.ended = True


def addressee_for(subject: str, minor: bool, represented_by: str | None) -> str:
    """Whom to tell: a minor's representative where one is on record, otherwise the subject."""
    return represented_by if minor and represented_by else subject


def bundle_of(case_id: UUID, addressee: str, meeting_id: str | None, request_id: UUID) -> str:
    """Shares of one consultation (a meeting, or one request to several agencies) for one
    addressee go out in one message; every share is listed in it."""
    return str(uuid5(NOTIFICATION_NAMESPACE, f"bundle/{case_id}/{addressee}/{meeting_id or request_id}"))
