"""Logboek Dataverwerkingen: each processing is a record in the standard's fields, in the trace
of the agency's request, pointing at a versioned register of processing activities generated
from the catalogue, and naming the subject by pseudonym, never by BSN.

The field list below is the standard's ("Component: Logboek", interface table and the
``dpl.core`` attributes), written out here on purpose rather than imported from ``shared.ldv``:
the test checks the code against the standard, not against itself.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.case_registration.application import CaseRegistrationUseCases
from services.consent.application import ConsentUseCases
from services.data_sharing.application import DataSharingUseCases
from services.notification.application import NotificationUseCases
from shared import tracing
from shared.catalogue import AgencyGround, Provision, load_catalogue
from shared.contracts.commands import (
    ActivateCase,
    RecordSafetyOverrideSchema,
    RegisterCaseSchema,
    RequestShareSchema,
)
from shared.contracts.envelope import encode_event
from shared.ldv import ldv_record, processing_log
from shared.ldv_register import ActivityRegister
from shared.pseudonym import pseudonymise
from tests.factories import (
    CITIZEN,
    DAUGHTER,
    FATHER,
    MOTHER,
    SON,
    case_command,
    family_case_command,
    loaded,
    override_command,
    received,
    share_command,
)
from tests.unit.test_retention import Platform

#: The standard's record: field -> (required, type check).
HEX_32 = re.compile(r"^[0-9a-f]{32}$")
HEX_16 = re.compile(r"^[0-9a-f]{16}$")
STANDARD_FIELDS = {
    "trace_id": (True, lambda v: isinstance(v, str) and HEX_32.match(v) and v != "0" * 32),
    "span_id": (True, lambda v: isinstance(v, str) and HEX_16.match(v) and v != "0" * 16),
    "status": (True, lambda v: v in ("Unset", "Ok", "Error")),
    "name": (True, lambda v: isinstance(v, str) and v),
    "start_time": (True, lambda v: isinstance(v, int) and v > 1_700_000_000_000),  # ms since epoch
    "end_time": (True, lambda v: isinstance(v, int) and v > 1_700_000_000_000),
    "parent_span_id": (False, lambda v: isinstance(v, str) and HEX_16.match(v)),
    "resource": (False, lambda v: isinstance(v, dict) and isinstance(v.get("attributes"), dict)),
    "attributes": (True, lambda v: isinstance(v, dict)),
}
PROCESSING_ACTIVITY_ID = "dpl.core.processing_activity_id"
DATA_SUBJECT_ID = "dpl.core.data_subject_id"
DATA_SUBJECT_ID_TYPE = "dpl.core.data_subject_id_type"
FOREIGN_PROCESSOR = "dpl.core.foreign_operation.processor"
#: The agency's own trace: W3C traceparent of the span that sent the request.
AGENCY_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
AGENCY_SPAN = "00f067aa0ba902b7"
AGENCY_TRACEPARENT = f"00-{AGENCY_TRACE}-{AGENCY_SPAN}-01"


def check_record(record: dict[str, Any], register: ActivityRegister) -> None:
    """Every required field present and well typed; no field outside the standard; the
    activity resolves in the register; a subject is a pseudonym with its type, never a BSN."""
    assert set(record) <= set(STANDARD_FIELDS), set(record) - set(STANDARD_FIELDS)
    for name, (required, valid) in STANDARD_FIELDS.items():
        if required:
            assert name in record, f"{name} missing"
        if name in record:
            assert valid(record[name]), f"{name} = {record[name]!r}"
    assert record["start_time"] <= record["end_time"]
    attributes = record["attributes"]
    assert all(key.startswith(("dpl.core.", "exception.")) for key in attributes), attributes
    activity = attributes[PROCESSING_ACTIVITY_ID]
    assert activity.startswith(register.base_url + "/")
    key, version = activity.removeprefix(register.base_url + "/").split("/")
    assert register.find(key, version) is not None, activity
    if DATA_SUBJECT_ID in attributes:
        assert attributes[DATA_SUBJECT_ID_TYPE] == "keten-pseudonym"
        assert re.fullmatch(r"[0-9a-f]{32}", attributes[DATA_SUBJECT_ID])
    assert not any(re.fullmatch(r"\d{9}", str(value)) for value in attributes.values()), "a BSN as attribute"
    said = json.dumps(record)
    assert not any(person["bsn"] in said for person in (CITIZEN, MOTHER, FATHER, DAUGHTER, SON))


@pytest.fixture
def records(memory_settings):
    """The LDV records this test makes, as the JSON-lines exporter writes them."""
    exporter = InMemorySpanExporter()
    processing_log(memory_settings).add_exporter(exporter, batch=False)
    yield lambda: [ldv_record(span) for span in exporter.get_finished_spans()]
    exporter.shutdown()  # the process's log keeps it, but it takes nothing more


@pytest.fixture
def platform(memory_settings):
    registration = CaseRegistrationUseCases(memory_settings)
    consent = ConsentUseCases(memory_settings)
    sharing = DataSharingUseCases(memory_settings)
    case = registration.register_case(loaded(RegisterCaseSchema, case_command(), memory_settings))
    registration.activate_case(ActivateCase(agency="gemeente-utrecht", case_id=case.case_id))
    for event in received(registration):
        consent.cases.apply(event)
        sharing.cases.apply(event)
    return registration, consent, sharing, str(case.case_id)


def request_share(sharing: DataSharingUseCases, case_id: str, **changes: Any) -> Any:
    command = {**share_command(case_id), **changes}
    return sharing.request_share(loaded(RequestShareSchema, command, sharing.settings)).decisions


@pytest.fixture
def agency_trace():
    """The work runs as a worker does for a request that carried the agency's traceparent."""
    token = tracing.enter_worker(tracing.from_caller({"Traceparent": AGENCY_TRACEPARENT}))
    yield
    tracing.leave_worker(token)


