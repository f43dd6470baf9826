"""``keten probe live|ready``: asks the operations endpoint of this host, for healthchecks.

Every Keten container's healthcheck runs it every few seconds, on machines that may be busy: it
imports only the standard library (no eventlet, nameko or ``shared``; ``python -X importtime``
shows the difference) and reads only ``OPS_PORT``. Exit 0 when healthy; otherwise one line on
stderr, and the endpoint's report (which names what is down) on stdout for the health log.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request

#: Below the healthcheck's own timeout (15 s in the image and docker-compose.yml).
TIMEOUT = 10.0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="keten probe", description="ask this host's operations endpoint")
    parser.add_argument("probe", choices=("live", "ready"))
    which = parser.parse_args(argv).probe
    port = os.environ.get("OPS_PORT", "")
    if not port or port == "0":
        print("keten probe: OPS_PORT is not set, so this process serves no probes", file=sys.stderr)
        return 2
    if not port.isdigit():
        print("keten probe: OPS_PORT is not a port number", file=sys.stderr)
        return 2
    url = f"http://127.0.0.1:{port}/{'livez' if which == 'live' else 'readyz'}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            print(response.read().decode())
            return 0
    except urllib.error.HTTPError as error:
        print(error.read().decode())
        print(
            f"keten probe: {'not live' if which == 'live' else 'not ready'} ({url} answered {error.code})",
            file=sys.stderr,
        )
    except OSError as error:
        reason = getattr(error, "reason", error)
        print(
            f"keten probe: no answer from {url} ({type(reason).__name__}): is the process running?",
            file=sys.stderr,
        )
    return 1
