import json

import pytest
from eventsourcing.persistence import IntegrityError

from keten_client.protocol import KeyPair, open_sealed
from services.case_registration.application import CaseRegistrationUseCases
from services.consent.application import ConsentUseCases
from services.data_sharing.application import DataSharingUseCases
from shared.contracts.commands import ActivateCase, GiveConsentSchema, RegisterCaseSchema, RequestShareSchema
from shared.errors import InvalidRequest, NotAuthorised, NotFound
from tests.factories import (
    DAUGHTER,
    activate_command,
    case_command,
    consent_command,
    family_case_command,
    loaded,
    received,
    share_command,
)
from tests.wired import WiredPlatform


@pytest.fixture
def platform(memory_settings):
    """The three applications a share passes, wired by hand: events are handed over as the
    bus would deliver them."""
    registration = CaseRegistrationUseCases(memory_settings)
    consent = ConsentUseCases(memory_settings)
    sharing = DataSharingUseCases(memory_settings)
    case = registration.register_case(loaded(RegisterCaseSchema, case_command(), memory_settings))
    registration.activate_case(ActivateCase(agency="gemeente-utrecht", case_id=case.case_id))
    for event in received(registration):
        consent.cases.apply(event)
        sharing.cases.apply(event)
    return registration, consent, sharing, str(case.case_id)


def share(sharing, for_case, **changes):
    """The decisions on a share request, one per recipient (``ShareDecision``)."""
    command = share_command(for_case)
    command.update(changes)
    return list(sharing.request_share(loaded(RequestShareSchema, command, sharing.settings)).decisions)


def test_a_share_within_purpose_agreement_and_ground_is_recorded_as_data_shared(platform):
    _, _, sharing, case_id = platform
    [decision] = share(sharing, case_id)
    assert (decision.outcome, decision.reason_code, decision.reason) == ("shared", "allowed", None)
    assert decision.to_agency == "kredietbank-utrecht"
    [event] = received(sharing)
    assert event.name == "DataShared"
    assert event.data.share_id == decision.share_id
    assert (event.data.from_agency, event.data.to_agency, event.data.categories) == (
        "gemeente-utrecht",
        "kredietbank-utrecht",
        ("debts",),
    )
    assert event.data.sender_ground == "statutory_task"
    assert "huurachterstand" not in str(event.data)


def test_a_category_outside_the_data_agreement_is_refused_and_recorded(platform):
    _, _, sharing, case_id = platform
    [decision] = share(sharing, case_id, to_agencies=["woningcorporatie-mitros"], categories=["income"])
    assert (decision.outcome, decision.reason_code) == ("refused", "category_not_agreed")
    assert decision.reason and "_" not in decision.reason
    assert [e.name for e in received(sharing)] == ["ShareRefused"]


def test_the_senders_own_ground_decides_not_the_recipients(platform):
    _, _, sharing, case_id = platform
    # Mitros takes part on the ground of consent; the credit bank shares its conclusion with
    # Mitros on its own statutory task, which needs no consent.
    to_mitros = {
        "agency": "kredietbank-utrecht",
        "to_agencies": ["woningcorporatie-mitros"],
        "categories": ["professional_conclusion"],
    }
    [decision] = share(sharing, case_id, **to_mitros)
    assert decision.outcome == "shared"
    assert (decision_event := received(sharing)[0]).data.recipient_ground == "consent"
    assert decision_event.data.sender_ground == "statutory_task"


def test_a_sender_relying_on_consent_is_refused_without_it_and_allowed_with_it(platform):
    _, consent, sharing, case_id = platform
    from_mitros = {
        "agency": "woningcorporatie-mitros",
        "to_agencies": ["gemeente-utrecht"],
        "categories": ["housing"],
    }
    [before] = share(sharing, case_id, **from_mitros)
    assert (before.outcome, before.reason_code) == ("refused", "no_valid_consent")
    assert received(sharing)[-1].data.visible_to_subject
    consent.give_consent(
        loaded(
            GiveConsentSchema,
            consent_command(case_id, recipients=["gemeente-utrecht"], categories=["housing"]),
            consent.settings,
        )
    )
    for event in received(consent):
        sharing.record_consent_given(event)
    [after] = share(sharing, case_id, **from_mitros)
    assert after.outcome == "shared"


