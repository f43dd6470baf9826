"""The register of processing activities that every LDV record points at.

The Logboek Dataverwerkingen standard has each log record name its processing activity
(``dpl.core.processing_activity_id``, a URI) in a register that keeps every relevant change as
a new version, so that a record points at one version. Here the register is generated from the
catalogue:

- a share decision is the sending agency's processing for the case's purpose: one activity per
  agency and purpose it has a ground for (``share.<purpose>.<agency>``), with its grounds, the
  provisions of law they rest on and the consultation tables it takes part in;
- what the platform itself does with personal data (telling the subject, recording consent or
  an objection, purging, passing corrections and erasures on, the citizen's overview) is one
  activity each (``platform.<name>``).

An activity's version is a digest of what it says: it changes exactly when the activity does
(another ground, provision, table or name), and the URI of a record keeps naming the version it
was made under. ``keten ldv register --write`` keeps the versions it saw before in its file, so
the register answers for records made under an older catalogue; the gateway serves both
(``GET /api/ldv/processing-activities``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from shared.catalogue import Catalogue

REGISTER_PATH = "/api/ldv/processing-activities"
SHARE_PREFIX = "share"
PLATFORM_PREFIX = "platform"
#: What ``dpl.core.data_subject_id`` holds: the subject's keyed pseudonym (HMAC-SHA256 of the
#: BSN with the platform's secret, ``shared.pseudonym``), never the BSN.
SUBJECT_ID_TYPE = "keten-pseudonym"
SUBJECT_ID_TYPES = {
    SUBJECT_ID_TYPE: {
        "nl": "Keten-pseudoniem: HMAC-SHA256 van het BSN met een geheim van het platform",
        "en": "Keten pseudonym: HMAC-SHA256 of the BSN under a platform secret",
    }
}


@dataclass(frozen=True)
class Ground:
    ground: str
    article: str
    provision: str


@dataclass(frozen=True)
class ProcessingActivity:
    key: str
    name: Mapping[str, str]
    controller: str
    purpose: str
    grounds: tuple[Ground, ...]
    tables: tuple[str, ...] = ()
    note: str = ""
    #: The catalogue version the activity was generated from (not part of its version).
    catalogue_version: str = field(default="", compare=False)

    @cached_property  # each record names it: computed once per activity
    def version(self) -> str:
        said = asdict(self)
        said.pop("catalogue_version")
        canonical = json.dumps(said, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def id(self) -> str:
        """``<key>/<version>``: the path of the activity under the register's address."""
        return f"{self.key}/{self.version}"

    def as_dict(self, base_url: str) -> dict[str, Any]:
        return {
            "id": f"{base_url}/{self.id}",
            "key": self.key,
            "version": self.version,
            "name": dict(self.name),
            "controller": self.controller,
            "purpose": self.purpose,
            "grounds": [asdict(ground) for ground in self.grounds],
            "tables": list(self.tables),
            "note": self.note,
            "catalogue_version": self.catalogue_version,
        }


def _platform(key: str, nl: str, en: str, purpose: str, article: str, provision: str) -> ProcessingActivity:
    return ProcessingActivity(
        key=f"{PLATFORM_PREFIX}.{key}",
        name={"nl": nl, "en": en},
        controller="keten",
        purpose=purpose,
        grounds=(Ground("legal_obligation", article, provision),),
        note="The platform's own processing; its operator's privacy officer (FG) confirms the provision.",
    )


#: What the platform itself does with personal data; ``Processing.activity`` names these.
PLATFORM_ACTIVITIES = (
    _platform(
        "decide-share",
        "Verzoek tot gegevensdeling beoordelen",
        "Deciding a request to share data",
        "share_decision",
        "AVG art. 5, tweede lid",
        "Algemene verordening gegevensbescherming, art. 5, tweede lid (verantwoordingsplicht)",
    ),
    _platform(
        "notify-subject",
        "Betrokkene vertellen over een gegevensdeling",
        "Telling the data subject of a share",
        "transparency",
        "AVG art. 13 en 14",
        "Algemene verordening gegevensbescherming, art. 13 en 14 (informatieplicht)",
    ),
    _platform(
        "defer-notification",
        "Bericht aan betrokkene uitstellen om de veiligheid van anderen",
        "Deferring the notice to the data subject for the safety of others",
        "transparency",
        "UAVG art. 41",
        "Uitvoeringswet AVG, art. 41 (beperking van de informatieplicht)",
    ),
    _platform(
        "record-consent",
        "Toestemming vastleggen",
        "Recording consent",
        "consent",
        "AVG art. 7, eerste lid",
        "Algemene verordening gegevensbescherming, art. 7, eerste lid (toestemming aantonen)",
    ),
    _platform(
        "record-objection",
        "Bezwaar vastleggen",
        "Recording an objection",
        "objection",
        "AVG art. 21",
        "Algemene verordening gegevensbescherming, art. 21 (recht van bezwaar)",
    ),
    _platform(
        "record-safety-override",
        "Veiligheidsafweging vastleggen",
        "Recording a safety override",
        "safety_override",
        "AVG art. 5, tweede lid",
        "Algemene verordening gegevensbescherming, art. 5, tweede lid (verantwoordingsplicht)",
    ),
    _platform(
        "purge-records",
        "Gegevens vernietigen na de bewaartermijn of op verzoek",
        "Purging records when their time is up or on request",
        "retention",
        "AVG art. 5, eerste lid, onder e, en art. 17",
        "Algemene verordening gegevensbescherming, art. 5, eerste lid, onder e, en art. 17",
    ),
    _platform(
        "pass-on-correction",
        "Correctie doorgeven aan ontvangers",
        "Passing a correction on to the recipients",
        "rectification",
        "AVG art. 16 en 19",
        "Algemene verordening gegevensbescherming, art. 16 en 19 (kennisgeving aan ontvangers)",
    ),
    _platform(
        "pass-on-erasure",
        "Wissing doorgeven aan ontvangers",
        "Passing an erasure on to the recipients",
        "erasure",
        "AVG art. 17 en 19",
        "Algemene verordening gegevensbescherming, art. 17 en 19 (kennisgeving aan ontvangers)",
    ),
    _platform(
        "handle-citizen-request",
        "Verzoek van de betrokkene behandelen binnen de wettelijke termijn",
        "Handling a data subject's request within the statutory time limit",
        "data_subject_rights",
        "AVG art. 12, derde lid, en art. 15 tot en met 21",
        "Algemene verordening gegevensbescherming, art. 12, derde lid (termijn), en art. 15 tot en "
        "met 21 (rechten van de betrokkene)",
    ),
    _platform(
        "citizen-overview",
        "Inzage door de betrokkene in het eigen overzicht",
        "The data subject reading their overview",
        "access",
        "AVG art. 15",
        "Algemene verordening gegevensbescherming, art. 15 (recht van inzage)",
    ),
)


