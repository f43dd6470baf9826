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
