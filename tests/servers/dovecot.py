"""A real Dovecot IMAP server for the tests, on 127.0.0.1, free ports, its own temp dir.

Debian's ``dovecot-imapd`` (2.3) started with its own config file (nothing of
``/etc/dovecot`` is read and no system-wide Dovecot is touched): its own base_dir,
state_dir and log, passwd-file users with plain passwords, Maildir. Three ways in:
plain IMAP (``port``), STARTTLS on that same port, implicit TLS (``ssl_port``), with a
throw-away CA in ``ca_path`` to verify the server.

With ``oauth2_introspection_url`` it also takes XOAUTH2 and OAUTHBEARER logins: an
``oauth2`` passdb (``introspection_mode = post``) asks that URL whether the access token
is active and for whom (``tests/servers/oauth.py`` is such an endpoint). The users'
passwords still work for PLAIN and LOGIN; the passwd-file stays the userdb.

Unprivileged even when the tests run as root: the master process stays root (it has
to, to drop privileges), login processes run as ``dovenull``, internal services as
``dovecot`` (``nobody`` where those users do not exist), login services are not
chrooted, and the mail processes run as ``nobody``, which owns the Maildirs. Run as a
normal user, everything runs as that user.

    dovecot = Dovecot().start()
    password = dovecot.add_user("alice")
    uid = dovecot.append("alice", b"Subject: hi\\r\\n\\r\\nhello\\r\\n")
    with dovecot.imap_client("alice", security="starttls") as imap: ...
    dovecot.close()
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from imapclient import IMAPClient

from tests.servers import TestCertificate, free_ports, make_certificate, port_open, process_alive

__all__ = ["DEFAULT_CAPABILITIES", "Dovecot", "DovecotError", "FetchedMail", "MailUser", "Security"]

Security = Literal["none", "starttls", "tls"]  # as [mailboxes.imap] security in the config

# What Dovecot 2.3 announces after login (CAPABILITY_STRING in src/imap/imap-common.h,
# plus LITERAL+, as checked by tests/integration/test_servers.py against the running
# server). ``drop_capabilities`` removes names from it for the fallback tests.
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "IMAP4rev1", "SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE", "IDLE", "SORT", "SORT=DISPLAY",
    "THREAD=REFERENCES", "THREAD=REFS", "THREAD=ORDEREDSUBJECT", "MULTIAPPEND", "URL-PARTIAL",
    "CATENATE", "UNSELECT", "CHILDREN", "NAMESPACE", "UIDPLUS", "LIST-EXTENDED", "I18NLEVEL=1",
    "CONDSTORE", "QRESYNC", "ESEARCH", "ESORT", "SEARCHRES", "WITHIN", "CONTEXT=SEARCH",
    "LIST-STATUS", "BINARY", "MOVE", "SNIPPET=FUZZY", "PREVIEW=FUZZY", "PREVIEW", "STATUS=SIZE",
    "SAVEDATE", "LITERAL+", "NOTIFY", "SPECIAL-USE",
)  # fmt: skip


class DovecotError(RuntimeError):
    """Dovecot did not start or stop as asked; the message carries the tail of its log."""


class MailUser(NamedTuple):
    name: str
    password: str


@dataclass(frozen=True)
class FetchedMail:
    uid: int
    flags: tuple[str, ...]
    raw: bytes


def _find_binary() -> str:
    for candidate in (os.environ.get("POSTDESK_DOVECOT"), "/usr/sbin/dovecot", shutil.which("dovecot")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise DovecotError(
        "no dovecot binary (looked at $POSTDESK_DOVECOT, /usr/sbin/dovecot, $PATH): "
        "run ./scripts/test, which installs Debian's dovecot-imapd, or apt-get install dovecot-imapd"
    )


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _first_user(*names: str) -> str:
    for name in names:
        if _user_exists(name):
            return name
    raise DovecotError(f"none of the users {names} exists")


_DIR_PREFIX = "postdesk-dovecot-"


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _remove_stale_dirs() -> None:
    """Remove the temp dirs of test runs that were killed before they could clean up
    (their test process is gone, and so is their Dovecot)."""
    for d in Path(tempfile.gettempdir()).glob(_DIR_PREFIX + "*"):
        owner = _pid_in(d / "owner.pid")
        master = _pid_in(d / "run" / "master.pid")
        if owner is None or process_alive(owner) or (master is not None and process_alive(master)):
            continue
        shutil.rmtree(d, ignore_errors=True)


def _group_pids(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``, from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


class Dovecot:
    """One Dovecot instance. ``start()`` it, ``close()`` it (also a context manager)."""

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        drop_capabilities: Iterable[str] = (),
        idle_notify_interval: str = "2 mins",
        cert: TestCertificate | None = None,
        binary: str | None = None,
        start_timeout: float = 10.0,
        oauth2_introspection_url: str | None = None,
    ) -> None:
        self.binary = binary or _find_binary()
        self.oauth2_introspection_url = oauth2_introspection_url
        self.drop_capabilities = frozenset(c.upper() for c in drop_capabilities)
        unknown = self.drop_capabilities - set(DEFAULT_CAPABILITIES)
        if unknown:
            raise ValueError(f"cannot drop capabilities Dovecot does not have: {sorted(unknown)}")
        self.idle_notify_interval = idle_notify_interval
        self.start_timeout = start_timeout
        # Not under pytest's tmp_path: that lives in a 0700 dir the unprivileged
        # Dovecot processes could not enter.
        _remove_stale_dirs()
        self.dir = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX))
        self.dir.chmod(0o755)
        (self.dir / "owner.pid").write_text(f"{os.getpid()}\n")
        self.config_path = self.dir / "dovecot.conf"
        self.oauth2_config_path = self.dir / "dovecot-oauth2.conf.ext"  # with oauth2_introspection_url
        self.passwd_dir = self.dir / "passwd.d"  # one passwd-file per user, see add_user
        self.log_path = self.dir / "dovecot.log"
        self.stderr_path = self.dir / "dovecot.stderr"
        self.base_dir = self.dir / "run"
        self.state_dir = self.dir / "state"
        self.home_root = self.dir / "home"
        self.home_root.mkdir()
        self.home_root.chmod(0o755)
        self.port = 0  # plain IMAP and STARTTLS
        self.ssl_port = 0  # implicit TLS (imaps)
        self.users: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None  # the supervisor, see _SUPERVISOR
        self._master_pid: int | None = None
        if os.geteuid() == 0:
            self.login_user = _first_user("dovenull", "nobody")
            self.internal_user = _first_user("dovecot", "nobody")
            mail = pwd.getpwnam("nobody")
            self.mail_uid, self.mail_gid = mail.pw_uid, mail.pw_gid
        else:
            me = pwd.getpwuid(os.geteuid())
            self.login_user = self.internal_user = me.pw_name
            self.mail_uid, self.mail_gid = me.pw_uid, os.getegid()
        self.passwd_dir.mkdir()
        self.passwd_dir.chmod(0o755)  # read by the auth process, which is not root
        # Share one certificate between servers (conftest does) so that a single CA file
        # (SSL_CERT_FILE for a subprocess) trusts them all.
        self.cert: TestCertificate = cert or make_certificate(self.dir / "tls")

    # -- lifecycle -----------------------------------------------------------------

    @property
    def ca_path(self) -> Path:
        """The CA certificate that signed the server's certificate: give it to clients."""
        return self.cert.ca_path

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The Dovecot master's pid (also its process group), while running."""
        return self._master_pid if self.running else None

    def start(self) -> Dovecot:
        """Start Dovecot and wait until it greets; same ports as before after a stop/kill."""
        if self.running:
            return self
        first = self.port == 0
        for attempt in range(3):
            if first:
                self.port, self.ssl_port = free_ports(2)
            self._write_config()
            log_size = self._log_size()
            try:
                self._spawn()
                return self
            except DovecotError:
                # Another process may have taken a free port between our probe and
                # Dovecot's bind (parallel test runs): try other ports.
                if first and attempt < 2 and "in use" in self._log_text()[log_size:]:
                    continue
                raise
        raise AssertionError("unreachable")

    def stop(self, timeout: float = 10.0) -> None:
        """Clean shutdown: SIGTERM to every Dovecot process (clients get "* BYE Server shutting
        down"), then SIGKILL to what is left after 0.5 s; no process is left. (SIGTERM to the
        master alone takes 1 s, and 10 s while a client is connected.)"""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL every Dovecot process at once: the server dies as in a crash."""
        self._end(signal.SIGUSR1, 5.0)

    def restart(self) -> Dovecot:
        """Stop (cleanly, if running) and start again: same ports, users and mail."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop and remove the temp dir (config, mail, log)."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of what Dovecot wrote (its stderr, then its log file)."""
        return "\n".join(self._log_text().splitlines()[-lines:])

    def _log_text(self) -> str:
        text = ""
        for path in (self.stderr_path, self.log_path):
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace")
        return text

    def _log_size(self) -> int:
        return len(self._log_text())

    # -- users and mail ------------------------------------------------------------

    def add_user(self, name: str, password: str | None = None) -> str:
        """Add (or re-password) a mail user; returns the password. Works while running.

        Each user has its own passwd-file (``passwd.d/%u``): Dovecot re-reads a passwd-file
        at most once a second and only when its mtime (in seconds) or size changed, so with
        one shared file a user added right after a login could stay unknown. A new user is
        a file Dovecot has not opened yet; a new password waits for the next second."""
        if not re.fullmatch(r"[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*", name):
            raise ValueError(f"user name {name!r}: use letters, digits and ._@+- only")
        password = password if password is not None else secrets.token_urlsafe(12)
        if ":" in password or "\n" in password:
            raise ValueError("password must not contain ':' or a newline (passwd-file)")
        home = self.home_root / name
        home.mkdir(exist_ok=True)
        home.chmod(0o700)
        if os.geteuid() == 0:
            os.chown(home, self.mail_uid, self.mail_gid)
        path = self.passwd_dir / name
        old = path.stat() if path.exists() else None
        if old is not None and self.users.get(name) == password:
            return password
        tmp = self.passwd_dir / f".{name}.tmp"
        tmp.write_text(f"{name}:{{PLAIN}}{password}:{self.mail_uid}:{self.mail_gid}::{home}::\n")
        tmp.chmod(0o644)
        if old is not None and int(tmp.stat().st_mtime) == int(old.st_mtime):
            os.utime(tmp, (old.st_atime, int(old.st_mtime) + 1))
        tmp.replace(path)  # atomic: the auth process never sees half a file
        if old is not None:
            time.sleep(1.05 - time.time() % 1)  # past Dovecot's once-a-second check
        self.users[name] = password
        return password

    def new_user(self, prefix: str = "user") -> MailUser:
        """A user with a fresh unique name (``prefix-<hex>``) and an empty mailbox."""
        name = f"{prefix}-{secrets.token_hex(4)}"
        return MailUser(name, self.add_user(name))

    def port_for(self, security: Security) -> int:
        """The port to use with this ``security``: ``ssl_port`` for "tls", else ``port``."""
        return self.ssl_port if security == "tls" else self.port

    def maildir(self, user: str) -> Path:
        """The user's Maildir on disk (owned by the mail uid; read it as root or that user)."""
        return self.home_root / user / "Maildir"

    def imap_client(
        self,
        user: str,
        *,
        security: Security = "none",
        password: str | None = None,
        login: bool = True,
        timeout: float = 10.0,
    ) -> IMAPClient:
        """An ``IMAPClient`` connected plain ("none"), with "starttls" or with implicit "tls"
        (certificate verified against ``ca_path``), logged in as ``user`` unless
        ``login=False``. Close it with ``logout()`` or use it as a context manager."""
        if security not in ("none", "starttls", "tls"):
            raise ValueError(f"security must be 'none', 'starttls' or 'tls', not {security!r}")
        context = self.cert.client_context()
        if security == "tls":
            client = IMAPClient(self.host, self.ssl_port, ssl=True, ssl_context=context, timeout=timeout)
        else:
            client = IMAPClient(self.host, self.port, ssl=False, timeout=timeout)
        try:
            if security == "starttls":
                client.starttls(context)
            if login:
                client.login(user, password if password is not None else self.users[user])
        except BaseException:
            client.shutdown()
            raise
        return client

    @contextlib.contextmanager
    def _session(self, user: str) -> Iterator[IMAPClient]:
        client = self.imap_client(user)
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def append(
        self,
        user: str,
        raw: bytes,
        folder: str = "INBOX",
        flags: Sequence[str | bytes] = (),
    ) -> int:
        """APPEND one mail over IMAP (so IDLE clients hear of it); returns its UID."""
        return self.append_many(user, [raw], folder, flags)[0]

    def append_many(
        self,
        user: str,
        mails: Iterable[bytes],
        folder: str = "INBOX",
        flags: Sequence[str | bytes] = (),
    ) -> list[int]:
        """APPEND several mails over one connection; returns their UIDs in order."""
        uids = []
        with self._session(user) as imap:
            for raw in mails:
                response = imap.append(folder, raw, flags=tuple(flags))
                match = re.search(rb"APPENDUID \d+ (\d+)", response)
                if match is None:
                    raise DovecotError(f"APPEND to {folder} answered without APPENDUID: {response!r}")
                uids.append(int(match.group(1)))
        return uids

    def create_folder(self, user: str, folder: str) -> None:
        with self._session(user) as imap:
            if not imap.folder_exists(folder):
                imap.create_folder(folder)

    def folders(self, user: str) -> list[str]:
        with self._session(user) as imap:
            return [name for _flags, _sep, name in imap.list_folders()]

    def folder_uids(self, user: str, folder: str = "INBOX") -> list[int]:
        """The UIDs in ``folder``, ascending (deleted-but-not-expunged ones included)."""
        with self._session(user) as imap:
            imap.select_folder(folder, readonly=True)
            return sorted(int(u) for u in imap.search("ALL"))

    def fetch_all(self, user: str, folder: str = "INBOX") -> list[FetchedMail]:
        """Every mail in ``folder`` with its flags and raw bytes, by UID, without setting \\Seen."""
        with self._session(user) as imap:
            imap.select_folder(folder, readonly=True)
            uids = imap.search("ALL")
            if not uids:
                return []
            data = imap.fetch(uids, ["FLAGS", "BODY.PEEK[]"])
            return [
                FetchedMail(
                    uid=int(uid),
                    flags=tuple(f.decode() if isinstance(f, bytes) else str(f) for f in item[b"FLAGS"]),
                    raw=item[b"BODY[]"],
                )
                for uid, item in sorted(data.items())
            ]

    # -- internals -----------------------------------------------------------------

    def _capability_line(self) -> str:
        if not self.drop_capabilities:
            return ""
        caps = [c for c in DEFAULT_CAPABILITIES if c not in self.drop_capabilities]
        return f"imap_capability = {' '.join(caps)}"

    def _auth_mechanisms(self) -> str:
        return "plain login xoauth2 oauthbearer" if self.oauth2_introspection_url else "plain login"

    def _oauth2_passdb(self) -> str:
        """With ``oauth2_introspection_url``: the oauth2 passdb (only for the OAuth mechanisms,
        and the passwd-file only for the password ones, so a token is checked by introspection
        alone), and its settings file, readable by the unprivileged auth process."""
        if not self.oauth2_introspection_url:
            return ""
        self.oauth2_config_path.write_text(
            "introspection_mode = post\n"
            f"introspection_url = {self.oauth2_introspection_url}\n"
            "username_attribute = username\n"
            "active_attribute = active\n"
            "active_value = true\n"
            "timeout_msecs = 5000\n"
        )
        self.oauth2_config_path.chmod(0o644)
        return f"""\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {self.oauth2_config_path}
}}
"""

    def _write_config(self) -> None:
        d = self.dir
        oauth2_passdb = self._oauth2_passdb()
        password_mechanisms = "\n  mechanisms = plain login" if oauth2_passdb else ""
        config = f"""\
# Written by tests/servers/dovecot.py for one test run. Nothing of /etc/dovecot is read.
base_dir = {self.base_dir}
state_dir = {self.state_dir}
instance_name = postdesk-test-{d.name}
log_path = {self.log_path}
info_log_path = {self.log_path}
debug_log_path = {self.log_path}
protocols = imap
listen = 127.0.0.1
shutdown_clients = yes

default_login_user = {self.login_user}
default_internal_user = {self.internal_user}
default_internal_group = {grp.getgrgid(pwd.getpwnam(self.internal_user).pw_gid).gr_name}
first_valid_uid = {self.mail_uid}
last_valid_uid = {self.mail_uid}
first_valid_gid = {self.mail_gid}
last_valid_gid = {self.mail_gid}

ssl = yes
ssl_cert = <{self.cert.cert_path}
ssl_key = <{self.cert.key_path}
disable_plaintext_auth = no
auth_mechanisms = {self._auth_mechanisms()}
auth_failure_delay = 0
auth_verbose = yes

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_dir}/%u{password_mechanisms}
}}
{oauth2_passdb}userdb {{
  driver = passwd-file
  args = username_format=%u {self.passwd_dir}/%u
}}

mail_location = maildir:~/Maildir
mail_fsync = never
mail_max_userip_connections = 200
mailbox_idle_check_interval = 1 secs
imap_idle_notify_interval = {self.idle_notify_interval}
{self._capability_line()}

namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \\Drafts
  }}
  mailbox Junk {{
    special_use = \\Junk
  }}
  mailbox Sent {{
    special_use = \\Sent
  }}
  mailbox Trash {{
    special_use = \\Trash
  }}
}}

service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.ssl_port}
    ssl = yes
  }}
}}
service imap-urlauth-login {{
  chroot =
}}
service anvil {{
  chroot =
  # No "auth penalty" (logins from an IP delayed up to 15 s after a failed one), so that
  # a test of a wrong password does not slow down the tests after it.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
        self.config_path.write_text(config)

    def _spawn(self) -> None:
        with self.stderr_path.open("ab") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-c", _SUPERVISOR, str(os.getpid()), self.binary, "-F", "-c",
                 str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
            )  # fmt: skip
        assert process.stdout is not None
        line = process.stdout.readline()  # the master's pid, once it is forked
        process.stdout.close()
        self._process = process
        self._master_pid = int(line) if line.strip().isdigit() else None
        deadline = time.monotonic() + self.start_timeout
        problem = None if self._master_pid else f"the supervisor said {line!r} instead of a pid"
        while problem is None:
            if process.poll() is not None:
                problem = f"dovecot exited with status {process.returncode}"
            elif port_open(self.ssl_port, self.host) and self._greets():
                return
            elif time.monotonic() > deadline:
                problem = f"no IMAP greeting on 127.0.0.1:{self.port} in {self.start_timeout:g} s"
            else:
                time.sleep(0.01)
        with contextlib.suppress(DovecotError):
            self._end(signal.SIGUSR1, 5.0)
        raise DovecotError(
            f"Dovecot ({self.binary} -c {self.config_path}) did not come up: {problem}\n"
            f"--- tail of {self.log_path} ---\n{self.log_tail()}"
        )

    def _greets(self) -> bool:
        """Whether the plain port answers with the '* OK' greeting (the login path works)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                return s.recv(1024).startswith(b"* OK")
        except OSError:
            return False

    def _end(self, how: signal.Signals, timeout: float) -> None:
        """Tell the supervisor to stop (SIGTERM) or kill (SIGUSR1) Dovecot; it exits once
        every Dovecot process is gone and reaped. Then check that none is left."""
        process, master = self._process, self._master_pid
        self._process = self._master_pid = None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(how)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGUSR1)
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
        if master is not None:
            deadline = time.monotonic() + 5
            while _group_pids(master):
                if time.monotonic() > deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(master, signal.SIGKILL)
                    raise DovecotError(f"Dovecot processes {_group_pids(master)} outlived their supervisor")
                time.sleep(0.01)


