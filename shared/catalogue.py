"""The platform's reference data (``catalogue.yaml``), loaded into plain value objects.

It is configuration, not code: agencies, their purposes and grounds, data categories and
retention classes change by editing the YAML and raising its version. The loader checks that
everything it refers to exists, so a typo fails at start, not in a decision.
"""

from __future__ import annotations

import calendar
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).with_name("catalogue.yaml")
CATEGORY_KINDS = ("ordinary", "special", "criminal", "bsn", "conclusion")


class CatalogueError(ValueError):
    pass


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
class Agency:
    id: str
    name: str
    type: str
    citizen_depends_on_it: bool
    purposes: dict[str, tuple[str, ...]]
    special_grounds: tuple[str, ...]


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
    source: str = field(default="", compare=False)

    def category(self, code: str) -> Category:
        return self.categories[code]

    def agency_name(self, agency_id: str) -> str:
        agency = self.agencies.get(agency_id)
        return agency.name if agency else agency_id

    def ground_label(self, code: str, language: str = "nl") -> str:
        ground = self.legal_grounds.get(code) or self.special_grounds.get(code)
        return ground.label(language) if ground else code


def _label(raw: Any, where: str) -> Label:
    if not isinstance(raw, dict) or not raw.get("nl") or not raw.get("en"):
        raise CatalogueError(f"{where}: needs a label in nl and en")
    return Label(nl=str(raw["nl"]), en=str(raw["en"]))


def parse(data: dict[str, Any], source: str = "") -> Catalogue:
    categories = {
        c["code"]: Category(c["code"], c["kind"], _label(c.get("label"), f"category {c['code']}"))
        for c in data["categories"]
    }
    for category in categories.values():
        if category.kind not in CATEGORY_KINDS:
            raise CatalogueError(f"category {category.code}: unknown kind {category.kind!r}")
    purposes = {
        p["code"]: Purpose(p["code"], _label(p.get("label"), f"purpose {p['code']}"))
        for p in data["purposes"]
    }

    def grounds(key: str) -> dict[str, LegalGround]:
        return {
            g["code"]: LegalGround(g["code"], g["article"], _label(g.get("label"), f"ground {g['code']}"))
            for g in data[key]
        }

    legal_grounds, special_grounds = grounds("legal_grounds"), grounds("special_grounds")
    agencies = {}
    for a in data["agencies"]:
        agency = Agency(
            id=a["id"],
            name=a["name"],
            type=a["type"],
            citizen_depends_on_it=bool(a["citizen_depends_on_it"]),
            purposes={p: tuple(g) for p, g in (a.get("purposes") or {}).items()},
            special_grounds=tuple(a.get("special_grounds") or ()),
        )
        for purpose, codes in agency.purposes.items():
            _check(purpose in purposes, f"agency {agency.id}: unknown purpose {purpose}")
            for code in codes:
                _check(code in legal_grounds, f"agency {agency.id}: unknown ground {code}")
        for code in agency.special_grounds:
            _check(code in special_grounds, f"agency {agency.id}: unknown special ground {code}")
        agencies[agency.id] = agency
    retention_classes = {r["code"]: _retention_class(r) for r in data["retention_classes"]}
    tables = {}
    for t in data["tables"]:
        participants = {
            agency_id: TableParticipant(
                role=p["role"], bring=tuple(p.get("bring") or ()), receive=tuple(p.get("receive") or ())
            )
            for agency_id, p in t["participants"].items()
        }
        table = Table(t["id"], t["name"], tuple(t["purposes"]), t["retention_class"], participants)
        _check(table.retention_class in retention_classes, f"table {table.id}: unknown retention class")
        for purpose in table.purposes:
            _check(purpose in purposes, f"table {table.id}: unknown purpose {purpose}")
        for agency_id, participant in participants.items():
            _check(agency_id in agencies, f"table {table.id}: unknown agency {agency_id}")
            for code in participant.bring + participant.receive:
                _check(code in categories, f"table {table.id}: unknown category {code}")
        tables[table.id] = table
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
        legal_hold_reasons=_reasons(data.get("legal_hold_reasons")),
        erasure_refusals=_reasons(data.get("erasure_refusals")),
        safety_override_grounds=_reasons(data.get("safety_override_grounds")),
        safety_override_end_reasons=_reasons(data.get("safety_override_end_reasons")),
        correction_reasons=_reasons(data.get("correction_reasons")),
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


def _reasons(raw: Any) -> dict[str, Reason]:
    return {
        r["code"]: Reason(r["code"], _label(r.get("label"), r["code"]), str(r.get("article", "")))
        for r in raw or ()
    }


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise CatalogueError(message)


@lru_cache(maxsize=8)
def _load(path: str) -> Catalogue:
    with open(path, encoding="utf-8") as f:
        return parse(yaml.safe_load(f), source=path)


def load_catalogue(path: str | os.PathLike[str] | None = None) -> Catalogue:
    """The catalogue at ``path``, ``$KETEN_CATALOGUE``, or the one shipped with the platform."""
    return _load(str(path or os.environ.get("KETEN_CATALOGUE") or DEFAULT_PATH))
