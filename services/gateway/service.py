"""The gateway: HTTP for citizens (their overview) and for agencies without AMQP; health and
metrics. It owns no data: it calls the services over RPC."""

from __future__ import annotations

from typing import Any

import eventlet
from nameko.extensions import DependencyProvider
from nameko.web.handlers import http
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Request, Response

from services.gateway import pages
from services.gateway.http import json_http, read_json
from services.gateway.identity import CitizenIdentity, StandInIdentity
from services.gateway.sessions import SessionSigner
from shared.agencies import AgencyRegistry
from shared.dependencies import ServiceHealth, ServiceRpc, settings_from
from shared.errors import InvalidRequest, KetenError, NotAuthorised
from shared.wire import HTTP_KEY_ID_HEADER, HTTP_SIGNATURE_HEADER

#: The citizen's session on the page: HttpOnly (no script reads it), SameSite=Strict (no other
#: site's form or link carries it), expiring with the session token inside it.
SESSION_COOKIE = "keten_citizen"

SERVICES = ("case_registration", "consent", "data_sharing", "notification", "retention")


class CitizenSessions(DependencyProvider):
    """Issues and checks citizens' session tokens, keyed from the platform's master key."""

    def setup(self) -> None:
        self.settings = settings_from(self.container.config)
        self.signer = SessionSigner(self.settings.master_key)
        self.identity: CitizenIdentity = StandInIdentity()

    def log_in(self, credentials: dict[str, Any]) -> str:
        """A session token for the citizen the credentials prove (the pseudonym only)."""
        return self.signer.issue(self.identity.pseudonym(credentials, self.settings.pseudonym_secret))

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self


class AgencySignatures(DependencyProvider):
    """Tells which agency signed an HTTP request (``X-Keten-Key-Id``, ``X-Keten-Signature`` over
    ``"<METHOD> <path>" LF body``, as on the bus); ``NotAuthorised`` if none did."""

    def setup(self) -> None:
        self.registry = AgencyRegistry.for_settings(settings_from(self.container.config))

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self

    def agency(self, request: Request) -> str:
        target = f"{request.method} {request.path}"
        if request.query_string:
            target += "?" + request.query_string.decode("latin-1")
        return self.registry.verify(
            request.headers.get(HTTP_KEY_ID_HEADER),
            request.headers.get(HTTP_SIGNATURE_HEADER),
            target,
            request.get_data(cache=True),
        )

    def command(self, request: Request, **fields: Any) -> dict[str, Any]:
        """The signed request's body as a command of the signing agency."""
        agency = self.agency(request)
        body = _object(read_json(request))
        if body.setdefault("agency", agency) != agency:
            raise NotAuthorised(
                "agency_mismatch", "the command names another agency than its signer", "agency"
            )
        for name, value in fields.items():
            if body.setdefault(name, value) != value:
                raise InvalidRequest("invalid_field", f"{name} differs from the one in the path", name)
        return body


