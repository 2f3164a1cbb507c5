"""A real SMTP server for the tests that records what it receives and fails on cue.

aiosmtpd's ``Controller`` on 127.0.0.1 and a free port, in its own thread. Every mail
that reaches the end of DATA is recorded as a :class:`ReceivedMail`; knobs make the
server answer a given code instead:

    smtp = SmtpServer().start()
    smtp.fail_rcpt("bad@example.com", 550, "5.1.1 no such user")   # always, for him
    smtp.fail_next(451, "4.3.0 try later", count=3)                 # next 3 mails, at RCPT
    smtp.fail_next(554, "5.6.0 rejected", stage="data")             # next mail, after DATA
    ... send ...
    mails = smtp.wait_for(1, timeout=5)
    smtp.stop(); smtp.start()                                       # outage: same port

``security`` follows the config's ``[smtp] security``: "none", "starttls" (offered and,
by default, required before MAIL) or "tls" (implicit TLS). ``auth=(user, password)``
offers AUTH PLAIN/LOGIN (only after TLS, unless there is no TLS) and refuses MAIL
without it.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import itertools
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.servers import TestCertificate, free_port, make_certificate

__all__ = ["ReceivedMail", "Refusal", "SmtpSecurity", "SmtpServer", "Stage"]


class _QuietLoginData(logging.Filter):
    """aiosmtpd logs a deprecation of its own on every successful AUTH: drop that line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Session.login_data is deprecated")


logging.getLogger("mail.log").addFilter(_QuietLoginData())

SmtpSecurity = Literal["none", "starttls", "tls"]
Stage = Literal["mail", "rcpt", "data"]


