"""``keten letters render``, without the platform: the CronJob that runs it (and the benchmark,
which runs it as the CronJob does) pays at each start for Python, the settings and fpdf2, not
for eventlet, nameko and every service's contracts (1.4 s of CPU before, 0.6 s now, against
about 1 ms a letter). It needs no database, broker or secret: only the letters folder."""

from __future__ import annotations

import logging
import sys

from shared import logs
from shared.config import ConfigurationError, Settings, log_settings

log = logging.getLogger("keten")


def main() -> int:
    """Lays out the pending letters. A failure is one line on stderr (exit 1; 2 for a setting
    that is missing or malformed), as for every other ``keten`` command."""
    try:
        logs.configure(*log_settings())
        return render_letters(Settings.from_env())
    except ConfigurationError as error:
        print(f"keten letters: configuration error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("keten letters: interrupted", file=sys.stderr)
        return 1
    except Exception as error:
        log.debug("keten letters failed", exc_info=True)
        print(
            f"keten letters: failed unexpectedly ({type(error).__name__}); KETEN_LOG_LEVEL=DEBUG shows where",
            file=sys.stderr,
        )
        return 1


def render_letters(settings: Settings) -> int:
    from services.notification.channels import LetterChannel

    handed = LetterChannel(settings).render_pending()
    print(f"{handed} letter(s) ready for the printing service in {settings.letters}")
    return 0
