"""The platform's reference data (``catalogue.yaml``), loaded into plain value objects.

It is configuration, not code: agencies, their purposes and grounds, data categories and
retention classes change by editing the YAML and raising its version. An operator points
``KETEN_CATALOGUE`` at a version of their own (docs/operations.md). The loader checks that every
ground names the provision of law it rests on and that everything it refers to exists, so a gap
or a typo fails at start with one line naming the entry, not in a decision.
"""

from __future__ import annotations

import calendar
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from shared.config import ConfigurationError

DEFAULT_PATH = Path(__file__).with_name("catalogue.yaml")
CATEGORY_KINDS = ("ordinary", "special", "criminal", "bsn", "conclusion")


class CatalogueError(ConfigurationError, ValueError):
    """The catalogue is not usable: the message names the entry at fault (``keten`` prints it
    as one line and exits 2)."""


@dataclass(frozen=True)
class Label:
    nl: str
    en: str

    def __call__(self, language: str = "nl") -> str:
        return self.en if language == "en" else self.nl


@dataclass(frozen=True)
class Category:
    code: str
    kind: str
    label: Label
    note: str = ""

    @property
    def needs_own_ground(self) -> bool:
        """Special and criminal categories and the BSN need a ground of their own."""
        return self.kind in ("special", "criminal", "bsn")


@dataclass(frozen=True)
class Purpose:
    code: str
    label: Label


@dataclass(frozen=True)
class LegalGround:
    code: str
    article: str
    label: Label


@dataclass(frozen=True)
class Provision:
    """The provision of law a ground rests on: the national law and the article that give the
    agency the task or the duty (or, for consent and vital interest, the GDPR article itself).
    ``note`` says what is uncertain or what else applies; it is not shown as law."""

    law: str
    article: str
    note: str = ""

    @property
    def citation(self) -> str:
        """``"<law>, <article>"``, as a decision, a notice or a ledger names it."""
        return f"{self.law}, {self.article}"


@dataclass(frozen=True)
class AgencyGround:
    """An agency's ground for a purpose (or, for a special ground, for any purpose) and the
    provision it rests on."""

    ground: str
    provision: Provision
    purpose: str = ""


@dataclass(frozen=True)
class ContactDetails:
    """How a citizen reaches an organisation. Agencies give all four; complaint bodies at least
    a phone number, a postal address and a website."""

    phone: str
    postal_address: str
    email: str = ""
    website: str = ""
    opening_hours: Label | None = None


@dataclass(frozen=True)
class ComplaintBody:
    """Where a citizen turns after an agency's own complaint procedure, or about privacy."""

    code: str
    name: str
    handles: Label
    contact: ContactDetails | None  # None: it differs per agency (the agency's procedure names it)
    note: str = ""


@dataclass(frozen=True)
class ComplaintRoute:
    """An agency's complaint route: its own procedure first, then ``escalation`` in order; for
    privacy matters also ``privacy`` (the supervisory authority)."""

    procedure: Label
    desk: ContactDetails
    escalation: tuple[ComplaintBody, ...]
    privacy: ComplaintBody
    note: str = ""


@dataclass(frozen=True)
class Agency:
    id: str
    name: str
    type: str
    citizen_depends_on_it: bool
    grounds: tuple[AgencyGround, ...]
    special: tuple[AgencyGround, ...]
    contact: ContactDetails
    complaints: ComplaintRoute

    @property
    def purposes(self) -> dict[str, tuple[str, ...]]:
        """Per purpose, the codes of the grounds the agency may rely on."""
        found: dict[str, tuple[str, ...]] = {}
        for use in self.grounds:
            found[use.purpose] = (*found.get(use.purpose, ()), use.ground)
        return found

    @property
    def special_grounds(self) -> tuple[str, ...]:
        """The codes of the special grounds the agency may record."""
        return tuple(use.ground for use in self.special)

    def provision(self, purpose: str, ground: str) -> Provision | None:
        """The provision the agency's ``ground`` for ``purpose`` rests on, or for a special
        ground (whatever the purpose); None if the agency has no such ground."""
        for use in self.grounds:
            if use.purpose == purpose and use.ground == ground:
                return use.provision
        for use in self.special:
            if use.ground == ground:
                return use.provision
        return None


@dataclass(frozen=True)
class TableParticipant:
    role: str
    bring: tuple[str, ...]
    receive: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    id: str
    name: str
    purposes: tuple[str, ...]
    retention_class: str
    participants: dict[str, TableParticipant]


