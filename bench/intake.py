"""Intake: N mails appended to a real Dovecot, then `postdesk run --once` timed, beside the
raw ceiling measured in the same run (imapclient fetching the same mails, BODY.PEEK[] in
batches of 200, and mail-parser parsing each; storing nothing). A second ceiling is the same
with imaplib's response formatting switched off, as Postdesk fetches (see quiet_imaplib in
daemon/adapters/imap.py): the ratio to it shows what is left once that is taken away.

    .venv/bin/python bench/intake.py [--count 2000] [--db sqlite|postgresql] [--notify]
                                     [--latency 200 [--gap 0.05]]

The mails are those of bench/parse.py (Gmail/Outlook/Thunderbird shapes, attachments in
about one in six, koi8-r, a DSN now and then). Postdesk runs with the shipped rules and
sends each acknowledgement to an aiosmtpd in its own process on the same machine (its CPU
is printed with the others'); `--notify` also mails the
agents about each new ticket. `--latency N` then starts `postdesk run` (IMAP IDLE) and
appends N mails one by one, `--gap` seconds apart, measuring arrival to acknowledgement at
the SMTP sink. (Dovecot announces a mail over IDLE about 0.5 s after it arrives; while mail
keeps coming, Postdesk looks again every `burst_recheck` instead: compare --gap 0.05 with
--gap 2.)
Goal (issue 4 and FIGURES.md): at least half the raw ceiling; p50 latency under 0.3 s.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import mailparser

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from common import percentile  # noqa: E402
from parse import generate  # noqa: E402

from daemon.adapters.imap import quiet_imaplib  # noqa: E402
from tests.servers import make_certificate  # noqa: E402
from tests.servers.dovecot import Dovecot  # noqa: E402
from tests.servers.postgres import create_database, drop_database, find_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--notify", action="store_true", help="also notify the agents of each new ticket")
    parser.add_argument("--latency", type=int, default=0, metavar="N")
    parser.add_argument("--gap", type=float, default=0.05, metavar="SECONDS",
                        help="with --latency: the time between two appended mails (default 0.05)")
    parser.add_argument("--profile", metavar="FILE", help="record the timed run with py-spy (collapsed stacks, "
                        "all threads and processes) into FILE; times are then not comparable")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="postdesk-bench-intake-"))
    dovecot = Dovecot(cert=make_certificate(root / "tls")).start()
    sink = start_sink(root / "sink.log")
    pg = find_server() if args.db == "postgresql" else None
    url = create_database(pg) if pg else f"sqlite:///{root / 'postdesk.db'}"
    try:
        user = dovecot.new_user()
        mails = generate(args.count, 7)
        dovecot.append_many(user.name, mails)
        before = raw_ceiling(dovecot, user.name, len(mails))
        quiet_before = raw_ceiling(dovecot, user.name, len(mails), quiet=True)
        config = write_config(root, url, dovecot, user, sink[1], args.notify)
        elapsed, peak, started = timed_run_once(config, args.profile, sink[0].pid)
        taken = len(dovecot.folder_uids(user.name, "Postdesk/Processed"))
        after = raw_ceiling(dovecot, user.name, len(mails), "Postdesk/Processed")
        quiet_after = raw_ceiling(dovecot, user.name, len(mails), "Postdesk/Processed", quiet=True)
        ceiling = (before + after) / 2  # this machine's speed drifts; the mean of both sides of the run
        quiet = (quiet_before + quiet_after) / 2
        rate = len(mails) / elapsed
        print(f"raw ceiling (imapclient fetch + mail-parser, storing nothing): {ceiling:,.0f} mails/s "
              f"({before:,.0f} before the run, {after:,.0f} after)")
        print(f"  the same with imaplib's response formatting off, as Postdesk fetches: {quiet:,.0f} mails/s "
              f"({quiet_before:,.0f} before, {quiet_after:,.0f} after)")
        print(f"postdesk run --once ({args.db}, shipped rules, acknowledgements to aiosmtpd"
              f"{', agents notified' if args.notify else ''}): {len(mails)} mails in {elapsed:.2f} s = "
              f"{rate:,.0f} mails/s = {rate / ceiling:.0%} of the ceiling ({rate / quiet:.0%} of the second); "
              f"peak memory {peak:.0f} MB")
        print(f"  mails moved to Processed: {taken}; mails the SMTP sink received: {sink_count(root)}")
        print(f"  acknowledgements at the sink after the start: {sink_timeline(root, started)}")
        if args.latency:
            latency(root, config, dovecot, user, args.latency, args.gap)
    finally:
        sink[0].stdin.close()  # type: ignore[union-attr]
        sink[0].wait(timeout=10)
        dovecot.close()
        if pg:
            drop_database(pg, url)
        shutil.rmtree(root, ignore_errors=True)


def start_sink(log: Path) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen([sys.executable, str(BENCH / "sink.py"), str(log)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def sink_count(root: Path) -> int:
    path = root / "sink.log"
    return len(path.read_text().splitlines()) if path.exists() else 0


def sink_timeline(root: Path, started: float) -> str:
    """When the first, middle and last acknowledgement reached the sink: sending keeps pace with
    intake when the last comes soon after the run's last mail is stored."""
    arrivals = [float(line.split(" ", 1)[0]) - started for line in (root / "sink.log").read_text().splitlines()]
    if not arrivals:
        return "none"
    return f"first {arrivals[0]:.2f} s, half {arrivals[len(arrivals) // 2]:.2f} s, last {arrivals[-1]:.2f} s"


