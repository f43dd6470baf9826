"""Free text a professional types where a function belongs, on the embedded platform (SQLite
files, in-process broker): readable for the citizen until the purge, and never written to disk
in plain text, so no byte of any SQLite file holds it (not even a free page)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from keten import demo
from keten.purge import run_purge
from tests.support import eventually, running_platform, sqlite_dump

pytestmark = pytest.mark.e2e


def overview_case(base_url: str, case_id: str) -> dict[str, Any]:
    token = requests.post(
        f"{base_url}/api/citizen/session", json={"bsn": demo.CITIZEN["bsn"]}, timeout=5
    ).json()["token"]
    overview = requests.get(
        f"{base_url}/api/citizen/overview", headers={"Authorization": f"Bearer {token}"}, timeout=5
    ).json()
    [case] = [c for c in overview["cases"] if c["case_id"] == case_id]
    return case  # type: ignore[no-any-return]


def test_a_name_typed_as_the_contact_points_function_never_reaches_a_sqlite_file_in_plain_text(
    embedded_env, monkeypatch
):
    marker = f"Sanne de Vries {uuid.uuid4().hex[:10]}"
    registered = demo.register_case_command

    def with_a_name_as_function(case_id: str, bsn: str = demo.CITIZEN["bsn"]) -> dict[str, Any]:
        command = registered(case_id, bsn)
        command["contact_point"]["function"] = marker
        return command

    monkeypatch.setattr(demo, "register_case_command", with_a_name_as_function)
    with running_platform(embedded_env) as platform:
        result = demo.run_demo(platform.base_url, out=lambda *_: None, credentials=platform.credentials())
        case = eventually(
            lambda: (c := overview_case(platform.base_url, result.case_id))["shares"] and c, timeout=60
        )
        assert case["contact_point"]["function"] == marker
        assert marker.encode() not in sqlite_dump(embedded_env["KETEN_VAR_DIR"])

        three_years_on = datetime.now(UTC) + timedelta(days=3 * 366)
        assert run_purge(False, three_years_on, progress=False, settings=platform.settings) == 0

        def purged() -> dict[str, Any] | None:
            case = overview_case(platform.base_url, result.case_id)
            return case if len(case["purged"]) == 2 else None

        case = eventually(purged, timeout=60)
        assert case["contact_point"]["function"] is None
        assert case["shares"][0]["contact_point"]["function"] is None

    assert marker.encode() not in sqlite_dump(embedded_env["KETEN_VAR_DIR"])
