"""Signed-in sessions: each holds its own Postgres connection, opened with the password at
sign-in (the password is not kept), in this process's memory only, keyed by a random id. The
browser's cookie holds the id and the CSRF token, signed; a restart signs everyone out."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field

import psycopg2
from psycopg2.extensions import connection as Connection


@dataclass
class Session:
    user: str
    csrf: str
    conn: Connection
    closer: ExitStack
    last_seen: float = field(default_factory=time.monotonic)
    # psycopg2 connections are not for two threads at once; a session's requests take turns
    lock: threading.Lock = field(default_factory=threading.Lock)


class SessionStore:
    def __init__(self, idle_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def add(self, user: str, conn: Connection, closer: ExitStack) -> tuple[str, Session]:
        session_id = secrets.token_urlsafe(32)
        session = Session(user, secrets.token_urlsafe(32), conn, closer, self._clock())
        with self._lock:
            self._sessions[session_id] = session
        return session_id, session

    def get(self, session_id: str) -> Session | None:
        """The live session, its idle clock restarted; None when unknown or idle too long."""
        self.close_idle()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None:
                session.last_seen = self._clock()
            return session

    def close(self, session_id: str) -> None:
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is not None:
            _close(session)

    def close_idle(self) -> None:
        now = self._clock()
        with self._lock:
            idle = [
                sid for sid, s in self._sessions.items() if now - s.last_seen > self.idle_seconds
            ]
            closing = [self._sessions.pop(sid) for sid in idle]
        for session in closing:
            _close(session)

    def close_all(self) -> None:
        with self._lock:
            closing = list(self._sessions.values())
            self._sessions.clear()
        for session in closing:
            _close(session)


@contextmanager
def using(session: Session) -> Iterator[Connection]:
    """The session's connection, for one request at a time; a failed statement's open
    transaction is rolled back, so the next request starts clean."""
    with session.lock:
        try:
            yield session.conn
        except Exception:
            with suppress(psycopg2.Error):
                session.conn.rollback()
                with session.conn.cursor() as cursor:
                    cursor.execute("rollback")  # one begun by hand in autocommit mode
            raise


def _close(session: Session) -> None:
    with session.lock:
        session.closer.close()
