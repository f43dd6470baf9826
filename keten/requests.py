"""``keten requests escalate``: the law's clock for citizens' requests.

Reminds each agency of the requests it must answer within ``REMINDER_DAYS`` and marks those past
their deadline overdue, which tells the citizen (with the complaint route) and the agency. Like
``keten purge`` it works on the store directly, whether or not the services run (a CronJob), and
``--as-of`` moves its clock for demonstrations and tests; the consent service's relay publishes
what it records.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from shared.config import Settings


def run_escalation(as_of: datetime | None, settings: Settings | None = None) -> int:
    from services.consent.application import ConsentUseCases

    settings = settings or Settings.from_env()
    now = datetime.now(UTC)
    if as_of is not None and as_of > now:
        print(
            f"Escalating as of {as_of.isoformat()}, a date still to come: requests become overdue "
            "before their deadline.",
            file=sys.stderr,
        )
    consent = ConsentUseCases(settings)
    try:
        done = consent.escalate_requests(as_of or now)
    finally:
        consent.close()
    print(
        f"Reminded {done.reminded} agency request(s) due soon; {done.became_overdue} request(s) "
        f"became overdue; {done.overdue} overdue in all."
    )
    return 0


@dataclass(frozen=True)
class AgencyAction:
    """What ``keten requests answer|extend|correct`` says beside the request's id."""

    outcome: str | None = None
    reason_nl: str | None = None
    reason_en: str | None = None
    until: str | None = None
    nothing_shared: bool = False
    share_id: str | None = None
    content_file: str | None = None
    reason_code: str = "citizen_request"
    answer: str = "granted"


def run_agency_action(
    action: str, agency: str, url: str, request_id: str | None = None, given: AgencyAction | None = None
) -> int:
    """``keten requests list|answer|extend|correct --as AGENCY``: what an agency's own system does
    over the gateway (``/api/citizen-requests``; ``correct``: ``/api/shares/{id}/corrections``
    with ``in_answer_to``), signed with the agency's keys from ``var/agencies/`` (which
    ``make run`` makes). For trying the platform out; agencies integrate with the API."""
    from keten.demo import Client, DemoError, load_credentials

    given = given or AgencyAction()
    client = Client(url, load_credentials(agency=agency))
    try:
        if action == "list":
            found = client.call("GET", "/api/citizen-requests")["requests"]
            for request in found:
                extended = "  (extended)" if request["extended"] else ""
                by = (
                    "  (by the legal representative)"
                    if request.get("submitted_by") == "legal_representative"
                    else ""
                )
                kind, status = request["kind"], request["status"]
                print(f"{request['due_on']}  {request['request_id']}  {kind:<18}  {status}{extended}{by}")
            print(f"{len(found)} request(s) to answer.")
            return 0
        body: dict[str, object] = {"schema_version": 1}
        reason = (
            {"nl": given.reason_nl, "en": given.reason_en} if given.reason_nl or given.reason_en else None
        )
        if action == "correct":
            return _correct(client, str(request_id), given, reason)
        if action == "answer":
            body.update(outcome=given.outcome, reason=reason)
            if given.nothing_shared:
                body["nothing_shared"] = True
        else:
            body.update(until=given.until, **({"reason": reason} if reason else {}))
        done = client.call("POST", f"/api/citizen-requests/{request_id}/{action}", json=body)
    except DemoError as error:
        print(f"keten requests {action}: {error}", file=sys.stderr)
        return 1
    print(f"Request {done['request_id']}: {done['status']}, due {done['due_on']}.")
    return 0


def _correct(client: Any, request_id: str, given: AgencyAction, reason: dict[str, str | None] | None) -> int:
    """Runs the correction for the request: data_sharing passes it on to everyone the data went
    to (rule 6) and consent answers the request with it."""
    path = str(given.content_file)
    if path == "-":
        content = sys.stdin.read()
    else:
        with open(path, encoding="utf-8") as f:
            content = f.read()
    body: dict[str, object] = {
        "schema_version": 1,
        "correction_id": str(uuid4()),
        "content": content.strip(),
        "reason_code": given.reason_code,
        "in_answer_to": request_id,
        "answer": given.answer,
    }
    if reason is not None:
        body["answer_reason"] = reason
    done = client.call("POST", f"/api/shares/{given.share_id}/corrections", json=body)
    told = ", ".join(sorted({p["to_agency"] for p in done["passed_on_to"]}))
    print(
        f"Correction {done['correction_id']} passed on to {told}; request {request_id} is answered "
        f"{given.answer} as soon as consent hears it."
        if given.answer != "pending"
        else f"Correction {done['correction_id']} passed on to {told}; request {request_id} stays open."
    )
    return 0
