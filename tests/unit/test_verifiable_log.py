"""The verifiable log of a service, on in-memory stores: the relay appends a leaf for each
decision, heads are signed, proofs verify, and a purge leaves a log that still verifies."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest

from keten_client.witness import ForkDetected, HeadWitness, UntrustedHead
from services.case_registration.application import CaseRegistrationUseCases
from services.consent.application import ConsentUseCases
from shared import merkle
from shared.contracts.commands import GiveConsentSchema, RegisterCaseSchema
from shared.contracts.log import TreeHeadSignedSchema
from shared.relay import EventRelay, RelayLoop
from shared.tlog import (
    LogKey,
    TreeHead,
    head_signature_valid,
    verify_extends,
    verify_inclusion,
    verify_log,
)
from tests.factories import case_command, consent_command, loaded, received


class Publisher:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    def publish(self, messages: list[Any], exchange: Any = None) -> None:
        self.messages.extend(messages)


REGISTRATIONS: dict[int, CaseRegistrationUseCases] = {}


@pytest.fixture
def consent(memory_settings):
    return ConsentUseCases(memory_settings)


def give_consents(consent: ConsentUseCases, cases: int) -> list[str]:
    """Registers ``cases`` cases and records a consent in each."""
    registration = REGISTRATIONS.setdefault(id(consent), CaseRegistrationUseCases(consent.settings))
    case_ids = []
    for _ in range(cases):
        case = registration.register_case(loaded(RegisterCaseSchema, case_command(), consent.settings))
        case_ids.append(str(case.case_id))
    for event in received(registration):
        if event.position > consent.position("case_registration"):
            consent.cases.apply(event)
    for case_id in case_ids:
        consent.give_consent(loaded(GiveConsentSchema, consent_command(case_id), consent.settings))
    return case_ids


def relay(app: Any) -> EventRelay:
    relay = EventRelay(app, app.name, Publisher())  # type: ignore[arg-type]
    relay.publish_pending()
    return relay


def test_the_relay_appends_a_leaf_for_each_decision_in_the_order_stored(consent):
    give_consents(consent, 3)
    log = relay(consent).log
    assert log is not None
    consents = [
        n.id for n in consent.recorder.select_notifications(start=1, limit=100) if "ConsentGiven" in n.topic
    ]
    assert log.size == 3
    with consent.sql.transaction(commit=False) as cur:
        rows = cur.execute("SELECT notification_id FROM consent_log_leaves ORDER BY leaf_index").fetchall()
    assert [row[0] for row in rows] == consents
    assert verify_log(consent).ok


def test_a_relay_that_starts_again_adds_no_leaf_twice(consent):
    give_consents(consent, 2)
    relay(consent)
    again = EventRelay(consent, "consent", Publisher(), durable_position=False)  # type: ignore[arg-type]
    again.publish_pending()
    assert again.log is not None and again.log.size == 2
    assert verify_log(consent).ok


def test_a_signed_head_proves_each_leaf_and_extends_the_head_before(consent):
    give_consents(consent, 2)
    log = relay(consent).log
    assert log is not None
    first = log.sign_head()
    give_consents(consent, 3)
    relay(consent)
    second = log.sign_head()
    assert (first.size, second.size) == (2, 5)
    assert head_signature_valid(first) and head_signature_valid(second)
    published = TreeHead.from_json(second.to_json())
    assert head_signature_valid(published)
    for notification_id in [n.id for n in consent.recorder.select_notifications(start=1, limit=100)]:
        proof = log.inclusion(notification_id, published)
        if proof is not None:
            assert verify_inclusion(published, proof)
    assert verify_extends(first, second, log.consistency(first.size, second.size))
    assert not verify_extends(second, first, log.consistency(first.size, second.size))


def test_a_head_with_a_changed_size_or_root_does_not_verify(consent):
    give_consents(consent, 2)
    head = relay(consent).log.sign_head()  # type: ignore[union-attr]
    assert not head_signature_valid(TreeHead.from_json(head.to_json() | {"tree_size": 1}))
    other_root = TreeHead.from_json(
        head.to_json() | {"root_hash": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}
    )
    assert not head_signature_valid(other_root)
    with pytest.raises(ValueError):
        TreeHead.from_json(head.to_json() | {"root_hash": "not base64!"})


def test_after_a_purge_the_leaves_stay_and_the_log_still_verifies(consent):
    [purged, _kept] = give_consents(consent, 2)
    log = relay(consent).log
    assert log is not None
    head = log.sign_head()
    consent.vault.shred(UUID(purged))
    report = verify_log(consent)
    assert report.ok
    assert (report.checked, report.purged) == (1, 1)
    assert log.tree.root() == head.root


def test_each_service_signs_its_heads_with_a_key_of_its_own(consent):
    give_consents(consent, 1)
    head = relay(consent).log.sign_head()  # type: ignore[union-attr]
    data_sharing_key = LogKey(consent.settings.master_key, "data_sharing")
    assert head.log == "consent"
    assert head_signature_valid(head, LogKey(consent.settings.master_key, "consent").public)
    assert not head_signature_valid(head, data_sharing_key.public)


# -- an agency's witness --------------------------------------------------------------------------
def witness_of(log: Any, path: Any = None) -> HeadWitness:
    return HeadWitness(path, consistency=lambda _name, old, new: log.consistency(old, new))


def test_a_witness_keeps_the_largest_head_and_accepts_heads_that_extend_it(consent, tmp_path):
    give_consents(consent, 2)
    log = relay(consent).log
    assert log is not None
    first = log.sign_head()
    witness = witness_of(log, tmp_path / "heads.json")
    witness.observe(first.to_json())
    give_consents(consent, 2)
    relay(consent)
    second = log.sign_head()
    witness.observe(second.to_json())
    witness.observe(first.to_json())  # an older head seen later: still the same history
    assert witness_of(log, tmp_path / "heads.json").heads["consent"].size == 4  # kept on disk


def test_a_witness_warns_of_a_head_with_another_history(consent):
    give_consents(consent, 3)
    log = relay(consent).log
    assert log is not None
    witness = witness_of(log)
    witness.observe(log.sign_head().to_json())
    key = LogKey(consent.settings.master_key, "consent")
    rewritten = key.sign(3, merkle.root_hash([merkle.leaf_hash(b"another past")] * 3))
    with pytest.raises(ForkDetected):
        witness.observe(rewritten.to_json())
    grown_otherwise = key.sign(5, merkle.root_hash([merkle.leaf_hash(b"x")] * 5))
    for _ in range(2):  # the platform serves proofs of its own log
        log.tree.append(merkle.leaf_hash(b"y"))
    with pytest.raises(ForkDetected):
        witness.observe(grown_otherwise.to_json())
    assert witness.heads["consent"].size == 3


def test_a_witness_refuses_a_head_not_signed_by_the_pinned_key(consent):
    give_consents(consent, 1)
    head = relay(consent).log.sign_head()  # type: ignore[union-attr]
    other = LogKey(b"another master key" * 2, "consent").public
    with pytest.raises(UntrustedHead):
        HeadWitness(public_keys={"consent": other}).observe(head.to_json())


def test_the_relay_signs_a_head_when_the_log_grew_and_publishes_it_on_keten_log(consent):
    give_consents(consent, 2)
    relayed = relay(consent)
    publisher = Publisher()
    loop = RelayLoop(consent, "consent", consent.settings)
    loop.keep_log(relayed.log, publisher)  # type: ignore[arg-type]
    loop.keep_log(relayed.log, publisher)  # type: ignore[arg-type]  # not due again yet
    [message] = publisher.messages
    assert (message.exchange, message.routing_key) == ("keten.log", "consent.TreeHeadSigned")
    published = TreeHeadSignedSchema().load(json.loads(message.body))
    head = TreeHead.from_json(published["head"])
    assert head.size == 2 and head_signature_valid(head)
