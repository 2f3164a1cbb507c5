"""Logging set-up shared by the command line and the processes it starts."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOISY = ("alembic", "imapclient", "aiosmtplib", "sqlalchemy")  # their INFO is chatter; WARNING and up kept


def configure_logging(level: int) -> None:
    logging.basicConfig(level=level, stream=sys.stderr, format=FORMAT)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
