"""Real servers for the tests: Dovecot IMAP, a recording SMTP server, PostgreSQL.

Nothing here is a mock: each class starts (or finds) a real server on 127.0.0.1,
on free ports, in its own temp dir. ``tests/conftest.py`` turns them into
session-scoped fixtures. This module holds the small helpers they share:
free ports, waiting for a port, and a throw-away TLS certificate authority.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TestCertificate", "free_port", "free_ports", "make_certificate", "port_open", "process_alive",
           "wait_for_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nobody listens on right now (the kernel picks it)."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` different free TCP ports (all bound at once while the kernel picks them)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind((host, 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> bool:
    """Poll until ``host:port`` accepts connections; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if port_open(port, host):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


@dataclass(frozen=True)
class TestCertificate:
    """A throw-away CA and a server certificate it signed, valid for localhost and 127.0.0.1.

    ``ca_path`` is what clients verify against (``ssl.create_default_context(cafile=...)``);
    ``cert_path``/``key_path`` are what the server presents.
    """

    __test__ = False  # not a pytest test class, despite the name

    ca_path: Path
    cert_path: Path
    key_path: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context that verifies the server against this CA (hostname 127.0.0.1 or localhost)."""
        return ssl.create_default_context(cafile=str(self.ca_path))

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert_path), str(self.key_path))
        return ctx


def make_certificate(directory: Path, name: str = "server") -> TestCertificate:
    """Generate a CA and a server certificate into ``directory`` with the ``openssl`` command.

    EC P-256 keys: generating them takes milliseconds. The server certificate carries the
    extensions strict verifiers want (SAN, key usage, serverAuth, authority key id).
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.pem"
    ext = directory / f"{name}.ext"
    ext.write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        ["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_cert, "-days", "30",
         "-subj", "/CN=Postdesk test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["openssl", "req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "30", "-extfile", ext],
    ]  # fmt: skip
    for cmd in steps:
        done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{done.stderr}")
    for p in (ca_key, key):
        p.chmod(0o600)
    return TestCertificate(ca_path=ca_cert, cert_path=cert, key_path=key)


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def children_of(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`: id -> name (/proc/PID/stat; Linux)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name, rest = stat.split("(", 1)[1].rsplit(")", 1)
            if int(rest.split()[1]) == pid:
                found[int(entry.name)] = name
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie (an exited child its parent has not reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
