"""The gateway: HTTP for citizens (their overview) and for agencies without AMQP; health and
metrics. It owns no data: it calls the services over RPC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import eventlet
from nameko.extensions import DependencyProvider
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Request, Response

from services.gateway import pages
from services.gateway.http import is_same_origin, json_http, read_json
from services.gateway.identity import CitizenIdentity, StandInIdentity
from services.gateway.limits import LoginLimiter, LoginLimits, TooManyLogins
from services.gateway.sessions import Session, SessionSigner
from shared.agencies import AgencyRegistry
from shared.catalogue import load_catalogue
from shared.contracts.commands import LEDGER_QUERY
from shared.dependencies import ServiceHealth, ServiceRpc, settings_from
from shared.errors import Conflict, InvalidRequest, KetenError, NotAuthorised, NotFound, ServiceUnavailable
from shared.http_signatures import HttpSignatureError, verify_request
from shared.ldv_register import ActivityRegister
from shared.seen import SeenIds
from shared.wire import HTTP_SIGNATURE_HEADER

#: The citizen's session on the page: HttpOnly (no script reads it), SameSite=Strict (no other
#: site's form or link carries it), expiring with the session token inside it.
SESSION_COOKIE = "keten_citizen"

SERVICES = ("case_registration", "consent", "data_sharing", "notification", "retention")
#: The services that keep a verifiable log of their decisions (``shared.tlog``).
LOGGED_SERVICES = ("consent", "data_sharing", "notification", "retention")


class CitizenSessions(DependencyProvider):
    """Issues and checks citizens' session tokens (keyed from the platform's master key), ends
    sessions server-side at logout, and limits login attempts per address and per citizen.

    Ended sessions (``shared.seen``) and login attempts (``services.gateway.limits``) are kept
    in the platform store: they hold across restarts and across every replica of the gateway.
    """

    ENDED = "citizen-session-ended"

    def setup(self) -> None:
        self.settings = settings_from(self.container.config)
        self.signer = SessionSigner(self.settings.master_key)
        self.identity: CitizenIdentity = StandInIdentity()
        self.ended = SeenIds.for_settings(self.settings)
        self.limiter = LoginLimiter(
            self.ended.store,  # the platform store
            self.settings.master_key,
            LoginLimits(
                per_address=self.settings.login_limit_per_address,
                per_citizen=self.settings.login_limit_per_citizen,
                window=self.settings.login_window,
            ),
        )

    def log_in(self, credentials: dict[str, Any], address: str | None) -> str:
        """A session token for the citizen the credentials prove (the pseudonym only), if
        neither this address nor this citizen has used up its login attempts (``TooManyLogins``)."""
        by_address = self.limiter.address_bucket(address or "unknown")
        try:
            pseudonym = self.identity.pseudonym(credentials, self.settings.pseudonym_secret)
        except InvalidRequest:
            self.limiter.admit(by_address)  # a failed attempt counts too
            raise
        self.limiter.admit(by_address, self.limiter.citizen_bucket(pseudonym))
        return self.signer.issue(pseudonym)

    def session(self, token: str | None) -> Session:
        """The session of a valid token that was not ended at logout; ``NotAuthorised`` otherwise."""
        session = self.signer.session(token)
        if self.ended.seen(self.ENDED, session.session_id):
            raise NotAuthorised("session_ended", "this session has ended; log in again")
        return session

    def end(self, session: Session) -> None:
        """Logs out: the session's token is refused from now on, by every replica."""
        self.ended.remember(self.ENDED, session.session_id, until=session.expires + 60)

    @property
    def lifetime(self) -> int:
        """Seconds a session lasts from its login."""
        return self.signer.lifetime

    @property
    def identity_provider(self) -> str:
        """The name of whoever proves who the citizen is (``stand-in`` for now)."""
        return self.identity.name

    def csrf_token(self, session: Session) -> str:
        """The token the page's forms carry for this session."""
        return self.signer.csrf_token(session)

    def csrf_matches(self, session: Session, given: str | None) -> bool:
        """Whether a posted form carries this session's CSRF token."""
        return self.signer.csrf_matches(session, given)

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self


