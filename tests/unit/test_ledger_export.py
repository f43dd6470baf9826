"""`keten ledger`'s formats: the supervisor's CSV and JSON, and the table for people."""

from __future__ import annotations

import csv
import io
import json

from keten.cli.ledger import COLUMNS, render

ENTRY = {
    "side": "provided",
    "share_id": "3a4b5c6d-7e8f-4a9b-8c0d-1e2f3a4b5c6d",
    "request_id": "0d9e8f7a-6b5c-4d3e-9f2a-1b0c9d8e7f6a",
    "case_id": "6f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d5e",
    "subject": "0123456789abcdef0123456789abcdef",
    "from_agency": "gemeente-utrecht",
    "to_agency": "kredietbank-utrecht",
    "direction": "push",
    "form": "oral",
    "meeting_id": "overleg-7-december",
    "outcome": "shared",
    "reason_code": "allowed",
    "purpose": "debt_assistance",
    "categories": ["debts", "income"],
    "sender_ground": "statutory_task",
    "sender_provision": "Wet gemeentelijke schuldhulpverlening, art. 2 en 3",
    "recipient_ground": "statutory_task",
    "recipient_provision": "Wet gemeentelijke schuldhulpverlening, art. 2 en 3",
    "special_grounds": {"criminal_record": "legal_obligation"},
    "catalogue_version": "2026.12.1",
    "override_id": None,
    "decided_at": "2026-12-07T10:00:00+00:00",
    "received_at": "2026-12-07T10:00:01+00:00",
    "corrections": [
        {
            "correction_id": "2e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a6b",
            "corrected_by": "gemeente-utrecht",
            "reason_code": "factual_error",
            "corrected_at": "2026-12-08T09:00:00+00:00",
        }
    ],
    "erasure_passed_on_at": None,
}
ANSWER = {"agency": "gemeente-utrecht", "since": "2026-01-01", "until": None, "entries": [ENTRY]}


def test_the_csv_has_every_field_of_an_entry_one_row_per_decision():
    [row] = list(csv.DictReader(io.StringIO(render(ANSWER, "csv"))))
    assert list(row) == list(COLUMNS) == list(ENTRY)
    assert row["categories"] == "debts;income"
    assert row["special_grounds"] == "criminal_record=legal_obligation"
    assert row["override_id"] == "" and row["meeting_id"] == "overleg-7-december"
    assert row["corrections"] == "2026-12-08T09:00:00+00:00 gemeente-utrecht factual_error"


def test_the_json_is_the_answer_as_it_came():
    assert json.loads(render(ANSWER, "json")) == ANSWER


def test_the_table_says_whose_ledger_and_one_line_per_decision():
    lines = render(ANSWER, "table").splitlines()
    assert lines[0] == "Ledger of gemeente-utrecht, 2026-01-01 to today: 1 decision(s)"
    assert "to kredietbank-utrecht" in lines[1] and "oral (meeting overleg-7-december)" in lines[1]
    assert "Wet gemeentelijke schuldhulpverlening" in lines[1]


def test_the_csv_columns_are_the_contracts_fields_in_its_order():
    from shared.contracts.commands import LedgerEntrySchema

    assert list(COLUMNS) == list(LedgerEntrySchema._declared_fields)
