# ruff: noqa: F811  (the fixtures of test_gateway_service are imported by name)
"""The citizen's requests through the gateway: the citizen's API (``/api/citizen/requests``) on
their session, the agencies' signed listing, answer and extension; the services stand in as the
recording fakes of ``test_gateway_service.py``."""

from __future__ import annotations

from tests.service.test_gateway_service import (  # noqa: F401  (fixtures)
    UTRECHT,
    answer,
    bearer,
    body,
    gateway,
    pseudonym,
    request,
    services,
    sessions,
)

STATUS = {"request_id": "r-1", "case_id": "c-1", "kind": "question", "status": "open"}


def test_a_citizens_request_is_theirs_in_their_language_and_201(gateway, services):
    services["consent"].answer["submit_citizen_request"] = STATUS
    sent = {
        "request_id": "r-1",
        "case_id": "c-1",
        "kind": "question",
        "text": "Waarom?",
        "subject": "someone",
    }
    asked = request("POST", "/api/citizen/requests?lang=en", sent, headers=bearer(), signed_by=None)
    response = answer(lambda: gateway.submit_citizen_request(asked))
    assert (response.status_code, body(response)) == (201, STATUS)
    # The subject is the session's, whatever the body says.
    assert services["consent"].calls == [
        (
            "submit_citizen_request",
            (
                {
                    "subject": pseudonym(),
                    "language": "en",
                    "request_id": "r-1",
                    "case_id": "c-1",
                    "kind": "question",
                    "text": "Waarom?",
                },
            ),
        )
    ]
    assert services["retention"].calls == []


def test_an_erasure_request_is_decided_by_retention_and_answered_with_its_decision(gateway, services):
    services["consent"].answer["submit_citizen_request"] = {**STATUS, "kind": "erasure"}
    decision = {"case_id": "c-1", "decision": "refused", "reason_code": "case_running"}
    services["retention"].answer["request_erasure"] = decision
    services["consent"].answer["record_erasure_decision"] = {
        **STATUS,
        "kind": "erasure",
        "status": "answered",
    }
    sent = {"request_id": "r-1", "case_id": "c-1", "kind": "erasure"}
    response = answer(
        lambda: gateway.submit_citizen_request(
            request("POST", "/api/citizen/requests", sent, headers=bearer(), signed_by=None)
        )
    )
    assert (response.status_code, body(response)["status"]) == (201, "answered")
    assert services["retention"].calls == [
        ("request_erasure", ({"subject": pseudonym(), "case_id": "c-1", "language": "nl"},))
    ]
    assert services["consent"].calls[-1] == ("record_erasure_decision", (pseudonym(), "r-1", decision))


def test_a_citizens_requests_need_a_session(gateway, services):
    response = answer(
        lambda: gateway.citizen_requests(request("GET", "/api/citizen/requests", signed_by=None))
    )
    assert response.status_code == 403
    assert services["consent"].calls == []


def test_a_citizen_lists_and_withdraws_only_their_own_requests(gateway, services):
    services["consent"].answer["citizen_requests"] = {"requests": []}
    listed = request("GET", "/api/citizen/requests", headers=bearer(), signed_by=None)
    assert body(answer(lambda: gateway.citizen_requests(listed))) == {"requests": []}
    withdrawn = request("POST", "/api/citizen/requests/r-1/withdraw", headers=bearer(), signed_by=None)
    assert answer(lambda: gateway.withdraw_citizen_request(withdrawn, "r-1")).status_code == 200
    assert services["consent"].calls == [
        ("citizen_requests", (pseudonym(),)),
        ("withdraw_citizen_request", (pseudonym(), "r-1")),
    ]


def test_an_agency_lists_answers_and_extends_only_as_itself(gateway, services):
    answer(lambda: gateway.citizen_requests_due(request("GET", "/api/citizen-requests")))
    reason = {"nl": "Omdat.", "en": "Because."}
    answer(
        lambda: gateway.answer_citizen_request(
            request("POST", "/api/citizen-requests/r-1/answer", {"outcome": "granted", "reason": reason}),
            "r-1",
        )
    )
    answer(
        lambda: gateway.extend_citizen_request(
            request("POST", "/api/citizen-requests/r-1/extend", {"until": "2027-03-01"}), "r-1"
        )
    )
    assert services["consent"].calls == [
        ("list_citizen_requests", ({"schema_version": 1, "agency": UTRECHT},)),
        (
            "answer_citizen_request",
            ({"outcome": "granted", "reason": reason, "agency": UTRECHT, "request_id": "r-1"},),
        ),
        ("extend_citizen_request", ({"until": "2027-03-01", "agency": UTRECHT, "request_id": "r-1"},)),
    ]
    unsigned = answer(
        lambda: gateway.citizen_requests_due(request("GET", "/api/citizen-requests", signed_by=None))
    )
    assert unsigned.status_code == 403


