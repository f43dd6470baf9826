"""Agencies' broker users, through RabbitMQ's management HTTP API.

Each agency gets its own user on the platform's vhost, allowed exactly this:
- publish to ``keten.commands``, and there only routing keys that start with its own id
  (a topic permission: the broker refuses anything else and closes the channel);
- consume its own inbox ``keten.inbox.<agency>``, and RabbitMQ's direct reply-to;
- declare, bind or delete nothing.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests

from shared.topology import COMMANDS_EXCHANGE, INBOX_EXCHANGE, inbox_queue_name


class BrokerAdminError(Exception):
    """The management API refused or could not be reached; the message names no secret."""


@dataclass(frozen=True)
class BrokerAdmin:
    api: str
    user: str
    password: str
    vhost: str

    @classmethod
    def from_amqp_uri(cls, amqp_uri: str, api: str | None = None) -> BrokerAdmin:
        """The management API of the broker ``amqp_uri`` points at, as the same user (unless
        ``RABBITMQ_MANAGEMENT_URL`` names another address)."""
        parts = urlsplit(amqp_uri)
        vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        api = api or f"http://{parts.hostname or 'localhost'}:15672/api"
        return cls(
            api.rstrip("/"), unquote(parts.username or "guest"), unquote(parts.password or "guest"), vhost
        )

    def create_vhost(self) -> None:
        """Creates the vhost, with every right on it for this user (a throw-away platform of
        the benchmark's or a test's own)."""
        vhost = quote(self.vhost, safe="")
        self._put(f"/vhosts/{vhost}", {})
        self._put(
            f"/permissions/{vhost}/{quote(self.user, safe='')}",
            {"configure": ".*", "write": ".*", "read": ".*"},
        )

    def delete_vhost(self) -> None:
        """Deletes the vhost with everything in it (a missing one is fine)."""
        response = self._call("DELETE", f"/vhosts/{quote(self.vhost, safe='')}", timeout=60)
        if response.status_code != 404:
            self._check(response)

    def username(self, agency: str) -> str:
        """Users are per broker, vhosts per platform: the name says both."""
        return f"{agency}@{self.vhost}"

    def create_agency_user(self, agency: str) -> str:
        """Creates (or resets) the agency's user with a fresh password; returns the password."""
        password = secrets.token_urlsafe(24)
        user = quote(self.username(agency), safe="")
        vhost = quote(self.vhost, safe="")
        own = re.escape(agency)
        self._put(f"/users/{user}", {"password": password, "tags": ""})
        self._put(
            f"/permissions/{vhost}/{user}",
            {
                "configure": "^$",
                "write": f"^{re.escape(COMMANDS_EXCHANGE)}$",
                "read": f"^{re.escape(inbox_queue_name(agency))}$",
            },
        )
        self._put(
            f"/topic-permissions/{vhost}/{user}",
            {"exchange": COMMANDS_EXCHANGE, "write": f"^{own}\\.", "read": "^$"},
        )
        self._put(
            f"/topic-permissions/{vhost}/{user}",
            {"exchange": INBOX_EXCHANGE, "write": "^$", "read": "^$"},
        )
        return password

    def delete_agency_user(self, agency: str) -> bool:
        """Deletes the user (its open connections are closed by the broker); False if absent."""
        response = self._call("DELETE", f"/users/{quote(self.username(agency), safe='')}")
        if response.status_code == 404:
            return False
        self._check(response)
        self._close_connections(self.username(agency))
        return True

    def user_exists(self, agency: str) -> bool:
        response = self._call("GET", f"/users/{quote(self.username(agency), safe='')}")
        return response.status_code == 200

    def amqp_url(self, agency: str, password: str, public_url: str | None, amqp_uri: str) -> str:
        """The URL the agency connects with: the public address if one is configured."""
        parts = urlsplit(public_url or amqp_uri)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
        netloc = f"{quote(self.username(agency), safe='')}:{quote(password, safe='')}@{host}{port}"
        return urlunsplit((parts.scheme, netloc, "/" + quote(self.vhost, safe=""), "", ""))

    def _close_connections(self, user: str) -> None:
        response = self._call("GET", f"/connections/username/{quote(user, safe='')}")
        if response.status_code != 200:
            return
        for connection in response.json():
            self._call("DELETE", f"/connections/{quote(connection['name'], safe='')}")

    def _put(self, path: str, body: dict[str, str]) -> None:
        self._check(self._call("PUT", path, body))

    def _call(
        self, method: str, path: str, body: dict[str, str] | None = None, timeout: float = 10
    ) -> requests.Response:
        try:
            return requests.request(
                method, self.api + path, json=body, auth=(self.user, self.password), timeout=timeout
            )
        except requests.RequestException as exc:
            raise BrokerAdminError(
                f"the management API at {self.api} is unreachable ({type(exc).__name__})"
            ) from None

    @staticmethod
    def _check(response: requests.Response) -> None:
        if response.status_code >= 300:
            raise BrokerAdminError(
                f"the management API answered {response.status_code} to {response.request.method}"
            )