@dataclass(frozen=True)
class Period:
    """An ISO-8601 duration of years, months, weeks and days; None keeps forever."""

    years: int = 0
    months: int = 0
    days: int = 0

    _PATTERN = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")

    @classmethod
    def parse(cls, text: str) -> Period:
        match = cls._PATTERN.match(text or "")
        if not match or text == "P":
            raise CatalogueError(f"not an ISO-8601 period of years/months/weeks/days: {text!r}")
        years, months, weeks, days = (int(g or 0) for g in match.groups())
        return cls(years=years, months=months, days=weeks * 7 + days)

    def after(self, moment: datetime) -> datetime:
        month_index = moment.month - 1 + self.months + 12 * self.years
        year, month = moment.year + month_index // 12, month_index % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        return moment.replace(year=year, month=month, day=day) + timedelta(days=self.days)

    def isoformat(self) -> str:
        parts = [f"{n}{u}" for n, u in ((self.years, "Y"), (self.months, "M"), (self.days, "D")) if n]
        return "P" + ("".join(parts) or "0D")


RECORD_KINDS = ("case_records", "share_records", "outcome")


@dataclass(frozen=True)
class RetentionRule:
    record_kind: str
    keep: Period | None  # None: kept (without personal data)
    counted_from: str

    def due(self, counted_from: datetime) -> datetime | None:
        """When a record whose period starts at ``counted_from`` is due; None: kept."""
        return self.keep.after(counted_from) if self.keep else None


@dataclass(frozen=True)
class RetentionVersion:
    version: int
    in_force_from: date
    rules: dict[str, RetentionRule]


@dataclass(frozen=True)
class RetentionClass:
    """How long each kind of record is kept; versioned, each version in force from a date."""

    code: str
    label: Label
    versions: tuple[RetentionVersion, ...]  # oldest first

    @property
    def rules(self) -> dict[str, RetentionRule]:
        """The rules of the current version."""
        return self.versions[-1].rules

    def version_at(self, moment: datetime) -> RetentionVersion:
        """The version in force at ``moment`` (the first one for a moment before all of them)."""
        in_force = [v for v in self.versions if v.in_force_from <= moment.date()]
        return in_force[-1] if in_force else self.versions[0]


@dataclass(frozen=True)
class Reason:
    """A reason with a code the platform records and a text a citizen understands."""

    code: str
    label: Label
    article: str = ""


@dataclass(frozen=True)
class Change:
    """One entry of the catalogue's history: the version and what changed in it."""

    version: str
    note: str


@dataclass(frozen=True)
class Catalogue:
    version: str
    categories: dict[str, Category]
    purposes: dict[str, Purpose]
    legal_grounds: dict[str, LegalGround]
    special_grounds: dict[str, LegalGround]
    agencies: dict[str, Agency]
    tables: dict[str, Table]
    retention_classes: dict[str, RetentionClass]
    record_kinds: dict[str, Label] = field(default_factory=dict)
    legal_hold_reasons: dict[str, Reason] = field(default_factory=dict)
    erasure_refusals: dict[str, Reason] = field(default_factory=dict)
    safety_override_grounds: dict[str, Reason] = field(default_factory=dict)
    safety_override_end_reasons: dict[str, Reason] = field(default_factory=dict)
    correction_reasons: dict[str, Reason] = field(default_factory=dict)
    complaint_bodies: dict[str, ComplaintBody] = field(default_factory=dict)
    changes: tuple[Change, ...] = ()
    source: str = field(default="", compare=False)

    def category(self, code: str) -> Category:
        return self.categories[code]

    @property
    def participant_roles(self) -> frozenset[str]:
        """The roles an agency can have at a table: those the tables name for their participants."""
        return frozenset(p.role for table in self.tables.values() for p in table.participants.values())

    def agency_name(self, agency_id: str) -> str:
        agency = self.agencies.get(agency_id)
        return agency.name if agency else agency_id

    def ground_label(self, code: str, language: str = "nl") -> str:
        ground = self.legal_grounds.get(code) or self.special_grounds.get(code)
        return ground.label(language) if ground else code

    def provision(self, agency_id: str, purpose: str, ground: str) -> Provision | None:
        """The provision of law ``agency_id``'s ``ground`` for ``purpose`` rests on (a special
        ground's whatever the purpose); None for an agency or ground the catalogue lacks."""
        agency = self.agencies.get(agency_id)
        return agency.provision(purpose, ground) if agency else None


def _label(raw: Any, where: str) -> Label:
    if not isinstance(raw, dict) or not raw.get("nl") or not raw.get("en"):
        raise CatalogueError(f"{where}: needs a label in nl and en")
    return Label(nl=str(raw["nl"]), en=str(raw["en"]))


