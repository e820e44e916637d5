"""GUI login: scrypt password hashes on disk, a password policy, in-memory sessions with CSRF tokens, and
a throttle on password guesses.

Why in memory: one agent process serves the GUI, so a restart logging everyone out is acceptable and no
session secret ever lands on disk. Passwords are hashed with scrypt (`cryptography`), never stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

USERS_FILE = "gui_users.json"
COOKIE = "iotc_session"
DEVICE_COOKIE = "iotc_device"
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


MIN_PASSWORD_CHARS = 12
# Words that make up most leaked passwords (checked after stripping trailing digits and symbols, so
# "Password1234!" counts as "password"), plus what an installer or a tester types first.
_COMMON_WORDS = frozenset(
    [
        "password",
        "passw0rd",
        "admin",
        "administrator",
        "root",
        "qwerty",
        "qwertz",
        "azerty",
        "letmein",
        "welcome",
        "iloveyou",
        "changeme",
        "secret",
        "default",
        "monkey",
        "dragon",
        "football",
        "baseball",
        "master",
        "login",
        "guest",
        "user",
        "test",
        "iot",
        "connector",
        "edge",
        "gateway",
    ]
)
_SEQUENCES = ("0123456789" * 4, "abcdefghijklmnopqrstuvwxyz" * 2, "qwertyuiopasdfghjklzxcvbnm" * 2, "qwertzuiop" * 3)


class PasswordPolicyError(ValueError):
    """A new password that the policy refuses; the message says what to change."""


def password_problem(password: str, user: str = "") -> str | None:
    """Why `password` is too weak, or None. A length rule plus the guesses every attacker tries first."""
    low = password.lower()
    if len(password) < MIN_PASSWORD_CHARS:
        return f"the password needs at least {MIN_PASSWORD_CHARS} characters (a few unrelated words make a good one)"
    if len(set(low)) < 5:
        return "the password repeats too few characters; use at least 5 different ones"
    if low.isdigit():
        return "the password is only digits; add letters or words"
    core = re.sub(r"[\d\W_]+$", "", re.sub(r"^[\d\W_]+", "", low))
    if any(text in seq or text[::-1] in seq for seq in _SEQUENCES for text in {low, core} if len(text) >= 6):
        return "the password is a keyboard or number sequence; choose something less predictable"
    if core in _COMMON_WORDS or (user and core == user.lower()):
        return f"the password is a common one (based on {core!r}); choose something less predictable"
    return None


class Users:
    """`gui_users.json` (mode 0600) in the config directory: user name -> scrypt hash."""

    def __init__(self, config_dir: Path):
        self.path = Path(config_dir) / USERS_FILE

    def _read(self) -> dict[str, PasswordEntry]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def set_password(self, user: str, password: str) -> None:
        problem = password_problem(password, user)
        if problem:
            raise PasswordPolicyError(problem)
        users = self._read()
        users[user] = hash_password(password)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(users, fh, indent=2)
        tmp.replace(self.path)

    def ensure_admin(self) -> None:
        """First run: the admin password comes from the environment, or one is generated and printed once.
        A password from the environment that the policy refuses raises PasswordPolicyError naming the variable."""
        if self._read():
            return
        password = os.environ.get(ADMIN_PASSWORD_ENV)
        if not password:
            password = secrets.token_urlsafe(12)
            # stderr, not logging: it must not end up in the log buffer the GUI shows and lets download
            print(f"iot-connector GUI: first run, user 'admin' password: {password}  (change it)", file=sys.stderr)
        try:
            self.set_password("admin", password)
        except PasswordPolicyError as exc:
            raise PasswordPolicyError(f"{ADMIN_PASSWORD_ENV}: {exc}") from None

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

    def valid(self, token: str | None) -> bool:
        """Whether `token` is a live session, without extending it (for the body limit)."""
        session = self._by_token.get(token or "")
        return session is not None and session.expires >= time.monotonic()

    def drop(self, token: str | None) -> None:
        self._by_token.pop(token or "", None)

    def drop_user(self, user: str, keep: str | None = None) -> int:
        """End every session of `user` but `keep` (after a password change); returns how many ended."""
        ended = [t for t, s in self._by_token.items() if s.user == user and t != keep]
        for token in ended:
            del self._by_token[token]
        return len(ended)

    @staticmethod
    def csrf_ok(session: Session, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(session.csrf, sent or "")


@dataclass
class _Attempts:
    failures: int = 0
    last: float = 0.0
    told: float = -1.0  # the `last` whose wait was already audited once


class LoginLimiter:
    """Exponential backoff on password guesses, per user name and client address, or per device.

    The scheme: the first `free` failures cost nothing; after that each failure doubles the wait before the
    next guess (`base_s`, 2x, 4x ... up to `max_s`). While waiting, every attempt is refused (429) without
    checking the password, so no guess is checked early. After the wait, the right password logs in and
    clears the count. An attempt is counted *before* the slow scrypt check, under a lock, so concurrent
    guesses cannot all slip through. A guesser behind the same address delays only that user name from that
    address; and a browser that logged in before carries a signed device cookie (OWASP "device cookies") with
    its own count, so the operator's own browser is never held up by someone else's guessing.
    """

    def __init__(self, free: int = 5, base_s: float = 1.0, max_s: float = 300.0):
        self.free, self.base_s, self.max_s = free, base_s, max_s
        self._attempts: dict[tuple[str, ...], _Attempts] = {}
        self._lock = threading.Lock()
        self._device_key = secrets.token_bytes(32)  # per process: a restart makes every device unknown again

    # --- devices ---------------------------------------------------------------------------------------
    def _sign(self, user: str, nonce: str) -> str:
        return hmac.new(self._device_key, f"{user}\0{nonce}".encode(), hashlib.sha256).hexdigest()

    def device_token(self, user: str) -> str:
        nonce = secrets.token_urlsafe(16)
        return f"{nonce}.{self._sign(user, nonce)}"

    def device_of(self, cookie: str | None, user: str) -> str | None:
        """The device id if `cookie` is a device cookie this process issued for `user`, else None."""
        nonce, _dot, mac = (cookie or "").partition(".")
        return nonce if nonce and hmac.compare_digest(mac, self._sign(user, nonce)) else None

    @staticmethod
    def key(user: str, client: str, device: str | None = None) -> tuple[str, ...]:
        return ("device", device) if device else ("user", user.lower(), client)

    # --- attempts --------------------------------------------------------------------------------------
    def _wait(self, attempts: _Attempts, now: float) -> float:
        if attempts.failures < self.free:
            return 0.0
        delay = min(self.max_s, self.base_s * 2 ** min(attempts.failures - self.free, 30))
        return max(0.0, attempts.last + delay - now)

    def retry_after(self, key: tuple[str, ...]) -> tuple[int, bool]:
        """Seconds to wait before the next attempt (0: go ahead), and whether this is the first refusal of
        this wait (so a lockout is audited once, not once per refused request)."""
        with self._lock:
            attempts = self._attempts.get(key)
            if attempts is None:
                return 0, False
            wait = self._wait(attempts, time.monotonic())
            if not wait:
                return 0, False
            first, attempts.told = attempts.told != attempts.last, attempts.last
            return int(wait) + 1, first

    def begin(self, key: tuple[str, ...]) -> None:
        """Count an attempt as failed before checking it; `succeeded` takes it back."""
        with self._lock:
            now = time.monotonic()
            if len(self._attempts) > 10_000:  # many addresses or names: forget the ones long idle
                stale = [k for k, a in self._attempts.items() if now - a.last > 2 * self.max_s]
                for k in stale:
                    del self._attempts[k]
            attempts = self._attempts.setdefault(key, _Attempts())
            attempts.failures += 1
            attempts.last = now

    def failures(self, key: tuple[str, ...]) -> int:
        with self._lock:
            attempts = self._attempts.get(key)
            return attempts.failures if attempts else 0

    def succeeded(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._attempts.pop(key, None)
