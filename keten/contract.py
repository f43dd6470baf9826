"""The published contract, generated from the code: what agencies integrate with.

- ``docs/asyncapi.yaml`` (AsyncAPI 3): the commands an agency may send, the messages it may find
  in its inbox, and the whole broker topology (exchanges, routing keys, queues, bindings) with
  the platform's internal events; from ``shared.contracts`` and ``shared.topology``.
- ``docs/openapi.yaml`` (OpenAPI 3.1): the gateway's HTTP API; request and response bodies from
  the same schemas, the routes from the gateway's entrypoints.
- ``deploy/rabbitmq/definitions.json``: the topology as RabbitMQ definitions, for operators who
  provision the broker before the services start (the services declare the same at start).

``keten contract asyncapi|openapi|rabbitmq`` prints a document; ``--write`` updates the file in
the repository and ``--check`` fails if it is out of date (a test does the same).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from kombu import Queue
from marshmallow import Schema, fields, validate

from keten.examples import command_examples
from shared.contracts.catalogue import CatalogueSchema
from shared.contracts.commands import COMMAND_SCHEMAS, LEDGER_QUERY, GetLedgerSchema, LedgerSchema
from shared.contracts.commands.base import COMMAND_VERSION, CONSISTENCY_FIELD
from shared.contracts.commands.consent import (
    CitizenRequestBodySchema,
    CitizenRequestListSchema,
    CitizenRequestsSchema,
    CitizenRequestStatusSchema,
    RepresentationsSchema,
)
from shared.contracts.envelope import ENVELOPE_VERSION, EnvelopeSchema
from shared.contracts.events import EVENT_SCHEMAS
from shared.contracts.fields import SealedText, SealedValue
from shared.contracts.inbox import INBOX_SCHEMAS, INBOX_VERSION, ErrorSchema, InboxEnvelopeSchema
from shared.contracts.log import TREE_HEAD_SIGNED, TreeHeadSignedSchema
from shared.http_signatures import COVERED_COMPONENTS
from shared.reasons import share_refusals
from shared.topology import (
    COMMANDS_EXCHANGE,
    EVENTS_EXCHANGE,
    INBOX_EXCHANGE,
    LOG_EXCHANGE,
    UNROUTABLE_QUEUE,
    platform_exchanges,
    platform_queues,
    queue_bindings,
)
from shared.wire import CONTENT_INFO, CREATED_HEADER, KEY_ID_HEADER, SIGNATURE_HEADER

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = {
    "asyncapi": ROOT / "docs" / "asyncapi.yaml",
    "openapi": ROOT / "docs" / "openapi.yaml",
    "rabbitmq": ROOT / "deploy" / "rabbitmq" / "definitions.json",
}
CONTRACT_VERSION = f"{COMMAND_VERSION}.{ENVELOPE_VERSION}.{INBOX_VERSION}"


# -- schemas as JSON Schema ---------------------------------------------------------------------
def _schema_name(schema: type[Schema] | Schema) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__
    return name.removesuffix("Schema") or name


def _spec(openapi_version: str = "3.1.0") -> tuple[APISpec, MarshmallowPlugin]:
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec("Keten", CONTRACT_VERSION, openapi_version, plugins=[plugin])
    plugin.converter.map_to_openapi_type(SealedValue, "object", None)  # type: ignore[union-attr]
    plugin.converter.map_to_openapi_type(SealedText, "object", None)  # type: ignore[union-attr]
    return spec, plugin


def _add(spec: APISpec, schema: type[Schema]) -> dict[str, str]:
    name = _schema_name(schema)
    if name not in spec.components.schemas:
        spec.components.schema(name, schema=schema)
    return {"$ref": f"#/components/schemas/{name}"}


def _doc(schema: type[Schema]) -> str:
    return " ".join((schema.__doc__ or "").split())


# -- AsyncAPI -----------------------------------------------------------------------------------
def asyncapi_document() -> dict[str, Any]:
    spec, _ = _spec()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    signed_headers = {
        "type": "object",
        "required": [KEY_ID_HEADER, CREATED_HEADER, SIGNATURE_HEADER],
        "properties": {
            KEY_ID_HEADER: {"type": "string", "description": "the id of the agency's signing key"},
            CREATED_HEADER: {
                "type": "string",
                "format": "date-time",
                "description": "when the command was made (ISO-8601 with offset); refused once older "
                "than the replay window (command_expired)",
            },
            SIGNATURE_HEADER: {
                "type": "string",
                "description": "base64 Ed25519 signature of routing key + LF + message_id + LF + "
                f"{CREATED_HEADER} + LF + body (docs/agencies.md); the message_id property is required "
                "and counts once (command_replayed)",
            },
        },
    }
    event_headers = {
        "type": "object",
        "required": [KEY_ID_HEADER, SIGNATURE_HEADER],
        "properties": {
            KEY_ID_HEADER: {"type": "string", "description": "the id of the publishing service's event key"},
            SIGNATURE_HEADER: {
                "type": "string",
                "description": "base64 Ed25519 signature of 'keten event v1' + LF + body by the "
                "publishing service's key; consumers dead-letter anything else (docs/architecture.md)",
            },
        },
    }
    reply_messages = []
    for name, inbox_schema in sorted(INBOX_SCHEMAS.items()):
        messages[f"inbox.{name}"] = {
            "name": name,
            "title": name,
            "summary": _doc(inbox_schema),
            "contentType": "application/json",
            "headers": INBOX_HEADERS,
            "payload": _envelope(spec, InboxEnvelopeSchema, name, _add(spec, inbox_schema)),
            "correlationId": {"location": "$message.payload#/correlation_id"},
            "bindings": {
                "amqp": {"contentEncoding": "utf-8", "messageType": name, "bindingVersion": "0.3.0"}
            },
            "x-amqp-properties": INBOX_PROPERTIES,
            "x-keten-routing-key": f"{{agency}}.{name}",
        }
        if name.startswith("Command"):
            reply_messages.append({"$ref": f"#/channels/directReplyTo/messages/{name}"})
    _add(spec, ErrorSchema)

    examples = command_examples()
    for command, schema in sorted(COMMAND_SCHEMAS.items(), key=lambda item: (item[1].service, item[0])):
        key = f"command.{schema.service}.{command}"
        message: dict[str, Any] = {
            "name": command,
            "title": command,
            "summary": _doc(schema),
            "contentType": "application/json",
            "headers": signed_headers,
            "payload": _add(spec, schema),
        }
        if schema.reply_schema is not None:
            message["x-keten-reply-result"] = {
                "allOf": [
                    _add(spec, schema.reply_schema),
                    {"$ref": "#/components/schemas/ConsistencyTokenAnswer"},
                ]
            }
        message["bindings"] = {"amqp": {"contentEncoding": "utf-8", "bindingVersion": "0.3.0"}}
        message["x-amqp-properties"] = COMMAND_PROPERTIES
        message["examples"] = [
            {"name": command, "summary": f"a complete {command}", "payload": examples[command]}
        ]
        messages[key] = message
        channels[key] = {
            "address": f"{{agency}}.{schema.service}.{command}",
            "title": f"{command} ({schema.service})",
            "parameters": {"agency": {"description": "your agency id; the broker refuses any other"}},
            "messages": {command: {"$ref": f"#/components/messages/{key}"}},
            "bindings": {"amqp": _exchange_binding(COMMANDS_EXCHANGE)},
        }
        operations[f"send.{command}"] = {
            "action": "send",
            "title": f"send {command}",
            "summary": _doc(schema),
            "channel": {"$ref": f"#/channels/{key}"},
            "messages": [{"$ref": f"#/channels/{key}/messages/{command}"}],
            "bindings": {"amqp": {"deliveryMode": 2, "mandatory": True, "bindingVersion": "0.3.0"}},
            "reply": {
                "channel": {"$ref": "#/channels/directReplyTo"},
                "messages": reply_messages,
            },
        }
    channels["directReplyTo"] = {
        "address": "amq.rabbitmq.reply-to",
        "title": "direct reply-to",
        "description": "RabbitMQ's direct reply-to: the answer to a command sent with "
        "reply_to=amq.rabbitmq.reply-to, on the same channel (the same answer also goes to the inbox)",
        "messages": {
            name: {"$ref": f"#/components/messages/inbox.{name}"}
            for name in INBOX_SCHEMAS
            if name.startswith("Command")
        },
    }
    inbox_messages = {name: {"$ref": f"#/components/messages/inbox.{name}"} for name in sorted(INBOX_SCHEMAS)}
    channels["inbox"] = {
        "address": "keten.inbox.{agency}",
        "title": "your inbox",
        "description": f"Your quorum queue, bound to {INBOX_EXCHANGE} with {{agency}}.#: answers to "
        "your commands and shares made to you; only you may read it.",
        "parameters": {"agency": {"description": "your agency id"}},
        "messages": inbox_messages,
        "bindings": {"amqp": _queue_binding_for("keten.inbox.{agency}", quorum=True)},
    }
    operations["receive.inbox"] = {
        "action": "receive",
        "title": "read your inbox",
        "channel": {"$ref": "#/channels/inbox"},
        "messages": [{"$ref": f"#/channels/inbox/messages/{name}"} for name in sorted(INBOX_SCHEMAS)],
        "bindings": {"amqp": {"ack": True, "bindingVersion": "0.3.0"}},
    }

    for event, event_schema in sorted(EVENT_SCHEMAS.items()):
        key = f"event.{event_schema.source}.{event}"
        messages[key] = {
            "name": event,
            "title": event,
            "contentType": "application/json",
            "headers": event_headers,
            "payload": _envelope(spec, EnvelopeSchema, event, _add(spec, event_schema), field="event"),
        }
        channels[key] = {
            "address": f"{event_schema.source}.{event}",
            "title": f"{event} (internal)",
            "description": f"Published by {event_schema.source} on {EVENTS_EXCHANGE}; the platform's own, "
            "never delivered to an agency.",
            "messages": {event: {"$ref": f"#/components/messages/{key}"}},
            "bindings": {"amqp": _exchange_binding(EVENTS_EXCHANGE)},
            "tags": [{"name": "internal"}],
        }
    messages[f"log.{TREE_HEAD_SIGNED}"] = {
        "name": TREE_HEAD_SIGNED,
        "title": TREE_HEAD_SIGNED,
        "summary": _doc(TreeHeadSignedSchema),
        "contentType": "application/json",
        "payload": _add(spec, TreeHeadSignedSchema),
    }
    channels["log"] = {
        "address": f"{{log}}.{TREE_HEAD_SIGNED}",
        "title": "signed tree heads of the verifiable logs",
        "description": f"Each head a service signs, on {LOG_EXCHANGE} (no alternate exchange: a head no "
        "queue takes is dropped; all are also at GET /api/log/head). A witness binds a queue of its "
        "own, with the operator's grant. The head verifies by itself: pin the log's public key.",
        "parameters": {"log": {"description": "consent, data_sharing, notification or retention"}},
        "messages": {TREE_HEAD_SIGNED: {"$ref": f"#/components/messages/log.{TREE_HEAD_SIGNED}"}},
        "bindings": {"amqp": _exchange_binding(LOG_EXCHANGE)},
    }
    operations["receive.log"] = {
        "action": "receive",
        "title": "witness the signed tree heads",
        "channel": {"$ref": "#/channels/log"},
        "messages": [{"$ref": f"#/channels/log/messages/{TREE_HEAD_SIGNED}"}],
    }
    for queue in platform_queues():
        if queue.name.startswith("keten.inbox."):
            continue  # described once, as {agency}
        channels[f"queue.{queue.name}"] = {
            "address": queue.name,
            "title": f"{queue.name} (internal)",
            "description": _bindings_text(queue),
            "bindings": {"amqp": _queue_binding(queue)},
            "tags": [{"name": "internal"}],
        }

    schemas = spec.to_dict()["components"]["schemas"]
    schemas["ConsistencyTokenAnswer"] = {
        "type": "object",
        "properties": {
            CONSISTENCY_FIELD: {
                "type": "string",
                "description": "present when the command recorded something (or was sent a token): "
                "send it as consistency_token with your next command (docs/agencies.md)",
            }
        },
    }
    decision_codes = ["allowed", *sorted(share_refusals())]
    for component in ("ShareDecision", "LedgerEntry"):
        reason_code = schemas[component]["properties"]["reason_code"]
        reason_code["enum"] = decision_codes
        reason_code["description"] = (
            "allowed when the data were shared; otherwise why not (share_refusals in the catalogue)"
        )
    for component in ("ShareReceived", "ShareCorrectedMessage"):
        schemas[component]["properties"]["sealed_content"]["description"] = SEALED_CONTENT
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Keten message bus",
            "version": CONTRACT_VERSION,
            "description": "Generated by `keten contract asyncapi` from shared/contracts and "
            "shared/topology; do not edit. Seen from an agency: send signed commands to "
            f"{COMMANDS_EXCHANGE}, read answers and shares from your inbox. Channels tagged "
            "internal document the platform's own topology. A message with a routing key that no "
            f"queue takes is kept in the queue {UNROUTABLE_QUEUE} (the alternate exchange of "
            f"{COMMANDS_EXCHANGE}, {EVENTS_EXCHANGE} and {INBOX_EXCHANGE}), unanswered. How to "
            "connect, sign and open shared content: docs/agencies.md.",
            "tags": [{"name": "internal", "description": "the platform's own; not for agencies"}],
        },
        "defaultContentType": "application/json",
        "servers": {
            "broker": {
                "host": "{host}",
                "protocol": "amqp",
                "protocolVersion": "0-9-1",
                "pathname": "/{vhost}",
                "description": "the RabbitMQ broker; host, port and vhost come with your credentials",
                "variables": {
                    "host": {"description": "host:port from your amqp_url"},
                    "vhost": {"description": "the vhost from your amqp_url"},
                },
                "security": [{"$ref": "#/components/securitySchemes/agencyUser"}],
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                "agencyUser": {
                    "type": "userPassword",
                    "description": "your own broker user, from `keten agency add`",
                }
            },
        },
    }


def _envelope(
    spec: APISpec, envelope: type[Schema], name: str, data: dict[str, str], field: str = "message"
) -> dict[str, Any]:
    return {
        "allOf": [
            _add(spec, envelope),
            {"type": "object", "properties": {field: {"const": name}, "data": data}},
        ]
    }


def _exchange_binding(name: str) -> dict[str, Any]:
    return {
        "is": "routingKey",
        "exchange": {"name": name, "type": "topic", "durable": True, "autoDelete": False},
        "bindingVersion": "0.3.0",
    }


def _queue_binding_for(name: str, quorum: bool) -> dict[str, Any]:
    return {
        "is": "queue",
        "queue": {"name": name, "durable": True, "exclusive": False, "autoDelete": False},
        "bindingVersion": "0.3.0",
    }


def _queue_binding(queue: Queue) -> dict[str, Any]:
    return _queue_binding_for(queue.name, quorum=True)


def _bindings_text(queue: Queue) -> str:
    arguments = ", ".join(f"{k}={v}" for k, v in sorted(_arguments(queue).items()))
    keys = [f"{exchange} {key}" for exchange, key in queue_bindings(queue)]
    return f"bound to: {'; '.join(keys)}. Arguments: {arguments}."


def _arguments(queue: Queue) -> dict[str, Any]:
    return dict(getattr(queue, "queue_arguments", None) or {})


# -- RabbitMQ definitions -----------------------------------------------------------------------
def rabbitmq_definitions() -> dict[str, Any]:
    """The topology as a vhost's definitions (``POST /api/definitions/<vhost>``)."""
    exchanges = [
        {
            "name": e.name,
            "type": e.type,
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": dict(getattr(e, "arguments", None) or {}),
        }
        for e in platform_exchanges()
    ]
    queues, bindings = [], []
    for queue in platform_queues():
        queues.append(
            {
                "name": queue.name,
                "durable": True,
                "auto_delete": False,
                "arguments": _arguments(queue),
            }
        )
        for exchange, key in queue_bindings(queue):
            bindings.append(
                {
                    "source": exchange,
                    "destination": queue.name,
                    "destination_type": "queue",
                    "routing_key": key,
                    "arguments": {},
                }
            )
    return {
        "_comment": "Generated by `keten contract rabbitmq` from shared/topology.py; do not edit. "
        "Import into the platform's vhost: POST /api/definitions/<vhost>. Agencies' users and "
        "permissions are made by `keten agency add` (docs/agencies.md).",
        "exchanges": exchanges,
        "queues": queues,
        "bindings": bindings,
    }