def test_an_allowed_share_is_one_record_in_the_standards_fields_naming_the_subject_by_pseudonym(
    platform, records, memory_settings
):
    _, _, sharing, case_id = platform
    request_share(sharing, case_id)
    [record] = [r for r in records() if r["name"] == "share allowed"]
    check_record(record, sharing.ldv.register)
    assert record["status"] == "Ok"
    assert record["attributes"][DATA_SUBJECT_ID] == pseudonymise(
        CITIZEN["bsn"], memory_settings.pseudonym_secret
    )
    key = record["attributes"][PROCESSING_ACTIVITY_ID].split("/")[-2]
    assert key == "share.debt_assistance.gemeente-utrecht"  # the sender's activity for the purpose
    assert record["resource"]["attributes"]["service.name"] == "keten-data_sharing"
    assert CITIZEN["bsn"] not in json.dumps(records()) and CITIZEN["name"] not in json.dumps(records())


def test_a_refused_share_is_a_record_with_status_unset(platform, records):
    _, _, sharing, case_id = platform
    [decision] = request_share(
        sharing, case_id, to_agencies=["woningcorporatie-mitros"], categories=["income"]
    )
    assert decision.outcome == "refused"
    [record] = [r for r in records() if r["name"] == "share refused"]
    check_record(record, sharing.ldv.register)
    assert record["status"] == "Unset"  # done as the rules say: no error of ours


def test_a_share_in_an_agencys_trace_continues_it_to_the_event_and_the_recipients_inbox(
    platform, records, agency_trace
):
    _, _, sharing, case_id = platform
    request_share(sharing, case_id)
    [record] = [r for r in records() if r["name"] == "share allowed"]
    check_record(record, sharing.ldv.register)
    assert (record["trace_id"], record["parent_span_id"]) == (AGENCY_TRACE, AGENCY_SPAN)
    # The catalogue names no website of the agency: a URN names it.
    assert record["attributes"][FOREIGN_PROCESSOR] == "urn:keten:agency:gemeente-utrecht"

    stored_events = [sharing.mapper.to_domain_event(n) for n in sharing.recorder.select_notifications(1, 100)]
    [stored] = [e for e in stored_events if type(e).__name__ == "DataShared"]
    continued = f"00-{AGENCY_TRACE}-{record['span_id']}-01"
    assert stored.traceparent == continued  # kept with the stored event, read back from the store
    message = encode_event(stored, "data_sharing", 1)
    assert message.headers["traceparent"] == continued
    assert "traceparent" not in json.loads(message.body)  # the signed body is as it was
    [inbox] = sharing.inbox_messages(stored)
    assert inbox.headers["traceparent"] == continued
    assert json.loads(inbox.body)["traceparent"] == continued


