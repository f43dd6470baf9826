"""``keten purge``: crypto-shreds the records whose retention period is over.

Used by the command line and by the benchmark, which purges as an operator would.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from shared.config import Settings


def run_purge(
    dry_run: bool, as_of: datetime | None, progress: bool = True, settings: Settings | None = None
) -> int:
    """Purges (or lists, with ``dry_run``) every purge unit due at ``as_of`` (default now).

    Works on the stores directly, so it runs whether or not the services do (a CronJob); the
    retention service's relay publishes the ``RecordsPurged`` events it records, and every
    service then forgets the purged rows. An interrupted run is finished by the next.
    """
    from tqdm import tqdm

    from services.retention.application import PURGE_BATCH, RetentionUseCases
    from services.retention.purge_plan import PurgeReport

    settings = settings or Settings.from_env()
    now = datetime.now(UTC)
    if as_of is not None and as_of > now:
        print(
            f"Purging as of {as_of.isoformat()}, a date still to come: records are destroyed "
            "before their retention period ends.",
            file=sys.stderr,
        )
    retention = RetentionUseCases(settings)
    try:
        plan = retention.plan_purge(as_of or now)
        held = sum(1 for planned in plan if planned.on_hold)
        if dry_run:
            for planned in plan:
                print(
                    f"{planned.due_on}  case {planned.case_id}  {planned.record_kind:<13}"
                    f"  {planned.records:>3} record(s)  {planned.rule}"
                    + ("  ON HOLD (legal hold)" if planned.on_hold else "")
                )
            print(
                f"{len(plan) - held} scope(s) due for purging, {held} suspended by a legal hold;"
                " dry run: nothing was purged."
            )
            return 0
        results = []
        with tqdm(total=len(plan), desc="purging", unit="scope", disable=not progress or not plan) as bar:
            for start in range(0, len(plan), PURGE_BATCH):
                batch = [planned.unit for planned in plan[start : start + PURGE_BATCH]]
                results.extend(retention.purge_many(batch))
                bar.update(len(batch))
        report = PurgeReport.of(results)
        kinds = ", ".join(f"{kind}: {count}" for kind, count in sorted(report.by_kind.items()))
        print(
            f"Purged {report.purged} scope(s)"
            + (f" ({kinds})" if kinds else "")
            + f"; {report.held} suspended by a legal hold; {report.already} purged already."
        )
        return 0
    finally:
        retention.close()