#: The AMQP properties of a command (not headers: the properties of basic.publish).
COMMAND_PROPERTIES: dict[str, Any] = {
    "type": "object",
    "required": ["message_id", "content_type"],
    "properties": {
        "message_id": {
            "type": "string",
            "format": "uuid",
            "description": "required: a fresh UUID per message. A command without one is refused "
            "(message_id_missing) and not carried out: its answer could not be matched to it",
        },
        "content_type": {"const": "application/json"},
        "content_encoding": {"const": "utf-8"},
        "delivery_mode": {"const": 2, "description": "persistent"},
        "reply_to": {
            "const": "amq.rabbitmq.reply-to",
            "description": "optional: the answer also comes straight back on this channel; any "
            "other value is ignored (the answer always goes to your inbox)",
        },
        "correlation_id": {
            "type": "string",
            "description": "optional: your own; the answer carries it (else your message_id)",
        },
    },
}

#: The AMQP properties of what the platform puts in your inbox.
INBOX_PROPERTIES: dict[str, Any] = {
    "type": "object",
    "required": ["message_id", "content_type", "delivery_mode"],
    "properties": {
        "message_id": {
            "type": "string",
            "format": "uuid",
            "description": "stable: the same message delivered again has the same id; drop one you "
            "already handled (the envelope's message_id is the same)",
        },
        "correlation_id": {
            "type": "string",
            "description": "an answer: the correlation_id of your command (else its message_id); a "
            "share: the correlation of the request that made it",
        },
        "content_type": {"const": "application/json"},
        "content_encoding": {"const": "utf-8"},
        "delivery_mode": {"const": 2, "description": "persistent"},
    },
}