def test_a_caller_that_does_not_sample_is_logged_all_the_same(platform, records):
    _, _, sharing, case_id = platform
    token = tracing.enter_worker(tracing.from_caller({"traceparent": f"00-{AGENCY_TRACE}-{AGENCY_SPAN}-00"}))
    try:
        request_share(sharing, case_id)
    finally:
        tracing.leave_worker(token)
    [record] = [r for r in records() if r["name"] == "share allowed"]
    assert record["trace_id"] == AGENCY_TRACE  # the standard forbids sampling


def test_a_malformed_traceparent_is_ignored_and_the_work_starts_a_trace_of_its_own(platform, records):
    assert tracing.from_caller({"traceparent": "00-not-a-trace-01"}) == {}
    _, _, sharing, case_id = platform
    token = tracing.enter_worker(tracing.from_caller({"traceparent": "00-not-a-trace-01"}))
    try:
        request_share(sharing, case_id)
    finally:
        tracing.leave_worker(token)
    [record] = [r for r in records() if r["name"] == "share allowed"]
    check_record(record, sharing.ldv.register)
    assert "parent_span_id" not in record and FOREIGN_PROCESSOR not in record["attributes"]


def test_an_override_for_two_subjects_is_one_record_per_subject_under_one_for_the_processing(
    memory_settings, records
):
    registration = CaseRegistrationUseCases(memory_settings)
    consent = ConsentUseCases(memory_settings)
    case = registration.register_case(loaded(RegisterCaseSchema, family_case_command(), memory_settings))
    for event in received(registration):
        consent.cases.apply(event)
    command = override_command(str(case.case_id), [MOTHER["bsn"], SON["bsn"]])
    consent.record_safety_override(loaded(RecordSafetyOverrideSchema, command, memory_settings))
    made = [r for r in records() if r["name"] == "safety override recorded"]
    assert len(made) == 3
    for record in made:
        check_record(record, consent.ldv.register)
    [whole] = [r for r in made if DATA_SUBJECT_ID not in r["attributes"]]
    per_subject = [r for r in made if DATA_SUBJECT_ID in r["attributes"]]
    assert {r["parent_span_id"] for r in per_subject} == {whole["span_id"]}
    assert {r["attributes"][DATA_SUBJECT_ID] for r in per_subject} == {
        pseudonymise(bsn, memory_settings.pseudonym_secret) for bsn in (MOTHER["bsn"], SON["bsn"])
    }


def test_a_citizen_reading_their_overview_is_a_record(memory_settings, records):
    notification = NotificationUseCases(memory_settings)
    subject = pseudonymise(CITIZEN["bsn"], memory_settings.pseudonym_secret)
    notification.overview_for(subject)
    [record] = [r for r in records() if r["name"] == "overview read by the subject"]
    check_record(record, notification.ldv.register)
    assert record["attributes"][DATA_SUBJECT_ID] == subject


