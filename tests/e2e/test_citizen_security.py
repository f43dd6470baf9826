"""The citizen's side under attack, on the embedded platform: forms posted from another site are
refused, a session ends at logout for good (also across a restart), logins are limited per
address and per citizen, and no store keeps the BSN."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import requests

from keten.demo import CITIZEN
from shared.pseudonym import pseudonymise
from tests.support import running_platform

pytestmark = pytest.mark.e2e

EVIL = "https://evil.example"
#: The limits as shipped (the other tests' fixtures raise them: they log in again and again).
SHIPPED_LIMITS = {"KETEN_LOGIN_LIMIT_PER_ADDRESS": "5", "KETEN_LOGIN_LIMIT_PER_CITIZEN": "5"}


@pytest.fixture
def platform(embedded_env):
    with running_platform(
        {**embedded_env, **SHIPPED_LIMITS}, ["consent", "notification", "gateway"]
    ) as running:
        yield running


def _log_in(base_url: str, bsn: str = CITIZEN["bsn"], origin: str | None = None, **headers: str):
    """The login form, posted as a browser on ``origin`` (the page's own by default) would."""
    return requests.post(
        f"{base_url}/inzage/login",
        data={"bsn": bsn},
        headers={"Origin": origin or base_url, **headers},
        allow_redirects=False,
        timeout=10,
    )


def _page(base_url: str, token: str) -> str:
    return requests.get(f"{base_url}/inzage", cookies={"keten_citizen": token}, timeout=10).text


def _csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]


def test_a_login_form_posted_from_another_site_or_from_nowhere_is_refused(platform):
    cross_site = _log_in(platform.base_url, origin=EVIL)
    assert cross_site.status_code == 403 and "keten_citizen" not in cross_site.cookies
    no_origin = requests.post(
        f"{platform.base_url}/inzage/login", data={"bsn": CITIZEN["bsn"]}, allow_redirects=False, timeout=10
    )
    assert no_origin.status_code == 403 and "keten_citizen" not in no_origin.cookies
    # From the page itself (a browser names its origin, or at least its referring page): in.
    assert _log_in(platform.base_url).status_code == 303
    referred = requests.post(
        f"{platform.base_url}/inzage/login",
        data={"bsn": CITIZEN["bsn"]},
        headers={"Referer": f"{platform.base_url}/inzage?lang=nl"},
        allow_redirects=False,
        timeout=10,
    )
    assert referred.status_code == 303 and referred.cookies["keten_citizen"]


def test_a_logout_posted_from_another_site_or_without_the_csrf_token_is_refused(platform):
    token = _log_in(platform.base_url).cookies["keten_citizen"]
    csrf = _csrf_token(_page(platform.base_url, token))

    def log_out(origin: str, form: dict[str, str]) -> requests.Response:
        return requests.post(
            f"{platform.base_url}/inzage/logout",
            data=form,
            cookies={"keten_citizen": token},
            headers={"Origin": origin},
            allow_redirects=False,
            timeout=10,
        )

    assert log_out(EVIL, {"csrf_token": csrf}).status_code == 403
    assert log_out(platform.base_url, {}).status_code == 403
    assert log_out(platform.base_url, {"csrf_token": "0" * 64}).status_code == 403
    assert 'name="csrf_token"' in _page(platform.base_url, token), "still logged in"
    assert log_out(platform.base_url, {"csrf_token": csrf}).status_code == 303


def test_a_session_token_used_after_logout_is_refused_also_after_a_restart(platform, embedded_env):
    base_url = platform.base_url
    token = _log_in(base_url).cookies["keten_citizen"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{base_url}/api/citizen/overview", headers=bearer, timeout=10).status_code == 200
    ended = requests.post(
        f"{base_url}/inzage/logout",
        data={"csrf_token": _csrf_token(_page(base_url, token))},
        cookies={"keten_citizen": token},
        headers={"Origin": base_url},
        allow_redirects=False,
        timeout=10,
    )
    assert ended.status_code == 303

    # The copied token no longer opens anything: not the page, not the API.
    after = requests.get(f"{base_url}/api/citizen/overview", headers=bearer, timeout=10)
    assert (after.status_code, after.json()["error"]["code"]) == (403, "session_ended")
    assert 'id="bsn"' in _page(base_url, token) and 'name="csrf_token"' not in _page(base_url, token)

    # A session ended with the API's logout is ended as well.
    api_token = requests.post(f"{base_url}/api/citizen/session", json={"bsn": CITIZEN["bsn"]}, timeout=10)
    api_bearer = {"Authorization": f"Bearer {api_token.json()['token']}"}
    assert requests.delete(f"{base_url}/api/citizen/session", headers=api_bearer, timeout=10).json() == {
        "ended": True
    }
    assert requests.get(f"{base_url}/api/citizen/overview", headers=api_bearer, timeout=10).status_code == 403

    platform.runner.stop()
    with running_platform({**embedded_env, **SHIPPED_LIMITS}, ["notification", "gateway"]) as restarted:
        again = requests.get(f"{restarted.base_url}/api/citizen/overview", headers=bearer, timeout=10)
        assert (again.status_code, again.json()["error"]["code"]) == (403, "session_ended")


def test_the_sixth_rapid_login_from_one_address_is_refused_with_429_and_retry_after(platform):
    base_url = platform.base_url
    for attempt in range(5):
        bsn = CITIZEN["bsn"] if attempt % 2 else "123456789"  # failed attempts count too
        assert _log_in(base_url, bsn).status_code in (303, 400)
    page = _log_in(base_url)
    assert page.status_code == 429 and "keten_citizen" not in page.cookies
    assert 0 < int(page.headers["Retry-After"]) <= 60
    assert "te vaak" in page.text  # the page says so, in words
    api = requests.post(f"{base_url}/api/citizen/session", json={"bsn": CITIZEN["bsn"]}, timeout=10)
    assert (api.status_code, api.json()["error"]["code"]) == (429, "too_many_logins")
    assert 0 < int(api.headers["Retry-After"]) <= 60


def test_logins_for_one_citizen_are_limited_from_every_address(embedded_env):
    env = {**embedded_env, **SHIPPED_LIMITS, "KETEN_TRUSTED_PROXIES": "1"}
    with running_platform(env, ["notification", "gateway"]) as platform:
        for address in range(5):
            response = _log_in(platform.base_url, **{"X-Forwarded-For": f"192.0.2.{address}"})
            assert response.status_code == 303
        sixth = _log_in(platform.base_url, **{"X-Forwarded-For": "192.0.2.99"})
        assert sixth.status_code == 429
        other_citizen = _log_in(platform.base_url, "111222333", **{"X-Forwarded-For": "192.0.2.99"})
        assert other_citizen.status_code == 303, "another citizen from a fresh address may"


def test_no_store_and_no_log_line_holds_the_bsn_or_the_pseudonym_of_a_login(platform, caplog):
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        _log_in(platform.base_url)
    pseudonym = pseudonymise(CITIZEN["bsn"], platform.settings.pseudonym_secret)
    stores = b"".join(path.read_bytes() for path in Path(platform.settings.var_dir).rglob("platform.sqlite*"))
    assert stores, "the platform store exists"
    assert CITIZEN["bsn"].encode() not in stores and pseudonym.encode() not in stores
    assert CITIZEN["bsn"] not in caplog.text