#: The headers of what the platform puts in your inbox (the routing key is {agency}.{message}).
INBOX_HEADERS: dict[str, Any] = {
    "type": "object",
    "required": ["keten-message", "keten-agency"],
    "properties": {
        "keten-message": {"type": "string", "description": "the message's name, as the envelope's message"},
        "keten-agency": {"type": "string", "description": "your agency id"},
    },
}

SEALED_CONTENT = (
    "base64 of an HPKE ciphertext (RFC 9180, base mode, single shot) sealed to your X25519 "
    "encryption key: KEM DHKEM(X25519, HKDF-SHA256) 0x0020, KDF HKDF-SHA256 0x0001, AEAD "
    f"AES-256-GCM 0x0002; the first 32 bytes are enc, the rest the ciphertext; info = the ASCII "
    f"bytes '{CONTENT_INFO.decode()}', aad empty. The plaintext is JSON: content, reference and "
    "subject.role. Null when withheld (content_withheld says why)"
)


# -- OpenAPI ------------------------------------------------------------------------------------
#: Routes of the gateway that are not a command: (summary, security, success status, response).
OTHER_ROUTES: dict[str, tuple[str, str | None, int, dict[str, Any] | type[Schema]]] = {
    "health": ("200 when every service answers and is healthy, else 503", None, 200, {"type": "object"}),
    "metrics": ("Prometheus metrics, text format", None, 200, {"type": "string"}),
    "retention_schedule": ("when each record of the case is due", "agency", 200, {"type": "object"}),
    "catalogue": (
        "the catalogue the platform decides by (as the get_catalogue command answers it)",
        "agency",
        200,
        CatalogueSchema,
    ),
    "ledger": (
        "the signing agency's accountability ledger (as the get_ledger command answers it); "
        "another agency's is 403",
        "agency",
        200,
        LedgerSchema,
    ),
    "log_in": (
        "DigiD stand-in, NOT real authentication: {bsn} gives a 15-minute session token",
        None,
        201,
        {
            "type": "object",
            "properties": {
                "token": {"type": "string"},
                "expires_in": {"type": "integer"},
                "identity_provider": {"type": "string"},
            },
        },
    ),
    "log_out": (
        "ends the bearer token's session: the token is refused from now on",
        "citizen",
        200,
        {
            "type": "object",
            "properties": {"ended": {"type": "boolean"}},
        },
    ),
    "request_erasure": (
        "the logged-in citizen asks that their records of a case ({case_id}) be erased",
        "citizen",
        200,
        {"type": "object"},
    ),
    "citizen_requests_due": (
        "the citizens' requests the signing agency must answer (open and overdue), soonest first",
        "agency",
        200,
        CitizenRequestListSchema,
    ),
    "citizen_requests": (
        "the logged-in citizen's requests with their deadlines and history",
        "citizen",
        200,
        CitizenRequestsSchema,
    ),
    "represented": (
        "the minors the logged-in citizen represents as their legal representative, per case "
        "(while the case says minor): the minor's overview of that case and their requests; the "
        "minor is named by subject_ref, never by BSN",
        "citizen",
        200,
        RepresentationsSchema,
    ),
    "submit_citizen_request": (
        "the logged-in citizen's request about one of their cases: {request_id (yours; the same id "
        "again is the same request), case_id, kind, agency (default: the record holder), text, "
        "for_subject (a minor's subject_ref: their representative acts for them)}; objection "
        "(without agency: to the whole case; with one: to that agency's part) and "
        "consent_withdrawal take effect at once, erasure is decided at once as "
        "/api/citizen/erasure; the others are answered by the agency within the deadline",
        "citizen",
        201,
        CitizenRequestStatusSchema,
    ),
    "withdraw_citizen_request": (
        "the logged-in citizen takes back a request that was not answered yet",
        "citizen",
        200,
        CitizenRequestStatusSchema,
    ),
    "overview": (
        "the logged-in citizen's overview; ?lang=en for English labels",
        "citizen",
        200,
        {"type": "object"},
    ),
    "processing_activities": (
        "the register of processing activities the Logboek Dataverwerkingen records point at "
        "(dpl.core.processing_activity_id), current and earlier versions; public",
        None,
        200,
        {"type": "object"},
    ),
    "processing_activity": (
        "one version of a processing activity, as a record's dpl.core.processing_activity_id names it",
        None,
        200,
        {"type": "object"},
    ),
}