def test_a_request_about_a_purged_case_is_answered_by_what_remains(gateway, services):
    from shared.errors import NotFound

    services["consent"].answer["submit_citizen_request"] = NotFound("unknown_case", "no case", "case_id")
    services["notification"].answer["get_overview"] = {
        "cases": [
            {
                "case_id": "c-1",
                "outcome": "helped",
                "purged": [{"record_kind": "case_records", "purged_at": "2029-01-02T03:00:00+00:00"}],
            }
        ]
    }
    sent = {"request_id": "r-1", "case_id": "c-1", "kind": "question", "text": "Wat weten jullie nog?"}
    response = answer(
        lambda: gateway.submit_citizen_request(
            request("POST", "/api/citizen/requests", sent, headers=bearer(), signed_by=None)
        )
    )
    error = body(response)["error"]
    assert (response.status_code, error["code"]) == (409, "case_purged")
    assert "2029-01-02" in error["message"] and "helped" in error["message"]
    elsewhere = {**sent, "case_id": "c-2"}
    response = answer(
        lambda: gateway.submit_citizen_request(
            request("POST", "/api/citizen/requests", elsewhere, headers=bearer(), signed_by=None)
        )
    )
    assert (response.status_code, body(response)["error"]["code"]) == (404, "unknown_case")


def test_the_page_still_shows_the_overview_when_the_requests_cannot_be_read(gateway, services):
    from services.gateway import pages
    from services.gateway.service import SESSION_COOKIE
    from services.gateway.sessions import SessionSigner
    from shared.errors import ServiceUnavailable
    from tests.service.test_gateway_service import SESSION_KEY

    services["notification"].answer["get_overview"] = {"subject": pseudonym(), "cases": []}
    services["consent"].answer["citizen_requests"] = ServiceUnavailable("service_unavailable", "no answer")
    token = SessionSigner(SESSION_KEY).issue(pseudonym())
    response = gateway.page(
        request("GET", "/inzage", headers={"Cookie": f"{SESSION_COOKIE}={token}"}, signed_by=None)
    )
    assert response.status_code == 200
    assert pages.labels("nl")["no_cases"] in response.get_data(as_text=True)


# -- a minor's legal representative ---------------------------------------------------------------
MINOR = pseudonym("111222357")
REPRESENTED = {
    "represented": [
        {
            "case_id": "c-1",
            "subject_ref": "ref-1",
            "subject": MINOR,
            "role": "child",
            "name": "Noor Bakker",
            "requests": [],
        }
    ]
}


def test_the_representative_acts_for_the_minor_named_by_reference(gateway, services):
    services["consent"].answer["represented"] = REPRESENTED
    services["consent"].answer["submit_citizen_request"] = {**STATUS, "kind": "erasure"}
    decision = {"case_id": "c-1", "decision": "granted"}
    services["retention"].answer["request_erasure"] = decision
    services["consent"].answer["record_erasure_decision"] = {**STATUS, "status": "answered"}
    sent = {"request_id": "r-1", "case_id": "c-1", "kind": "erasure", "for_subject": "ref-1"}
    response = answer(
        lambda: gateway.submit_citizen_request(
            request("POST", "/api/citizen/requests", sent, headers=bearer(), signed_by=None)
        )
    )
    assert response.status_code == 201
    submitted = next(args[0] for name, args in services["consent"].calls if name == "submit_citizen_request")
    assert (submitted["subject"], submitted["representative"], submitted["for_subject"]) == (
        MINOR,
        pseudonym(),
        "ref-1",
    )
    # The minor's erasure is decided for the minor, and answered on the minor's request.
    assert services["retention"].calls == [
        ("request_erasure", ({"subject": MINOR, "case_id": "c-1", "language": "nl"},))
    ]
    assert services["consent"].calls[-1] == ("record_erasure_decision", (MINOR, "r-1", decision))


def test_a_reference_the_citizen_does_not_represent_is_the_404_of_an_unknown_case(gateway, services):
    services["consent"].answer["represented"] = REPRESENTED
    for case_id, ref in (("c-1", "ref-2"), ("c-2", "ref-1")):
        sent = {"request_id": "r-1", "case_id": case_id, "kind": "question", "text": "?", "for_subject": ref}
        response = answer(
            lambda sent=sent: gateway.submit_citizen_request(
                request("POST", "/api/citizen/requests", sent, headers=bearer(), signed_by=None)
            )
        )
        assert (response.status_code, body(response)["error"]["code"]) == (404, "unknown_case")
    assert [name for name, _ in services["consent"].calls] == ["represented", "represented"]


def test_the_represented_minors_show_their_case_and_requests_but_no_pseudonym(gateway, services):
    services["consent"].answer["represented"] = REPRESENTED
    services["notification"].answer["get_overview"] = {
        "subject": MINOR,
        "cases": [
            {"case_id": "c-1", "shares": [{"subject": MINOR, "share_id": "s-1"}]},
            {"case_id": "c-9", "shares": []},  # another case of the minor: not this representative's
        ],
    }
    response = answer(
        lambda: gateway.represented(
            request("GET", "/api/citizen/represented", headers=bearer(), signed_by=None)
        )
    )
    assert response.status_code == 200
    assert body(response) == {
        "represented": [
            {
                "case_id": "c-1",
                "subject_ref": "ref-1",
                "role": "child",
                "name": "Noor Bakker",
                "requests": [],
                "case": {"case_id": "c-1", "shares": [{"share_id": "s-1"}]},
            }
        ]
    }
    assert MINOR not in response.get_data(as_text=True)
    assert services["consent"].calls == [("represented", (pseudonym(),))]