class AgencySignatures(DependencyProvider):
    """Tells which agency signed an HTTP request, by its HTTP Message Signature (RFC 9421, see
    ``shared.http_signatures`` and docs/agencies.md); ``NotAuthorised`` if none did, if it is
    older than ``KETEN_SIGNATURE_WINDOW``, or if its nonce was seen before (a replay)."""

    def setup(self) -> None:
        self.settings = settings_from(self.container.config)
        self.registry = AgencyRegistry.for_settings(self.settings)
        self.nonces = SeenIds.for_settings(self.settings)

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self

    def agency(self, request: Request) -> str:
        if "keten.agency" not in request.environ:  # checked once per request: the nonce is spent
            request.environ["keten.agency"] = self._verify(request)
        return str(request.environ["keten.agency"])

    def _verify(self, request: Request) -> str:
        if HTTP_SIGNATURE_HEADER in request.headers and "Signature" not in request.headers:
            raise NotAuthorised(
                "signature_scheme_retired",
                "X-Keten-Signature is no longer accepted: sign with HTTP Message Signatures "
                "(RFC 9421), see docs/agencies.md",
            )
        keys: dict[str, str] = {}

        def public_key(key_id: str) -> bytes | None:
            key = self.registry.key(key_id)
            if key is None or not key.valid_at(datetime.now(UTC)):
                return None
            keys[key_id] = key.agency
            return key.signing_public_key

        try:
            signed = verify_request(
                request.method,
                _signed_url(request),
                request.headers.items(),
                request.get_data(cache=True),
                public_key,
                window=self.settings.signature_window,
                clock_skew=self.settings.signature_clock_skew,
            )
        except HttpSignatureError as error:
            raise NotAuthorised(error.code, error.message) from None
        if not self.nonces.first_sighting(f"http-nonce:{signed.key_id}", signed.nonce, signed.remember_until):
            raise NotAuthorised(
                "request_replayed", "this request was received before; sign each request anew (a new nonce)"
            )
        return keys[signed.key_id]

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


