"""The catalogue through the contract: what an agency in any language reads to learn the values
the platform accepts, from the catalogue the operator runs (``KETEN_CATALOGUE``)."""

from __future__ import annotations

import pytest
import requests
import yaml

from shared.catalogue import DEFAULT_PATH
from tests.support import running_platform, signed_request

pytestmark = pytest.mark.e2e


def test_a_signed_get_answers_the_operators_own_catalogue_with_every_grounds_provision(
    embedded_env, tmp_path, monkeypatch
):
    own = yaml.safe_load(DEFAULT_PATH.read_text())
    own["version"] = "2027.1.1-utrecht"
    own["changes"].append({"version": "2027.1.1-utrecht", "note": "Utrecht's own contact details."})
    mitros = next(a for a in own["agencies"] if a["id"] == "woningcorporatie-mitros")
    mitros["contact"]["phone"] = "030 000 99 99"
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(own, allow_unicode=True))
    monkeypatch.setenv("KETEN_CATALOGUE", str(path))

    with running_platform(embedded_env) as platform:
        answer = signed_request("GET", platform.base_url, "/api/catalogue", None, platform.credentials())
        unsigned = requests.get(platform.base_url + "/api/catalogue", timeout=10)

    assert answer.status_code == 200
    catalogue = answer.json()
    assert catalogue["version"] == "2027.1.1-utrecht"
    agencies = {agency["id"]: agency for agency in catalogue["agencies"]}
    assert agencies["woningcorporatie-mitros"]["contact"]["phone"] == "030 000 99 99"
    [early_warning] = [
        g for g in agencies["woningcorporatie-mitros"]["grounds"] if g["purpose"] == "debt_early_warning"
    ]
    assert early_warning["ground"] == "legal_obligation"
    assert (
        early_warning["provision"]["citation"]
        == "Besluit gemeentelijke schuldhulpverlening, art. 2 (huurachterstand)"
    )
    assert all(
        g["provision"]["law"] and g["provision"]["article"] for a in agencies.values() for g in a["grounds"]
    )
    table = next(t for t in catalogue["tables"] if t["id"] == "vroegsignalering-schulden")
    mitros_line = next(line for line in table["participants"] if line["agency"] == "woningcorporatie-mitros")
    assert "payment_arrears_signal" in mitros_line["bring"]
    refusals = {reason["code"]: reason for reason in catalogue["share_refusals"]}
    assert refusals["no_valid_consent"]["visible_to_subject"]
    assert agencies["gemeente-utrecht"]["complaints"]["escalation"] == ["nationale_ombudsman"]
    assert unsigned.status_code == 403