def _entries(data: dict[str, Any], key: str, id_key: str = "code") -> list[dict[str, Any]]:
    """The list under ``key``, each entry a mapping with an ``id_key``, no code twice."""
    raw = data.get(key)
    if not isinstance(raw, list):
        raise CatalogueError(f"{key}: needs a list")
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        _check(
            isinstance(entry, dict) and isinstance(entry.get(id_key), str) and entry[id_key],
            f"{key}[{index}]: needs a {id_key}",
        )
        _check(entry[id_key] not in seen, f"{key}: {id_key} {entry[id_key]} appears twice")
        seen.add(entry[id_key])
    return list(raw)


def _text(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    _check(isinstance(value, str | int | float) and str(value).strip() != "", f"{where}: needs {key}")
    return str(value).strip()


def _provision(raw: Any, where: str) -> Provision:
    _check(
        isinstance(raw, dict),
        f"{where}: names no provision (the law and article the ground rests on)",
    )
    return Provision(
        law=_text(raw, "law", where + ", provision"),
        article=_text(raw, "article", where + ", provision"),
        note=str(raw.get("note") or "").strip(),
    )


def _contact(raw: Any, where: str, *, complete: bool) -> ContactDetails:
    _check(isinstance(raw, dict), f"{where}: needs contact details")
    hours = raw.get("opening_hours")
    contact = ContactDetails(
        phone=_text(raw, "phone", where),
        postal_address=_text(raw, "postal_address", where),
        email=str(raw.get("email") or "").strip(),
        website=str(raw.get("website") or "").strip(),
        opening_hours=_label(hours, f"{where}, opening_hours") if hours is not None else None,
    )
    if complete:
        _check(bool(contact.email), f"{where}: needs email")
        _check(contact.opening_hours is not None, f"{where}: needs opening_hours")
    else:
        _check(bool(contact.website), f"{where}: needs website")
    return contact


def _complaint_bodies(data: dict[str, Any]) -> dict[str, ComplaintBody]:
    bodies = {}
    for raw in _entries(data, "complaint_bodies"):
        where = f"complaint body {raw['code']}"
        bodies[raw["code"]] = ComplaintBody(
            code=raw["code"],
            name=_text(raw, "name", where),
            handles=_label(raw.get("handles"), where + ", handles"),
            contact=_contact(raw["contact"], where, complete=False) if raw.get("contact") else None,
            note=str(raw.get("note") or "").strip(),
        )
    return bodies


def _complaint_route(
    raw: Any, where: str, agency_contact: ContactDetails, bodies: dict[str, ComplaintBody]
) -> ComplaintRoute:
    _check(isinstance(raw, dict), f"{where}: needs a complaint route (complaints)")
    where += ", complaints"

    def body(code: Any) -> ComplaintBody:
        _check(code in bodies, f"{where}: unknown complaint body {code}")
        return bodies[code]

    privacy = body(raw.get("privacy"))
    _check(privacy.contact is not None, f"{where}: privacy body {privacy.code} needs contact details")
    then = raw.get("then") or ()
    _check(isinstance(then, list | tuple), f"{where}: then needs a list of complaint bodies")
    desk = raw.get("desk")
    return ComplaintRoute(
        procedure=_label(raw.get("procedure"), where + ", procedure"),
        desk=_contact({**_plain_contact(agency_contact), **desk}, where + ", desk", complete=True)
        if isinstance(desk, dict)
        else agency_contact,
        escalation=tuple(body(code) for code in then),
        privacy=privacy,
        note=str(raw.get("note") or "").strip(),
    )


def _plain_contact(contact: ContactDetails) -> dict[str, Any]:
    hours = contact.opening_hours
    return {
        "phone": contact.phone,
        "postal_address": contact.postal_address,
        "email": contact.email,
        "website": contact.website,
        "opening_hours": {"nl": hours.nl, "en": hours.en} if hours else None,
    }


def _agency(
    raw: dict[str, Any],
    purposes: dict[str, Purpose],
    legal_grounds: dict[str, LegalGround],
    special_grounds: dict[str, LegalGround],
    bodies: dict[str, ComplaintBody],
) -> Agency:
    agency_id = raw["id"]
    where = f"agency {agency_id}"
    grounds: list[AgencyGround] = []
    per_purpose = raw.get("purposes") or {}
    _check(isinstance(per_purpose, dict), f"{where}: purposes needs a mapping of purpose to grounds")
    for purpose, uses in per_purpose.items():
        _check(purpose in purposes, f"{where}: unknown purpose {purpose}")
        _check(isinstance(uses, list) and bool(uses), f"{where}, purpose {purpose}: needs a list of grounds")
        for use in uses:
            _check(
                isinstance(use, dict), f"{where}, purpose {purpose}: each ground needs ground and provision"
            )
            code = use.get("ground")
            _check(code in legal_grounds, f"{where}, purpose {purpose}: unknown ground {code}")
            provision = _provision(use.get("provision"), f"{where}, purpose {purpose}, ground {code}")
            _check(
                all(g.ground != code for g in grounds if g.purpose == purpose),
                f"{where}, purpose {purpose}: ground {code} appears twice",
            )
            grounds.append(AgencyGround(ground=code, provision=provision, purpose=purpose))
    special: list[AgencyGround] = []
    for use in raw.get("special_grounds") or ():
        _check(isinstance(use, dict), f"{where}: each special ground needs ground and provision")
        code = use.get("ground")
        _check(code in special_grounds, f"{where}: unknown special ground {code}")
        _check(all(g.ground != code for g in special), f"{where}: special ground {code} appears twice")
        special.append(
            AgencyGround(
                ground=code, provision=_provision(use.get("provision"), f"{where}, special ground {code}")
            )
        )
    contact = _contact(raw.get("contact"), where, complete=True)
    return Agency(
        id=agency_id,
        name=_text(raw, "name", where),
        type=_text(raw, "type", where),
        citizen_depends_on_it=bool(raw.get("citizen_depends_on_it")),
        grounds=tuple(grounds),
        special=tuple(special),
        contact=contact,
        complaints=_complaint_route(raw.get("complaints"), where, contact, bodies),
    )


def _table(
    raw: dict[str, Any],
    purposes: dict[str, Purpose],
    categories: dict[str, Category],
    agencies: dict[str, Agency],
    retention_classes: dict[str, RetentionClass],
) -> Table:
    where = f"table {raw['id']}"
    participants_raw = raw.get("participants")
    if not isinstance(participants_raw, dict) or not participants_raw:
        raise CatalogueError(f"{where}: needs participants")
    participants = {}
    for agency_id, p in participants_raw.items():
        _check(agency_id in agencies, f"{where}: unknown agency {agency_id}")
        participants[agency_id] = TableParticipant(
            role=_text(p, "role", f"{where}, participant {agency_id}"),
            bring=tuple(p.get("bring") or ()),
            receive=tuple(p.get("receive") or ()),
        )
    table = Table(
        raw["id"],
        _text(raw, "name", where),
        tuple(raw.get("purposes") or ()),
        str(raw.get("retention_class") or ""),
        participants,
    )
    _check(table.retention_class in retention_classes, f"{where}: unknown retention class")
    _check(bool(table.purposes), f"{where}: needs at least one purpose")
    for purpose in table.purposes:
        _check(purpose in purposes, f"{where}: unknown purpose {purpose}")
        _check(
            any(purpose in agencies[a].purposes for a in participants),
            f"{where}: no participant has a ground for purpose {purpose}",
        )
    for agency_id, participant in participants.items():
        for code in participant.bring + participant.receive:
            _check(code in categories, f"{where}: unknown category {code}")
        _check(
            any(purpose in agencies[agency_id].purposes for purpose in table.purposes),
            f"{where}: participant {agency_id} has no ground for any of the table's purposes",
        )
    return table


def parse(data: dict[str, Any], source: str = "") -> Catalogue:
    """The catalogue in ``data`` (the YAML's contents); raises ``CatalogueError`` naming the
    first entry at fault."""
    _check(isinstance(data, dict), "the catalogue is not a YAML mapping")
    _check(bool(str(data.get("version") or "").strip()), "the catalogue needs a version")
    categories = {}
    for c in _entries(data, "categories"):
        category = Category(
            c["code"],
            str(c.get("kind")),
            _label(c.get("label"), f"category {c['code']}"),
            str(c.get("note") or ""),
        )
        _check(category.kind in CATEGORY_KINDS, f"category {category.code}: unknown kind {category.kind!r}")
        categories[category.code] = category
    purposes = {
        p["code"]: Purpose(p["code"], _label(p.get("label"), f"purpose {p['code']}"))
        for p in _entries(data, "purposes")
    }

    def grounds(key: str) -> dict[str, LegalGround]:
        return {
            g["code"]: LegalGround(
                g["code"],
                _text(g, "article", f"ground {g['code']}"),
                _label(g.get("label"), f"ground {g['code']}"),
            )
            for g in _entries(data, key)
        }

    legal_grounds, special_grounds = grounds("legal_grounds"), grounds("special_grounds")
    clash = set(legal_grounds) & set(special_grounds)
    _check(not clash, f"ground {min(clash) if clash else ''} is both a legal and a special ground")
    bodies = _complaint_bodies(data)
    agencies = {
        a["id"]: _agency(a, purposes, legal_grounds, special_grounds, bodies)
        for a in _entries(data, "agencies", id_key="id")
    }
    for purpose in purposes:
        _check(
            any(purpose in agency.purposes for agency in agencies.values()),
            f"purpose {purpose}: no agency has a ground for it",
        )
    retention_classes = {r["code"]: _retention_class(r) for r in _entries(data, "retention_classes")}
    tables = {
        t["id"]: _table(t, purposes, categories, agencies, retention_classes)
        for t in _entries(data, "tables", id_key="id")
    }
    changes = tuple(
        Change(str(c.get("version") or ""), str(c.get("note") or "").strip())
        for c in data.get("changes") or ()
    )
    _check(
        any(change.version == str(data["version"]) for change in changes),
        f"version {data['version']}: needs an entry in changes saying what changed",
    )
    return Catalogue(
        version=str(data["version"]),
        categories=categories,
        purposes=purposes,
        legal_grounds=legal_grounds,
        special_grounds=special_grounds,
        agencies=agencies,
        tables=tables,
        retention_classes=retention_classes,
        record_kinds={k["code"]: _label(k.get("label"), k["code"]) for k in data.get("record_kinds") or ()},
        legal_hold_reasons=_reasons(data.get("legal_hold_reasons"), "legal_hold_reasons"),
        erasure_refusals=_reasons(data.get("erasure_refusals"), "erasure_refusals"),
        safety_override_grounds=_reasons(data.get("safety_override_grounds"), "safety_override_grounds"),
        safety_override_end_reasons=_reasons(
            data.get("safety_override_end_reasons"), "safety_override_end_reasons"
        ),
        correction_reasons=_reasons(data.get("correction_reasons"), "correction_reasons"),
        complaint_bodies=bodies,
        changes=changes,
        source=source,
    )


def _retention_class(raw: dict[str, Any]) -> RetentionClass:
    code = raw["code"]
    versions = []
    for v in raw.get("versions") or ():
        rules = {}
        for kind, rule in v["rules"].items():
            _check(kind in RECORD_KINDS, f"retention class {code}: unknown record kind {kind}")
            keep = rule.get("keep")
            rules[kind] = RetentionRule(
                record_kind=kind,
                keep=None if keep in (None, "forever") else Period.parse(str(keep)),
                counted_from=str(rule.get("from", "")),
            )
        missing = set(RECORD_KINDS) - set(rules)
        _check(not missing, f"retention class {code}: no rule for {', '.join(sorted(missing))}")
        versions.append(
            RetentionVersion(int(v["version"]), date.fromisoformat(str(v["in_force_from"])), rules)
        )
    _check(bool(versions), f"retention class {code}: needs at least one version")
    versions.sort(key=lambda v: v.in_force_from)
    numbers = [v.version for v in versions]
    _check(numbers == sorted(set(numbers)), f"retention class {code}: versions must rise with their dates")
    return RetentionClass(code, _label(raw.get("label"), code), tuple(versions))


def _reasons(raw: Any, key: str) -> dict[str, Reason]:
    entries = _entries({key: raw}, key) if raw else []
    return {
        r["code"]: Reason(r["code"], _label(r.get("label"), f"{key} {r['code']}"), str(r.get("article", "")))
        for r in entries
    }


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise CatalogueError(message)


@lru_cache(maxsize=8)
def _load(path: str) -> Catalogue:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise CatalogueError(f"catalogue {path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise CatalogueError(f"catalogue {path}: not valid YAML{where}") from None
    try:
        return parse(data, source=path)
    except CatalogueError as error:
        raise CatalogueError(f"catalogue {path}: {error}") from None


def catalogue_path(environ: Mapping[str, str] = os.environ) -> str:
    """Where the catalogue is read from: ``KETEN_CATALOGUE``, or the one shipped with the platform."""
    return str(environ.get("KETEN_CATALOGUE") or DEFAULT_PATH)


def load_catalogue(path: str | os.PathLike[str] | None = None) -> Catalogue:
    """The catalogue at ``path``, ``$KETEN_CATALOGUE``, or the one shipped with the platform."""
    return _load(str(path or catalogue_path()))
