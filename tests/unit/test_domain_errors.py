"""Every domain refusal reaches the caller with its own code and the status of its kind."""

from __future__ import annotations

import pytest

from services.case_registration import domain as case_registration
from services.consent import domain as consent
from services.data_sharing import domain as data_sharing
from services.notification import domain as notification
from services.retention import domain as retention
from shared.errors import DomainError, KetenError, domain_refusals

REFUSALS = [
    (case_registration.InvalidCaseError, "invalid_case", 400),
    (case_registration.ConsentNotFreeError, "consent_not_free", 400),
    (case_registration.NotAParticipantError, "not_a_participant", 403),
    (case_registration.CaseNotOpenError, "case_not_open", 409),
    (case_registration.CaseNotRegisteredError, "case_not_registered", 409),
    (consent.InvalidConsentError, "invalid_consent", 400),
    (consent.NoConsentError, "no_consent", 400),
    (consent.InvalidOverrideError, "invalid_override", 400),
    (consent.NoSuchObjectionError, "no_such_objection", 404),
    (consent.ObjectionExistsError, "objection_exists", 409),
    (consent.OverrideEndedError, "override_ended", 409),
    (consent.InvalidRequestKindError, "invalid_request_kind", 400),
    (consent.ExtensionWithoutReasonError, "extension_reason_required", 400),
    (consent.InvalidExtensionError, "invalid_extension", 400),
    (consent.InvalidAnswerError, "invalid_answer", 400),
    (consent.ExtendedAlreadyError, "extended_already", 409),
    (consent.ExtensionTooLateError, "extension_too_late", 409),
    (consent.RequestClosedError, "request_closed", 409),
    (consent.CorrectionNotRunError, "correction_not_run", 409),
    (consent.NotACorrectionRequestError, "not_a_correction_request", 409),
    (data_sharing.NotSenderOrRecordHolderError, "not_sender_or_record_holder", 403),
    (notification.NotYourDeferralError, "not_your_deferral", 403),
    (notification.NotDueError, "not_due", 409),
    (notification.DeferralEndedError, "deferral_ended", 409),
    (notification.ReviewDatePassedError, "review_date_passed", 409),
    (retention.UnknownHoldError, "unknown_hold", 404),
    (retention.CaseOnHoldError, "legal_hold", 409),
    (retention.PurgeUnderWayError, "purge_under_way", 409),
]


@pytest.mark.parametrize(("error_class", "code", "status"), REFUSALS, ids=[r[1] for r in REFUSALS])
def test_a_domain_refusal_becomes_the_platform_error_of_its_kind(error_class, code, status):
    with pytest.raises(KetenError) as raised, domain_refusals():
        raise error_class("what went wrong, for a professional", "some_field")
    assert (raised.value.code, raised.value.status) == (code, status)
    assert raised.value.as_dict() == {
        "code": code,
        "message": "what went wrong, for a professional",
        "field": "some_field",
    }


def test_every_domain_error_is_listed_here():
    """A new rule gets its status on purpose, not by default."""
    found: set[type] = set()
    for module in (case_registration, consent, data_sharing, notification, retention):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, DomainError):
                found.add(value)
    bases = {
        case_registration.CaseError,
        consent.ConsentError,
        consent.RequestError,
        notification.NotificationError,
        retention.RetentionError,
    }
    assert found - bases - {DomainError} == {error_class for error_class, _, _ in REFUSALS}


def test_other_errors_pass_through_untouched():
    with pytest.raises(ZeroDivisionError), domain_refusals():
        raise ZeroDivisionError
