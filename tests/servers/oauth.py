"""A tiny OAuth2 token introspection endpoint (RFC 7662) for the tests, on 127.0.0.1.

Dovecot's ``oauth2`` passdb asks it whether an XOAUTH2/OAUTHBEARER access token is
valid; nothing else talks to it. It knows a set of valid tokens, each for one user,
and answers ``{"active": true, "username": USER}`` for those and ``{"active": false}``
for any other. Every request is counted and the token it carried is recorded.

The token may come the three ways Dovecot's ``introspection_mode`` sends it: ``post``
(form body ``token=...``), ``auth`` (``Authorization: Bearer ...``) and ``get`` (the
token appended to the URL, e.g. ``.../introspect?token=``).

    server = IntrospectionServer().start()
    token = server.issue("alice")     # a fresh valid token for alice
    server.revoke(token)              # from now on {"active": false}
    server.tokens_seen                # every token asked about, in order
    server.close()
"""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

__all__ = ["IntrospectionServer"]

PATH = "/introspect"


class IntrospectionServer:
    """Stdlib ``http.server`` in a daemon thread on a free 127.0.0.1 port."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._valid: dict[str, str] = {}  # token -> username
        self._seen: list[str] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> IntrospectionServer:
        if self._httpd is not None:
            return self
        httpd = ThreadingHTTPServer((self.host, 0), _handler_for(self))
        httpd.daemon_threads = True
        self.port = int(httpd.server_address[1])
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"introspection:{self.port}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> IntrospectionServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The introspection URL (for ``introspection_url`` in dovecot-oauth2.conf.ext)."""
        if not self.port:
            raise RuntimeError("the introspection server is not started")
        return f"http://{self.host}:{self.port}{PATH}"

    # -- tokens --------------------------------------------------------------------

    def issue(self, username: str, token: str | None = None) -> str:
        """Make ``token`` (default: a fresh random one) valid for ``username``; returns it."""
        token = token if token is not None else "ya29." + secrets.token_urlsafe(24)
        with self._lock:
            self._valid[token] = username
        return token

    def revoke(self, token: str) -> None:
        """The token is no longer valid (as when it expired or was revoked)."""
        with self._lock:
            self._valid.pop(token, None)

    def username_for(self, token: str) -> str | None:
        with self._lock:
            return self._valid.get(token)

    @property
    def tokens_seen(self) -> list[str]:
        """Every token asked about, in the order the requests came."""
        with self._lock:
            return list(self._seen)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._seen)

    def _answer(self, token: str) -> dict[str, object]:
        with self._lock:
            self._seen.append(token)
            username = self._valid.get(token)
        if username is None:
            return {"active": False}
        return {"active": True, "username": username, "token_type": "Bearer", "scope": "mail"}


def _handler_for(server: IntrospectionServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # Content-Length is always sent; keep-alive works

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            token = (parse_qs(body).get("token") or [""])[0] or self._bearer() or self._query_token()
            self._reply(token)

        def do_GET(self) -> None:
            self._reply(self._bearer() or self._query_token())

        def _bearer(self) -> str:
            scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
            return value.strip() if scheme.lower() == "bearer" else ""

        def _query_token(self) -> str:
            query = parse_qs(urlsplit(self.path).query)
            return (query.get("token") or query.get("access_token") or [""])[0]

        def _reply(self, token: str) -> None:
            if urlsplit(self.path).path != PATH:
                self._send(404, {"error": "not_found"})
                return
            if not token:
                self._send(400, {"error": "invalid_request", "error_description": "no token"})
                return
            self._send(200, server._answer(token))

        def _send(self, status: int, answer: dict[str, object]) -> None:
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: pytest output is not the place

    return Handler
