"""The benchmark's printed table when a part timed out: what was measured is shown, what was
not is "-", and the part that timed out is named with why."""

from __future__ import annotations

from dataclasses import asdict

from keten.bench.benchmark import QUICK, table


def test_a_part_that_timed_out_is_named_and_what_was_measured_is_still_shown():
    results = {
        "sizes": asdict(QUICK),
        "raw_per_s": 800.0,
        "e2e_shares_per_s": 12.0,
        "ratio_e2e_to_raw": 0.015,
        "cpu_ms_per_share": 47.0,
        "round_trips_per_share": 49.3,
        "timed_out": {
            "end_to_end": "timed out after 60s with no progress waiting until every share is notified"
        },
    }

    lines = table(results)

    assert any(line.startswith("Keten end to end") and "12 shares/s" in line for line in lines)
    assert any(line.startswith("CPU per share") and "47.0 ms" in line for line in lines)
    assert any(line.startswith("latency") and " - " in line for line in lines)
    assert lines[-1] == (
        "timed out: end_to_end: timed out after 60s with no progress waiting until every share is notified"
    )