def raw_ceiling(dovecot: Dovecot, user: str, count: int, folder: str = "INBOX", quiet: bool = False) -> float:
    """Mails a second, fetched by imapclient as it comes (or with imaplib's debug formatting
    off, `quiet`, as daemon/adapters/imap.py has it) and parsed by mail-parser."""
    started = time.perf_counter()
    with dovecot.imap_client(user) as client:
        if quiet:
            quiet_imaplib(client)
        client.select_folder(folder, readonly=True)
        uids = client.search(["ALL"])
        for start in range(0, len(uids), 200):
            for data in client.fetch(uids[start:start + 200], [b"BODY.PEEK[]"]).values():
                mailparser.parse_from_bytes(data[b"BODY[]"])
    return count / (time.perf_counter() - started)


def write_config(root: Path, url: str, dovecot: Dovecot, user, smtp_port: int, notify: bool) -> Path:  # type: ignore[no-untyped-def]
    config = root / "postdesk.toml"
    config.write_text(f"""[database]
url = "{url}"
[instance]
secret = "bench-secret-0123456789abcdef"
name = "Example Support"
domain = "example.com"
[[mailboxes]]
name = "support"
address = "support@example.com"
  [mailboxes.imap]
  host = "127.0.0.1"
  port = {dovecot.port}
  security = "none"
  username = "{user.name}"
  password = "{user.password}"
[outbound]
transport = "smtp"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
[[agents]]
email = "alice@example.com"
name = "Alice"
groups = ["l1"]
[[agents]]
email = "bob@example.com"
name = "Bob"
groups = ["l2"]
[paths]
rules = "{BENCH.parent / 'rules'}"
[tickets]
notify_agents_on_new = {'true' if notify else 'false'}
[logging]
level = "WARNING"
""")
    return config


def timed_run_once(config: Path, profile: str | None = None, sink_pid: int = 0) -> tuple[float, float, float]:
    """Seconds the run took, its peak memory in MB, and when it started (time.time())."""
    subprocess.run([sys.executable, "-m", "daemon", "-c", str(config), "migrate"], check=True,
                   capture_output=True)
    log = config.parent / "run-once.log"
    with open(log, "wb") as stderr:  # a file: a pipe nobody reads would fill and block the run
        busy_before = machine_busy()
        started_at = time.time()
        started = time.perf_counter()
        command = [sys.executable, "-m", "daemon", "-c", str(config), "run", "--once"]
        if profile:
            command = ["py-spy", "record", "--subprocesses", "--threads", "-r", "250", "-f", "raw", "-o", profile,
                       "--", *command]
        process = subprocess.Popen(command, stderr=stderr)
        cpu = CpuWatch(process.pid, sink_pid)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        busy = machine_busy() - busy_before
        cpu.stop()
    print(f"  CPU time of the whole machine during the run: {busy:.1f} s of {elapsed * (os.cpu_count() or 1):.1f} s; "
          f"by process: {cpu.summary()}")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"run --once failed: {log.read_text()[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, started_at


