"""The published contract (AsyncAPI, OpenAPI, RabbitMQ definitions) is what the code does."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator
from openapi_spec_validator import validate as validate_openapi

from keten import contract
from keten.platform import SERVICES, service_class
from shared.commands import AgencyCommands
from shared.contracts.commands import COMMAND_SCHEMAS
from shared.contracts.inbox import INBOX_SCHEMAS
from shared.topology import command_services, platform_queues

ASYNCAPI_SCHEMA = json.loads((Path(__file__).parent / "schemas" / "asyncapi-3.0.0.json").read_text())


@pytest.mark.parametrize("name", sorted(contract.DOCUMENTS))
def test_the_published_document_is_the_one_the_code_generates(name):
    published = contract.DOCUMENTS[name].read_text()
    assert published == contract.render(name), f"run: keten contract {name} --write"


def asyncapi_errors(document: dict) -> list[str]:
    return [error.message for error in Draft7Validator(ASYNCAPI_SCHEMA).iter_errors(document)]


def test_the_asyncapi_document_is_valid_asyncapi_3():
    document = yaml.safe_load(contract.DOCUMENTS["asyncapi"].read_text())
    assert document["asyncapi"] == "3.0.0"
    assert asyncapi_errors(document) == []


def test_the_asyncapi_validation_would_notice_a_broken_document():
    document = yaml.safe_load(contract.DOCUMENTS["asyncapi"].read_text())
    broken = copy.deepcopy(document)
    broken["operations"]["send.request_share"]["action"] = "publish"  # AsyncAPI 2 wording
    assert asyncapi_errors(broken)


def test_every_command_and_inbox_message_is_in_the_asyncapi_document_with_its_routing_key():
    document = contract.asyncapi_document()
    for name, schema in COMMAND_SCHEMAS.items():
        channel = document["channels"][f"command.{schema.service}.{name}"]
        assert channel["address"] == f"{{agency}}.{schema.service}.{name}"
        assert channel["bindings"]["amqp"]["exchange"]["name"] == "keten.commands"
        assert document["operations"][f"send.{name}"]["action"] == "send"
    assert set(document["channels"]["inbox"]["messages"]) == set(INBOX_SCHEMAS)
    documented_queues = {
        c["address"]
        for c in document["channels"].values()
        if c.get("bindings", {}).get("amqp", {}).get("is") == "queue"
    }
    for queue in platform_queues():
        assert queue.name in documented_queues or queue.name.startswith("keten.inbox."), queue.name


def test_the_openapi_document_is_valid_and_has_every_route_of_the_gateway():
    document = yaml.safe_load(contract.DOCUMENTS["openapi"].read_text())
    validate_openapi(document)
    for name, method, path in contract.gateway_routes():
        operation = document["paths"][path][method.lower()]
        assert operation["operationId"] == name
        if name in COMMAND_SCHEMAS:
            assert operation["security"] == [contract.AGENCY_SIGNATURE]
            assert "413" in operation["responses"]
        assert "Retry-After" in operation["responses"]["503"]["headers"]
    schemes = document["components"]["securitySchemes"]
    assert {schemes[name]["name"] for name in contract.AGENCY_SIGNATURE} == {
        "Signature-Input",
        "Signature",
        "Content-Digest",
    }


def test_every_command_in_the_contract_is_taken_from_the_bus_by_its_service():
    for name, schema in COMMAND_SCHEMAS.items():
        cls = service_class(schema.service)
        assert callable(getattr(cls, name, None)), f"{schema.service} has no method {name}"
        assert any(isinstance(v, AgencyCommands) for v in vars(cls).values()), schema.service
    assert set(command_services()) <= set(SERVICES)


def test_the_rabbitmq_definitions_declare_what_the_services_declare():
    definitions = json.loads(contract.DOCUMENTS["rabbitmq"].read_text())
    exchanges = {e["name"]: e for e in definitions["exchanges"]}
    assert set(exchanges) == {
        "keten.commands",
        "keten.events",
        "keten.inbox",
        "keten.dead-letter",
        "keten.unroutable",
        "keten.log",
    }
    for name in ("keten.commands", "keten.events", "keten.inbox"):
        assert exchanges[name]["arguments"] == {"alternate-exchange": "keten.unroutable"}, name
    # Signed tree heads no witness takes are dropped, not kept as unroutable.
    assert not exchanges["keten.log"]["arguments"]
    queues = {q["name"]: q for q in definitions["queues"]}
    assert set(queues) == {q.name for q in platform_queues()}
    assert queues["keten.data_sharing.commands"]["arguments"]["x-queue-type"] == "quorum"
    assert {"source": "keten.inbox", "routing_key": "kredietbank-utrecht.#"}.items() <= next(
        b for b in definitions["bindings"] if b["destination"] == "keten.inbox.kredietbank-utrecht"
    ).items()