def test_repeating_a_request_returns_the_decision_on_record_and_records_nothing_new(platform):
    _, _, sharing, case_id = platform
    command = share_command(case_id)
    first = sharing.request_share(loaded(RequestShareSchema, command, sharing.settings))
    again = sharing.request_share(loaded(RequestShareSchema, command, sharing.settings))
    assert again == first
    assert sharing.recorder.max_notification_id() == 1


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"categories": ["shoe_size"]}, InvalidRequest),
        ({"to_agencies": ["nobody-at-all"]}, InvalidRequest),
        ({"subject_bsn": "111222333"}, InvalidRequest),
        ({"agency": "uwv"}, NotAuthorised),
        ({"case_id": "6a1e0f0e-2f5a-4a4e-9a55-1a1c3b2a9d10"}, NotFound),
    ],
)
def test_a_bad_request_gets_a_clear_error_and_changes_nothing(platform, changes, error):
    _, _, sharing, case_id = platform
    with pytest.raises(error):
        share(sharing, case_id, **changes)
    assert sharing.recorder.max_notification_id() is None


def test_an_event_from_upstream_is_applied_once(platform):
    registration, _, sharing, _ = platform
    event = received(registration)[0]  # already applied by the fixture
    with pytest.raises(IntegrityError):
        sharing.cases.apply(event)


def test_a_share_is_told_to_its_recipient_with_the_content_sealed_to_the_recipients_key(platform):
    _, _, sharing, case_id = platform
    kredietbank = KeyPair.generate()
    sharing.agencies.add_key(
        "kredietbank-utrecht", kredietbank.signing_public_key, kredietbank.encryption_public_key
    )
    [decision] = share(sharing, case_id, content="Drie maanden huurachterstand.")

    [message] = sharing.inbox_messages(stored_events(sharing)[0])
    assert message.routing_key == "kredietbank-utrecht.ShareReceived"
    assert message.exchange == "keten.inbox"
    envelope = json.loads(message.body)
    assert envelope["agency"] == "kredietbank-utrecht"
    assert envelope["data"]["share_id"] == str(decision.share_id)
    assert "huurachterstand" not in message.body.decode()
    # The contact point's function is free text: it travels sealed too, not in the open.
    assert envelope["data"]["contact_point"] == {"agency": "gemeente-utrecht", "function": None}
    assert "casusregisseur" not in message.body.decode()
    opened = open_sealed(kredietbank.encryption_private_key, envelope["data"]["sealed_content"])
    assert opened == {
        "content": "Drie maanden huurachterstand.",
        "reference": None,
        "subject": {"role": "citizen"},
        "contact_point": {"function": "casusregisseur schulden"},
    }


def test_a_recipient_without_a_key_is_told_of_the_share_without_its_content(platform):
    _, _, sharing, case_id = platform
    share(sharing, case_id)
    [message] = sharing.inbox_messages(stored_events(sharing)[0])
    data = json.loads(message.body)["data"]
    assert (data["sealed_content"], data["content_withheld"]) == (None, "no_key")


def test_a_refusal_is_told_to_nobody_but_the_sender_in_its_answer(platform):
    _, _, sharing, case_id = platform
    share(sharing, case_id, to_agencies=["woningcorporatie-mitros"], categories=["income"])
    assert sharing.inbox_messages(stored_events(sharing)[0]) == []


def stored_events(app):
    return [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(start=1, limit=100)]


MIXED = {
    "agency": "kredietbank-utrecht",
    "to_agencies": ["woningcorporatie-mitros"],
    "categories": ["professional_conclusion", "debts"],
}


def test_a_mixed_request_shares_the_allowed_category_and_records_the_refused_one_beside_it(platform):
    _, _, sharing, case_id = platform
    answer = sharing.request_share(
        loaded(RequestShareSchema, share_command(case_id, **MIXED), sharing.settings)
    )
    assert answer.outcome == "partial"
    [decision] = answer.decisions
    # a partial answer leads with its refusal: nobody reads it as allowed
    assert (decision.outcome, decision.reason_code) == ("partial", "category_not_agreed")
    assert decision.reason and "debts and payment arrears" in decision.reason
    assert [(c.category, c.outcome, c.reason_code) for c in decision.categories] == [
        ("professional_conclusion", "shared", "allowed"),
        ("debts", "refused", "category_not_agreed"),
    ]
    shared, refused = received(sharing)
    assert (shared.name, shared.data.categories, shared.data.share_id) == (
        "DataShared",
        ("professional_conclusion",),
        decision.share_id,
    )
    assert (refused.name, refused.data.categories, refused.data.part_of) == (
        "ShareRefused",
        ("debts",),
        decision.share_id,
    )
    # the citizen is told of the share, so they see what was held back too
    assert refused.data.visible_to_subject
    assert decision.categories[1].share_id == refused.data.share_id


def test_a_mixed_request_repeated_answers_the_same_and_records_nothing_new(platform):
    _, _, sharing, case_id = platform
    command = share_command(case_id, **MIXED)
    first = sharing.request_share(loaded(RequestShareSchema, command, sharing.settings))
    again = sharing.request_share(loaded(RequestShareSchema, command, sharing.settings))
    assert again == first
    assert sharing.recorder.max_notification_id() == 2


