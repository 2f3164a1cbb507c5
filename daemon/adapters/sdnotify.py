"""systemd's notify protocol (sd_notify): READY=1, WATCHDOG=1, STOPPING=1, STATUS=..."""

from __future__ import annotations

import logging
import socket

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, notify_socket: str | None) -> None:
        self.address = notify_socket or ""
        if self.address.startswith("@"):
            self.address = "\0" + self.address[1:]

    @property
    def active(self) -> bool:
        return bool(self.address)

    def send(self, *states: str) -> None:
        if not self.address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self.address)
                sock.sendall("\n".join(states).encode())
        except OSError as error:
            log.warning("sd_notify failed: %s", error)
