"""A minor's legal representative acts for the minor (sees the minor's requests per case, submits
every kind of request for them, withdraws it; nobody else can, and acting stops once the case no
longer says minor); and an objection to one agency's part takes effect at once (data_sharing
refuses shares about the subject from and to that agency, the others go on), the table hears
it, the citizen can withdraw it, and the agency can refuse it on a stated ground."""

from __future__ import annotations

import json
import uuid

import pytest
from eventsourcing.persistence import StoredEvent

from keten.demo import CITIZEN
from services.consent.application import ConsentUseCases, _row_of
from services.consent.domain import CitizenRequest, ConsentRecord, subject_reference
from shared.errors import KetenError
from shared.pseudonym import pseudonymise
from tests.factories import (
    DAUGHTER,
    FATHER,
    MOTHER,
    SON,
    activate_command,
    case_command,
    family_case_command,
    share_command,
)
from tests.wired import WiredPlatform

REASON = {
    "nl": "Wij hebben dit nodig voor onze wettelijke taak.",
    "en": "We need this for our statutory task.",
}


def start(platform: WiredPlatform, command: dict) -> str:
    platform.command("case_registration", "register_case", command)
    platform.command("case_registration", "activate_case", activate_command(command["case_id"]))
    return str(command["case_id"])


@pytest.fixture
def family(memory_settings):
    wired = WiredPlatform(memory_settings)
    wired.case_id = start(wired, family_case_command())
    wired.who = {
        name: pseudonymise(person["bsn"], memory_settings.pseudonym_secret)
        for name, person in (("mother", MOTHER), ("father", FATHER), ("daughter", DAUGHTER), ("son", SON))
    }
    return wired


def submit(platform, subject, representative=None, **fields):
    request = {"subject": subject, "request_id": str(uuid.uuid4()), "case_id": platform.case_id, **fields}
    if representative is not None:
        request["representative"] = representative
    request.setdefault("kind", "question")
    if request["kind"] in ("question", "correction"):
        request.setdefault("text", "Waarom deelt de school zorgen over mijn dochter?")
    try:
        return platform.services["consent"].submit_citizen_request(request)
    finally:
        platform.sync()


def represented(platform, who):
    return platform.services["consent"].represented(platform.who[who])["represented"]


def test_the_representative_sees_the_minors_they_represent_per_case_by_reference_only(family):
    found = represented(family, "mother")
    case_id = uuid.UUID(family.case_id)
    assert {(e["case_id"], e["subject_ref"], e["role"]) for e in found} == {
        (family.case_id, str(subject_reference(case_id, family.who["daughter"])), "child"),
        (family.case_id, str(subject_reference(case_id, family.who["son"])), "child"),
    }
    assert {e["name"] for e in found} == {DAUGHTER["name"], SON["name"]}, "the page can tell them apart"
    assert represented(family, "father") == [], "the father is not the representative on record"
    assert represented(family, "daughter") == []


@pytest.mark.parametrize(
    "kind", ["objection", "consent_withdrawal", "correction", "erasure", "restriction", "access", "question"]
)
def test_the_representative_submits_every_kind_for_the_minor_and_it_says_so(family, kind):
    daughter, mother = family.who["daughter"], family.who["mother"]
    status = submit(family, daughter, representative=mother, kind=kind)
    assert status["submitted_by"] == "legal_representative"
    [entry] = [e for e in represented(family, "mother") if e["subject"] == daughter]
    assert [r["request_id"] for r in entry["requests"]] == [status["request_id"]]
    assert entry["requests"][0]["submitted_by"] == "legal_representative"
    assert family.services["consent"].citizen_requests(mother)["requests"] == [], "not the mother's own"
    request = family.apps["consent"].repository.get(uuid.UUID(status["request_id"]))
    assert (request.subject, request.representative) == (daughter, mother)
    if kind == "objection":
        case = family.apps["data_sharing"].cases.get(uuid.UUID(family.case_id))
        assert daughter in case.stopped_for and mother not in case.stopped_for
        record = family.apps["consent"].repository.get(ConsentRecord.create_id(case.case_id, daughter))
        lodged = [
            e
            for e in family.apps["consent"].repository.event_store.get(record.id)
            if "Objection" in type(e).__name__
        ]
        assert lodged[0].recorded_by == "legal-representative", "the record says who acted"


