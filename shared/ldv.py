"""Logboek Dataverwerkingen (LDV): every processing of personal data as a log record.

Logius' standard asks an application to write one log record per processing action and data
subject, in a trace that follows the processing across applications (W3C Trace Context), with
the fields ``trace_id``, ``span_id``, ``parent_span_id``, ``name``, ``start_time``, ``end_time``,
``status``, ``resource`` and ``attributes``, where the attributes hold
``dpl.core.processing_activity_id`` (a URI into a register of processing activities),
``dpl.core.data_subject_id`` with ``dpl.core.data_subject_id_type``, and, when another
application called, ``dpl.core.foreign_operation.processor``. It recommends OpenTelemetry; a
record here is an OpenTelemetry span, so any LDV collector that takes OTLP takes them.

What is a processing is said where the events are: each application maps the domain events
that record one to a ``Processing`` (``KetenApplication.processings``). When such an event is
saved, a span is started for it (one per data subject, under one for the processing, when it
has several), the event is stamped with that span's ``traceparent`` (kept with the stored
event, outside its signed body: the relay sends it on as a header) and the span ends, and is
exported, once the transaction has committed; work that fails on a concurrent change or a
redelivery (``IntegrityError``) leaves no record, other failures a record with status
``Error``. What is not an event (a citizen reading the overview) is recorded with ``record``.

Nothing personal is in a record: the subject is the keyed pseudonym, never the BSN; names,
contents and free text never become attributes. Exporters (``KETEN_LDV_FILE``, a JSON-lines
file of records in the standard's field names; ``KETEN_LDV_OTLP_ENDPOINT``, OTLP over HTTP) run
in the background (a batch processor), so a processing does not wait for the log.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventsourcing.persistence import IntegrityError
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SynchronousMultiSpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, format_span_id, format_trace_id

from shared import tracing
from shared.catalogue import Catalogue, load_catalogue
from shared.config import Settings
from shared.ldv_register import SUBJECT_ID_TYPE, ActivityRegister, platform_key

log = logging.getLogger(__name__)

PROCESSING_ACTIVITY_ID = "dpl.core.processing_activity_id"
DATA_SUBJECT_ID = "dpl.core.data_subject_id"
DATA_SUBJECT_ID_TYPE = "dpl.core.data_subject_id_type"
FOREIGN_PROCESSOR = "dpl.core.foreign_operation.processor"
#: The standard's error attribute (its section on errors); only the type: a message could
#: quote what a caller sent.
EXCEPTION_TYPE = "exception.type"

#: The fields of a record, as the standard names them, and whether each is required.
RECORD_FIELDS = {
    "trace_id": True,
    "span_id": True,
    "status": True,
    "name": True,
    "start_time": True,
    "end_time": True,
    "parent_span_id": False,
    "resource": False,
    "attributes": True,
}
STATUS_NAMES = {StatusCode.UNSET: "Unset", StatusCode.OK: "Ok", StatusCode.ERROR: "Error"}

#: The attribute of a stored event that holds the trace context it was made in.
TRACEPARENT_ATTRIBUTE = "traceparent"
SHARE = "share"


@dataclass(frozen=True)
class Processing:
    """How a domain event is a processing of personal data: the record's ``name``, the
    activity (a platform activity's name, or ``SHARE``: the acting agency's activity for the
    event's ``purpose``), and the event attribute naming the acting agency (for the share's
    activity and as the caller when the trace came from outside). ``ok`` gives status ``Ok``;
    a processing that ended as the rules say but not as asked (a refusal) is ``Unset``."""

    name: str
    activity: str
    actor: str = ""
    ok: bool = True
    #: Event attributes naming (by pseudonym) other people whose data the processing uses: the
    #: representative who acts for a minor is a data subject of the record as well.
    also_subjects: tuple[str, ...] = ()


def subjects_of(event: object, processing: Processing | None = None) -> tuple[str, ...]:
    """The data subjects (pseudonyms) an event is about: ``subjects`` or ``subject``, and those
    the processing's ``also_subjects`` name. Only plain strings count: anything else could be a
    value holding personal data."""
    many = getattr(event, "subjects", None)
    if many and not isinstance(many, str):
        found = tuple(s for s in many if isinstance(s, str))
    else:
        one = getattr(event, "subject", None)
        found = (one,) if isinstance(one, str) and one else ()
    for attribute in processing.also_subjects if processing else ():
        other = getattr(event, attribute, None)
        if isinstance(other, str) and other and other not in found:
            found = (*found, other)
    return found


def actor_of(event: object, attribute: str) -> str | None:
    if not attribute:
        return None
    value = getattr(event, attribute, None)
    if isinstance(value, Mapping):  # a professional: {"agency": ..., ...}
        value = value.get("agency")
    return value if isinstance(value, str) and value else None


def ldv_record(span: ReadableSpan) -> dict[str, Any]:
    """A finished span as the standard's log record (ids in hex, times in ms since the epoch)."""
    context = span.get_span_context()
    assert context is not None and span.start_time is not None and span.end_time is not None
    record: dict[str, Any] = {
        "trace_id": format_trace_id(context.trace_id),
        "span_id": format_span_id(context.span_id),
        "status": STATUS_NAMES[span.status.status_code],
        "name": span.name,
        "start_time": span.start_time // 1_000_000,
        "end_time": span.end_time // 1_000_000,
    }
    if span.parent is not None:
        record["parent_span_id"] = format_span_id(span.parent.span_id)
    record["resource"] = {"attributes": dict(span.resource.attributes)}
    record["attributes"] = dict(span.attributes or {})
    return record


