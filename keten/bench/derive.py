"""The loader's fast path: every citizen's rows derived from one citizen's real rows.

``keten.bench.loader.load_real`` runs the services' own code for the first citizen; what it
wrote, in every table of the store, is the template (``read_template``). Another citizen's rows
are the template's rows with what differs between citizens put in by the services' own
functions (``derive_citizens``):

- their ids: the case and share requests (``citizen_ids``), the pseudonym
  (``shared.pseudonym.pseudonymise``), each share's id (``share_id``), its notification's
  (``notification_id``) and bundle (``bundle_of``), each event message's id (as
  ``encode_event`` names it), in the text form and the hex form each appears in;
- their keys: one per scope the template has a key for, wrapped by the master key
  (``KeyStore._wrap``), rows as the key store writes them;
- every value the template sealed, sealed again under the citizen's scope by ``Vault.seal``,
  with the citizen's own ids (and BSN) in the plaintext;
- the positions of their events in each log (the template's plus the citizen's number times
  the template's events per log) and the digest of each event a service took at such a
  position (``event_digest`` of the message body, with the citizen's ids and position).

Building the template refuses one where anything citizen-specific would be left unchanged: an
id in a row that is none of the above, a sealed value that was not recorded, a BSN in clear.
Timestamps are the template's: every derived citizen's events carry the same times.

Rows are made by ``workers`` processes, each copying its own chunks of citizens in with
``COPY`` (the events' positions given, the sequences moved past them at the end).
"""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keten.children import stop_with_parent
from keten.demo import share_request_command
from services.data_sharing.domain import share_id
from services.notification.domain import bundle_of, notification_id
from shared.config import Settings
from shared.contracts.envelope import MESSAGE_NAMESPACE, event_digest
from shared.crypto import KeyStore, Vault
from shared.pseudonym import pseudonymise
from shared.sealed import KeyScope

#: Citizens per COPY transaction of a worker (bounded memory: about 10 MB per 100 citizens of
#: 10 shares).
CHUNK = 500
_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])"
)
_TRACE = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_CIPHERTEXT = re.compile(r'"(?:c|ciphertext)":\s*"[A-Za-z0-9+/=]{16,}')


@dataclass(frozen=True)
class Text:
    """A template text: literal pieces with a slot between each two (``render`` fills them)."""

    pieces: tuple[str, ...]
    slots: tuple[int, ...]

    def render(self, values: Sequence[str]) -> str:
        if not self.slots:
            return self.pieces[0]
        out = [self.pieces[0]]
        for slot, piece in zip(self.slots, self.pieces[1:], strict=True):
            out.append(values[slot])
            out.append(piece)
        return "".join(out)


@dataclass(frozen=True)
class Cell:
    """How one column of a derived row is made: ``text`` and ``bytes`` rendered, ``position``
    moved by the citizen's number times the events per citizen of ``log``, ``digest`` of the
    message ``body`` at that position, ``keep`` as it is."""

    kind: str
    value: Any = None
    text: Text | None = None
    log: str = ""


@dataclass(frozen=True)
class Line:
    """A derived row as a line of ``COPY``'s text format: ``fmt`` (``str.format``) takes the
    citizen's values, their hex forms (for bytea), then the row's position and digest, if it has
    them (``position``: the template's and the log it counts in; ``digest``: the message body)."""

    fmt: str
    position: tuple[int, str] | None = None
    digest: Text | None = None


@dataclass
class Table:
    name: str
    columns: tuple[str, ...]
    rows: list[tuple[Cell, ...]] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)


@dataclass(frozen=True)
class Seal:
    """A value the template sealed: its scope's subject (or the case's own scope), the
    plaintext as a template text (JSON), and the slot of its ciphertext."""

    subject_scope: bool
    plaintext: Text
    slot: int


@dataclass(frozen=True)
class KeyRow:
    key_id: Text
    created_at: str
    subject_scope: bool


@dataclass
class Template:
    """The first citizen's rows, ready to be filled in for any other citizen."""

    shares: int
    recipient: str
    pseudonym_secret: bytes
    master_key: bytes
    #: Events each application's log holds per citizen.
    per_citizen: dict[str, int]
    tables: list[Table]
    keys: list[KeyRow]
    seals: list[Seal]
    #: The slot of each id (``case``, ``case_hex``, ``subject``, ``request.3``, ...).
    slot_names: list[str]
    #: Per slot of an event message's id: the application, the slot of its aggregate's id and
    #: its version.
    messages: list[tuple[int, str, str, int]]
    #: The slots of trace contexts (``traceparent``), with their flags.
    traces: list[tuple[int, str]]
    #: Tracking records after the template: (table, upstream, position).
    tracking: list[tuple[str, str, int]]

    def __post_init__(self) -> None:
        self.slot_of = {name: slot for slot, name in enumerate(self.slot_names)}