def share_key(purpose: str, agency: str) -> str:
    return f"{SHARE_PREFIX}.{purpose}.{agency}"


def platform_key(name: str) -> str:
    return f"{PLATFORM_PREFIX}.{name}"


def share_activities(catalogue: Catalogue) -> list[ProcessingActivity]:
    """One activity per agency and purpose it has a ground for, with the tables it shares at."""
    activities = []
    for agency in catalogue.agencies.values():
        for purpose, grounds in sorted(agency.purposes.items()):
            label = catalogue.purposes[purpose].label if purpose in catalogue.purposes else None
            tables = tuple(
                sorted(
                    table.id
                    for table in catalogue.tables.values()
                    if purpose in table.purposes and agency.id in table.participants
                )
            )
            activities.append(
                ProcessingActivity(
                    key=share_key(purpose, agency.id),
                    name={
                        "nl": f"Gegevens delen in het ketenoverleg: {label('nl') if label else purpose}",
                        "en": f"Sharing data in the case consultation: {label('en') if label else purpose}",
                    },
                    controller=agency.id,
                    purpose=purpose,
                    grounds=tuple(
                        Ground(
                            ground,
                            catalogue.legal_grounds[ground].article
                            if ground in catalogue.legal_grounds
                            else "",
                            provision.citation if (provision := agency.provision(purpose, ground)) else "",
                        )
                        for ground in grounds
                    ),
                    tables=tables,
                    catalogue_version=catalogue.version,
                )
            )
    return activities


class ActivityRegister:
    """The processing activities records point at: those of the catalogue now, and the earlier
    versions kept in the register file."""

    def __init__(self, base_url: str, catalogue: Catalogue, kept: Iterable[Mapping[str, Any]] = ()):
        self.base_url = base_url.rstrip("/")
        self.catalogue_version = catalogue.version
        platform = [replace(a, catalogue_version=catalogue.version) for a in PLATFORM_ACTIVITIES]
        self.current = {a.key: a for a in (*share_activities(catalogue), *platform)}
        current_ids = {a.id for a in self.current.values()}
        #: Earlier versions (as documents), by id; never those of the catalogue now.
        self.earlier = {
            f"{doc['key']}/{doc['version']}": dict(doc)
            for doc in kept
            if f"{doc['key']}/{doc['version']}" not in current_ids
        }

    @classmethod
    def load(cls, base_url: str, catalogue: Catalogue, path: Path | None) -> ActivityRegister:
        kept: list[Mapping[str, Any]] = []
        if path is not None and path.exists():
            document = json.loads(path.read_text())
            kept = [*document.get("activities", []), *document.get("earlier_versions", [])]
        return cls(base_url, catalogue, kept)

    def uri(self, key: str) -> str:
        """The URI of the current version of activity ``key`` (unknown keys: the platform's
        decision activity, so that a record always points at an entry)."""
        activity = self.current.get(key) or self.current[platform_key("decide-share")]
        return f"{self.base_url}/{activity.id}"

    def share_uri(self, purpose: str, agency: str) -> str:
        """The sending agency's activity for ``purpose``; an agency without a ground for it (a
        refused request) is the platform's decision."""
        return self.uri(share_key(purpose, agency))

    def find(self, key: str, version: str) -> dict[str, Any] | None:
        activity = self.current.get(key)
        if activity is not None and activity.version == version:
            return activity.as_dict(self.base_url)
        return self.earlier.get(f"{key}/{version}")

    def document(self) -> dict[str, Any]:
        """The whole register, as served and written."""
        return {
            "register": self.base_url,
            "catalogue_version": self.catalogue_version,
            "data_subject_id_types": SUBJECT_ID_TYPES,
            "activities": [
                a.as_dict(self.base_url) for a in sorted(self.current.values(), key=lambda a: a.key)
            ],
            "earlier_versions": [self.earlier[i] for i in sorted(self.earlier)],
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.document(), indent=2, ensure_ascii=False) + "\n")
