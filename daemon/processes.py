"""How Postdesk starts its helper processes (the parse worker, `run --once`'s sending process)."""

from __future__ import annotations

import os
import threading


def start_method() -> str:
    """"fork" while this process has a single thread: the child is a copy of it, with every
    module already imported, and starts at once (a fresh interpreter spends about half a
    second importing). With other threads running, a fork could copy a lock one of them holds,
    so then, and where there is no fork, "spawn"."""
    return "fork" if hasattr(os, "fork") and threading.active_count() == 1 else "spawn"