# Runs as `python -c _SUPERVISOR <test pid> dovecot -F -c CONFIG`, between the tests and
# Dovecot's master. It is a child subreaper, so every Dovecot process, even one orphaned
# by a SIGKILL of the master, is its descendant and gets reaped here (no zombie is left
# for an init that may not reap). SIGTERM: SIGTERM to Dovecot's whole process group (a
# clean stop). SIGUSR1: SIGKILL to the whole group (a crash).
# If the test process dies, the kernel sends it SIGTERM (PR_SET_PDEATHSIG): Dovecot
# never outlives the tests.
_SUPERVISOR = r"""
import ctypes, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(36, 1, 0, 0, 0)                 # PR_SET_CHILD_SUBREAPER
libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
master = None
stopping = None
def group(sig):
    if master:
        try: os.killpg(master, sig)
        except ProcessLookupError: pass
def on_term(signum, frame):
    global stopping
    if stopping is None:
        stopping = time.monotonic()
        group(signal.SIGTERM)
        signal.setitimer(signal.ITIMER_REAL, 0.1, 0.1)
def on_tick(signum, frame):
    # A process the master forked just after the first SIGTERM missed it: say it again.
    # The master itself then sleeps its shutdown away (1 to 6 s) while its clients
    # have had their BYE: after 0.5 s, SIGKILL what is left.
    group(signal.SIGTERM if time.monotonic() - stopping < 0.5 else signal.SIGKILL)
signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)
signal.signal(signal.SIGUSR1, lambda signum, frame: group(signal.SIGKILL))
signal.signal(signal.SIGALRM, on_tick)
if os.getppid() != int(sys.argv[1]):
    sys.exit("the test process is gone")
master = os.fork()
if master == 0:
    os.setpgid(0, 0)
    os.dup2(2, 1)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGALRM):
        signal.signal(s, signal.SIG_DFL)
    os.execv(sys.argv[2], sys.argv[2:])
try: os.setpgid(master, master)
except OSError: pass
sys.stdout.write(f"{master}\n")
sys.stdout.flush()
status = 1
while True:
    try:
        pid, st = os.wait()
    except ChildProcessError:
        break
    if pid == master:
        status = os.waitstatus_to_exitcode(st)
sys.exit(status if status >= 0 else 128 - status)
"""
