"""Which services make up the platform, and how to run them with nameko."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from nameko.runners import ServiceRunner

from services.gateway.server import ensure_address_free
from shared.agencies import ensure_local_credentials
from shared.catalogue import load_catalogue
from shared.config import Settings

log = logging.getLogger(__name__)

#: Service name -> "module:Class". Order matters only for start-up logs.
SERVICES: dict[str, str] = {
    "case_registration": "services.case_registration.service:CaseRegistrationService",
    "consent": "services.consent.service:ConsentService",
    "data_sharing": "services.data_sharing.service:DataSharingService",
    "notification": "services.notification.service:NotificationService",
    "retention": "services.retention.service:RetentionService",
    "gateway": "services.gateway.service:GatewayService",
}


def service_class(name: str) -> type:
    module, _, attribute = SERVICES[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def nameko_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """nameko's config for these settings; every KETEN setting is passed through by env name."""
    config: dict[str, Any] = {
        "AMQP_URI": settings.amqp_uri,
        "WEB_SERVER_ADDRESS": settings.gateway_address,
        "serializer": "json",
        "max_workers": 10,
        "KETEN_VAR_DIR": str(settings.var_dir),
        "DATABASE_SCHEMA": settings.database_schema,
    }
    if settings.database_url:
        config["DATABASE_URL"] = settings.database_url
    config.update(overrides)
    return config


def build_runner(settings: Settings, names: list[str], **overrides: Any) -> ServiceRunner:
    if "gateway" in names:
        # Before anything starts: a platform on a port in use stops with one line, and never
        # shares the port with another (logins would land on either at random).
        ensure_address_free(str(overrides.get("WEB_SERVER_ADDRESS", settings.gateway_address)))
    if settings.embedded_broker and not settings.uses_postgres:
        # make run / make demo: every catalogue agency gets keys under var/agencies/, so the
        # demo (and a newcomer with curl) can sign requests with no configuration.
        ensure_local_credentials(settings, sorted(load_catalogue().agencies))
    runner = ServiceRunner(nameko_config(settings, **overrides))
    for name in names:
        runner.add_service(service_class(name))
    return runner