#: An agency request carries all three headers of its HTTP Message Signature.
AGENCY_SIGNATURE: dict[str, list[str]] = {
    "agencySignatureInput": [],
    "agencySignature": [],
    "agencyContentDigest": [],
}

#: Commands the gateway answers with 201 Created.
CREATED = {
    "register_case",
    "give_consent",
    "place_legal_hold",
    "add_participant",
    "lodge_objection",
    "record_safety_override",
    "correct_share",
}


def gateway_routes() -> list[tuple[str, str, str]]:
    """``(method name, HTTP method, OpenAPI path)`` of every HTTP entrypoint of the gateway."""
    from nameko.web.handlers import HttpRequestHandler

    from services.gateway.service import GatewayService

    routes = []
    for name, attribute in vars(GatewayService).items():
        for entrypoint in getattr(attribute, "nameko_entrypoints", ()):
            if isinstance(entrypoint, HttpRequestHandler):
                routes.append((name, entrypoint.method, _openapi_path(entrypoint.url)))
    return sorted(routes, key=lambda route: (route[2], route[1]))


def _openapi_path(url: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", url)


def openapi_document() -> dict[str, Any]:
    spec, _ = _spec()
    error = {
        "description": "refused: {error: {code, message, field}}",
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"error": _add(spec, ErrorSchema)}}
            }
        },
    }
    retry_after = {
        "Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}
    }
    for name, method, path in gateway_routes():
        operation: dict[str, Any] = {"operationId": name}
        parameters = [
            {
                "name": p,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "format": "uuid"} if p.endswith("_id") else {"type": "string"},
            }
            for p in _path_parameters(path)
        ]
        parameters += _query_parameters(name)
        if parameters:
            operation["parameters"] = parameters
        command = COMMAND_SCHEMAS.get(name)
        if command is not None:
            status = 201 if name in CREATED else 200
            operation["summary"] = _doc(command)
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _add(spec, command)}},
            }
            reply = _add(spec, command.reply_schema) if command.reply_schema else {"type": "object"}
            operation["security"] = [AGENCY_SIGNATURE]
            responses: dict[str, Any] = {str(status): _json_response("carried out", reply)}
        else:
            summary, security, status, answer = OTHER_ROUTES.get(name, (name, None, 200, {"type": "object"}))
            body = _add(spec, answer) if isinstance(answer, type) else answer
            operation["summary"] = summary
            if security == "agency":
                operation["security"] = [AGENCY_SIGNATURE]
            elif security == "citizen":
                operation["security"] = [{"citizenSession": []}]
            if name == "submit_citizen_request":
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": _add(spec, CitizenRequestBodySchema)}},
                }
            if name == "log_in":
                operation["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"bsn": {"type": "string"}}}
                        }
                    },
                }
            responses = {str(status): _json_response("ok", body)}
        for code in ("400", "403", "404", "409"):
            responses[code] = error
        if method != "GET":
            responses["413"] = {**error, "description": "the body is larger than KETEN_MAX_REQUEST_BYTES"}
        if name in ("log_in", "page_log_in"):
            responses["429"] = {**error, "description": "too many login attempts", "headers": retry_after}
        responses["503"] = {
            **error,
            "description": "a service or the database cannot be reached; try again",
            "headers": retry_after,
        }
        operation["responses"] = responses
        spec.path(path=path, operations={method.lower(): operation})
    covered = " ".join(f'"{component}"' for component in COVERED_COMPONENTS)
    for scheme, header, description in (
        (
            "agencySignatureInput",
            "Signature-Input",
            f"RFC 9421: one signature covering ({covered}) with created, a fresh nonce, "
            'alg="ed25519" and keyid=<your key id>; at most KETEN_SIGNATURE_WINDOW seconds old '
            "(docs/agencies.md)",
        ),
        ("agencySignature", "Signature", "RFC 9421: the Ed25519 signature of the signature base"),
        ("agencyContentDigest", "Content-Digest", "RFC 9530: sha-256 (or sha-512) of the exact body"),
    ):
        spec.components.security_scheme(
            scheme, {"type": "apiKey", "in": "header", "name": header, "description": description}
        )
    spec.components.security_scheme("citizenSession", {"type": "http", "scheme": "bearer"})
    document = spec.to_dict()
    document["info"]["description"] = (
        "The gateway's HTTP API. Generated by `keten contract openapi` from the gateway's routes "
        "and shared/contracts; do not edit. Agencies sign each request with an HTTP Message "
        "Signature (RFC 9421) and a Content-Digest (RFC 9530); docs/agencies.md, section 6."
    )
    return document


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


