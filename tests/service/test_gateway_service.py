"""The gateway's entrypoints through nameko's ``worker_factory``: the services it calls are
fakes that record and the signature check believes a header naming the agency; citizens'
sessions are the real ``CitizenSessions`` (sessions ended at logout, CSRF tokens, login limits)
on an in-memory platform store. Each test looks at what a caller of the gateway sees: the
status, the body (answered as ``JsonHttpHandler`` answers it) and which service was asked what.
(``test_gateway.py`` runs the gateway itself over the in-process broker; logout, CSRF, the
login form's origin and the login limits are tested end to end in
``tests/e2e/test_citizen_security.py``.)"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from nameko.containers import ServiceContainer
from nameko.testing.services import worker_factory
from nameko.testing.utils import get_extension
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from keten.demo import CITIZEN
from services.gateway import pages
from services.gateway.http import JsonHttpHandler
from services.gateway.service import SESSION_COOKIE, AgencySignatures, CitizenSessions, GatewayService
from services.gateway.sessions import SESSION_SECONDS, SessionSigner
from shared.config import EMBEDDED_AMQP_URI, MEMORY_DATABASE_URL
from shared.errors import NotAuthorised, NotFound, ServiceUnavailable
from shared.pseudonym import pseudonymise

SECRET = b"p" * 32
SESSION_KEY = b"s" * 32  # the master key: sessions are keyed from it
CONFIG = {
    "AMQP_URI": EMBEDDED_AMQP_URI,  # read as the container binds the RPC proxies; nothing connects
    "DATABASE_URL": MEMORY_DATABASE_URL,  # ended sessions and login attempts: in memory
    "KETEN_MASTER_KEY": base64.urlsafe_b64encode(SESSION_KEY).decode(),
    "KETEN_PSEUDONYM_SECRET": base64.urlsafe_b64encode(SECRET).decode(),
    "KETEN_PORTAL_URL": "",  # the page is the gateway as the request reached it
}
#: The gateway as ``EnvironBuilder``'s requests reach it: a browser on its page names this origin.
PAGE_ORIGIN = {"Origin": "http://localhost"}
UTRECHT = "gemeente-utrecht"
#: Stands in for a valid signature in these tests: the agency that signed.
SIGNED_BY = "X-Test-Signed-By"
SERVICES = ("case_registration", "consent", "data_sharing", "notification", "retention")


class RecordingService:
    """Stands in for one service's RPC proxy: records each call; answers what ``answer`` says
    for that method (an exception is raised), else ``{"ok": True}``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.answer: dict[str, Any] = {}

    def __getattr__(self, method: str) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            self.calls.append((method, args))
            answer = self.answer.get(method, {"ok": True})
            if isinstance(answer, Exception):
                raise answer
            return answer

        return call


class TrustedSignatures(AgencySignatures):
    """The gateway's ``AgencySignatures`` with the cryptography and the nonces left out: the
    agency named in ``X-Test-Signed-By`` signed the request; without it, nobody did. How a
    signed request becomes a command (the signer's agency, the ids in the path) is the real
    code. (``test_gateway_signatures.py`` tests the real check.)"""

    def _verify(self, request: Request) -> str:
        agency = request.headers.get(SIGNED_BY)
        if agency is None:
            raise NotAuthorised("signature_missing", "this request is not signed", "signature")
        return agency


@pytest.fixture
def services() -> dict[str, RecordingService]:
    return {name: RecordingService(name) for name in SERVICES}


@pytest.fixture
def sessions() -> CitizenSessions:
    """The gateway's own ``CitizenSessions``, set up as its container would (nothing started)."""
    container = ServiceContainer(GatewayService, CONFIG)
    sessions = get_extension(container, CitizenSessions)
    assert sessions is not None
    sessions.setup()  # reads the container's config (held weakly: the container must live here)
    return sessions


@pytest.fixture
def gateway(services: dict[str, RecordingService], sessions: CitizenSessions) -> GatewayService:
    return worker_factory(GatewayService, **services, sessions=sessions, signatures=TrustedSignatures())