class ProcessingRegister(DependencyProvider):
    """The register of processing activities the platform's Logboek Dataverwerkingen records
    point at (``shared.ldv_register``): generated from the catalogue, with the earlier
    versions ``keten ldv register --write`` kept."""

    def setup(self) -> None:
        settings = settings_from(self.container.config)
        self.register = ActivityRegister.load(
            settings.ldv_register_url, load_catalogue(), settings.ldv_register_file
        )

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self.register


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
    processing_register = ProcessingRegister()
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

    @json_http("GET", "/metrics")
    def metrics(self, request: Request) -> Response:
        return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)

    # -- the register of processing activities (Logboek Dataverwerkingen) --------------------
    # Public: it says which processing activities exist, on what ground; nothing personal.
    @json_http("GET", "/api/ldv/processing-activities")
    def processing_activities(self, request: Request) -> dict[str, Any]:
        """Every processing activity an LDV record may point at, current and earlier versions."""
        return self.processing_register.document()

    @json_http("GET", "/api/ldv/processing-activities/<string:key>/<string:version>")
    def processing_activity(self, request: Request, key: str, version: str) -> dict[str, Any]:
        """One version of a processing activity: what ``dpl.core.processing_activity_id`` names."""
        found = self.processing_register.find(key, version)
        if found is None:
            raise NotFound(
                "unknown_processing_activity", "no such processing activity (or version) on record"
            )
        return found

    # -- agencies -----------------------------------------------------------------------------
    # Every agency request is signed; the command is the signing agency's (see AgencySignatures).
    @json_http("GET", "/api/catalogue")
    def catalogue(self, request: Request) -> dict[str, Any]:
        """The catalogue the platform decides by, for the signing agency (``get_catalogue``)."""
        agency = self.signatures.agency(request)
        return self.case_registration.get_catalogue({"schema_version": 1, "agency": agency})

    @json_http("GET", "/api/agencies/<string:agency>/ledger")
    def ledger(self, request: Request, agency: str) -> dict[str, Any]:
        """The signing agency's accountability ledger (``get_ledger``); another agency's is
        403. Query: ``side``, ``since``, ``until``, ``case_id``, ``subject`` (a pseudonym)."""
        signer = self.signatures.agency(request)
        query = {name: request.args[name] for name in LEDGER_QUERY if name in request.args}
        return self.data_sharing.get_ledger(
            {"schema_version": 1, "agency": signer, "of_agency": agency, **query}
        )

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

    @json_http("GET", "/api/shares/<string:share_id>/proof")
    def share_proof(self, request: Request, share_id: str) -> dict[str, Any]:
        """The receipt's proof: the decision (sent or received by the signing agency) in
        data_sharing's verifiable log, against a signed tree head."""
        agency = self.signatures.agency(request)
        return self.data_sharing.get_share_proof(
            {"schema_version": 1, "agency": agency, "share_id": share_id}
        )

    # -- the verifiable logs (public: heads and proofs reveal no one) ----------------------------
    @json_http("GET", "/api/log/head")
    def log_heads(self, request: Request) -> dict[str, Any]:
        """The latest signed tree head of every service's verifiable log (signed anew if the
        log grew): what witnesses keep and compare."""
        pool = eventlet.GreenPool(len(LOGGED_SERVICES))
        return {"logs": list(pool.imap(lambda service: getattr(self, service).log_head(), LOGGED_SERVICES))}

    @json_http("GET", "/api/log/<string:log>/consistency")
    def log_consistency(self, request: Request, log: str) -> dict[str, Any]:
        """The proof that ``log`` at ``?to_size=`` extends itself at ``?from_size=`` (RFC 9162)."""
        if log not in LOGGED_SERVICES:
            raise NotFound("log_not_found", "no verifiable log of that name")
        try:
            sizes = {name: int(request.args.get(name, "")) for name in ("from_size", "to_size")}
        except ValueError:
            raise InvalidRequest("invalid_size", "from_size and to_size are whole numbers") from None
        return getattr(self, log).log_consistency(sizes)

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

    @json_http("GET", "/api/citizen-requests")
    def citizen_requests_due(self, request: Request) -> dict[str, Any]:
        """The citizens' requests the signing agency must answer, soonest deadline first."""
        agency = self.signatures.agency(request)
        return self.consent.list_citizen_requests({"schema_version": 1, "agency": agency})

    @json_http("POST", "/api/citizen-requests/<string:request_id>/answer")
    def answer_citizen_request(self, request: Request, request_id: str) -> dict[str, Any]:
        """Answers a citizen's request: granted, partly granted or refused, with the reason."""
        return self.consent.answer_citizen_request(self.signatures.command(request, request_id=request_id))

    @json_http("POST", "/api/citizen-requests/<string:request_id>/extend")
    def extend_citizen_request(self, request: Request, request_id: str) -> dict[str, Any]:
        """Extends a citizen's request's deadline once, with the reason the citizen is told."""
        return self.consent.extend_citizen_request(self.signatures.command(request, request_id=request_id))

    # -- citizens -----------------------------------------------------------------------------
    @json_http("POST", "/api/citizen/session")
    def log_in(self, request: Request) -> tuple[int, dict[str, Any]]:
        """DigiD stand-in, NOT real authentication: whoever knows a BSN gets its overview.
        For demonstration and tests only; replace with a real identity provider (OIDC)."""
        token = self.sessions.log_in(_object(read_json(request)), request.remote_addr)
        return 201, {
            "token": token,
            "expires_in": self.sessions.lifetime,
            "identity_provider": self.sessions.identity_provider,
        }

    @json_http("DELETE", "/api/citizen/session")
    def log_out(self, request: Request) -> dict[str, Any]:
        """Ends the session of the bearer token: the token is refused from now on."""
        self.sessions.end(self._session(request))
        return {"ended": True}

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

    @json_http("GET", "/api/citizen/requests")
    def citizen_requests(self, request: Request) -> dict[str, Any]:
        """The logged-in citizen's requests, with their deadlines and history."""
        return self.consent.citizen_requests(self._citizen(request))

    @json_http("GET", "/api/citizen/represented")
    def represented(self, request: Request) -> dict[str, Any]:
        """The minors the logged-in citizen represents as their legal representative, per case:
        the minor's overview of that case and their requests there. A minor is named by
        ``subject_ref`` (per case; never a BSN or pseudonym), which ``POST /api/citizen/requests``
        takes as ``for_subject``."""
        found = self._represented(self._citizen(request), _language(request))
        if found is None:
            raise ServiceUnavailable("consent_unavailable", "the requests cannot be read now; try again")
        return {"represented": found}

    @json_http("POST", "/api/citizen/requests")
    def submit_citizen_request(self, request: Request) -> tuple[int, dict[str, Any]]:
        """The logged-in citizen asks something about one of their cases (see the OpenAPI body)."""
        body = _object(read_json(request))
        return 201, self._submit(self._citizen(request), body, _language(request))

    @json_http("POST", "/api/citizen/requests/<string:request_id>/withdraw")
    def withdraw_citizen_request(self, request: Request, request_id: str) -> dict[str, Any]:
        """The logged-in citizen takes back a request that was not answered yet."""
        return self.consent.withdraw_citizen_request(self._citizen(request), request_id)

    def _submit(self, citizen: str, body: dict[str, Any], language: str) -> dict[str, Any]:
        """Records the request in consent; an erasure request is then decided where erasure is
        decided (retention, as ``/api/citizen/erasure``) and answered with that decision. With
        ``for_subject`` the logged-in ``citizen`` acts for a minor they represent in the case
        (consent checks it again); otherwise for themself."""
        fields = ("request_id", "case_id", "kind", "agency", "text", "for_subject")
        subject, acting = citizen, {}
        if body.get("for_subject") is not None:
            subject = self._minor_of(citizen, body.get("case_id"), body.get("for_subject"))
            acting = {"representative": citizen}
        try:
            status = self.consent.submit_citizen_request(
                {
                    "subject": subject,
                    "language": language,
                    **acting,
                    **{k: body[k] for k in fields if k in body},
                }
            )
        except NotFound:
            self._refuse_if_purged(subject, body.get("case_id"), language)
            raise
        if status["kind"] == "erasure" and status["status"] == "open":
            decision = self.retention.request_erasure(
                {"subject": subject, "case_id": status["case_id"], "language": language}
            )
            status = self.consent.record_erasure_decision(subject, status["request_id"], decision)
        return status

    def _minor_of(self, representative: str, case_id: Any, subject_ref: Any) -> str:
        """The pseudonym of the minor ``representative`` acts for as ``subject_ref`` in the case;
        the same 404 as an unknown case for anyone else, or once the case no longer says minor."""
        for entry in self.consent.represented(representative).get("represented", []):
            if str(entry["case_id"]) == str(case_id) and str(entry["subject_ref"]) == str(subject_ref):
                return str(entry["subject"])
        raise NotFound("unknown_case", "you are not a data subject of a case with this id", "case_id")

    def _represented(self, representative: str, language: str) -> list[dict[str, Any]] | None:
        """The minors ``representative`` acts for, per case, each with the minor's overview of
        that case (nothing of their other cases) and their requests; None when consent cannot
        answer now. The minors' pseudonyms stay here."""
        try:
            entries = self.consent.represented(representative).get("represented", [])
        except ServiceUnavailable:
            return None
        found = []
        for listed in entries:
            entry = dict(listed)
            minor = str(entry.pop("subject"))
            overview = self.notification.get_overview(minor, language)
            case = next(
                (c for c in overview.get("cases", []) if str(c.get("case_id")) == str(entry["case_id"])),
                None,
            )
            found.append({**entry, "case": _without(case, minor)})
        return found

    def _refuse_if_purged(self, subject: str, case_id: Any, language: str) -> None:
        """A case of the citizen's whose records were purged is answered by what remains: its
        outcome, and when it was purged (``case_purged``, 409); any other case stays a 404."""
        overview = self.notification.get_overview(subject, language)
        case = next((c for c in overview.get("cases", []) if str(c.get("case_id")) == str(case_id)), None)
        marks = (case or {}).get("purged") or []
        if not marks:
            return
        purged_on = max(str(mark.get("purged_at", ""))[:10] for mark in marks)
        outcome = case.get("outcome") if case else None
        raise Conflict(
            "case_purged",
            f"the records of this case were purged on {purged_on}; what remains is its outcome"
            + (f" ({outcome})" if outcome else "")
            + ", without personal data: there is nothing left to act on",
            "case_id",
        )

    # -- the citizen's page (HTML) and their copy -------------------------------------------
    @json_http("GET", "/inzage")
    def page(self, request: Request) -> Response:
        """The citizen's overview as a web page; the login form when not logged in."""
        language = _language(request)
        try:
            session = self._session(request)
        except NotAuthorised:
            message = pages.labels(language)["session_ended"] if request.cookies.get(SESSION_COOKIE) else None
            return _html(pages.login_page(language, message))
        return self._overview_page(session, language)

    def _overview_page(
        self, session: Session, language: str, message: str | None = None, status: int = 200
    ) -> Response:
        overview = self.notification.get_overview(session.subject, language)
        requests = self._requests_of(session.subject)
        represented = self._represented(session.subject, language)
        page = pages.overview_page(
            overview, language, self.sessions.csrf_token(session), requests, message, represented
        )
        return _html(page, status)

    def _requests_of(self, subject: str) -> list[dict[str, Any]] | None:
        """The citizen's requests; None when consent cannot answer now (the overview still
        shows, and says the requests cannot be shown)."""
        try:
            found: list[dict[str, Any]] = self.consent.citizen_requests(subject).get("requests", [])
        except ServiceUnavailable:
            return None
        return found

    @json_http("POST", "/inzage/requests")
    def page_submit_request(self, request: Request) -> Response:
        """The "what can I do" form: a request about one of the citizen's cases. Only from the
        page itself (its ``Origin`` and the session's CSRF token); back to the page after it."""
        language = _language(request)
        session = self._page_form_session(request, language)
        if isinstance(session, Response):
            return session
        names = ("request_id", "case_id", "kind", "agency", "text", "for_subject")
        form = {k: v for k, v in request.form.items() if k in names}
        form = {k: v for k, v in form.items() if v.strip() or (k == "text" and v)}
        try:
            self._submit(session.subject, form, language)
        except KetenError as error:
            failed = f"{pages.labels(language)['request_failed']}: {error.message}"
            return self._overview_page(session, language, failed, error.status)
        return Response(status=303, headers={"Location": f"/inzage?lang={language}"})

    @json_http("POST", "/inzage/requests/<string:request_id>/withdraw")
    def page_withdraw_request(self, request: Request, request_id: str) -> Response:
        """Takes a request back from the page (``Origin`` and CSRF token as above)."""
        language = _language(request)
        session = self._page_form_session(request, language)
        if isinstance(session, Response):
            return session
        try:
            self.consent.withdraw_citizen_request(session.subject, request_id)
        except KetenError as error:
            failed = f"{pages.labels(language)['request_failed']}: {error.message}"
            return self._overview_page(session, language, failed, error.status)
        return Response(status=303, headers={"Location": f"/inzage?lang={language}"})

    def _page_form_session(self, request: Request, language: str) -> Session | Response:
        """The session of a form posted from the citizen's own page, or the answer refusing it."""
        if not is_same_origin(request, self.sessions.settings.portal_url):
            return _refused_form(language)
        try:
            session = self.sessions.session(request.cookies.get(SESSION_COOKIE))
        except NotAuthorised:
            return _html(pages.login_page(language, pages.labels(language)["session_ended"]), 403)
        if not self.sessions.csrf_matches(session, request.form.get("csrf_token")):
            return _refused_form(language)
        return session

    @json_http("POST", "/inzage/login")
    def page_log_in(self, request: Request) -> Response:
        """The login form (no session yet): only from the gateway's own page (its ``Origin``)."""
        language = _language(request)
        if not is_same_origin(request, self.sessions.settings.portal_url):
            return _refused_form(language)
        try:
            token = self.sessions.log_in({"bsn": request.form.get("bsn", "")}, request.remote_addr)
        except InvalidRequest:
            return _html(pages.login_page(language, pages.labels(language)["login_failed"]), 400)
        except TooManyLogins as limited:
            page = pages.login_page(language, pages.labels(language)["too_many_logins"])
            return _html(page, 429, {"Retry-After": str(limited.retry_after)})
        response = Response(status=303, headers={"Location": f"/inzage?lang={language}"})
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=self.sessions.lifetime,
            httponly=True,
            samesite="Strict",
            secure=request.scheme == "https",
            path="/",
        )
        return response

    @json_http("POST", "/inzage/logout")
    def page_log_out(self, request: Request) -> Response:
        """Logs out: the session ends server-side. Only from the page itself: its ``Origin``
        and the session's CSRF token."""
        language = _language(request)
        if not is_same_origin(request, self.sessions.settings.portal_url):
            return _refused_form(language)
        try:
            session: Session | None = self.sessions.session(request.cookies.get(SESSION_COOKIE))
        except NotAuthorised:
            session = None  # expired or ended already: only the cookie is left to clear
        if session is not None:
            if not self.sessions.csrf_matches(session, request.form.get("csrf_token")):
                return _refused_form(language)
            self.sessions.end(session)
        response = Response(status=303, headers={"Location": f"/inzage?lang={language}"})
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @json_http("GET", "/inzage/copy")
    def copy(self, request: Request) -> Response:
        """The citizen's own copy of their overview: ``?format=pdf`` (default) or ``json``."""
        language = _language(request)
        subject = self._citizen(request)
        overview = self.notification.get_overview(subject, language)
        requests = self._requests_of(subject)
        if request.args.get("format") == "json":
            proven = self._with_log_proofs(overview)
            body, mimetype, name = (
                pages.overview_json(proven, requests),
                "application/json",
                "keten-overzicht.json",
            )
        else:
            body, mimetype, name = (
                pages.overview_pdf(overview, language, requests),
                "application/pdf",
                "keten-overzicht.pdf",
            )
        return Response(
            body,
            mimetype=mimetype,
            headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
        )

    def _with_log_proofs(self, overview: dict[str, Any]) -> dict[str, Any]:
        """The overview with each share's proof of its leaf in data_sharing's verifiable log
        (``verifiable_log``), so the citizen can check the copy offline (``keten log verify --copy``)."""
        cases = overview.get("cases") or []
        ids = [
            share["share_id"] for case in cases for share in case.get("shares") or [] if "share_id" in share
        ]
        if not ids:
            return overview
        proofs = self.data_sharing.log_proofs({"record_ids": ids})["proofs"]
        proven_cases = [
            {
                **case,
                "shares": [
                    {**share, "verifiable_log": proofs[share["share_id"]]}
                    if share.get("share_id") in proofs
                    else share
                    for share in case.get("shares") or []
                ],
            }
            for case in cases
        ]
        return {**overview, "cases": proven_cases}

    def _citizen(self, request: Request) -> str:
        """The pseudonym of the citizen whose valid session the request carries."""
        return self._session(request).subject

    def _session(self, request: Request) -> Session:
        """The citizen's session: from a bearer token, or from the page's session cookie. A
        request that changes something on the cookie alone must come from the page itself."""
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        cookie_only = token is None and request.method not in ("GET", "HEAD")
        if cookie_only and not is_same_origin(request, self.sessions.settings.portal_url):
            raise NotAuthorised("cross_site_request", "this request did not come from the citizen's page")
        return self.sessions.session(token or request.cookies.get(SESSION_COOKIE))