#: Routes that take a query string: the command schema whose fields it holds.
QUERY_COMMANDS = {"ledger": (GetLedgerSchema, LEDGER_QUERY)}


def _query_parameters(name: str) -> list[dict[str, Any]]:
    """The query parameters of a GET route, described from its command's schema fields."""
    if name not in QUERY_COMMANDS:
        return []
    schema_cls, names = QUERY_COMMANDS[name]
    declared = schema_cls._declared_fields
    parameters = []
    for field_name in names:
        field = declared[field_name]
        schema: dict[str, Any] = {"type": "string"}
        if isinstance(field, fields.Date):
            schema["format"] = "date"
        elif isinstance(field, fields.UUID):
            schema["format"] = "uuid"
        if field.validate:
            for validator in field.validators:
                if isinstance(validator, validate.OneOf):
                    schema["enum"] = list(validator.choices)
        parameters.append(
            {
                "name": field_name,
                "in": "query",
                "required": False,
                "description": field.metadata.get("description", ""),
                "schema": schema,
            }
        )
    return parameters


def _path_parameters(path: str) -> list[str]:
    return re.findall(r"{([a-z_]+)}", path)


# -- the command --------------------------------------------------------------------------------
GENERATORS = {"asyncapi": asyncapi_document, "openapi": openapi_document, "rabbitmq": rabbitmq_definitions}


def render(name: str) -> str:
    document = GENERATORS[name]()
    if name == "rabbitmq":
        return json.dumps(document, indent=2) + "\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("contract", help="the published contract, generated from the code")
    parser.add_argument("document", choices=sorted(GENERATORS))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="update the file in the repository")
    mode.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")


def run(args: argparse.Namespace) -> int:
    text = render(args.document)
    path = DOCUMENTS[args.document]
    if args.write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
        return 0
    if args.check:
        if not path.exists() or path.read_text() != text:
            print(
                f"{path.relative_to(ROOT)} is out of date: run keten contract {args.document} --write",
                file=sys.stderr,
            )
            return 1
        return 0
    sys.stdout.write(text)
    return 0