def request(
    method: str,
    path: str,
    body: Any = None,
    *,
    signed_by: str | None = UTRECHT,
    data: bytes | None = None,
    **options: Any,
) -> Request:
    headers = dict(options.pop("headers", {}))
    if signed_by:
        headers[SIGNED_BY] = signed_by
    if body is not None:
        data = json.dumps(body).encode()
    return EnvironBuilder(method=method, path=path, data=data, headers=headers, **options).get_request()


def answer(call: Callable[[], Any]) -> Response:
    """What the caller of the entrypoint gets, answered the way ``JsonHttpHandler`` answers."""
    handler = JsonHttpHandler("GET", "/")
    try:
        result = call()
    except Exception as exc:
        return handler.response_from_exception(exc)
    return handler.response_from_result(result)


def body(response: Response) -> Any:
    return json.loads(response.get_data())


def pseudonym(bsn: str = CITIZEN["bsn"]) -> str:
    return pseudonymise(bsn, SECRET)


def bearer(subject: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {SessionSigner(SESSION_KEY).issue(subject or pseudonym())}"}


def csrf_token(page: str) -> str:
    """The CSRF token the overview page's forms carry."""
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


# -- agencies ---------------------------------------------------------------------------------
def test_a_registered_case_is_201_with_the_services_answer_and_the_command_is_the_signers(gateway, services):
    services["case_registration"].answer["register_case"] = {"case_id": "c-1", "status": "registered"}
    response = answer(
        lambda: gateway.register_case(request("POST", "/api/cases", {"table": "schuldhulptafel"}))
    )
    assert (response.status_code, body(response)) == (201, {"case_id": "c-1", "status": "registered"})
    assert response.headers["Cache-Control"] == "no-store"
    assert services["case_registration"].calls == [
        ("register_case", ({"table": "schuldhulptafel", "agency": UTRECHT},))
    ]


def test_a_refusal_of_the_service_reaches_the_caller_as_its_status_and_error(gateway, services):
    services["case_registration"].answer["register_case"] = NotFound(
        "unknown_table", "unknown consultation table", "table"
    )
    response = answer(lambda: gateway.register_case(request("POST", "/api/cases", {"table": "nowhere"})))
    assert (response.status_code, body(response)) == (
        404,
        {"error": {"code": "unknown_table", "message": "unknown consultation table", "field": "table"}},
    )


def test_a_service_that_does_not_answer_is_a_503(gateway, services):
    services["data_sharing"].answer["request_share"] = ServiceUnavailable(
        "service_unavailable", "data_sharing did not answer in time"
    )
    response = answer(lambda: gateway.request_share(request("POST", "/api/shares", {"case_id": "c-1"})))
    assert (response.status_code, body(response)["error"]["code"]) == (503, "service_unavailable")


def test_an_unexpected_failure_is_a_500_that_says_nothing_of_it(gateway, services):
    services["consent"].answer["give_consent"] = RuntimeError("subject 999990019 broke something")
    response = answer(lambda: gateway.give_consent(request("POST", "/api/consents", {"case_id": "c-1"})))
    assert (response.status_code, body(response)["error"]["code"]) == (500, "internal_error")
    assert "999990019" not in response.get_data(as_text=True)


def test_an_unsigned_request_is_refused_before_any_service_is_asked(gateway, services):
    response = answer(
        lambda: gateway.register_case(request("POST", "/api/cases", {"table": "x"}, signed_by=None))
    )
    assert (response.status_code, body(response)["error"]["code"]) == (403, "signature_missing")
    assert all(service.calls == [] for service in services.values())


def test_a_command_in_another_agencys_name_is_refused(gateway, services):
    command = {"table": "schuldhulptafel", "agency": "woningcorporatie-mitros"}
    response = answer(lambda: gateway.register_case(request("POST", "/api/cases", command)))
    assert (response.status_code, body(response)["error"]) == (
        403,
        {
            "code": "agency_mismatch",
            "message": "the command names another agency than its signer",
            "field": "agency",
        },
    )
    assert services["case_registration"].calls == []


@pytest.mark.parametrize(
    ("data", "code"), [(b"{not json", "not_json"), (b"[1, 2]", "invalid_message"), (b"", "invalid_message")]
)
def test_a_body_that_is_not_a_json_object_is_a_400(gateway, services, data, code):
    response = answer(lambda: gateway.register_case(request("POST", "/api/cases", data=data)))
    assert (response.status_code, body(response)["error"]["code"]) == (400, code)
    assert services["case_registration"].calls == []


def test_the_ids_in_the_path_go_into_the_command(gateway, services):
    case_id = str(uuid.uuid4())
    path = f"/api/cases/{case_id}/participants/uwv/remove"
    response = answer(
        lambda: gateway.remove_participant(request("POST", path, {"reason": "klaar"}), case_id, "uwv")
    )
    assert response.status_code == 200
    assert services["case_registration"].calls == [
        (
            "remove_participant",
            ({"reason": "klaar", "agency": UTRECHT, "case_id": case_id, "participant": "uwv"},),
        )
    ]


def test_a_body_that_names_another_id_than_the_path_is_a_400(gateway, services):
    case_id, other = str(uuid.uuid4()), str(uuid.uuid4())
    path = f"/api/cases/{case_id}/close"
    response = answer(lambda: gateway.close_case(request("POST", path, {"case_id": other}), case_id))
    assert (response.status_code, body(response)["error"]) == (
        400,
        {"code": "invalid_field", "message": "case_id differs from the one in the path", "field": "case_id"},
    )
    assert services["case_registration"].calls == []


AGENCY_COMMANDS = [
    # (entrypoint, path arguments, service, method, status)
    ("close_case", {"case_id": "c-1"}, "case_registration", "close_case", 200),
    ("activate_case", {"case_id": "c-1"}, "case_registration", "activate_case", 200),
    ("add_participant", {"case_id": "c-1"}, "case_registration", "add_participant", 201),
    ("place_legal_hold", {"case_id": "c-1"}, "retention", "place_legal_hold", 201),
    ("lift_legal_hold", {"case_id": "c-1", "hold_id": "h-1"}, "retention", "lift_legal_hold", 200),
    ("give_consent", {}, "consent", "give_consent", 201),
    ("withdraw_consent", {}, "consent", "withdraw_consent", 200),
    ("lodge_objection", {}, "consent", "lodge_objection", 201),
    ("withdraw_objection", {"objection_id": "o-1"}, "consent", "withdraw_objection", 200),
    ("record_safety_override", {}, "consent", "record_safety_override", 201),
    ("end_safety_override", {"override_id": "s-1"}, "consent", "end_safety_override", 200),
    ("request_share", {}, "data_sharing", "request_share", 200),
    ("correct_share", {"share_id": "d-1"}, "data_sharing", "correct_share", 201),
    ("end_deferral", {"override_id": "s-1"}, "notification", "end_deferral", 200),
    ("extend_deferral", {"override_id": "s-1"}, "notification", "extend_deferral", 200),
]


@pytest.mark.parametrize(("entrypoint", "in_path", "service", "method", "status"), AGENCY_COMMANDS)
def test_each_agency_command_goes_to_its_service_as_the_signers_with_the_ids_in_its_path(
    gateway, services, entrypoint, in_path, service, method, status
):
    services[service].answer[method] = {"answered_by": service}
    signed = request("POST", "/api/any", {"note": "x"}, signed_by="veilig-thuis-utrecht")
    response = answer(lambda: getattr(gateway, entrypoint)(signed, *in_path.values()))
    assert (response.status_code, body(response)) == (status, {"answered_by": service})
    assert services[service].calls == [
        (method, ({"note": "x", "agency": "veilig-thuis-utrecht", **in_path},))
    ]


def test_the_retention_schedule_is_the_signing_agencys_view_of_the_case(gateway, services):
    services["retention"].answer["get_schedule"] = [{"record_kind": "case_records", "due_at": None}]
    response = answer(lambda: gateway.retention_schedule(request("GET", "/api/cases/c-1/retention"), "c-1"))
    assert (response.status_code, body(response)) == (
        200,
        {"case_id": "c-1", "records": [{"record_kind": "case_records", "due_at": None}]},
    )
    assert services["retention"].calls == [("get_schedule", ("c-1", UTRECHT))]


def test_the_deferrals_due_are_those_of_the_signing_agency(gateway, services):
    services["notification"].answer["deferrals_due"] = [{"override_id": "s-1"}]
    response = answer(
        lambda: gateway.deferrals_due(request("GET", "/api/deferrals/due", signed_by="veilig-thuis-utrecht"))
    )
    assert (response.status_code, body(response)) == (200, {"deferrals": [{"override_id": "s-1"}]})
    assert services["notification"].calls == [("deferrals_due", ("veilig-thuis-utrecht",))]


# -- operations -------------------------------------------------------------------------------
def test_health_is_200_when_every_service_reports_itself_healthy(gateway, services):
    for service in services.values():
        service.answer["health"] = {"service": service.name, "ok": True}
    response = answer(lambda: gateway.health(request("GET", "/health", signed_by=None)))
    assert response.status_code == 200
    assert body(response) == {
        "status": "ok",
        "services": {name: {"service": name, "ok": True} for name in SERVICES},
    }


def test_health_is_503_and_names_each_service_that_is_unwell_and_why(gateway, services):
    for service in services.values():
        service.answer["health"] = {"service": service.name, "ok": True}
    services["consent"].answer["health"] = {"service": "consent", "ok": False, "relay": "stuck"}
    services["retention"].answer["health"] = ServiceUnavailable("service_unavailable", "no answer")
    services["notification"].answer["health"] = RuntimeError("boom")
    response = answer(lambda: gateway.health(request("GET", "/health", signed_by=None)))
    assert response.status_code == 503
    reported = body(response)
    assert reported["status"] == "degraded"
    assert reported["services"]["consent"] == {"service": "consent", "ok": False, "relay": "stuck"}
    assert reported["services"]["retention"] == {"ok": False, "error": "service_unavailable"}
    assert reported["services"]["notification"] == {"ok": False, "error": "RuntimeError"}
    assert reported["services"]["case_registration"]["ok"] is True


def test_metrics_are_prometheus_text(gateway):
    response = gateway.metrics(request("GET", "/metrics", signed_by=None))
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert b"keten_requests_total" in response.get_data()


# -- citizens ---------------------------------------------------------------------------------
def test_logging_in_answers_a_session_token_for_the_citizens_pseudonym(gateway, sessions):
    response = answer(
        lambda: gateway.log_in(
            request("POST", "/api/citizen/session", {"bsn": CITIZEN["bsn"]}, signed_by=None)
        )
    )
    assert response.status_code == 201
    session = body(response)
    assert (session["expires_in"], session["identity_provider"]) == (SESSION_SECONDS, "stand-in")
    assert SessionSigner(SESSION_KEY).verify(session["token"]) == pseudonym()
    assert CITIZEN["bsn"] not in response.get_data(as_text=True)


def test_logging_in_with_an_invalid_bsn_is_a_400_that_does_not_repeat_it(gateway):
    response = answer(
        lambda: gateway.log_in(request("POST", "/api/citizen/session", {"bsn": "123456789"}, signed_by=None))
    )
    assert (response.status_code, body(response)["error"]["field"]) == (400, "bsn")
    assert "token" not in body(response)
    assert "123456789" not in response.get_data(as_text=True)


def test_the_overview_is_the_logged_in_citizens_in_their_language(gateway, services):
    services["notification"].answer["get_overview"] = {"subject": pseudonym(), "cases": []}
    overview = request(
        "GET", "/api/citizen/overview", query_string={"lang": "en"}, headers=bearer(), signed_by=None
    )
    response = answer(lambda: gateway.overview(overview))
    assert (response.status_code, body(response)) == (200, {"subject": pseudonym(), "cases": []})
    assert services["notification"].calls == [("get_overview", (pseudonym(), "en"))]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "not_logged_in"),
        ({"Authorization": f"Bearer {SessionSigner(b'x' * 32).issue('a' * 32)}"}, "invalid_session"),
        ({"Authorization": f"Bearer {SessionSigner(SESSION_KEY).issue('a' * 32, now=0)}"}, "session_expired"),
    ],
)
def test_the_overview_needs_a_valid_unexpired_session(gateway, services, headers, code):
    response = answer(
        lambda: gateway.overview(request("GET", "/api/citizen/overview", headers=headers, signed_by=None))
    )
    assert (response.status_code, body(response)["error"]["code"]) == (403, code)
    assert services["notification"].calls == []