@dataclass(frozen=True)
class CitizenIds:
    """The ids a loaded citizen's commands carry: the same for the real path and the derived
    one, so that a test can hold the two against each other."""

    bsn: str
    case_id: uuid.UUID
    request_ids: tuple[uuid.UUID, ...]


def citizen_ids(run: str, number: int, shares: int) -> CitizenIds:
    """Citizen ``number`` of load ``run``: their BSN, case and share requests."""
    return CitizenIds(
        citizen_bsn(number),
        uuid.uuid5(LOADER_NAMESPACE, f"{run}/{number}/case"),
        tuple(uuid.uuid5(LOADER_NAMESPACE, f"{run}/{number}/request/{n}") for n in range(shares)),
    )


LOADER_NAMESPACE = uuid.UUID("6b1f4a52-93c1-4a8e-9d0e-6c2f8e0b7a11")


def named_ids(ids: CitizenIds, subject: str, recipient: str) -> list[tuple[str, str]]:
    """The ids in a citizen's rows, each under its slot's name (a UUID also in its hex form):
    one list for the template's slots and each derived citizen's values, so they cannot drift."""
    named = [("subject", subject)]
    uuids = [("case", ids.case_id)]
    for n, request_id in enumerate(ids.request_ids):
        shared = share_id(request_id, recipient)
        uuids += [(f"request.{n}", request_id), (f"share.{n}", shared)]
        uuids.append((f"notification.{n}", notification_id(shared, subject)))
        named.append((f"bundle.{n}", bundle_of(ids.case_id, subject, None, request_id)))
    for name, value in uuids:
        named += [(name, str(value)), (f"{name}_hex", value.hex)]
    return named


def citizen_bsn(number: int) -> str:
    """The ``number``-th made-up BSN that passes the eleven-test (none is a real person's)."""
    candidate = 100_000_000 + number * 10
    while True:
        digits = f"{candidate // 10:08d}"
        check = sum(int(d) * w for d, w in zip(digits, range(9, 1, -1), strict=True)) % 11
        if check < 10:
            return f"{digits}{check}"
        candidate += 10


