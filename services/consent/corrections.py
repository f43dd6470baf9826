"""A citizen's correction request (AVG art. 16) answered by running the correction (rule 6).

The agency runs the correction through data_sharing (``correct_share`` with ``in_answer_to``:
the request); data_sharing records it on every share the data went out in and tells every
recipient, and the citizen. Consent hears ``ShareCorrected`` and records the correction on the
request, and, unless the agency said ``pending``, answers it with the platform's standard text
naming what was corrected (``request_answers`` in ``shared/reasons.yaml``).

Pure functions over the catalogue's words: which correction events answer a request, and the
texts the citizen reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.consent.domain import CitizenRequest
from shared.catalogue import Catalogue
from shared.contracts.events.data_sharing import ShareCorrected
from shared.reasons import request_answers

LANGUAGES = ("nl", "en")


@dataclass(frozen=True)
class CorrectionAnswerText:
    """The outcome and the {nl, en} text a correction answers its request with."""

    outcome: str
    reason: dict[str, str]


def answers_request(corrected: ShareCorrected, request: CitizenRequest | None) -> bool:
    """Whether the correction was run for ``request`` by the agency that must answer it, about
    the request's subject and case. Anything else is not an answer (the correction stands: it
    was the agency's to make; only the request is not touched)."""
    return (
        request is not None
        and request.kind == "correction"
        and request.agency == corrected.corrected_by
        and request.subject == corrected.subject
        and request.case_id == corrected.case_id
    )


def what_was_corrected(
    catalogue: Catalogue, categories: tuple[str, ...] | list[str], reason_code: str
) -> dict[str, dict[str, str]]:
    """The categories and the reason, in words, per language (codes where the catalogue has none)."""
    words: dict[str, dict[str, str]] = {}
    for language in LANGUAGES:
        labels = [
            catalogue.categories[code].label(language) if code in catalogue.categories else code
            for code in categories
        ]
        reason = catalogue.correction_reasons.get(reason_code)
        words[language] = {
            "categories": ", ".join(labels)
            or ("de gedeelde gegevens" if language == "nl" else "the shared data"),
            "reason": reason.label(language) if reason else reason_code,
        }
    return words


def recorded_text(catalogue: Catalogue, categories: tuple[str, ...], reason_code: str) -> dict[str, str]:
    """The step "corrected" on the citizen's page."""
    text = request_answers()["correction_recorded"]
    words = what_was_corrected(catalogue, categories, reason_code)
    return {"nl": text.nl.format(**words["nl"]), "en": text.en.format(**words["en"])}


def answer_text(
    catalogue: Catalogue, corrected: ShareCorrected, rest: Mapping[str, str] | None
) -> CorrectionAnswerText:
    """The answer a correction gives its request: granted, or partly granted with the agency's
    words on what it did not correct (``rest``, opened from the event)."""
    words = what_was_corrected(catalogue, corrected.categories, corrected.reason_code)
    if corrected.answer == "partly_granted":
        text = request_answers()["correction_partly_made"]
        rest = rest or {}
        return CorrectionAnswerText(
            "partly_granted",
            {
                "nl": text.nl.format(**words["nl"], rest=rest.get("nl", "")),
                "en": text.en.format(**words["en"], rest=rest.get("en", "")),
            },
        )
    text = request_answers()["correction_made"]
    return CorrectionAnswerText(
        "granted", {"nl": text.nl.format(**words["nl"]), "en": text.en.format(**words["en"])}
    )