class GatewayService:
    """Translates HTTP to RPC calls on the services; one call per request."""

    name = "gateway"

    case_registration = ServiceRpc("case_registration")
    consent = ServiceRpc("consent")
    data_sharing = ServiceRpc("data_sharing")
    notification = ServiceRpc("notification")
    retention = ServiceRpc("retention")
    sessions = CitizenSessions()
    signatures = AgencySignatures()
    health_check = ServiceHealth()  # readiness (broker reachable) and probes on OPS_PORT

    # -- operations ---------------------------------------------------------------------------
    @json_http("GET", "/health")
    def health(self, request: Request) -> tuple[int, dict[str, Any]]:
        """200 when every service answers and reports itself healthy, 503 otherwise."""

        def check(service: str) -> tuple[str, dict[str, Any]]:
            try:
                return service, getattr(self, service).health()
            except KetenError as error:
                return service, {"ok": False, "error": error.code}
            except Exception as exc:
                return service, {"ok": False, "error": type(exc).__name__}

        pool = eventlet.GreenPool(len(SERVICES))
        services = dict(pool.imap(check, SERVICES))
        healthy = all(report.get("ok") for report in services.values())
        return (200 if healthy else 503), {"status": "ok" if healthy else "degraded", "services": services}

    @http("GET", "/metrics")
    def metrics(self, request: Request) -> Response:
        return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)

    # -- agencies -----------------------------------------------------------------------------
    # Every agency request is signed; the command is the signing agency's (see AgencySignatures).
    @json_http("POST", "/api/cases")
    def register_case(self, request: Request) -> tuple[int, dict[str, Any]]:
        return 201, self.case_registration.register_case(self.signatures.command(request))

    @json_http("POST", "/api/cases/<string:case_id>/close")
    def close_case(self, request: Request, case_id: str) -> dict[str, Any]:
        return self.case_registration.close_case(self.signatures.command(request, case_id=case_id))

    @json_http("POST", "/api/cases/<string:case_id>/activate")
    def activate_case(self, request: Request, case_id: str) -> dict[str, Any]:
        """Starts the table's work on a registered case: only then may data be shared in it."""
        return self.case_registration.activate_case(self.signatures.command(request, case_id=case_id))

    @json_http("POST", "/api/cases/<string:case_id>/participants")
    def add_participant(self, request: Request, case_id: str) -> tuple[int, dict[str, Any]]:
        return 201, self.case_registration.add_participant(self.signatures.command(request, case_id=case_id))

    @json_http("POST", "/api/cases/<string:case_id>/participants/<string:participant>/remove")
    def remove_participant(self, request: Request, case_id: str, participant: str) -> dict[str, Any]:
        return self.case_registration.remove_participant(
            self.signatures.command(request, case_id=case_id, participant=participant)
        )

    @json_http("GET", "/api/cases/<string:case_id>/retention")
    def retention_schedule(self, request: Request, case_id: str) -> dict[str, Any]:
        agency = self.signatures.agency(request)
        return {"case_id": case_id, "records": self.retention.get_schedule(case_id, agency)}

    @json_http("POST", "/api/cases/<string:case_id>/legal-holds")
    def place_legal_hold(self, request: Request, case_id: str) -> tuple[int, dict[str, Any]]:
        """Suspends the purges of a case while a complaint, objection, court case or inquiry runs."""
        return 201, self.retention.place_legal_hold(self.signatures.command(request, case_id=case_id))

    @json_http("POST", "/api/cases/<string:case_id>/legal-holds/<string:hold_id>/lift")
    def lift_legal_hold(self, request: Request, case_id: str, hold_id: str) -> dict[str, Any]:
        return self.retention.lift_legal_hold(
            self.signatures.command(request, case_id=case_id, hold_id=hold_id)
        )

    @json_http("POST", "/api/consents")
    def give_consent(self, request: Request) -> tuple[int, dict[str, Any]]:
        return 201, self.consent.give_consent(self.signatures.command(request))

    @json_http("POST", "/api/consents/withdraw")
    def withdraw_consent(self, request: Request) -> dict[str, Any]:
        return self.consent.withdraw_consent(self.signatures.command(request))

    @json_http("POST", "/api/objections")
    def lodge_objection(self, request: Request) -> tuple[int, dict[str, Any]]:
        """The citizen's "stop discussing my case", recorded by an agency at the table."""
        return 201, self.consent.lodge_objection(self.signatures.command(request))

    @json_http("POST", "/api/objections/<string:objection_id>/withdraw")
    def withdraw_objection(self, request: Request, objection_id: str) -> dict[str, Any]:
        return self.consent.withdraw_objection(self.signatures.command(request, objection_id=objection_id))

    @json_http("POST", "/api/safety-overrides")
    def record_safety_override(self, request: Request) -> tuple[int, dict[str, Any]]:
        return 201, self.consent.record_safety_override(self.signatures.command(request))

    @json_http("POST", "/api/safety-overrides/<string:override_id>/end")
    def end_safety_override(self, request: Request, override_id: str) -> dict[str, Any]:
        return self.consent.end_safety_override(self.signatures.command(request, override_id=override_id))

    @json_http("POST", "/api/shares")
    def request_share(self, request: Request) -> dict[str, Any]:
        return self.data_sharing.request_share(self.signatures.command(request))

    @json_http("POST", "/api/shares/<string:share_id>/corrections")
    def correct_share(self, request: Request, share_id: str) -> tuple[int, dict[str, Any]]:
        """Corrects what was shared; every agency the content went to is told (rule 6)."""
        return 201, self.data_sharing.correct_share(self.signatures.command(request, share_id=share_id))

    # -- citizens -----------------------------------------------------------------------------
    @json_http("GET", "/api/deferrals/due")
    def deferrals_due(self, request: Request) -> dict[str, Any]:
        """The deferred notifications the signing agency must review (review date reached)."""
        return {"deferrals": self.notification.deferrals_due(self.signatures.agency(request))}

    @json_http("POST", "/api/deferrals/<string:override_id>/end")
    def end_deferral(self, request: Request, override_id: str) -> dict[str, Any]:
        """Ends a deferral: the held notifications go out now, with the override explained."""
        return self.notification.end_deferral(self.signatures.command(request, override_id=override_id))

    @json_http("POST", "/api/deferrals/<string:override_id>/extend")
    def extend_deferral(self, request: Request, override_id: str) -> dict[str, Any]:
        """Keeps the notifications held until a new review date, with the reason why."""
        return self.notification.extend_deferral(self.signatures.command(request, override_id=override_id))

    # -- citizens -----------------------------------------------------------------------------
    @json_http("POST", "/api/citizen/session")
    def log_in(self, request: Request) -> tuple[int, dict[str, Any]]:
        """DigiD stand-in, NOT real authentication: whoever knows a BSN gets its overview.
        For demonstration and tests only; replace with a real identity provider (OIDC)."""
        token = self.sessions.log_in(_object(read_json(request)))
        return 201, {
            "token": token,
            "expires_in": self.sessions.signer.lifetime,
            "identity_provider": self.sessions.identity.name,
        }

    @json_http("GET", "/api/citizen/overview")
    def overview(self, request: Request) -> dict[str, Any]:
        return self.notification.get_overview(self._citizen(request), _language(request))

    @json_http("POST", "/api/citizen/erasure")
    def request_erasure(self, request: Request) -> dict[str, Any]:
        """The logged-in citizen asks that their records of a case (``{case_id}``) be erased;
        the answer says whether it was granted, and if not, why."""
        body = _object(read_json(request))
        return self.retention.request_erasure(
            {
                "subject": self._citizen(request),
                "case_id": body.get("case_id"),
                "language": _language(request),
            }
        )

    # -- the citizen's page (HTML) and their copy -------------------------------------------
    @json_http("GET", "/inzage")
    def page(self, request: Request) -> Response:
        """The citizen's overview as a web page; the login form when not logged in."""
        language = _language(request)
        try:
            subject = self._citizen(request)
        except NotAuthorised:
            message = pages.labels(language)["session_ended"] if request.cookies.get(SESSION_COOKIE) else None
            return _html(pages.login_page(language, message))
        return _html(pages.overview_page(self.notification.get_overview(subject, language), language))

    @json_http("POST", "/inzage/login")
    def page_log_in(self, request: Request) -> Response:
        language = _language(request)
        try:
            token = self.sessions.log_in({"bsn": request.form.get("bsn", "")})
        except InvalidRequest:
            return _html(pages.login_page(language, pages.labels(language)["login_failed"]), 400)
        response = Response(status=303, headers={"Location": f"/inzage?lang={language}"})
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=self.sessions.signer.lifetime,
            httponly=True,
            samesite="Strict",
            secure=request.scheme == "https",
            path="/",
        )
        return response

    @json_http("POST", "/inzage/logout")
    def page_log_out(self, request: Request) -> Response:
        response = Response(status=303, headers={"Location": f"/inzage?lang={_language(request)}"})
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @json_http("GET", "/inzage/copy")
    def copy(self, request: Request) -> Response:
        """The citizen's own copy of their overview: ``?format=pdf`` (default) or ``json``."""
        language = _language(request)
        overview = self.notification.get_overview(self._citizen(request), language)
        if request.args.get("format") == "json":
            body, mimetype, name = pages.overview_json(overview), "application/json", "keten-overzicht.json"
        else:
            body, mimetype, name = (
                pages.overview_pdf(overview, language),
                "application/pdf",
                "keten-overzicht.pdf",
            )
        return Response(
            body,
            mimetype=mimetype,
            headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
        )

    def _citizen(self, request: Request) -> str:
        """The pseudonym of the citizen whose valid session token the request carries (as a
        bearer token, or in the page's session cookie)."""
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        return self.sessions.signer.verify(token or request.cookies.get(SESSION_COOKIE))


def _html(page: str, status: int = 200) -> Response:
    return Response(
        page,
        status=status,
        mimetype="text/html",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
            "X-Frame-Options": "DENY",
        },
    )


def _language(request: Request) -> str:
    return "en" if request.args.get("lang") == "en" else "nl"


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest("invalid_message", "the request body must be a JSON object")
    return value
