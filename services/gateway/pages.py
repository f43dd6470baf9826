"""The citizen's page (inzage) and their copy of it: HTML and PDF from Jinja2 templates.

Words come from ``templates/labels.yaml`` (Dutch at B1 level, and English); the layout from
``templates/*.html.j2``. Presentation only: the overview itself is the notification service's.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape

from shared.documents import text_pdf

TEMPLATES = Path(__file__).with_name("templates")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=True),
    )


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


def overview_page(overview: dict[str, Any], language: str, csrf_token: str) -> str:
    """The overview, with the session's CSRF token in its forms (the logout button)."""
    return _page("overview.html.j2", language, overview=overview, csrf_token=csrf_token)


def overview_text(overview: dict[str, Any], language: str) -> str:
    """The words of the citizen's copy of their overview."""
    return _environment().get_template("overview.txt.j2").render(t=labels(language), overview=overview)


def overview_pdf(overview: dict[str, Any], language: str) -> bytes:
    """The citizen's copy of their overview, as a printable PDF."""
    return text_pdf(labels(language)["title"], overview_text(overview, language))


def overview_json(overview: dict[str, Any]) -> bytes:
    """The citizen's copy as a data file (the overview as the API gives it, without the pseudonym)."""
    copy = {k: v for k, v in overview.items() if k != "subject"}
    return json.dumps(copy, ensure_ascii=False, indent=2, default=str).encode()