def _signed_url(request: Request) -> str:
    """The request's URL as an agency signed it: the path as sent (not decoded) and the query.
    The authority is not covered by the signature, so any name stands in for it."""
    path = request.environ.get("RAW_PATH_INFO") or request.path
    query = request.query_string.decode("latin-1")
    return f"http://gateway{path}" + (f"?{query}" if query else "")


def _refused_form(language: str) -> Response:
    """403 for a form posted from elsewhere than the citizen's page (cross-site request forgery)."""
    return _html(pages.login_page(language, pages.labels(language)["form_refused"]), 403)


def _html(page: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        page,
        status=status,
        mimetype="text/html",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
            "X-Frame-Options": "DENY",
            **(headers or {}),
        },
    )


def _language(request: Request) -> str:
    return "en" if request.args.get("lang") == "en" else "nl"


def _without(value: Any, pseudonym: str) -> Any:
    """``value`` (JSON) without any entry that holds ``pseudonym``: a minor's overview as their
    representative reads it names the minor by nothing but the case and its reference."""
    if isinstance(value, dict):
        return {k: _without(v, pseudonym) for k, v in value.items() if v != pseudonym}
    if isinstance(value, list):
        return [_without(v, pseudonym) for v in value if v != pseudonym]
    return value


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest("invalid_message", "the request body must be a JSON object")
    return value