def test_the_register_gives_a_changed_activity_a_new_version_and_keeps_the_earlier_one(tmp_path):
    catalogue = load_catalogue()
    before = ActivityRegister("https://keten.example/api/ldv/processing-activities", catalogue)
    key = "share.debt_assistance.gemeente-utrecht"
    earlier = before.current[key]
    assert earlier.grounds[0].provision.startswith("Wet gemeentelijke schuldhulpverlening")
    path = tmp_path / "ldv-register.json"
    before.write(path)

    utrecht = catalogue.agencies["gemeente-utrecht"]
    moved = tuple(
        dataclasses.replace(g, provision=Provision("Wet gemeentelijke schuldhulpverlening", "art. 2"))
        if g.purpose == "debt_assistance"
        else g
        for g in utrecht.grounds
    )
    assert all(isinstance(g, AgencyGround) for g in moved)
    changed = dataclasses.replace(
        catalogue,
        version="2099.1.1",
        agencies={**catalogue.agencies, "gemeente-utrecht": dataclasses.replace(utrecht, grounds=moved)},
    )
    after = ActivityRegister.load(before.base_url, changed, path)
    assert after.current[key].version != earlier.version
    assert after.find(key, earlier.version)["grounds"][0]["provision"].startswith("Wet gemeentelijke")
    assert after.find(key, after.current[key].version)["catalogue_version"] == "2099.1.1"
    unchanged = "share.debt_assistance.kredietbank-utrecht"
    assert after.current[unchanged].version == before.current[unchanged].version


def test_a_notice_sent_later_by_the_timer_is_logged_in_the_trace_of_the_share_it_tells_of(
    memory_settings, records, tmp_path
):
    platform = Platform(
        dataclasses.replace(memory_settings, letter_dir=tmp_path / "letters", notify_bundle_seconds=0)
    )
    case_id = platform.register()
    token = tracing.enter_worker(tracing.from_caller({"traceparent": AGENCY_TRACEPARENT}))
    try:
        platform.share(case_id)
    finally:
        tracing.leave_worker(token)
    assert platform.notification.dispatch_due(datetime.now(UTC) + timedelta(seconds=1)) == 1  # a letter
    [shared] = [r for r in records() if r["name"] == "share allowed"]
    [told] = [r for r in records() if r["name"] == "subject notified"]
    check_record(told, platform.notification.ldv.register)
    assert (told["trace_id"], told["parent_span_id"]) == (AGENCY_TRACE, shared["span_id"])
    assert told["attributes"][DATA_SUBJECT_ID] == platform.subject


def test_records_reach_an_ldv_collector_over_otlp_with_the_dpl_attributes(memory_settings):
    """A collector that speaks OTLP/HTTP (here a plain HTTP server that decodes the protobuf
    request as the OpenTelemetry Collector does) gets each record with its attributes."""
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from threading import Thread

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from shared.ldv import Processing, ProcessingLog

    received: list[tuple[str, ExportTraceServiceRequest]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = ExportTraceServiceRequest()
            request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.path, request))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        log = ProcessingLog(processing_log(memory_settings).register, load_catalogue())
        endpoint = f"http://127.0.0.1:{server.server_port}/v1/traces"
        log.add_exporter(OTLPSpanExporter(endpoint=endpoint), batch=False)
        subject = pseudonymise(CITIZEN["bsn"], memory_settings.pseudonym_secret)
        log.record("notification", Processing("overview read by the subject", "citizen-overview"), [subject])
    finally:
        server.shutdown()
    [(path, request)] = received
    assert path == "/v1/traces"
    [resource_spans] = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "keten-notification"
    [span] = resource_spans.scope_spans[0].spans
    attributes = {a.key: a.value.string_value for a in span.attributes}
    assert span.name == "overview read by the subject"
    assert attributes[DATA_SUBJECT_ID] == subject
    assert attributes[DATA_SUBJECT_ID_TYPE] == "keten-pseudonym"
    assert "/platform.citizen-overview/" in attributes[PROCESSING_ACTIVITY_ID]
    assert len(span.trace_id) == 16 and len(span.span_id) == 8


