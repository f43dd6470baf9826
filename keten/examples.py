"""One complete example of every command, as docs/asyncapi.yaml publishes it.

Each is a body an agency could send as it stands, about the demo case (the debt-assistance
table of ``keten demo``) or, for the safety override, a youth-protection case; the values are
the catalogue's. ``tests/contract`` loads every example through its schema, so an example that
no longer fits its command fails there. Ids are fixed, so the published document does not
change between runs.
"""

from __future__ import annotations

from typing import Any

from keten.demo import CITIZEN, register_case_command

CASE = "6f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d5e"
REQUEST = "0d9e8f7a-6b5c-4d3e-9f2a-1b0c9d8e7f6a"
SHARE = "3a4b5c6d-7e8f-4a9b-8c0d-1e2f3a4b5c6d"
OBJECTION = "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e"
OVERRIDE = "7c8d9e0f-1a2b-4c3d-9e4f-5a6b7c8d9e0f"
HOLD = "9d0e1f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a"
CORRECTION = "2e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a6b"
#: What the answer to your previous command carried (shortened here); optional in every command.
TOKEN = "v1.eyJ0IjoxNzk2NjQ0MDAwLCJ3IjpbWyJjb25zZW50IiwiQ29uc2VudEdpdmVuIiw0Ml1dfQ.3q2-7w1a9hO1Zp0pX3n0yQ"  # noqa: S105 - an example, not a secret


def command_examples() -> dict[str, dict[str, Any]]:
    """Command name -> a complete body of that command (without ``consistency_token``, which
    ``request_share`` shows)."""
    base = {"schema_version": 1, "agency": "gemeente-utrecht"}
    case = {**base, "case_id": CASE}
    return {
        "register_case": register_case_command(CASE),
        "activate_case": case,
        "add_participant": {
            **case,
            "participant": {
                "agency": "ggd-regio-utrecht",
                "role": "health_professional",
                "legal_ground": "statutory_task",
            },
            "agreement": {"bring": ["professional_conclusion"], "receive": ["debts"]},
            "reason": "De GGD sluit aan voor advies over de gezondheidssituatie.",
        },
        "remove_participant": {
            **case,
            "participant": "woningcorporatie-mitros",
            "reason": "De huurachterstand is opgelost; de woningcorporatie is niet meer nodig.",
        },
        "close_case": {**case, "outcome": "help_arranged"},
        "get_catalogue": dict(base),
        "give_consent": {
            **case,
            "subject_bsn": CITIZEN["bsn"],
            "purpose": "debt_assistance",
            "categories": ["housing", "debts"],
            "recipients": ["woningcorporatie-mitros"],
            "valid_until": "2027-06-30",
            "notice_version": "debt-2026-1",
            "notice_text": "Ik geef toestemming dat Mitros en de gemeente gegevens over mijn "
            "huurachterstand delen.",
            "given_how": "in_person",
        },
        "withdraw_consent": {**case, "subject_bsn": CITIZEN["bsn"]},
        "lodge_objection": {
            **case,
            "subject_bsn": CITIZEN["bsn"],
            "objection_id": OBJECTION,
            "reason": "Ik wil niet dat mijn situatie nog aan tafel wordt besproken.",
        },
        "withdraw_objection": {**case, "subject_bsn": CITIZEN["bsn"], "objection_id": OBJECTION},
        "record_safety_override": {
            "schema_version": 1,
            "agency": "veilig-thuis-utrecht",
            "override_id": OVERRIDE,
            "case_id": CASE,
            "subject_bsns": ["111222357"],
            "categories": ["safety_concerns"],
            "recipients": ["raad-kinderbescherming"],
            "ground": "child_safety",
            "reasons": "Signalen van geweld in het gezin; het kind loopt gevaar.",
            "function": "aandachtsfunctionaris",
            "ends_on": "2027-02-28",
            "explanation": "Wij hebben uw zorgen over de veiligheid van uw kind toch gedeeld, omdat ...",
            "deferral": {
                "reason": "Direct bericht kan het kind in gevaar brengen.",
                "review_on": "2027-01-15",
            },
        },
        "end_safety_override": {
            "schema_version": 1,
            "agency": "veilig-thuis-utrecht",
            "override_id": OVERRIDE,
            "reason_code": "risk_resolved",
        },
        "end_deferral": {"schema_version": 1, "agency": "veilig-thuis-utrecht", "override_id": OVERRIDE},
        "extend_deferral": {
            "schema_version": 1,
            "agency": "veilig-thuis-utrecht",
            "override_id": OVERRIDE,
            "review_on": "2027-02-15",
            "reason": "Het onderzoek naar de veiligheid van het kind loopt nog.",
        },
        "request_share": {
            **base,
            "consistency_token": TOKEN,
            "request_id": REQUEST,
            "case_id": CASE,
            "subject_bsn": CITIZEN["bsn"],
            "to_agencies": ["kredietbank-utrecht"],
            "categories": ["debts", "income"],
            "purpose": "debt_assistance",
            "content": "Mevrouw heeft sinds maart een huurachterstand van drie maanden.",
            "content_reference": "zaak 2026-0042",
            "form": "written",
            "meeting_id": None,
            "special_grounds": {},
            "direction": "push",
        },
        "correct_share": {
            **base,
            "correction_id": CORRECTION,
            "share_id": SHARE,
            "content": "Mevrouw heeft sinds april een huurachterstand van twee maanden.",
            "content_reference": "zaak 2026-0042",
            "reason_code": "factual_error",
        },
        "get_ledger": {
            **base,
            "side": "both",
            "since": "2026-01-01",
            "until": "2026-12-31",
            "case_id": CASE,
        },
        "place_legal_hold": {
            **case,
            "hold_id": HOLD,
            "reason_code": "complaint",
            "reference": "NO-2026/1234",
        },
        "lift_legal_hold": {**case, "hold_id": HOLD},
    }
