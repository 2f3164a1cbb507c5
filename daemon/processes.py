"""How Postdesk starts its helper processes (the parse worker, `run --once`'s sending process)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
import time


def start_method() -> str:
    """"fork" while this process has a single thread: the child is a copy of it, with every
    module already imported, and starts at once (a fresh interpreter spends about half a
    second importing). With other threads running, a fork could copy a lock one of them holds,
    so then, and where there is no fork, "spawn"."""
    return "fork" if hasattr(os, "fork") and threading.active_count() == 1 else "spawn"


def end_with_parent(parent: int) -> None:
    """In a helper process: end it when the process that started it is gone (killed with
    SIGKILL, say), instead of letting it linger as an orphan. A thread looks every second."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


HELPER_NICENESS = 4


def yield_to_intake() -> None:
    """In `run --once`'s helpers (the feeder, the sending process): a lower CPU priority than
    the process that stores the mail, the one the whole run waits for. When the machine is
    busy, that process then runs first; the helpers have time in hand (the feeder keeps a
    batch ahead, the sender follows the commits)."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(HELPER_NICENESS)


def name_this_process(name: str) -> None:
    """Give this process a name `ps -o comm`, `top` and /proc/PID/comm show (Linux, at most 15
    bytes), so an operator tells the sending process and the parse worker from the main one.
    Elsewhere, or if the call fails, nothing changes."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)


PR_SET_NAME = 15
