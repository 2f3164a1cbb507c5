"""The contacts file, kept in the contacts table (the rules and the hold policy read it there)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from daemon.core.values import ContactView
from daemon.store.db import Database
from daemon.store.models import Contact


def store_contacts(db: Database, contacts: tuple[ContactView, ...]) -> None:
    """Insert or update every contact of the file (contacts not in the file are left alone)."""
    now = datetime.now(UTC)
    with db.write() as session:
        existing = {c.email: c for c in session.scalars(select(Contact))}
        for view in contacts:
            row = existing.get(view.email.lower())
            if row is None:
                row = Contact(email=view.email.lower(), created_at=now)
                session.add(row)
            row.name, row.organisation, row.language = view.name, view.organisation, view.language
            row.attributes = dict(view.attributes)