def test_a_correction_and_an_erasure_passed_on_are_records_naming_the_subject(memory_settings, records):
    from services.data_sharing.domain import Decision, Share, ShareRequest
    from shared.caseview import ContactPointFacts
    from shared.sealed import Sealed

    sharing = DataSharingUseCases(memory_settings)
    subject = "a" * 32
    request = ShareRequest(
        request_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        subject=subject,
        from_agency="gemeente-utrecht",
        to_agency="kredietbank-utrecht",
        categories=("debts",),
        purpose="debt_assistance",
    )
    allowed = Decision(True, "allowed", sender_ground="statutory_task", recipient_ground="statutory_task")
    share = Share.record(
        request,
        allowed,
        content=Sealed("k", b"c"),
        contact_point=ContactPointFacts("gemeente-utrecht", "casusregisseur schulden"),
        catalogue_version="test",
        correlation_id="c",
    )
    share.correct(uuid.uuid4(), "gemeente-utrecht", "factual_error", Sealed("k", b"d"), "c")
    share.pass_on_erasure("erasure", datetime.now(UTC))
    sharing.save(share)
    made = {r["name"]: r for r in records()}
    for name in ("share allowed", "correction passed on", "erasure passed on"):
        check_record(made[name], sharing.ldv.register)
        assert made[name]["attributes"][DATA_SUBJECT_ID] == subject
    assert "/platform.pass-on-erasure/" in made["erasure passed on"]["attributes"][PROCESSING_ACTIVITY_ID]


def test_an_event_caught_up_from_the_upstreams_log_keeps_its_trace(platform, agency_trace, memory_settings):
    from shared.catchup import PageRequest, published_events_page, read_page
    from shared.provenance import EventKeys

    _, _, sharing, case_id = platform
    request_share(sharing, case_id)
    [published] = [e for e in received(sharing) if e.name == "DataShared"]
    asked = PageRequest(stream="data_sharing", after=0, before=100, kinds=("DataShared",))
    keys = EventKeys.for_settings(memory_settings).know("data_sharing")
    page = read_page(keys, "data_sharing", asked, published_events_page(sharing, asked.as_dict()))
    [(caught_up, _)] = page.events
    assert caught_up.traceparent == published.traceparent
    assert caught_up.traceparent.split("-")[1] == AGENCY_TRACE


def test_each_step_of_a_citizens_request_is_a_record_naming_the_subject(memory_settings, records):
    from tests.unit.test_citizen_requests import REASON, agency_command, ask
    from tests.unit.test_citizen_requests import platform as wired_platform

    wired = wired_platform.__wrapped__(memory_settings)
    answered, withdrawn, left = ask(wired), ask(wired), ask(wired)
    later = (datetime.fromisoformat(answered["received_at"]) + timedelta(days=40)).date().isoformat()
    agency_command(
        "extend_citizen_request", wired, request_id=answered["request_id"], until=later, reason=REASON
    )
    agency_command(
        "answer_citizen_request", wired, request_id=answered["request_id"], outcome="granted", reason=REASON
    )
    wired.services["consent"].withdraw_citizen_request(wired.citizen, withdrawn["request_id"])
    consent = wired.apps["consent"]
    consent.escalate_requests(datetime.now(UTC) + timedelta(days=70))
    made = [r for r in records() if r["name"].startswith("citizen's request")]
    steps = sorted(r["name"].removeprefix("citizen's request ") for r in made)
    assert steps == ["answered", "extended", "overdue", "received", "received", "received", "withdrawn"]
    for record in made:
        check_record(record, consent.ldv.register)
        assert record["attributes"][DATA_SUBJECT_ID] == wired.citizen
        assert "/platform.handle-citizen-request/" in record["attributes"][PROCESSING_ACTIVITY_ID]
    assert left["request_id"] not in json.dumps(made), "the record names the processing, not the request"


def test_a_representative_acting_for_the_subject_is_a_data_subject_of_the_record_too():
    from shared.ldv import Processing, subjects_of

    acting = Processing(
        "citizen's request received", "handle-citizen-request", also_subjects=("representative",)
    )
    event = type("Received", (), {"subject": "a" * 32, "representative": "b" * 32})()
    assert subjects_of(event, acting) == ("a" * 32, "b" * 32)
    alone = type("Received", (), {"subject": "a" * 32})()
    assert subjects_of(alone, acting) == ("a" * 32,)
