"""Keten's shared library: what every service needs and nothing service-specific."""

from shared import transport

transport.register()