def test_the_agency_sees_that_the_legal_representative_submitted_it(family):
    app = family.apps["consent"]
    status = submit(family, family.who["son"], representative=family.who["mother"])
    received = next(iter(app.repository.event_store.get(uuid.UUID(status["request_id"]))))
    [message] = app.inbox_messages(received)
    assert json.loads(message.body)["data"]["submitted_by"] == "legal_representative"
    listed = family.services["consent"].list_citizen_requests(
        {"schema_version": 1, "agency": "gemeente-utrecht"}
    )
    assert listed["requests"][0]["submitted_by"] == "legal_representative"


def test_nobody_but_the_representative_on_record_acts_for_the_minor_and_gets_the_same_404(family):
    daughter = family.who["daughter"]
    before = family.apps["consent"].recorder.max_notification_id()
    for representative in (
        family.who["father"],
        family.who["son"],
        pseudonymise("999990019", b"another secret"),
    ):
        with pytest.raises(KetenError) as refused:
            submit(family, daughter, representative=representative)
        assert (refused.value.status, refused.value.code) == (404, "unknown_case")
    # The mother naming the daughter by the son's reference is refused the same way.
    son_ref = str(subject_reference(uuid.UUID(family.case_id), family.who["son"]))
    with pytest.raises(KetenError) as refused:
        submit(family, daughter, representative=family.who["mother"], for_subject=son_ref)
    assert (refused.value.status, refused.value.code) == (404, "unknown_case")
    # The mother is an adult subject: nobody represents her.
    with pytest.raises(KetenError) as refused:
        submit(family, family.who["mother"], representative=family.who["father"])
    assert refused.value.code == "unknown_case"
    assert family.apps["consent"].recorder.max_notification_id() == before


def test_the_representative_withdraws_the_minors_request_and_the_history_says_who(family):
    consent = family.services["consent"]
    status = submit(family, family.who["daughter"], representative=family.who["mother"])
    with pytest.raises(KetenError) as refused:
        consent.withdraw_citizen_request(family.who["father"], status["request_id"])
    assert (refused.value.status, refused.value.code) == (404, "unknown_request")
    withdrawn = consent.withdraw_citizen_request(family.who["mother"], status["request_id"])
    assert withdrawn["status"] == "withdrawn"
    [view] = consent.citizen_requests(family.who["daughter"])["requests"]  # the minor's own history
    assert [(s["step"], s["by"]) for s in view["steps"]] == [
        ("received", "legal_representative"),
        ("withdrawn", "legal_representative"),
    ]


def test_acting_stops_when_the_case_no_longer_says_minor(memory_settings):
    platform = WiredPlatform(memory_settings)
    command = family_case_command()
    for subject in command["subjects"]:
        if subject["bsn"] == DAUGHTER["bsn"]:
            subject["minor"] = False  # she came of age; the facts name her mother still
            subject["represented_by_bsn"] = MOTHER["bsn"]
    platform.case_id = start(platform, command)
    mother = pseudonymise(MOTHER["bsn"], memory_settings.pseudonym_secret)
    daughter = pseudonymise(DAUGHTER["bsn"], memory_settings.pseudonym_secret)
    found = platform.services["consent"].represented(mother)["represented"]
    assert [e["subject"] for e in found] == [pseudonymise(SON["bsn"], memory_settings.pseudonym_secret)]
    with pytest.raises(KetenError) as refused:
        submit(platform, daughter, representative=mother)
    assert refused.value.code == "unknown_case"
    own = submit(platform, daughter)  # she acts for herself
    with pytest.raises(KetenError) as refused:
        platform.services["consent"].withdraw_citizen_request(mother, own["request_id"])
    assert refused.value.code == "unknown_request"


