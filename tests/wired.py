"""The five services on in-memory stores, wired the way the topology wires them.

Each service class is instantiated with its application in place of its nameko dependency, so a
command goes through the service's own entrypoint (its schema, its one application call) and an
event reaches exactly the handlers the service declares with ``@consumes``, once, in order:
what RabbitMQ does in production, without a broker.
"""

from __future__ import annotations

from typing import Any

from keten.platform import service_class
from shared.consumer import EventHandlerEntrypoint
from shared.dependencies import ApplicationProvider, Pseudonyms
from shared.errors import KetenError
from shared.pseudonym import Pseudonymiser
from tests.factories import received

SERVICES = ("case_registration", "consent", "data_sharing", "notification", "retention")


class WiredPlatform:
    def __init__(self, settings: Any):
        self.services: dict[str, Any] = {}
        self.apps: dict[str, Any] = {}
        for name in SERVICES:
            cls = service_class(name)
            service = cls()
            for attribute, provider in vars(cls).items():
                if isinstance(provider, ApplicationProvider):
                    app = provider.app_cls(settings)
                    setattr(service, attribute, app)
                    self.apps[name] = app
                elif isinstance(provider, Pseudonyms):
                    setattr(service, attribute, Pseudonymiser(settings.pseudonym_secret))
            self.services[name] = service

    def handlers(self, source: str, event_name: str) -> list[tuple[Any, Any]]:
        found = []
        for name, service in self.services.items():
            for attribute, member in vars(type(service)).items():
                for entrypoint in getattr(member, "nameko_entrypoints", ()):
                    if isinstance(entrypoint, EventHandlerEntrypoint) and (
                        entrypoint.source,
                        entrypoint.event_name,
                    ) == (source, event_name):
                        found.append((self.apps[name], getattr(service, attribute)))
        return found

    def sync(self) -> None:
        """Delivers every event not yet delivered, until nothing moves."""
        moved = True
        while moved:
            moved = False
            for source in SERVICES:
                for event in received(self.apps[source]):
                    for app, handler in self.handlers(event.source, event.name):
                        if app.position(event.source) < event.position:
                            handler(event)
                            moved = True

    def command(self, service: str, name: str, command: dict[str, Any]) -> Any:
        """Sends an agency's command to a service's entrypoint, then lets the events travel."""
        try:
            return getattr(self.services[service], name)(command)
        finally:
            self.sync()

    def refusal(self, service: str, name: str, command: dict[str, Any]) -> KetenError:
        """The error a bad command gets; asserts it changed nothing in any store."""
        before = {n: app.recorder.max_notification_id() for n, app in self.apps.items()}
        try:
            getattr(self.services[service], name)(command)
        except KetenError as error:
            after = {n: app.recorder.max_notification_id() for n, app in self.apps.items()}
            assert after == before, "a refused command changed a store"
            return error
        raise AssertionError(f"{name} was carried out")
