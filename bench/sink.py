"""A counting SMTP sink in its own process (aiosmtpd), for the benchmarks.

    python bench/sink.py LOGFILE        prints its port, then serves until stdin closes

Each accepted mail appends one line to LOGFILE: arrival time (time.time()) and the mail's
In-Reply-To, so a benchmark can measure arrival-to-acknowledgement latency.
"""

from __future__ import annotations

import re
import socket
import sys
import time

from aiosmtpd.controller import Controller

IN_REPLY_TO = re.compile(rb"^In-Reply-To:\s*<([^>]*)>", re.MULTILINE | re.IGNORECASE)


class Counting:
    def __init__(self, log: str) -> None:
        self.log = open(log, "a", buffering=1)  # noqa: SIM115 - lives as long as the process

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        content = getattr(envelope, "content", b"") or b""
        head = content.split(b"\r\n\r\n", 1)[0]
        found = IN_REPLY_TO.search(head)
        self.log.write(f"{time.time():.6f} {found.group(1).decode() if found else '-'}\n")
        return "250 OK"


def main() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Counting(sys.argv[1]), hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