def test_a_case_kept_before_the_index_is_found_when_consent_starts(family, memory_settings):
    app = family.apps["consent"]
    with app.sql.transaction(commit=True) as cur:
        cur.execute("DELETE FROM consent_representations")
    assert family.services["consent"].represented(family.who["mother"])["represented"] == []
    app.cases._index_facts_kept_before()  # what starting the service does
    assert len(family.services["consent"].represented(family.who["mother"])["represented"]) == 2


# -- an objection to one agency's part ------------------------------------------------------------
@pytest.fixture
def citizen(memory_settings):
    wired = WiredPlatform(memory_settings)
    wired.case_id = start(wired, case_command())
    wired.who = {"citizen": pseudonymise(CITIZEN["bsn"], memory_settings.pseudonym_secret)}
    return wired


def decision(platform, **changes):
    [made] = platform.command("data_sharing", "request_share", share_command(platform.case_id, **changes))[
        "decisions"
    ]
    return made


KREDIETBANK = "kredietbank-utrecht"


def test_an_objection_to_one_agency_stops_its_shares_at_once_and_the_others_go_on(citizen):
    before = decision(citizen, to_agencies=["woningcorporatie-mitros"])["reason_code"]
    status = submit(citizen, citizen.who["citizen"], kind="objection", agency=KREDIETBANK)
    assert status["status"] == "open", "the agency still answers it"
    refused_to = decision(citizen)  # gemeente -> kredietbank
    assert (refused_to["outcome"], refused_to["reason_code"]) == ("refused", "objection_to_agency")
    refused_from = decision(citizen, agency=KREDIETBANK, to_agencies=["gemeente-utrecht"])
    assert refused_from["reason_code"] == "objection_to_agency"
    assert decision(citizen, to_agencies=["woningcorporatie-mitros"])["reason_code"] == before
    case = citizen.apps["data_sharing"].cases.get(uuid.UUID(citizen.case_id))
    assert citizen.who["citizen"] not in case.stopped_for, "the case goes on"
    # The whole table hears it; only the agency objected to must answer.
    app = citizen.apps["consent"]
    received = next(iter(app.repository.event_store.get(uuid.UUID(status["request_id"]))))
    notices = {json.loads(m.body)["agency"]: json.loads(m.body)["data"] for m in app.inbox_messages(received)}
    assert sorted(notices) == ["gemeente-utrecht", KREDIETBANK, "woningcorporatie-mitros"]
    assert [a for a, n in notices.items() if n["answer_required"]] == [KREDIETBANK]
    assert all(n["objection_to_agency"] for n in notices.values())
    [view] = citizen.services["consent"].citizen_requests(citizen.who["citizen"])["requests"]
    assert view["objection_in_force"] is True
    # The refusal the citizen sees says why, in words.
    [case_shown] = citizen.services["notification"].get_overview(citizen.who["citizen"], "nl")["cases"]
    assert any("bezwaar" in r["reason"] and "Kredietbank" in r["reason"] for r in case_shown["refusals"])


def test_the_citizen_withdraws_the_objection_to_an_agency_and_its_shares_resume(citizen):
    status = submit(citizen, citizen.who["citizen"], kind="objection", agency=KREDIETBANK)
    assert decision(citizen)["reason_code"] == "objection_to_agency"
    withdrawn = citizen.services["consent"].withdraw_citizen_request(
        citizen.who["citizen"], status["request_id"]
    )
    assert withdrawn["status"] == "withdrawn"
    citizen.sync()
    assert decision(citizen)["outcome"] == "shared"
    [view] = citizen.services["consent"].citizen_requests(citizen.who["citizen"])["requests"]
    assert view["objection_in_force"] is False


@pytest.mark.parametrize(
    ("outcome", "in_force"), [("granted", True), ("partly_granted", True), ("refused", False)]
)
def test_the_agency_answers_the_objection_to_its_part_a_refusal_ends_it(citizen, outcome, in_force):
    status = submit(citizen, citizen.who["citizen"], kind="objection", agency=KREDIETBANK)
    citizen.command(
        "consent",
        "answer_citizen_request",
        {
            "schema_version": 1,
            "agency": KREDIETBANK,
            "request_id": status["request_id"],
            "outcome": outcome,
            "reason": REASON,
        },
    )
    assert (decision(citizen)["reason_code"] == "objection_to_agency") is in_force
    [view] = citizen.services["consent"].citizen_requests(citizen.who["citizen"])["requests"]
    assert view["status"] == "answered" and view["objection_in_force"] is in_force
    if in_force:  # granted: the citizen can still take it back, and shares resume
        citizen.services["consent"].withdraw_citizen_request(citizen.who["citizen"], status["request_id"])
        citizen.sync()
        assert decision(citizen)["outcome"] == "shared"


