"""Plain-language reasons for refused shares (``reasons.yaml``), in Dutch and English.

One place, so the professional reading the answer to a request and the citizen reading their
overview read the same reason. A reason's details are codes and agency ids, never personal data;
they are turned into names and labels from the catalogue when the text is rendered.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from shared.catalogue import Catalogue

PATH = Path(__file__).with_name("reasons.yaml")


@dataclass(frozen=True)
class RefusalReason:
    code: str
    visible_to_subject: bool
    nl: str
    en: str


@lru_cache(maxsize=1)
def share_refusals() -> dict[str, RefusalReason]:
    with open(PATH, encoding="utf-8") as f:
        raw: dict[str, Any] = yaml.safe_load(f)["share_refusals"]
    return {
        code: RefusalReason(code, bool(entry["visible_to_subject"]), str(entry["nl"]), str(entry["en"]))
        for code, entry in raw.items()
    }


def refusal_text(code: str, details: dict[str, str], catalogue: Catalogue, language: str = "en") -> str:
    """The reason for refusal ``code`` in ``language``, its details named from the catalogue."""
    reason = share_refusals()[code]
    template = reason.en if language == "en" else reason.nl
    names = {
        key: catalogue.categories[value].label(language)
        if key == "category" and value in catalogue.categories
        else catalogue.agency_name(value)
        for key, value in details.items()
    }
    return template.format_map(_Blank(names))


class _Blank(dict[str, str]):
    """A missing detail renders as nothing rather than failing a decision."""

    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True)
class AnswerText:
    """A text the platform answers a citizen's request with, in Dutch (B1) and English."""

    nl: str
    en: str


@lru_cache(maxsize=1)
def request_answers() -> dict[str, AnswerText]:
    """The platform's own answers to citizens' requests, by code (``request_answers``)."""
    with open(PATH, encoding="utf-8") as f:
        raw: dict[str, Any] = yaml.safe_load(f)["request_answers"]
    return {code: AnswerText(str(entry["nl"]), str(entry["en"])) for code, entry in raw.items()}
