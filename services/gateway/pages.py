"""The citizen's page (inzage) and their copy of it: HTML and PDF from Jinja2 templates.

Words come from ``templates/labels.yaml`` (Dutch at B1 level, and English); the layout from
``templates/*.html.j2``. Presentation only: the overview itself is the notification service's.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape

from shared.catalogue import Catalogue, ContactDetails, load_catalogue
from shared.documents import text_pdf

#: Times on the page are the citizen's: Dutch time, not UTC.
LOCAL_TIME = ZoneInfo("Europe/Amsterdam")

TEMPLATES = Path(__file__).with_name("templates")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=True),
    )
    environment.filters["local"] = local_time
    return environment


def local_time(value: str | datetime | None) -> str:
    """An ISO-8601 time as the citizen reads it: ``2026-12-07 13:05`` in Europe/Amsterdam."""
    if not value:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M")


@lru_cache(maxsize=1)
def _catalogue() -> Catalogue:
    return load_catalogue()


def contact(details: ContactDetails | None, language: str) -> dict[str, str]:
    """How to reach an organisation, as the page shows it."""
    if details is None:
        return {}
    hours = details.opening_hours
    return {
        "phone": details.phone,
        "email": details.email,
        "postal_address": details.postal_address,
        "website": details.website,
        "opening_hours": hours(language) if hours else "",
    }


def agency_details(agency_id: str, language: str) -> dict[str, Any]:
    """An agency's name, contact details and complaint route from the catalogue: its own
    procedure first, then the bodies after it; for privacy, the supervisory authority."""
    agency = _catalogue().agencies.get(agency_id)
    if agency is None:
        return {"name": agency_id, "contact": {}, "complaints": None}
    route = agency.complaints
    return {
        "name": agency.name,
        "contact": contact(agency.contact, language),
        "complaints": {
            "procedure": route.procedure(language),
            "desk": contact(route.desk, language),
            "then": [
                {"name": b.name, "handles": b.handles(language), "contact": contact(b.contact, language)}
                for b in route.escalation
            ],
            "privacy": {
                "name": route.privacy.name,
                "handles": route.privacy.handles(language),
                "contact": contact(route.privacy.contact, language),
            },
        },
    }


@lru_cache(maxsize=1)
def _labels() -> dict[str, dict[str, Any]]:
    return dict(yaml.safe_load((TEMPLATES / "labels.yaml").read_text(encoding="utf-8")))


def labels(language: str) -> dict[str, Any]:
    return _labels()["en" if language == "en" else "nl"]


def _page(template: str, language: str, **context: Any) -> str:
    other = "nl" if language == "en" else "en"
    return (
        _environment()
        .get_template(template)
        .render(t=labels(language), language=language, other_language_url=f"/inzage?lang={other}", **context)
    )


def login_page(language: str, message: str | None = None) -> str:
    return _page("login.html.j2", language, message=message)


def overview_page(
    overview: dict[str, Any],
    language: str,
    csrf_token: str,
    requests: list[dict[str, Any]] | None = None,
    message: str | None = None,
    represented: list[dict[str, Any]] | None = None,
) -> str:
    """The overview with, per case, its contact point's details, what the citizen can do (the
    forms carry the session's CSRF token and a fresh request id each), their requests with
    deadlines and history, and the complaint route; then the same for each minor the citizen
    represents (``represented``: per case, the minor's overview of it and their requests; None
    when it cannot be read now), whose forms name the minor by ``for_subject``."""
    minors = [
        {
            "case": entry["case"],
            "subject_ref": entry["subject_ref"],
            "role": entry["role"],
            "name": entry.get("name"),
            "act": {
                "requests": entry.get("requests", []),
                "contact_details": agency_details(entry["case"]["contact_point"]["agency"], language),
                "new_request_id": str(uuid.uuid4()),
            },
        }
        for entry in represented or []
        if entry.get("case")
    ]
    by_case: dict[str, list[dict[str, Any]]] = {}
    for request in requests or []:
        by_case.setdefault(str(request["case_id"]), []).append(request)
    cases = [
        {
            "requests": by_case.get(str(case["case_id"]), []),
            "contact_details": agency_details(case["contact_point"]["agency"], language),
            "new_request_id": str(uuid.uuid4()),
        }
        for case in overview.get("cases", [])
    ]
    return _page(
        "overview.html.j2",
        language,
        overview=overview,
        csrf_token=csrf_token,
        acts=cases,
        minors=minors,
        represented_unavailable=represented is None,
        message=message,
        requests_unavailable=requests is None,
        today=date.today().isoformat(),
        agency_details=agency_details,
    )


def overview_text(
    overview: dict[str, Any], language: str, requests: list[dict[str, Any]] | None = None
) -> str:
    """The words of the citizen's copy of their overview (art. 15): what the page shows, shared
    contents and their requests included."""
    by_case: dict[str, list[dict[str, Any]]] = {}
    for request in requests or []:
        by_case.setdefault(str(request["case_id"]), []).append(request)
    return (
        _environment()
        .get_template("overview.txt.j2")
        .render(
            t=labels(language),
            overview=overview,
            language=language,
            agency_details=agency_details,
            requests_by_case=by_case,
        )
    )


def overview_pdf(
    overview: dict[str, Any], language: str, requests: list[dict[str, Any]] | None = None
) -> bytes:
    """The citizen's copy of their overview, as a printable PDF."""
    return text_pdf(labels(language)["title"], overview_text(overview, language, requests))


def overview_json(overview: dict[str, Any], requests: list[dict[str, Any]] | None = None) -> bytes:
    """The citizen's copy as a data file (the overview as the API gives it, without the
    pseudonym, and their requests)."""
    copy = {k: v for k, v in overview.items() if k != "subject"}
    if requests is not None:
        copy["requests"] = requests
    return json.dumps(copy, ensure_ascii=False, indent=2, default=str).encode()