def test_a_second_objection_to_the_same_agency_is_answered_at_once_and_changes_nothing(citizen):
    submit(citizen, citizen.who["citizen"], kind="objection", agency=KREDIETBANK)
    again = submit(citizen, citizen.who["citizen"], kind="objection", agency=KREDIETBANK)
    assert again["status"] == "answered"
    record = citizen.apps["consent"].repository.get(
        ConsentRecord.create_id(uuid.UUID(citizen.case_id), citizen.who["citizen"])
    )
    assert list(record.agency_objections) == [KREDIETBANK]


def test_an_objection_naming_the_record_holder_is_to_its_part_only(citizen):
    submit(citizen, citizen.who["citizen"], kind="objection", agency="gemeente-utrecht")
    case = citizen.apps["data_sharing"].cases.get(uuid.UUID(citizen.case_id))
    assert citizen.who["citizen"] not in case.stopped_for
    assert decision(citizen)["reason_code"] == "objection_to_agency"


def test_requests_stored_before_load_without_a_representative_or_a_named_agency(citizen, memory_settings):
    """A ``CitizenRequestReceived`` and ``CitizenRequestWithdrawn`` as the code before stored them
    (no ``representative``, no ``agency_named``) and a consent record without objections to an
    agency replay: the subject's own request, not an objection to one agency's part."""
    app = citizen.apps["consent"]
    status = submit(citizen, citizen.who["citizen"], kind="objection", agency=KREDIETBANK)
    app.withdraw_citizen_request(uuid.UUID(status["request_id"]), citizen.who["citizen"])
    old = []
    for notification in app.recorder.select_notifications(start=1, limit=1000):
        if "ObjectionToAgency" in notification.topic:
            continue
        state = json.loads(notification.state)
        for name in ("representative", "agency_named"):
            state.pop(name, None)
        old.append(
            StoredEvent(
                originator_id=notification.originator_id,
                originator_version=notification.originator_version,
                topic=notification.topic,
                state=json.dumps(state).encode(),
            )
        )
    before = ConsentUseCases(memory_settings)
    before.recorder.insert_events(old)
    request = before.repository.get(uuid.UUID(status["request_id"]))
    assert isinstance(request, CitizenRequest)
    assert (request.representative, request.agency_named, request.status) == (None, False, "withdrawn")
    view = before._view(_row_of(request))  # the index is written again from these events on start
    assert view.submitted_by == "subject" and view.objection_in_force is None
    assert [s.by for s in view.steps] == [None, None]


@pytest.mark.parametrize("language", ["nl", "en"])
def test_the_page_shows_the_minors_case_with_forms_that_name_them_by_reference(family, language):
    from services.gateway import pages

    mother = family.who["mother"]
    status = submit(family, family.who["daughter"], representative=mother)
    represented = []
    for entry in family.services["consent"].represented(mother)["represented"]:
        minor = entry.pop("subject")
        overview = family.services["notification"].get_overview(minor, language)
        [case] = [c for c in overview["cases"] if c["case_id"] == entry["case_id"]]
        represented.append({**entry, "case": case})
    own = family.services["notification"].get_overview(mother, language)
    page = pages.overview_page(own, language, "token", [], None, represented)
    words = pages.labels(language)
    assert words["represented_title"] in page and words["submitted_by_representative"] in page
    for entry in represented:
        assert f'name="for_subject" value="{entry["subject_ref"]}"' in page
    assert status["request_id"] in page and DAUGHTER["name"] in page and SON["name"] in page
    for who in ("daughter", "son"):
        assert family.who[who] not in page
