"""Telling a bad record from a broken database, and naming why a record was dead-lettered.

A consumer that treats every database error as an outage retries one unstorable record
forever and stops the whole stream (a NUL in a ticket id did exactly that). Only errors
about *this data* may isolate the record that caused them; everything else - the server
going away, refusing connections, shutting down, running out of resources, a schema
that is not there - pauses consumption, because retrying later is the only fix and
dead-lettering would throw away good records.
"""

from __future__ import annotations

import asyncpg
from asyncpg.exceptions import _base as asyncpg_base

# SQLSTATE classes that describe the values of one statement, not the server's health:
# 22 data exception (NUL/untranslatable characters, out-of-range numbers and dates,
# over-long strings), 23 integrity constraint violation, 54 program limit exceeded
# (a row or array too large).
DATA_SQLSTATE_CLASSES = frozenset({"22", "23", "54"})

# Why a record went to a dead-letter topic: the first word of its slawatch-error header
# and the `reason` label of the dead-letter counters (a bounded set, never raw text).
DEAD_LETTER_REASONS = ("invalid", "undecodable", "engine", "store", "routing")


def is_data_error(exc: BaseException) -> bool:
    """True when the database refused the values of a statement (retrying cannot help)."""
    # asyncpg's client-side DataError: an argument that cannot be encoded for its column.
    if isinstance(exc, asyncpg_base.DataError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return (getattr(exc, "sqlstate", None) or "")[:2] in DATA_SQLSTATE_CLASSES
    return False


def is_outage(exc: BaseException) -> bool:
    """True for a failure of the database itself (connection lost or refused, timeout,
    shutdown, resources): pause and retry; never blame a record for it."""
    if is_data_error(exc):
        return False
    return isinstance(exc, (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError))


def reason_label(reason: str) -> str:
    """The bounded metric label of a dead-letter reason text: its first word
    ("store: ..." -> "store", "invalid SLA event: ..." -> "invalid"), else "other"."""
    words = reason.split(":", 1)[0].split()
    head = words[0] if words else ""
    return head if head in DEAD_LETTER_REASONS else "other"


def describe(exc: BaseException, limit: int = 300) -> str:
    """A short, payload-free account of an exception for a dead-letter header or a log."""
    sqlstate = getattr(exc, "sqlstate", None)
    name = type(exc).__name__ + (f" ({sqlstate})" if sqlstate else "")
    message = str(exc).replace("\x00", "\\x00").splitlines()[0] if str(exc) else ""
    text = f"{name}: {message}" if message else name
    return text[:limit]