class CpuWatch:
    """CPU seconds per process while the run goes on, from /proc: postdesk's main process, its
    helpers (named postdesk-fetch, postdesk-parse and postdesk-send), Dovecot and the SMTP sink. Each process is
    classified once; a look reads only the stat files of those (the watch itself costs the
    machine under 1% of a core)."""

    def __init__(self, main: int, sink: int) -> None:
        self.main, self.sink = main, sink
        self.kinds: dict[int, str] = {}
        self.start: dict[int, tuple[int, int]] = {}
        self.seen: dict[int, tuple[int, int]] = {}
        for pid in self._pids():
            self._look(pid, first=True)
        self.running = True
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while self.running:
            for pid in self._pids():
                self._look(pid)
            time.sleep(0.05)

    @staticmethod
    def _pids() -> list[int]:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]

    def _look(self, pid: int, first: bool = False) -> None:
        kind = self.kinds.get(pid)
        if kind == "":
            return
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return
        name, rest = stat.split("(", 1)[1].rsplit(")", 1)
        fields = rest.split()
        ticks = (int(fields[11]), int(fields[12]))  # user, system
        if kind is None or kind == "postdesk other":  # a helper names itself a moment after it starts
            kind = self.kinds[pid] = self._kind(pid, int(fields[1]), name)
        if first:
            self.start[pid] = ticks
        elif kind:
            before = self.start.get(pid, (0, 0))
            self.seen[pid] = (ticks[0] - before[0], ticks[1] - before[1])

    def _kind(self, pid: int, parent: int, name: str) -> str:
        if pid == self.main:
            return "postdesk main"
        if parent == self.main:
            return {"postdesk-parse": "postdesk parse worker", "postdesk-send": "postdesk sender",
                    "postdesk-fetch": "postdesk fetch+parse"}.get(name, "postdesk other")
        if pid == self.sink:
            return "SMTP sink"
        return "Dovecot" if name.startswith(("imap", "dovecot")) else ""

    def stop(self) -> None:
        self.running = False
        self.thread.join()

    def summary(self) -> str:
        totals: dict[str, tuple[float, float]] = {}
        tick = os.sysconf("SC_CLK_TCK")
        for pid, (user, system) in self.seen.items():
            kind = self.kinds[pid]
            before = totals.get(kind, (0.0, 0.0))
            totals[kind] = (before[0] + user / tick, before[1] + system / tick)
        return ", ".join(f"{kind} {user + system:.1f} s ({system:.1f} s in the kernel)"
                         for kind, (user, system) in sorted(totals.items()))


def machine_busy() -> float:
    """Seconds of CPU the whole machine has spent busy (all CPUs; /proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def latency(root: Path, config: Path, dovecot: Dovecot, user, count: int, gap: float) -> None:  # type: ignore[no-untyped-def]
    log = open(root / "daemon.log", "wb")  # noqa: SIM115
    daemon = subprocess.Popen([sys.executable, "-m", "daemon", "-c", str(config), "run"], stderr=log)
    time.sleep(3)
    sent: dict[str, float] = {}
    before = sink_count(root)
    for number, raw in enumerate(generate(count, 99)):
        message_id = f"latency-{number}@customer.example"
        raw = raw.replace(b"Message-ID: <", f"Message-ID: <{message_id}> <".encode(), 1)
        raw = b"\r\n".join(line for line in raw.split(b"\r\n") if not line.startswith((b"In-Reply-To", b"References")))
        raw = raw.replace(b"Subject: Re: [Support #", b"Subject: Re: [Case #")
        sent[message_id] = time.time()
        dovecot.append(user.name, raw)
        time.sleep(gap)
    deadline = time.time() + 60
    while sink_count(root) - before < len([1 for _ in sent]) * 0.95 and time.time() < deadline:
        time.sleep(0.2)
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=60)
    log.close()
    arrived = {}
    for line in (root / "sink.log").read_text().splitlines():
        when, parent = line.split(" ", 1)
        if parent in sent:
            arrived[parent] = float(when)
    delays = [arrived[m] - sent[m] for m in sent if m in arrived]
    print(f"latency, arrival in Dovecot to acknowledgement at the SMTP sink ({len(delays)} of {count} mails, "
          f"one every {gap * 1000:.0f} ms, IDLE): p50 {percentile(delays, 0.5) * 1000:.0f} ms, "
          f"p95 {percentile(delays, 0.95) * 1000:.0f} ms, p99 {percentile(delays, 0.99) * 1000:.0f} ms")


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    logging.getLogger("mailparser").setLevel(logging.ERROR)  # a warning per DSN part it does not handle
    main()