@dataclass(frozen=True)
class ReceivedMail:
    """One mail the server accepted (after the final '.' of DATA)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes  # exactly the bytes of DATA (dot-unstuffed), as the client sent them
    received_at: float  # time.time()
    peer: Any
    tls: bool  # the session was under TLS (STARTTLS or implicit)
    login: str | None  # the AUTH user, if the client authenticated
    mail_options: tuple[str, ...] = ()
    rcpt_options: tuple[str, ...] = ()

    @property
    def message(self) -> email.message.EmailMessage:
        msg = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        return msg


@dataclass(frozen=True)
class Refusal:
    """A command the server refused on cue: what, to whom, with which code."""

    stage: Stage
    code: int
    text: str
    mail_from: str | None
    address: str | None  # the recipient, for RCPT


@dataclass
class _Failure:
    code: int
    text: str
    stage: Stage
    remaining: int | None  # None: until clear_failures()
    address: str | None = None
    status: str = field(init=False)

    def __post_init__(self) -> None:
        if not 400 <= self.code <= 599:
            raise ValueError(f"SMTP failure code must be 4xx or 5xx, not {self.code}")
        self.status = f"{self.code} {self.text}"


class SmtpServer:
    """A recording SMTP server. ``start()`` it, ``close()`` it (also a context manager)."""

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        security: SmtpSecurity = "none",
        require_starttls: bool = True,
        auth: tuple[str, str] | None = None,
        cert: TestCertificate | None = None,
        cert_dir: Path | None = None,
        hostname: str = "smtp.postdesk.test",
        smtputf8: bool = False,
    ) -> None:
        if security not in ("none", "starttls", "tls"):
            raise ValueError(f"security must be 'none', 'starttls' or 'tls', not {security!r}")
        if security != "none" and cert is None:
            if cert_dir is None:
                raise ValueError("TLS needs cert= (a TestCertificate) or cert_dir= to make one in")
            cert = make_certificate(cert_dir)
        self.security: SmtpSecurity = security
        self.require_starttls = require_starttls
        self.auth = auth
        self.cert = cert
        self.hostname = hostname
        self.smtputf8 = smtputf8  # offer SMTPUTF8 (RFC 6531), as Postfix does by default
        self.port = 0
        self._controller: Controller | None = None
        self._lock = threading.Condition()
        self._messages: list[ReceivedMail] = []
        self._refusals: list[Refusal] = []
        self._failures: list[_Failure] = []
        self._ids = itertools.count(1)

    # -- lifecycle -----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> SmtpServer:
        """Listen (on the same port as before after a ``stop()``)."""
        if self._controller is not None:
            return self
        first = self.port == 0
        for attempt in range(3):
            if first:
                self.port = free_port(self.host)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # inherited by the accepted connections: without it, each mail sent through a
            # socket bound here took ~40 ms more (Nagle against delayed ACKs)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                sock.bind((self.host, self.port))
            except OSError:
                sock.close()
                # a parallel run took the port between our probe and the bind
                if first and attempt < 2:
                    continue
                raise
            controller = self._make_controller(sock)
            try:
                controller.start()
            except BaseException:
                sock.close()
                raise
            self._controller = controller
            return self
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop listening and drop open connections; recorded mail and knobs are kept."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def restart(self) -> SmtpServer:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what it received ----------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMail]:
        """A copy of what was received so far, in order."""
        with self._lock:
            return list(self._messages)

    @property
    def refusals(self) -> list[Refusal]:
        """A copy of the commands refused on cue so far, in order."""
        with self._lock:
            return list(self._refusals)

    def wait_for(self, n: int = 1, timeout: float = 5.0) -> list[ReceivedMail]:
        """Block until at least ``n`` mails were received; return them all.
        Raises TimeoutError (saying what did arrive) after ``timeout`` seconds."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._messages) >= n, timeout):
                raise TimeoutError(
                    f"SMTP server on port {self.port}: {len(self._messages)} mail(s) received "
                    f"in {timeout:g} s, expected {n}; refused: {self._refusals}"
                )
            return list(self._messages)

    def reset(self) -> None:
        """Forget received mail, refusals and failure knobs."""
        with self._lock:
            self._messages.clear()
            self._refusals.clear()
            self._failures.clear()

    # -- failure on cue ------------------------------------------------------------

    def fail_rcpt(self, address: str, code: int, text: str, count: int | None = None) -> None:
        """Answer ``code text`` to RCPT TO:<address> (case-insensitive): the next ``count``
        times, or always until ``clear_failures()`` when ``count`` is None."""
        with self._lock:
            self._failures.append(_Failure(code, text, "rcpt", count, address.lower()))

    def fail_next(self, code: int, text: str, count: int = 1, stage: Stage = "rcpt") -> None:
        """The next ``count`` mails (SMTP transactions, counted at MAIL FROM) get ``code
        text`` at ``stage``: "mail" (MAIL FROM), "rcpt" (every RCPT TO) or "data" (the
        reply after the final '.', so nothing is recorded)."""
        if count < 1:
            raise ValueError("count must be at least 1")
        if stage not in ("mail", "rcpt", "data"):
            raise ValueError(f"stage must be 'mail', 'rcpt' or 'data', not {stage!r}")
        with self._lock:
            self._failures.append(_Failure(code, text, stage, count))

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    # -- internals -----------------------------------------------------------------

    def _make_controller(self, sock: socket.socket) -> Controller:
        kwargs: dict[str, Any] = {
            "server_hostname": self.hostname,
            "ready_timeout": 10.0,
            "enable_SMTPUTF8": self.smtputf8,
        }
        if self.security == "starttls":
            assert self.cert is not None
            kwargs["tls_context"] = self.cert.server_context()
            kwargs["require_starttls"] = self.require_starttls
        elif self.security == "tls":
            assert self.cert is not None
            kwargs["ssl_context"] = self.cert.server_context()
        if self.auth is not None:
            kwargs["authenticator"] = self._authenticate
            # AUTH only under TLS when there is TLS to be had. (MAIL without AUTH is refused
            # in handle_MAIL rather than with auth_required=True, which warns without TLS.)
            kwargs["auth_require_tls"] = self.security == "starttls"
        return _BoundController(_Handler(self), sock, **kwargs)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            self.auth is not None
            and isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode(errors="replace"), auth_data.password.decode(errors="replace")) == self.auth
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _transaction_failure(self) -> _Failure | None:
        """Consume one 'next N mails' failure, if any is armed."""
        with self._lock:
            for failure in self._failures:
                if failure.address is None and failure.remaining:
                    failure.remaining -= 1
                    if failure.remaining == 0:
                        self._failures.remove(failure)
                    return failure
        return None

    def _rcpt_failure(self, address: str) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.address == address.lower():
                    if failure.remaining is not None:
                        failure.remaining -= 1
                        if failure.remaining == 0:
                            self._failures.remove(failure)
                    return failure
        return None

    def _refuse(self, failure: _Failure, envelope: Envelope, address: str | None) -> str:
        with self._lock:
            self._refusals.append(Refusal(failure.stage, failure.code, failure.text, envelope.mail_from, address))
        return failure.status

    def _record(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        login = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode(errors="replace")
        raw = envelope.original_content
        if raw is None:
            raw = envelope.content if isinstance(envelope.content, bytes) else b""
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=raw,
            received_at=time.time(),
            peer=session.peer,
            tls=session.ssl is not None  # STARTTLS
            or (server.transport is not None and server.transport.get_extra_info("ssl_object") is not None),
            login=login,
            mail_options=tuple(envelope.mail_options),
            rcpt_options=tuple(envelope.rcpt_options),
        )
        with self._lock:
            self._messages.append(mail)
            number = next(self._ids)
            self._lock.notify_all()
        return f"250 2.0.0 Ok: queued as TEST{number:06d}"


class _BoundController(Controller):
    """A Controller serving on a socket we bound ourselves: a port that is taken fails
    at once in ``start()`` (aiosmtpd's own bind failure only surfaces after its
    ``ready_timeout``), and a restart binds the same port again (SO_REUSEADDR)."""

    def __init__(self, handler: Any, sock: socket.socket, **kwargs: Any) -> None:
        self._sock = sock
        host, port = sock.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


_FAILURE_ATTR = "_postdesk_failure"


class _Handler:
    """aiosmtpd handler hooks; they run in the Controller's thread."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.server.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        failure = self.server._transaction_failure()
        setattr(envelope, _FAILURE_ATTR, failure)
        if failure is not None and failure.stage == "mail":
            envelope.mail_from = None
            return self.server._refuse(failure, envelope, None)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        failure = self.server._rcpt_failure(address)
        if failure is None:
            failure = getattr(envelope, _FAILURE_ATTR, None)
            if failure is not None and failure.stage != "rcpt":
                failure = None
        if failure is not None:
            return self.server._refuse(failure, envelope, address)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        failure: _Failure | None = getattr(envelope, _FAILURE_ATTR, None)
        if failure is not None and failure.stage == "data":
            return self.server._refuse(failure, envelope, None)
        return self.server._record(server, session, envelope)
