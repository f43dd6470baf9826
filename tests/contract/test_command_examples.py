"""Every command has one complete example in docs/asyncapi.yaml, and each loads through its
command's schema as the platform would load it."""

from __future__ import annotations

import pytest

from keten.examples import command_examples
from shared.catalogue import load_catalogue
from shared.contracts.commands import COMMAND_SCHEMAS, load_command
from shared.pseudonym import Pseudonymiser

EXAMPLES = command_examples()


def test_every_command_has_an_example():
    assert sorted(EXAMPLES) == sorted(COMMAND_SCHEMAS)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_example_is_a_command_the_platform_loads(name):
    load_command(COMMAND_SCHEMAS[name], EXAMPLES[name], pseudonymise=Pseudonymiser(b"s" * 32))


def test_the_examples_name_only_what_the_catalogue_knows():
    catalogue = load_catalogue()
    for name, example in EXAMPLES.items():
        assert example["agency"] in catalogue.agencies, name
        for category in example.get("categories", []):
            assert category in catalogue.categories, (name, category)
        for agency in (*example.get("to_agencies", []), *example.get("recipients", [])):
            assert agency in catalogue.agencies, (name, agency)
        if "purpose" in example:
            assert example["purpose"] in catalogue.purposes, name