class JsonLinesExporter(SpanExporter):
    """Appends each record to a file, one JSON object a line (the embedded platform's log)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(ldv_record(span), separators=(",", ":")) + "\n" for span in spans)
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as file:
                    file.write(lines)
        except OSError as exc:
            log.error("ldv: cannot write %s (%s)", self.path, type(exc).__name__)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


_pending: ContextVar[list[tuple[Span, Processing]] | None] = ContextVar("keten_ldv_pending", default=None)


class ProcessingLog:
    """The process's LDV log: a tracer per service (its ``resource``), the register records
    point at, and the exporters every record goes to."""

    def __init__(self, register: ActivityRegister, catalogue: Catalogue):
        self.register = register
        self.catalogue = catalogue
        self.processors = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
        self._providers: dict[str, TracerProvider] = {}
        self._tracers: dict[str, trace.Tracer] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings, catalogue: Catalogue | None = None) -> ProcessingLog:
        catalogue = catalogue or load_catalogue()
        register = ActivityRegister.load(settings.ldv_register_url, catalogue, settings.ldv_register_file)
        processing_log = cls(register, catalogue)
        if settings.ldv_file is not None:
            processing_log.add_exporter(JsonLinesExporter(settings.ldv_file))
        if settings.ldv_otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            processing_log.add_exporter(OTLPSpanExporter(endpoint=settings.ldv_otlp_endpoint))
        return processing_log

    def add_exporter(self, exporter: SpanExporter, batch: bool = True) -> None:
        """Sends every record from now on to ``exporter`` too (in the background if ``batch``)."""
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        self.processors.add_span_processor(
            BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        )

    def flush(self, timeout_millis: int = 10_000) -> bool:
        return self.processors.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self.processors.shutdown()

    def tracer(self, service: str) -> trace.Tracer:
        found = self._tracers.get(service)
        if found is not None:
            return found
        with self._lock:
            provider = self._providers.get(service)
            if provider is None:
                provider = TracerProvider(
                    sampler=ALWAYS_ON,  # the standard forbids sampling: every processing is logged
                    resource=Resource.create(
                        {"service.name": f"keten-{service}", "service.namespace": "keten"}
                    ),
                    shutdown_on_exit=False,
                    active_span_processor=self.processors,
                )
                self._providers[service] = provider
            self._tracers[service] = provider.get_tracer("keten.ldv")
        return self._tracers[service]

    # -- what a processing records ---------------------------------------------------------
    def activity_uri(self, processing: Processing, event: object) -> str:
        if processing.activity == SHARE:
            return self.register.share_uri(
                str(getattr(event, "purpose", "")), actor_of(event, processing.actor) or ""
            )
        return self.register.uri(platform_key(processing.activity))

    def processor_url(self, agency: str | None) -> str:
        """The caller's address for ``dpl.core.foreign_operation.processor``: the agency's
        website from the catalogue, else a URN naming it."""
        found = self.catalogue.agencies.get(agency or "")
        if found is not None and found.contact.website:
            website = found.contact.website
            return website if "://" in website else f"https://{website}"
        return f"urn:keten:agency:{agency or 'unknown'}"

    def start(
        self,
        service: str,
        processing: Processing,
        activity_uri: str,
        subjects: Sequence[str],
        actor: str | None = None,
        parent: Context | None = None,
    ) -> list[Span]:
        """Starts the spans of one processing, children of ``parent`` (default: the current
        context): one per subject, under a span of the whole processing when it has several.
        The first span is the processing's."""
        tracer = self.tracer(service)
        attributes: dict[str, str] = {PROCESSING_ACTIVITY_ID: activity_uri}
        if tracing.foreign_var.get():
            attributes[FOREIGN_PROCESSOR] = self.processor_url(actor)
        started = tracing.started_var.get() or time.time_ns()

        def span(subject: str | None, whole: Span | None) -> Span:
            named = dict(attributes)
            if subject is not None:
                named.update({DATA_SUBJECT_ID: subject, DATA_SUBJECT_ID_TYPE: SUBJECT_ID_TYPE})
            context = trace.set_span_in_context(whole) if whole is not None else parent
            return tracer.start_span(
                processing.name, context=context, kind=SpanKind.INTERNAL, attributes=named, start_time=started
            )

        if len(subjects) <= 1:
            return [span(subjects[0] if subjects else None, None)]
        whole = span(None, None)
        return [whole, *(span(subject, whole) for subject in subjects)]

    @contextmanager
    def records(self) -> Iterator[None]:
        """Collects the spans stamped in this block; ends (exports) them when it succeeds."""
        if _pending.get() is not None:  # nested: the outer block ends them
            yield
            return
        started: list[tuple[Span, Processing]] = []
        token = _pending.set(started)
        try:
            yield
        except IntegrityError:
            raise  # nothing was recorded: no record (the spans are never ended, so never sent)
        except BaseException as exc:
            for span, _ in started:
                span.set_status(Status(StatusCode.ERROR))
                span.set_attribute(EXCEPTION_TYPE, type(exc).__name__)
                span.end()
            raise
        else:
            for span, processing in started:
                _end(span, processing)
        finally:
            _pending.reset(token)

    def stamp(self, service: str, processings: Mapping[str, Processing], event: object) -> None:
        """Before ``event`` is stored: starts its processing's spans (in a ``records`` block)
        and stamps it with the trace context its consequences continue."""
        processing = processings.get(type(event).__name__)
        pending = _pending.get()
        # An event may carry the trace of the work it follows from (a notification sent later,
        # by a timer, continues the trace of the share it tells of); else the current one.
        carried = traceparent_of(event)
        if processing is None or pending is None:
            traceparent = carried or tracing.current_traceparent()
        else:
            actor = actor_of(event, processing.actor)
            parent = tracing.parent_from({tracing.TRACEPARENT: carried}) if carried else None
            spans = self.start(
                service,
                processing,
                self.activity_uri(processing, event),
                subjects_of(event, processing),
                actor,
                parent,
            )
            pending.extend((span, processing) for span in spans)
            traceparent = tracing.carrier_of(trace.set_span_in_context(spans[0])).get(tracing.TRACEPARENT)
        if traceparent:
            object.__setattr__(event, TRACEPARENT_ATTRIBUTE, traceparent)

    def record(self, service: str, processing: Processing, subjects: Sequence[str]) -> None:
        """A processing of one of the platform's activities that is no event (a citizen reading
        their overview), done now."""
        for span in self.start(service, processing, self.activity_uri(processing, None), subjects):
            _end(span, processing)


def _end(span: Span, processing: Processing) -> None:
    """Ends a processing's span that succeeded: ``Ok``, or ``Unset`` for a refusal (the
    standard's status for work done as the rules say, but not as the caller asked)."""
    if processing.ok:
        span.set_status(Status(StatusCode.OK))
    span.end()


def traceparent_of(domain_event: object) -> str | None:
    """The trace context a stored event was made in, if it was stamped with one."""
    value = getattr(domain_event, TRACEPARENT_ATTRIBUTE, None)
    return value if isinstance(value, str) else None


_logs: dict[tuple[Any, ...], ProcessingLog] = {}
_logs_lock = threading.Lock()


def processing_log(settings: Settings, catalogue: Catalogue | None = None) -> ProcessingLog:
    """The process's LDV log for these settings (one set of exporters per process)."""
    key = (
        settings.ldv_file,
        settings.ldv_otlp_endpoint,
        settings.ldv_register_url,
        settings.ldv_register_file,
    )
    with _logs_lock:
        if key not in _logs:
            _logs[key] = ProcessingLog.for_settings(settings, catalogue)
            atexit.register(_logs[key].shutdown)
        return _logs[key]