def test_an_erasure_request_is_the_logged_in_citizens_for_the_case_they_name(gateway, services):
    services["retention"].answer["request_erasure"] = {"granted": False, "reason": "legal_hold"}
    asked = request("POST", "/api/citizen/erasure", {"case_id": "c-1"}, headers=bearer(), signed_by=None)
    response = answer(lambda: gateway.request_erasure(asked))
    assert (response.status_code, body(response)) == (200, {"granted": False, "reason": "legal_hold"})
    assert services["retention"].calls == [
        ("request_erasure", ({"subject": pseudonym(), "case_id": "c-1", "language": "nl"},))
    ]


@pytest.mark.parametrize("origin", [{"Origin": "https://evil.example"}, {}], ids=["another site", "nowhere"])
def test_an_erasure_request_on_the_session_cookie_alone_must_come_from_the_page(gateway, services, origin):
    token = SessionSigner(SESSION_KEY).issue(pseudonym())
    headers = {"Cookie": f"{SESSION_COOKIE}={token}", **origin}
    asked = request("POST", "/api/citizen/erasure", {"case_id": "c-1"}, headers=headers, signed_by=None)
    response = answer(lambda: gateway.request_erasure(asked))
    assert (response.status_code, body(response)["error"]["code"]) == (403, "cross_site_request")
    assert services["retention"].calls == []
    from_the_page = request(
        "POST",
        "/api/citizen/erasure",
        {"case_id": "c-1"},
        headers={"Cookie": f"{SESSION_COOKIE}={token}", **PAGE_ORIGIN},
        signed_by=None,
    )
    assert answer(lambda: gateway.request_erasure(from_the_page)).status_code == 200
    assert [method for method, _ in services["retention"].calls] == ["request_erasure"]


