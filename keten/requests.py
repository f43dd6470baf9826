"""``keten requests escalate``: the law's clock for citizens' requests.

Reminds each agency of the requests it must answer within ``REMINDER_DAYS`` and marks those past
their deadline overdue, which tells the citizen (with the complaint route) and the agency. Like
``keten purge`` it works on the store directly, whether or not the services run (a CronJob), and
``--as-of`` moves its clock for demonstrations and tests; the consent service's relay publishes
what it records.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

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


def run_agency_action(
    action: str,
    agency: str,
    url: str,
    request_id: str | None = None,
    outcome: str | None = None,
    reason_nl: str | None = None,
    reason_en: str | None = None,
    until: str | None = None,
) -> int:
    """``keten requests list|answer|extend --as AGENCY``: what an agency's own system does over
    the gateway (``/api/citizen-requests``), signed with the agency's keys from ``var/agencies/``
    (which ``make run`` makes). For trying the platform out; agencies integrate with the API."""
    from keten.demo import Client, DemoError, load_credentials

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
        reason = {"nl": reason_nl, "en": reason_en} if reason_nl or reason_en else None
        if action == "answer":
            body.update(outcome=outcome, reason=reason)
        else:
            body.update(until=until, **({"reason": reason} if reason else {}))
        done = client.call("POST", f"/api/citizen-requests/{request_id}/{action}", json=body)
    except DemoError as error:
        print(f"keten requests {action}: {error}", file=sys.stderr)
        return 1
    print(f"Request {done['request_id']}: {done['status']}, due {done['due_on']}.")
    return 0
