"""GUI login: scrypt password hashes on disk, in-memory sessions with CSRF tokens, a login rate limiter.

Why in memory: one agent process serves the GUI, so a restart logging everyone out is acceptable and no
session secret ever lands on disk. Passwords are hashed with scrypt (`cryptography`), never stored.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import secrets
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

USERS_FILE = "gui_users.json"
ADMIN_PASSWORD_ENV = "IOT_CONNECTOR_ADMIN_PASSWORD"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
# One user's line in gui_users.json: the KDF's name and parameters, base64 salt and hash.
PasswordEntry = dict[str, str | int]


def _kdf(salt: bytes, n: int, r: int, p: int) -> Scrypt:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p)


def hash_password(password: str) -> PasswordEntry:
    salt = os.urandom(16)
    digest = _kdf(salt, **_SCRYPT).derive(password.encode())
    return {
        "kdf": "scrypt",
        **_SCRYPT,
        "salt": base64.b64encode(salt).decode(),
        "hash": base64.b64encode(digest).decode(),
    }


def check_password(entry: PasswordEntry, password: str) -> bool:
    try:
        kdf = _kdf(base64.b64decode(str(entry["salt"])), int(entry["n"]), int(entry["r"]), int(entry["p"]))
        kdf.verify(password.encode(), base64.b64decode(str(entry["hash"])))
        return True
    except (InvalidKey, KeyError, ValueError):
        return False


class Users:
    """`gui_users.json` (mode 0600) in the config directory: user name -> scrypt hash."""

    def __init__(self, config_dir: Path):
        self.path = Path(config_dir) / USERS_FILE

    def _read(self) -> dict[str, PasswordEntry]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def set_password(self, user: str, password: str) -> None:
        if len(password) < 8:
            raise ValueError("the password needs at least 8 characters")
        users = self._read()
        users[user] = hash_password(password)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(users, fh, indent=2)
        tmp.replace(self.path)

    def ensure_admin(self) -> None:
        """First run: the admin password comes from the environment, or one is generated and printed once."""
        if self._read():
            return
        password = os.environ.get(ADMIN_PASSWORD_ENV)
        if not password:
            password = secrets.token_urlsafe(12)
            # stderr, not logging: it must not end up in the log buffer the GUI shows and lets download
            print(f"iot-connector GUI: first run, user 'admin' password: {password}  (change it)", file=sys.stderr)
        self.set_password("admin", password)

    def verify(self, user: str, password: str) -> bool:
        entry = self._read().get(user)
        if entry is None:
            check_password(hash_password("x"), password)  # same work for unknown users: no timing oracle
            return False
        return check_password(entry, password)


@dataclass
class Session:
    user: str
    csrf: str
    expires: float


class Sessions:
    def __init__(self, idle_s: float = 8 * 3600):
        self.idle_s = idle_s
        self._by_token: dict[str, Session] = {}

    def create(self, user: str) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(user, secrets.token_urlsafe(32), time.monotonic() + self.idle_s)
        self._by_token[token] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        session = self._by_token.get(token or "")
        if session is None or session.expires < time.monotonic():
            self._by_token.pop(token or "", None)
            return None
        session.expires = time.monotonic() + self.idle_s
        return session

    def drop(self, token: str | None) -> None:
        self._by_token.pop(token or "", None)

    @staticmethod
    def csrf_ok(session: Session, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(session.csrf, sent or "")


@dataclass
class LoginLimiter:
    """At most `max_failures` failed logins per client address in `window_s`; then wait for the window."""

    max_failures: int = 5
    window_s: float = 300.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, client: str) -> int:
        now = time.monotonic()
        times = self._failures.get(client, deque())
        while times and times[0] < now - self.window_s:
            times.popleft()
        return int(times[0] + self.window_s - now) + 1 if len(times) >= self.max_failures else 0

    def failed(self, client: str) -> None:
        self._failures.setdefault(client, deque()).append(time.monotonic())

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