# -- the citizen's page -----------------------------------------------------------------------
def test_the_page_without_a_session_is_the_login_form(gateway, services):
    response = gateway.page(request("GET", "/inzage", signed_by=None))
    page = response.get_data(as_text=True)
    assert (response.status_code, response.mimetype) == (200, "text/html")
    assert '<form method="post" action="/inzage/login?lang=nl">' in page
    assert pages.labels("nl")["session_ended"] not in page
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert services["notification"].calls == []


def test_the_page_with_an_expired_session_says_so_above_the_login_form(gateway):
    expired = SessionSigner(SESSION_KEY).issue(pseudonym(), now=0)
    response = gateway.page(
        request(
            "GET",
            "/inzage",
            query_string={"lang": "en"},
            headers={"Cookie": f"{SESSION_COOKIE}={expired}"},
            signed_by=None,
        )
    )
    page = response.get_data(as_text=True)
    assert pages.labels("en")["session_ended"] in page
    assert '<form method="post" action="/inzage/login?lang=en">' in page


def test_the_page_with_a_session_is_the_citizens_overview(gateway, services):
    services["notification"].answer["get_overview"] = {"subject": pseudonym(), "cases": []}
    token = SessionSigner(SESSION_KEY).issue(pseudonym())
    response = gateway.page(
        request("GET", "/inzage", headers={"Cookie": f"{SESSION_COOKIE}={token}"}, signed_by=None)
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert pages.labels("nl")["no_cases"] in page
    assert csrf_token(page)
    assert services["notification"].calls == [("get_overview", (pseudonym(), "nl"))]


def test_logging_in_on_the_page_sets_a_strict_http_only_session_cookie_and_goes_to_the_overview(gateway):
    response = gateway.page_log_in(
        request(
            "POST",
            "/inzage/login",
            query_string={"lang": "en"},
            data={"bsn": CITIZEN["bsn"]},
            headers=PAGE_ORIGIN,
            signed_by=None,
        )
    )
    assert (response.status_code, response.headers["Location"]) == (303, "/inzage?lang=en")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    assert SessionSigner(SESSION_KEY).verify(token) == pseudonym()


def test_logging_in_on_the_page_with_an_invalid_bsn_shows_the_form_again_with_why(gateway):
    response = gateway.page_log_in(
        request("POST", "/inzage/login", data={"bsn": "123456789"}, headers=PAGE_ORIGIN, signed_by=None)
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert pages.labels("nl")["login_failed"] in page
    assert "123456789" not in page
    assert "Set-Cookie" not in response.headers


def test_logging_out_on_the_page_with_its_csrf_token_clears_the_session_cookie(gateway, services):
    services["notification"].answer["get_overview"] = {"subject": pseudonym(), "cases": []}
    cookie = {"Cookie": f"{SESSION_COOKIE}={SessionSigner(SESSION_KEY).issue(pseudonym())}"}
    overview = gateway.page(request("GET", "/inzage", headers=cookie, signed_by=None))
    form = {"csrf_token": csrf_token(overview.get_data(as_text=True))}
    response = gateway.page_log_out(
        request("POST", "/inzage/logout", data=form, headers={**cookie, **PAGE_ORIGIN}, signed_by=None)
    )
    assert (response.status_code, response.headers["Location"]) == (303, "/inzage?lang=nl")
    cleared = response.headers["Set-Cookie"]
    assert cleared.startswith(f"{SESSION_COOKIE}=;") and "Max-Age=0" in cleared


def test_logging_out_on_the_page_without_a_session_clears_the_cookie_left(gateway):
    expired = SessionSigner(SESSION_KEY).issue(pseudonym(), now=0)
    response = gateway.page_log_out(
        request(
            "POST",
            "/inzage/logout",
            headers={"Cookie": f"{SESSION_COOKIE}={expired}", **PAGE_ORIGIN},
            signed_by=None,
        )
    )
    assert response.status_code == 303
    assert response.headers["Set-Cookie"].startswith(f"{SESSION_COOKIE}=;")


def test_the_copy_as_json_is_the_overview_without_the_pseudonym_with_the_requests(gateway, services):
    services["notification"].answer["get_overview"] = {"subject": pseudonym(), "cases": []}
    services["consent"].answer["citizen_requests"] = {"requests": []}
    response = gateway.copy(
        request("GET", "/inzage/copy", query_string={"format": "json"}, headers=bearer(), signed_by=None)
    )
    assert (response.status_code, response.mimetype) == (200, "application/json")
    assert response.headers["Content-Disposition"] == 'attachment; filename="keten-overzicht.json"'
    assert json.loads(response.get_data()) == {"cases": [], "requests": []}


def test_the_copy_is_a_pdf_by_default(gateway, services):
    services["notification"].answer["get_overview"] = {"subject": pseudonym(), "cases": []}
    response = gateway.copy(request("GET", "/inzage/copy", headers=bearer(), signed_by=None))
    assert (response.status_code, response.mimetype) == (200, "application/pdf")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_data().startswith(b"%PDF")


def test_the_copy_needs_a_session(gateway, services):
    response = answer(lambda: gateway.copy(request("GET", "/inzage/copy", signed_by=None)))
    assert (response.status_code, body(response)["error"]["code"]) == (403, "not_logged_in")
    assert services["notification"].calls == []
