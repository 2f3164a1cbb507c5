"""SMTP delivery with aiosmtplib: one connection per worker, reused, reconnected on failure.

Failures are classified by type and code: 4xx, network and timeouts are temporary (retry);
5xx is permanent (the mail fails, with an event on its ticket).
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass

import aiosmtplib

from daemon.config import SmtpConfig
from daemon.core.mime import needs_smtputf8

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one delivery attempt."""

    state: str  # sent | retry | failed
    error: str = ""
    retry_recipients: tuple[str, ...] | None = None  # after a partial 4xx refusal: only these again
    unreachable: bool = False  # no connection could be made (refused, no route, timed out)


class SmtpConnection:
    """One reusable SMTP session."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self.client: aiosmtplib.SMTP | None = None

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.ca_file or None)

    async def _connect(self) -> aiosmtplib.SMTP:
        config = self.config
        client = aiosmtplib.SMTP(
            hostname=config.host, port=config.port, timeout=config.timeout.total_seconds(),
            use_tls=config.security == "tls", start_tls=config.security == "starttls",
            tls_context=self._tls_context() if config.security != "none" else None,
            local_hostname=config.helo or None,
        )
        await client.connect()
        if config.username:
            await client.login(config.username, config.password)
        return client

    async def deliver(self, envelope_from: str, recipients: tuple[str, ...], raw: bytes) -> Outcome:
        try:
            if self.client is None or not self.client.is_connected:
                try:
                    self.client = await self._connect()
                except (OSError, TimeoutError) as error:  # refused, unreachable, timed out, dropped
                    await self.close()
                    return Outcome("retry", f"cannot connect: {type(error).__name__}: {error}", unreachable=True)
            utf8 = needs_smtputf8(envelope_from, recipients, raw)
            errors, _ = await self.client.sendmail(envelope_from, list(recipients), raw,
                                                   mail_options=["SMTPUTF8"] if utf8 else None)
        except aiosmtplib.SMTPNotSupported as error:  # SMTPUTF8 wanted, not offered: no later try can do better
            return Outcome("failed", f"the mail server cannot take it: {error} (an address is in UTF-8, RFC 6531)")
        except aiosmtplib.SMTPRecipientsRefused as error:
            await self._reset()
            return _all_refused(error)
        except aiosmtplib.SMTPResponseException as error:
            await self.close()
            return _by_code(error.code, f"{error.code} {error.message}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            await self.close()
            return Outcome("retry", f"{type(error).__name__}: {error}")
        return _partial(errors)

    async def _reset(self) -> None:
        try:
            if self.client is not None and self.client.is_connected:
                await self.client.rset()
        except (aiosmtplib.SMTPException, OSError):
            await self.close()

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()


def _by_code(code: int, text: str) -> Outcome:
    return Outcome("failed" if 500 <= code < 600 else "retry", text)


def _all_refused(error: aiosmtplib.SMTPRecipientsRefused) -> Outcome:
    temporary = tuple(r.recipient for r in error.recipients if not 500 <= r.code < 600)
    text = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in error.recipients)
    if temporary:
        return Outcome("retry", text, retry_recipients=temporary)
    return Outcome("failed", text)


def _partial(errors: dict[str, aiosmtplib.SMTPResponse]) -> Outcome:
    if not errors:
        return Outcome("sent")
    text = "; ".join(f"{rcpt}: {r.code} {r.message}" for rcpt, r in errors.items())
    temporary = tuple(rcpt for rcpt, r in errors.items() if not 500 <= r.code < 600)
    if temporary:
        return Outcome("retry", f"some recipients refused: {text}", retry_recipients=temporary)
    return Outcome("sent", f"some recipients refused for good: {text}")