# -- the template --------------------------------------------------------------------------------
def read_template(settings: Settings, recorded: Any, ids: Any) -> Template:
    """The store's rows, all of them the first citizen's (``ids``), as a template; ``recorded``
    is what ``load_real`` noted (sealed values, message bodies)."""
    import psycopg2

    subject = pseudonymise(ids.bsn, settings.pseudonym_secret)
    conn = psycopg2.connect(settings.database_url, options=f"-c search_path={settings.database_schema}")
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
                (settings.database_schema,),
            )
            names = [row[0] for row in cur.fetchall()]
            contents: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]] = {}
            for name in names:
                cur.execute(f'SELECT * FROM "{name}"')
                rows = cur.fetchall()
                if rows:
                    columns = tuple(d[0] for d in cur.description)
                    contents[name] = (columns, [tuple(_plain(v) for v in row) for row in rows])
    finally:
        conn.close()

    recipient = str(share_request_command(str(ids.case_id))["to_agencies"][0])
    slot_names: list[str] = []
    keys: dict[str, int] = {}

    def slot(name: str, *values: str) -> int:
        slot_names.append(name)
        for value in values:
            keys[value] = len(slot_names) - 1
        return len(slot_names) - 1

    for name, value in named_ids(ids, subject, recipient):
        slot(name, value)
    per_citizen = {
        name.removesuffix("_events"): len(rows)
        for name, (columns, rows) in contents.items()
        if name.endswith("_events") and "notification_id" in columns
    }
    messages = []
    for app in per_citizen:
        columns, rows = contents[f"{app}_events"]
        for row in rows:
            originator, version = (
                str(row[columns.index("originator_id")]),
                int(row[columns.index("originator_version")]),
            )
            if originator not in keys:
                raise RuntimeError(f"an event of {app} belongs to an aggregate the loader cannot derive")
            message = str(uuid.uuid5(MESSAGE_NAMESPACE, f"{app}/{originator}/{version}"))
            messages.append(
                (
                    slot(f"message.{app}.{originator}.{version}", message),
                    app,
                    slot_names[keys[originator]],
                    version,
                )
            )
    # Each processing's trace context (``shared.ldv``): a new trace and span per citizen.
    texts = [
        v.decode(errors="replace") if isinstance(v, bytes) else v
        for _, rows in contents.values()
        for row in rows
        for v in row
        if isinstance(v, str | bytes)
    ]
    found = sorted(
        {
            m
            for text in [*texts, *(b.decode() for b in recorded.bodies.values())]
            for m in _TRACE.findall(text)
        }
    )
    traces = [(slot(f"trace.{n}", value), value[-2:]) for n, value in enumerate(found)]
    bsn_slot = -1
    seal_slots: list[tuple[bool, Any, int]] = []
    for scope, value, sealed in recorded.sealed:
        if scope.case_id != ids.case_id or scope.subject not in (None, subject):
            raise RuntimeError("the template sealed a value under a scope of another case or subject")
        seal_slots.append(
            (
                scope.subject is not None,
                value,
                slot(f"sealed.{len(seal_slots)}", base64.b64encode(sealed.ciphertext).decode()),
            )
        )
    pattern = re.compile("|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True)))

    def compile_text(text: str, where: str, plaintext: bool = False) -> Text:
        pieces, slots, at = [], [], 0
        for match in pattern.finditer(text):
            pieces.append(text[at : match.start()])
            slots.append(keys[match.group(0)])
            at = match.end()
        pieces.append(text[at:])
        if not plaintext and (bsn_slot in slots or any(ids.bsn in piece for piece in pieces)):
            raise RuntimeError(f"a BSN in clear in {where}")
        for piece in pieces:
            if _UUID.search(piece):
                raise RuntimeError(f"an id the loader cannot derive in {where}")
            if _CIPHERTEXT.search(piece):
                raise RuntimeError(f"a sealed value the loader did not record in {where}")
        return Text(tuple(pieces), tuple(slots))

    bsn_slot = slot("bsn", ids.bsn)  # only ever in plaintexts (``compile_text`` checks the rows)
    pattern = re.compile("|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True)))
    seals = [
        Seal(
            subject_scope,
            compile_text(json.dumps(value, ensure_ascii=False), "a sealed value", plaintext=True),
            at,
        )
        for subject_scope, value, at in seal_slots
    ]
    assert bsn_slot == len(slot_names) - 1
    tables, key_rows, tracking = [], [], []
    for name, (columns, rows) in contents.items():
        if name.endswith("_tracking"):
            tracking += [(name, str(row[0]), int(row[1])) for row in rows]
            continue
        if name == "keten_keys":
            for row in rows:
                record = dict(zip(columns, row, strict=True))
                key_rows.append(
                    KeyRow(
                        compile_text(record["key_id"], name),
                        str(record["created_at"]),
                        "/" in record["key_id"],
                    )
                )
            continue
        table = Table(name, columns)
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            cells = []
            for column, value in record.items():
                where = f"{name}.{column}"
                if name.endswith("_events") and column == "notification_id":
                    cells.append(Cell("position", value, log=name.removesuffix("_events")))
                elif name.endswith("_received") and column == "position":
                    if record["stream"] not in per_citizen:
                        raise RuntimeError(f"{where}: a stream the loader does not derive")
                    cells.append(Cell("position", value, log=record["stream"]))
                elif name.endswith("_received") and column == "digest":
                    body = recorded.bodies[(record["stream"], record["position"])]
                    if event_digest(json.loads(body)) != value:
                        raise RuntimeError(f"{where}: the recorded message does not hash to the digest")
                    cells.append(
                        Cell("digest", text=compile_text(body.decode(), where), log=record["stream"])
                    )
                elif isinstance(value, str):
                    cells.append(Cell("text", text=compile_text(value, where)))
                elif isinstance(value, bytes):
                    cells.append(Cell("bytes", text=compile_text(value.decode(), where)))
                else:
                    cells.append(Cell("keep", value))
            table.rows.append(tuple(cells))
            table.lines.append(_line(cells, len(slot_names)))
        tables.append(table)
    return Template(
        shares=len(ids.request_ids),
        recipient=recipient,
        pseudonym_secret=settings.pseudonym_secret,
        master_key=settings.master_key,
        per_citizen=per_citizen,
        tables=tables,
        keys=key_rows,
        seals=[*seals],
        slot_names=slot_names,
        messages=messages,
        traces=traces,
        tracking=tracking,
    )


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


# -- one citizen ----------------------------------------------------------------------------------
class MintedKeys(KeyStore):
    """A key store that makes each scope's key in memory (as ``KeyStore.load_or_create`` would
    make and wrap it) and keeps the rows to copy in."""

    def __init__(self, master_key: bytes):
        super().__init__(None, master_key)  # type: ignore[arg-type]  # never reads or writes SQL
        self.minted: dict[str, bytes] = {}

    def mint(self, key_id: str) -> bytes:
        key = AESGCM.generate_key(bit_length=256)
        self.minted[key_id] = key
        return self._wrap(key_id, key)

    def load_or_create(self, scope: KeyScope) -> bytes:
        return self.minted[scope.key_id]  # minted with the citizen's key rows, first


def citizen_values(
    template: Template, run: str, number: int, keys: MintedKeys
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The slots' values for citizen ``number`` and their key rows."""
    ids = citizen_ids(run, number, template.shares)
    subject = pseudonymise(ids.bsn, template.pseudonym_secret)
    values = [""] * len(template.slot_names)
    named: dict[str, str] = {}

    def put(name: str, value: str) -> None:
        values[template.slot_of[name]] = value
        named[name] = value

    for name, value in named_ids(ids, subject, template.recipient):
        put(name, value)
    for slot, app, originator_slot, version in template.messages:
        values[slot] = str(uuid.uuid5(MESSAGE_NAMESPACE, f"{app}/{named[originator_slot]}/{version}"))
    for slot, flags in template.traces:
        values[slot] = f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-{flags}"
    values[-1] = ids.bsn
    key_rows = []
    for key in template.keys:
        key_id = key.key_id.render(values)
        key_rows.append(
            (key_id, str(ids.case_id), keys.mint(key_id), keys.master_key_id, key.created_at, None)
        )
    vault = Vault(keys, cache_size=len(template.keys))
    for seal in template.seals:
        scope = KeyScope(ids.case_id, subject if seal.subject_scope else None)
        sealed = vault.seal(scope, json.loads(seal.plaintext.render(values)))
        values[seal.slot] = base64.b64encode(sealed.ciphertext).decode()
    keys.minted.clear()
    return values, key_rows


def _line(cells: Sequence[Cell], slots: int) -> Line:
    """The row's ``COPY`` line as a format: literal text escaped once here (the values put in
    are ids, hex and base64: nothing to escape)."""

    def literal(text: str) -> str:
        return _copy_text(text).replace("{", "{{").replace("}", "}}")

    def filled(text: Text, offset: int = 0, form: Any = literal) -> str:
        out = [form(text.pieces[0])]
        for slot, piece in zip(text.slots, text.pieces[1:], strict=True):
            out += ["{" + str(slot + offset) + "}", form(piece)]
        return "".join(out)

    columns, position, digest = [], None, None
    for cell in cells:
        if cell.kind == "text":
            columns.append(filled(cell.text))  # type: ignore[arg-type]
        elif cell.kind == "bytes":
            columns.append("\\\\x" + filled(cell.text, slots, lambda piece: piece.encode().hex()))  # type: ignore[arg-type]
        elif cell.kind == "position":
            columns.append("{" + str(2 * slots) + "}")
            position = (int(cell.value), cell.log)
        elif cell.kind == "digest":
            columns.append("{" + str(2 * slots + 1) + "}")
            digest = cell.text
        else:
            columns.append("\\N" if cell.value is None else literal(str(cell.value)))
    return Line("\t".join(columns), position, digest)


def citizen_lines(template: Template, number: int, values: list[str]) -> dict[str, list[str]]:
    """Citizen ``number``'s rows in every table, as ``COPY`` lines."""
    filled = (*values, *(value.encode().hex() for value in values))
    lines: dict[str, list[str]] = {}
    for table in template.tables:
        made = lines.setdefault(table.name, [])
        for line in table.lines:
            if line.position is None:
                made.append(line.fmt.format(*filled))
                continue
            position = line.position[0] + number * template.per_citizen[line.position[1]]
            digest = ""
            if line.digest is not None:
                body = json.loads(line.digest.render(values))
                body["position"] = position
                digest = event_digest(body)
            made.append(line.fmt.format(*filled, position, digest))
    return lines


# -- many citizens, in worker processes -------------------------------------------------------------
_worker: dict[str, Any] = {}


def _start_worker(template: Template, run: str, dsn: str, schema: str) -> None:
    import psycopg2

    _worker.update(
        template=template,
        run=run,
        keys=MintedKeys(template.master_key),
        conn=psycopg2.connect(dsn, options=f"-c search_path={schema}"),
    )


def _derive_chunk(numbers: range) -> int:
    template: Template = _worker["template"]
    tables: dict[str, list[str]] = {table.name: [] for table in template.tables}
    keys: list[tuple[Any, ...]] = []
    for number in numbers:
        values, key_rows = citizen_values(template, _worker["run"], number, _worker["keys"])
        keys += key_rows
        for name, lines in citizen_lines(template, number, values).items():
            tables[name] += lines
    conn = _worker["conn"]
    with conn, conn.cursor() as cur:
        for table in template.tables:
            buffer = io.StringIO("\n".join(tables[table.name]) + "\n")
            cur.copy_expert(f"COPY {table.name} ({', '.join(table.columns)}) FROM STDIN", buffer)
        copy_rows(
            cur, "keten_keys", "key_id, case_id, wrapped_key, master_key_id, created_at, shredded_at", keys
        )
    return len(numbers)


def derive_citizens(
    settings: Settings, template: Template, run: str, numbers: range, workers: int, chunk: int = CHUNK
) -> None:
    """Citizens ``numbers`` derived from the template and copied in by ``workers`` processes
    of their own (``python -m keten.bench.derive``: the benchmark's process runs eventlet), each
    taking every ``workers``-th chunk."""
    if not numbers:
        return
    arguments = (template, run, settings.database_url, settings.database_schema)
    workers = max(1, min(workers, -(-len(numbers) // chunk)))
    if workers == 1:
        _derive(arguments, numbers, 0, 1, chunk)
        return
    with tempfile.TemporaryDirectory(prefix="keten-loader-") as scratch:
        path = Path(scratch) / "template.pickle"
        path.write_bytes(pickle.dumps(arguments))
        processes = [
            subprocess.Popen(  # noqa: S603 (our own module)
                [
                    sys.executable,
                    "-m",
                    "keten.bench.derive",
                    str(path),
                    str(numbers.start),
                    str(numbers.stop),
                    str(n),
                    str(workers),
                    str(chunk),
                ],
                stderr=subprocess.PIPE,
                preexec_fn=stop_with_parent,
            )
            for n in range(workers)
        ]
        ended = [(p.communicate()[1], p.returncode) for p in processes]
    for stderr, code in ended:
        if code != 0:
            raise RuntimeError(f"a loader worker failed: {stderr.decode(errors='replace')[-2000:]}")


def _derive(arguments: tuple[Any, ...], numbers: range, worker: int, workers: int, chunk: int) -> None:
    """This process's share of ``numbers``: chunks ``worker``, ``worker + workers``, ..."""
    _start_worker(*arguments)
    try:
        with blocking_psycopg2():  # one worker: the benchmark's own process, where eventlet waits
            for at in range(worker * chunk, len(numbers), workers * chunk):
                _derive_chunk(numbers[at : at + chunk])
    finally:
        _worker.pop("conn").close()


def finish(settings: Settings, template: Template, citizens: int) -> None:
    """The tracking records at the last citizen's positions, each log's sequence past its last
    event, and fresh planner statistics (as autovacuum would gather them in time)."""
    import psycopg2

    conn = psycopg2.connect(settings.database_url, options=f"-c search_path={settings.database_schema}")
    try:
        with conn, conn.cursor() as cur:
            for table, upstream, position in template.tracking:
                cur.execute(
                    f"UPDATE {table} SET notification_id = %s WHERE application_name = %s",
                    (position + (citizens - 1) * template.per_citizen[upstream], upstream),
                )
            for app in template.per_citizen:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{app}_events', 'notification_id'),"
                    f" (SELECT max(notification_id) FROM {app}_events))"
                )
        conn.autocommit = True
        with conn.cursor() as cur:
            for table in [*(t.name for t in template.tables), "keten_keys"]:
                cur.execute(f"ANALYZE {table}")
    finally:
        conn.close()


@contextmanager
def blocking_psycopg2() -> Iterator[None]:
    """psycopg2 cannot COPY while eventlet's wait callback makes it cooperative; the loader runs
    alone, so blocking the hub for a COPY harms nothing."""
    import psycopg2.extensions

    callback = psycopg2.extensions.get_wait_callback()
    psycopg2.extensions.set_wait_callback(None)
    try:
        yield
    finally:
        psycopg2.extensions.set_wait_callback(callback)


def copy_rows(cur: Any, table: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
    """``rows`` into ``table`` with one ``COPY`` (text format)."""
    if not rows:
        return
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(_copy_text(value) for value in row))
        buffer.write("\n")
    buffer.seek(0)
    cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)


def _copy_text(value: Any) -> str:
    """A value in COPY's text format (bytes as bytea hex)."""
    if value is None:
        return "\\N"
    text = "\\x" + value.hex() if isinstance(value, bytes) else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


if __name__ == "__main__":  # a worker of ``derive_citizens``
    template_path, start, stop, worker, workers, chunk = sys.argv[1:]
    _derive(
        pickle.loads(Path(template_path).read_bytes()),  # noqa: S301 (written by our parent just now)
        range(int(start), int(stop)),
        int(worker),
        int(workers),
        int(chunk),
    )
