"""The accountability ledger: what an agency provided and received, as sender and recipient
both read it, rebuilt from the events alone."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import date, timedelta

import pytest

from services.case_registration.application import CaseRegistrationUseCases
from services.data_sharing.application import DataSharingUseCases
from shared.contracts.commands import (
    ActivateCase,
    CorrectShareSchema,
    GetLedgerSchema,
    RegisterCaseSchema,
    RequestShareSchema,
    dump_reply,
    load_command,
)
from shared.errors import InvalidRequest, NotAuthorised
from tests.factories import case_command, loaded, received, share_command

SENDER, RECIPIENT, OTHER = "gemeente-utrecht", "kredietbank-utrecht", "woningcorporatie-mitros"


@pytest.fixture
def sharing(memory_settings):
    registration = CaseRegistrationUseCases(memory_settings)
    sharing = DataSharingUseCases(memory_settings)
    case = registration.register_case(loaded(RegisterCaseSchema, case_command(), memory_settings))
    registration.activate_case(ActivateCase(agency=SENDER, case_id=case.case_id))
    for event in received(registration):
        sharing.cases.apply(event)
    sharing.case_id = str(case.case_id)
    return sharing


def share(sharing, **changes):
    command = share_command(sharing.case_id, **changes)
    return sharing.request_share(loaded(RequestShareSchema, command, sharing.settings)).decisions


def ledger(sharing, agency, **query):
    command = load_command(GetLedgerSchema, {"schema_version": 1, "agency": agency, **query})
    return sharing.get_ledger(command)


def deliver(sharing):
    """What the relay does once the broker confirmed the inbox messages of every stored event."""
    stored = [
        sharing.mapper.to_domain_event(n) for n in sharing.recorder.select_notifications(start=1, limit=1000)
    ]
    receipts = sharing.inbox_receipts([e for e in stored if sharing.inbox_messages(e)])
    if receipts:
        sharing.save_tracked(None, *receipts)
    return receipts


def without_side(line):
    return {k: v for k, v in asdict(line).items() if k != "side"}


def test_the_sender_and_the_recipient_read_one_share_the_same_field_for_field(sharing):
    [written] = share(sharing)
    [oral] = share(sharing, form="oral", meeting_id="overleg-2026-12-07", content=None)
    deliver(sharing)
    provided = ledger(sharing, SENDER).entries
    taken = ledger(sharing, RECIPIENT).entries
    assert [line.side for line in provided] == ["provided", "provided"]
    assert [line.side for line in taken] == ["received", "received"]
    assert [without_side(line) for line in provided] == [without_side(line) for line in taken]
    first, second = provided
    assert (first.share_id, first.form, first.meeting_id) == (written.share_id, "written", None)
    assert (second.share_id, second.form, second.meeting_id) == (oral.share_id, "oral", "overleg-2026-12-07")
    assert first.purpose == "debt_assistance" and first.categories == ("debts",)
    assert first.sender_ground == "statutory_task"
    assert first.sender_provision and "," in first.sender_provision  # "<law>, <article>"
    assert first.catalogue_version == sharing.catalogue.version
    assert first.received_at is not None and first.received_at >= first.decided_at


def test_a_refused_share_is_on_both_ledgers_with_its_reason_code_and_no_receipt(sharing):
    [refusal] = share(sharing, to_agencies=[OTHER], categories=["income"])
    deliver(sharing)
    [provided] = ledger(sharing, SENDER).entries
    [taken] = ledger(sharing, OTHER).entries
    assert without_side(provided) == without_side(taken)
    assert (provided.share_id, provided.outcome, provided.reason_code) == (
        refusal.share_id,
        "refused",
        "category_not_agreed",
    )
    assert provided.received_at is None


def test_the_inbox_receipt_is_recorded_once_as_an_event(sharing):
    share(sharing)
    assert len(deliver(sharing)) == 1
    assert deliver(sharing) == []  # published again after a restart: the receipt is on record
    names = [
        type(sharing.mapper.to_domain_event(n)).__name__
        for n in sharing.recorder.select_notifications(start=1, limit=100)
    ]
    assert names == ["DataShared", "ShareTakenByInbox"]
    assert [e.name for e in received(sharing)] == ["DataShared"]  # internal: never on the bus


def test_an_agency_reads_only_its_own_ledger(sharing):
    share(sharing)
    with pytest.raises(NotAuthorised) as refused:
        ledger(sharing, RECIPIENT, of_agency=SENDER)
    assert refused.value.code == "not_your_ledger"
    assert ledger(sharing, OTHER).entries == ()  # not a party to the share: nothing of it


def test_a_ledger_is_asked_per_side_period_case_and_subject(sharing):
    share(sharing)
    today = date.today()
    [line] = ledger(sharing, SENDER, side="provided").entries
    assert ledger(sharing, SENDER, side="received").entries == ()
    assert ledger(sharing, SENDER, since=str(today), until=str(today)).entries == (line,)
    assert ledger(sharing, SENDER, since=str(today + timedelta(days=1))).entries == ()
    assert ledger(sharing, SENDER, case_id=str(uuid.uuid4())).entries == ()
    assert ledger(sharing, SENDER, subject=line.subject).entries == (line,)
    with pytest.raises(InvalidRequest):
        ledger(sharing, SENDER, since=str(today), until=str(today - timedelta(days=1)))
    with pytest.raises(InvalidRequest):
        ledger(sharing, SENDER, subject="999990019")  # a BSN is no filter: the pseudonym is


def test_the_ledger_is_rebuilt_from_the_events_alone(sharing):
    share(sharing)
    share(sharing, to_agencies=[OTHER], categories=["income"])
    deliver(sharing)
    before = ledger(sharing, SENDER).entries
    with sharing.sql.transaction() as cur:
        cur.execute(f"DELETE FROM {sharing.ledger.table}")
    assert ledger(sharing, SENDER).entries == ()
    sharing.rebuild_ledger()
    assert ledger(sharing, SENDER).entries == before


def test_the_answer_names_nothing_personal(sharing):
    share(sharing, content="Drie maanden huurachterstand.")
    deliver(sharing)
    answer = dump_reply(GetLedgerSchema, ledger(sharing, RECIPIENT))
    assert "huurachterstand" not in str(answer)
    assert "999990019" not in str(answer)
    [entry] = answer["entries"]
    assert entry["side"] == "received" and entry["received_at"]


def test_a_correction_and_an_erasure_passed_on_show_on_both_sides(sharing):
    [written] = share(sharing)
    correction = {
        "schema_version": 1,
        "agency": SENDER,
        "correction_id": str(uuid.uuid4()),
        "share_id": str(written.share_id),
        "content": "Twee maanden huurachterstand.",
        "reason_code": "factual_error",
    }
    sharing.correct_share(load_command(CorrectShareSchema, correction))
    shared = sharing.repository.get(written.share_id)
    shared.pass_on_erasure("retention", shared.modified_on)
    sharing.save(shared)
    [provided] = ledger(sharing, SENDER).entries
    [taken] = ledger(sharing, RECIPIENT).entries
    assert without_side(provided) == without_side(taken)
    [corrected] = provided.corrections
    assert (str(corrected.correction_id), corrected.corrected_by, corrected.reason_code) == (
        correction["correction_id"],
        SENDER,
        "factual_error",
    )
    assert provided.erasure_passed_on_at is not None


def test_a_provision_the_decision_event_names_is_the_one_the_ledger_shows(sharing):
    from types import SimpleNamespace

    from services.data_sharing.ledger import Ledger

    event = SimpleNamespace(provision={"law": "Wet X", "article": "art. 1"}, purpose="debt_assistance")
    ledger_ = Ledger.__new__(Ledger)
    ledger_.catalogue = sharing.catalogue
    assert ledger_._provision(event, "sender", SENDER, "statutory_task") == "Wet X, art. 1"
    assert ledger_._provision(event, "recipient", RECIPIENT, None) is None