def test_a_request_refused_for_every_category_on_different_grounds_records_each_reason(platform):
    _, _, sharing, case_id = platform
    command = share_command(case_id, **{**MIXED, "categories": ["debts", "housing"]})
    answer = sharing.request_share(loaded(RequestShareSchema, command, sharing.settings))
    assert answer.outcome == "refused"
    [decision] = answer.decisions
    assert [(c.category, c.reason_code) for c in decision.categories] == [
        ("debts", "category_not_agreed"),
        ("housing", "category_not_brought"),
    ]
    first, second = received(sharing)
    assert (first.data.share_id, first.data.part_of) == (decision.share_id, None)
    assert second.data.part_of == decision.share_id
    # an agency's own slip, with nothing shared beside it, need not alarm the citizen
    assert not first.data.visible_to_subject and not second.data.visible_to_subject


def test_every_decision_names_the_provision_of_law_the_senders_ground_rests_on(platform):
    _, _, sharing, case_id = platform
    share(sharing, case_id)
    share(sharing, case_id, to_agencies=["woningcorporatie-mitros"], categories=["income"])
    shared, refused = received(sharing)
    assert shared.data.provision.citation == "Wet gemeentelijke schuldhulpverlening, art. 2 en 3"
    assert refused.data.provision == shared.data.provision  # a refusal names it too
    assert shared.data.special_provisions == {}


def test_a_special_category_names_the_provision_of_its_own_ground(memory_settings):
    platform = WiredPlatform(memory_settings)
    command = family_case_command()
    platform.command("case_registration", "register_case", command)
    platform.command("case_registration", "activate_case", activate_command(command["case_id"]))
    ggd = {
        "agency": "ggd-regio-utrecht",
        "subject_bsn": DAUGHTER["bsn"],
        "to_agencies": ["raad-kinderbescherming"],
        "categories": ["health", "professional_conclusion"],
        "purpose": "youth_protection",
        "special_grounds": {"health": "child_protection"},
    }
    answer = platform.command("data_sharing", "request_share", share_command(command["case_id"], **ggd))
    assert answer["outcome"] == "shared", answer
    [shared] = [e for e in received(platform.apps["data_sharing"]) if e.name == "DataShared"]
    assert shared.data.special_provisions["health"].law == "Wet maatschappelijke ondersteuning 2015"
    assert shared.data.provision is not None


def test_the_answer_lists_the_categories_in_the_order_they_were_asked_for(platform):
    _, _, sharing, case_id = platform
    asked = {**MIXED, "categories": ["debts", "professional_conclusion"]}
    [decision] = sharing.request_share(
        loaded(RequestShareSchema, share_command(case_id, **asked), sharing.settings)
    ).decisions
    assert [(c.category, c.outcome) for c in decision.categories] == [
        ("debts", "refused"),
        ("professional_conclusion", "shared"),
    ]


def test_a_relay_round_reads_its_recipients_keys_and_cases_once_and_the_next_round_sees_a_rotation(
    platform, monkeypatch
):
    _, _, sharing, case_id = platform
    reads = []
    counted = [(sharing.agencies, "current_key"), (sharing.agencies, "current_keys")]
    counted += [(sharing.cases, "get"), (sharing.cases, "get_many")]
    for owner, name in counted:
        real = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda *a, _n=name, _r=real: (reads.append(_n), _r(*a))[1])
    seen = 0

    def next_round():
        nonlocal seen
        events = stored_events(sharing)[seen:]
        seen += len(events)
        reads.clear()
        rounds = sharing.round_inbox_messages(events)
        return [json.loads(m.body)["data"]["sealed_content"] for messages in rounds for m in messages]

    # A recipient without a key is told without content: its key looked for, no case read.
    share(sharing, case_id, content="Zonder sleutel.")
    assert next_round() == [None]
    assert reads == ["current_keys"]

    first = KeyPair.generate()
    sharing.agencies.add_key("kredietbank-utrecht", first.signing_public_key, first.encryption_public_key)
    share(sharing, case_id, content="Eerste.")
    share(sharing, case_id, content="Tweede.")
    contents = [open_sealed(first.encryption_private_key, s)["content"] for s in next_round()]
    assert contents == ["Eerste.", "Tweede."]
    assert reads == ["current_keys", "get_many"], "the keys and the cases read once for the round"

    rotated = KeyPair.generate()
    sharing.agencies.rotate("kredietbank-utrecht", rotated.signing_public_key, rotated.encryption_public_key)
    share(sharing, case_id, content="Derde.")
    [sealed] = next_round()
    assert open_sealed(rotated.encryption_private_key, sealed)["content"] == "Derde."
