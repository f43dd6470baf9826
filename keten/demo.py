"""The demo: one share, end to end, through the gateway's HTTP API, as agencies and a citizen
would live it. ``keten demo`` runs it against the embedded platform (or ``--url``); the e2e
tests run the same scenario."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from json import dumps
from pathlib import Path
from typing import Any

import requests

from keten_client import Credentials, signed_http_headers
from shared.agencies import AgencyRegistry, register_new_credentials
from shared.config import Settings

#: A made-up citizen (the BSN passes the eleven-test; it is the standard test number).
CITIZEN = {
    "bsn": "999990019",
    "name": "Sanne de Vries",
    "email": "sanne.devries@example.org",
    "postal_address": "Lindelaan 12, 3511 AB Utrecht",
}
#: The agency that acts in the demo.
DEMO_AGENCY = "gemeente-utrecht"
SHARED_SENTENCE = "Mevrouw heeft sinds maart een huurachterstand van drie maanden."


class DemoError(RuntimeError):
    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


#: Answers that mean "the platform has not caught up with your last step yet": retry shortly.
CATCHING_UP = {(404, "unknown_case"), (409, "case_not_active"), (409, "not_caught_up")}


@dataclass
class DemoResult:
    case_id: str
    share_id: str
    overview: dict[str, Any]
    schedule: list[dict[str, Any]]


def load_credentials(var_dir: str | Path | None = None, agency: str = DEMO_AGENCY) -> Credentials:
    """The agency's credentials as the embedded platform writes them (``var/agencies/``), or as
    ``keten agency add --out var/agencies/<agency>.json`` does for a platform elsewhere."""
    folder = Path(var_dir or os.environ.get("KETEN_VAR_DIR") or "var") / "agencies"
    path = folder / f"{agency}.json"
    if not path.exists():
        raise DemoError(
            f"no credentials for {agency} in {folder}: 'make run' makes them for its platform; for a"
            f" platform elsewhere run 'keten agency add {agency} --out {path}' with its settings, or on a"
            " demonstration stack give the demo a throw-away key (--throwaway-key, where the platform's"
            " DATABASE_URL is set)"
        )
    return Credentials.load(path)


@contextmanager
def throwaway_credentials(settings: Settings, agency: str = DEMO_AGENCY) -> Iterator[Credentials]:
    """A key pair registered for ``agency`` in the platform's database for one demo, revoked
    when it ends: so that a demonstration stack (docker-compose.yml), which has no agency
    credentials, can run the demo. Never on a platform with real agencies."""
    credentials = register_new_credentials(settings, agency)
    try:
        yield credentials
    finally:
        AgencyRegistry.for_settings(settings).revoke(agency, credentials.key_id)


class Client:
    """The gateway's HTTP API as an agency uses it: every agency request signed."""

    def __init__(self, base_url: str, credentials: Credentials | None = None, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()
        self.timeout = timeout
        self.credentials = credentials
        #: The latest answer's consistency token, sent with every later command.
        self.consistency_token: str | None = None

    def call(
        self,
        method: str,
        path: str,
        expect: int | tuple[int, ...] = (200, 201),
        json: Any = None,
        **kwargs: Any,
    ) -> Any:
        agency_request = (
            self.credentials is not None and path.startswith("/api/") and not path.startswith("/api/citizen")
        )
        if agency_request and isinstance(json, dict) and self.consistency_token:
            json = {"consistency_token": self.consistency_token, **json}
        body = b"" if json is None else dumps(json).encode()
        if agency_request and self.credentials is not None:
            kwargs["headers"] = {
                **kwargs.get("headers", {}),
                **signed_http_headers(self.credentials, method, path, body),
            }
        elif json is not None:
            kwargs["headers"] = {**kwargs.get("headers", {}), "Content-Type": "application/json"}
        response = self.http.request(
            method, self.base_url + path, data=body or None, timeout=self.timeout, **kwargs
        )
        expected = (expect,) if isinstance(expect, int) else expect
        if response.status_code not in expected:
            raise DemoError(
                f"{method} {path}: HTTP {response.status_code}: {response.text[:300]}",
                response.status_code,
                _error_code(response),
            )
        answer = response.json() if response.content else None
        if agency_request and isinstance(answer, dict) and answer.get("consistency_token"):
            self.consistency_token = answer["consistency_token"]
        return answer

    def wait_healthy(self, timeout: float = 30.0, unreachable_after: float = 10.0) -> dict[str, Any]:
        """The platform's /health once every service is healthy. Nothing listening for
        ``unreachable_after`` seconds means no platform runs there."""
        started = time.monotonic()
        unhealthy: list[str] | None = None
        while True:
            try:
                response = self.http.get(f"{self.base_url}/health", timeout=self.timeout)
            except requests.RequestException as exc:
                if unhealthy is None and time.monotonic() - started > unreachable_after:
                    raise DemoError(
                        f"no platform answers at {self.base_url} ({type(exc).__name__}): start one"
                        " (make run, or docker-compose up -d) or fix --url"
                    ) from None
            else:
                if response.status_code == 200:
                    return dict(response.json())
                unhealthy = _unhealthy_services(response)
            if time.monotonic() - started > timeout:
                raise DemoError(
                    f"the platform at {self.base_url} is not healthy after {timeout:.0f}s"
                    f" (not ok: {', '.join(unhealthy or ['?'])}): see its logs, or GET /health"
                )
            time.sleep(0.3)

    def retry_until(self, what: str, attempt: Any, timeout: float = 30.0) -> Any:
        """Retries ``attempt`` while the platform is still catching up (events in flight): a
        service answers 404 for a case whose registration it has not processed yet, data_sharing
        409 ``case_not_active`` for one whose activation it has not."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = attempt()
                if result:
                    return result
            except DemoError as error:
                if (error.status, error.code) not in CATCHING_UP or time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise DemoError(f"timed out waiting until {what}")
            time.sleep(0.1)


def _unhealthy_services(response: requests.Response) -> list[str]:
    """The services an unhealthy /health names as not ok."""
    try:
        return sorted(name for name, state in response.json()["services"].items() if not state.get("ok"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return [f"HTTP {response.status_code}"]


def _error_code(response: requests.Response) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def register_case_command(case_id: str, bsn: str = CITIZEN["bsn"]) -> dict[str, Any]:
    """Gemeente Utrecht registers a case about a citizen (``bsn``: the demo citizen by default)."""
    return {
        "schema_version": 1,
        "agency": "gemeente-utrecht",
        "case_id": case_id,
        "table": "vroegsignalering-schulden",
        "purpose": "debt_assistance",
        "description": "Signaal van de woningcorporatie over huurachterstand.",
        "subjects": [
            {
                "bsn": bsn,
                "role": "citizen",
                "name": CITIZEN["name"],
                "email": CITIZEN["email"],
                "postal_address": CITIZEN["postal_address"],
                "preferred_channel": "email",
                "language": "nl",
            }
        ],
        "participants": [
            {"agency": "gemeente-utrecht", "role": "coordinator", "legal_ground": "statutory_task"},
            {"agency": "kredietbank-utrecht", "role": "debt_counsellor", "legal_ground": "statutory_task"},
            {"agency": "woningcorporatie-mitros", "role": "housing_provider", "legal_ground": "consent"},
        ],
        "record_holder": "gemeente-utrecht",
        "contact_point": {"agency": "gemeente-utrecht", "function": "casusregisseur schulden"},
        "participation": "attends",
        "informed_beforehand": True,
    }


def share_request_command(case_id: str, bsn: str = CITIZEN["bsn"]) -> dict[str, Any]:
    """Gemeente Utrecht asks to share the citizen's debts and income with Kredietbank Utrecht."""
    return {
        "schema_version": 1,
        "agency": "gemeente-utrecht",
        "request_id": str(uuid.uuid4()),
        "case_id": case_id,
        "subject_bsn": bsn,
        "to_agencies": ["kredietbank-utrecht"],
        "categories": ["debts", "income"],
        "purpose": "debt_assistance",
        "content": SHARED_SENTENCE,
        "form": "written",
    }


def close_case_command() -> dict[str, Any]:
    """Gemeente Utrecht closes the case: help was arranged."""
    return {"schema_version": 1, "agency": "gemeente-utrecht", "outcome": "help_arranged"}


def run_demo(base_url: str, out: Any = print, credentials: Credentials | None = None) -> DemoResult:
    """Gemeente Utrecht registers a case, records consent and shares; the citizen reads the
    overview. ``credentials``: Gemeente Utrecht's (default: from ``var/agencies/``)."""
    client = Client(base_url, credentials or load_credentials())
    health = client.wait_healthy()
    out(f"Platform healthy: {', '.join(sorted(health['services']))}")

    case_id = str(uuid.uuid4())
    client.call("POST", "/api/cases", json=register_case_command(case_id))
    client.call("POST", f"/api/cases/{case_id}/activate", json={"schema_version": 1})
    out(f"1. Gemeente Utrecht registered case {case_id} at the table 'Vroegsignalering schulden'")
    out("   and activated it: from now on the table may share what the case needs.")

    consent = {
        "schema_version": 1,
        "agency": "gemeente-utrecht",
        "case_id": case_id,
        "subject_bsn": CITIZEN["bsn"],
        "purpose": "debt_assistance",
        "categories": ["housing", "debts"],
        "recipients": ["woningcorporatie-mitros"],
        "valid_until": (date.today() + timedelta(days=180)).isoformat(),
        "notice_version": "debt-2026-1",
        "notice_text": "Ik geef toestemming dat Mitros en de gemeente gegevens over mijn "
        "huurachterstand delen.",
        "given_how": "in_person",
    }
    # The consent service learns of the case from the event stream: retry while it catches up.
    client.retry_until(
        "consent service knows the case", lambda: client.call("POST", "/api/consents", json=consent)
    )
    out("2. The citizen's consent was recorded (housing and debts, for Mitros, 180 days).")

    # The municipality also asks to pass on the allowances it knows of, which the table's data
    # agreement does not let it bring: decided per category, that part alone is refused.
    share = {**share_request_command(case_id), "categories": ["debts", "income", "allowances"]}
    decision = client.retry_until(
        "data_sharing knows the case", lambda: client.call("POST", "/api/shares", json=share)
    )
    first = decision["decisions"][0]
    went = [c["category"] for c in first["categories"] if c["outcome"] == "shared"]
    held = [c for c in first["categories"] if c["outcome"] == "refused"]
    if first["outcome"] != "partial" or went != ["debts", "income"]:
        raise DemoError(f"the share was not partly allowed: {first['outcome']}, {first['reason_code']}")
    out("3. Gemeente Utrecht asked to share debts, income and allowances with Kredietbank Utrecht:")
    out(f"   {first['outcome']}, decided per category.")
    out(f"   Shared: {', '.join(went)}.")
    for part in held:
        out(f"   Not shared: {part['category']} ({part['reason_code']}): {part['reason']}")

    session = client.call("POST", "/api/citizen/session", json={"bsn": CITIZEN["bsn"]})
    headers = {"Authorization": f"Bearer {session['token']}"}

    def overview_with_share() -> dict[str, Any] | None:
        overview = client.call("GET", "/api/citizen/overview", headers=headers)
        for case in overview["cases"]:
            # the refusal beside the share is shown too; it follows the share on the stream
            if any(s["share_id"] == first["share_id"] for s in case["shares"]) and case["refusals"]:
                return overview
        return None

    overview = client.retry_until("the share shows in the citizen's overview", overview_with_share)
    out("4. What the citizen sees when logged in (DigiD stand-in):")
    for line in describe_overview(overview):
        out("   " + line)

    client.call("POST", f"/api/cases/{case_id}/close", json=close_case_command())
    out("5. Gemeente Utrecht closed the case: help was arranged.")

    def schedule_with_end() -> list[dict[str, Any]] | None:
        records = client.call("GET", f"/api/cases/{case_id}/retention")["records"]
        closed = any(r["record_kind"] == "case_records" and r["due_at"] for r in records)
        return records if closed and any(r["record_kind"] == "share_records" for r in records) else None

    schedule = client.retry_until("retention knows the case was closed", schedule_with_end)
    out("6. When its records are purged (crypto-shredded):")
    for record in schedule:
        due = f"purged on {record['due_at'][:10]}" if record["due_at"] else "kept, without personal data"
        out(f"   {record['record_kind']}: {due} ({record['rule']})")
    ledger = client.call("GET", "/api/agencies/gemeente-utrecht/ledger?case_id=" + case_id)
    out("7. Gemeente Utrecht's ledger of the case (what its FG and a supervisor read):")
    for entry in ledger["entries"]:
        out(
            f"   {entry['side']} to {entry['to_agency']}: {', '.join(entry['categories'])},"
            f" {entry['form']}, {entry['outcome']}; ground {entry['sender_ground']}"
            f" ({entry['sender_provision']}); catalogue {entry['catalogue_version']}"
        )
    return DemoResult(case_id=case_id, share_id=first["share_id"], overview=overview, schedule=schedule)


def describe_overview(overview: dict[str, Any]) -> list[str]:
    lines = []
    for case in overview["cases"]:
        contact = case["contact_point"]
        lines.append(f"Casus bij '{case['table_name']}' voor {case['purpose_label']} ({case['status']}).")
        lines.append(f"  Vragen? {contact['agency_name']}, {contact['function']}.")
        for share in case["shares"]:
            notified = share.get("notification") or {}
            content = share.get("content") or {}
            lines.append(
                f"  {share['occurred_at'][:16].replace('T', ' ')}: {share['from_name']} deelde "
                f"{', '.join(share['category_labels'])} met {share['to_name']} "
                f"(grondslag: {share.get('ground_label', share['sender_ground'])}"
                f"{', ' + share['provision_citation'] if share.get('provision_citation') else ''});"
                f" u kreeg bericht via {notified.get('channel', '?')}."
            )
            if isinstance(content, dict) and content.get("content"):
                lines.append(f'    Gedeeld: "{content["content"]}"')
            if share.get("purged_at"):
                lines.append(f"    De inhoud is gewist op {share['purged_at'][:10]}.")
        for refusal in case.get("refusals", []):
            lines.append(
                f"  Niet gedeeld: {', '.join(refusal['category_labels'])} van {refusal['from_name']} "
                f"met {refusal['to_name']}: {refusal['reason']}"
            )
        for purged in case.get("purged", []):
            lines.append(f"  Gewist op {purged['purged_at'][:10]}: {purged['label']}.")
    return lines
