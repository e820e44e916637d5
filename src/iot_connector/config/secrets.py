"""Secrets at rest: Fernet tokens (`enc:<token>`) in the config files, the key in a 0600 file beside them.

Why: the state file is edited by the GUI and copied around; it must never hold a password in clear. Any
string value written as `enc:...` is decrypted on load, wherever it sits (so every source's password or key
passphrase is covered without that source knowing). Values under secret-looking keys are encrypted on save.
Rotation (`iot-connector secrets rotate-key`) re-encrypts every token with a new key; while it runs the new
key sits in `secret.key.new`, which the loader also tries, so a crash mid-rotation never locks you out.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

log = logging.getLogger(__name__)
PREFIX = "enc:"
KEY_FILE = "secret.key"
KEY_ENV = "IOT_CONNECTOR_SECRET_KEY_FILE"
SECRET_KEY_RE = re.compile(r"(password|passphrase|secret|token|private_key_pass)$", re.IGNORECASE)
_ENC_RE = re.compile(r"enc:[A-Za-z0-9_\-=]+")
# A URL with a password in it (`http://user:pass@proxy:3128`): the whole value is treated as a secret.
URL_CREDENTIALS_RE = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/@:\s]*:)(?P<password>[^/@\s]+)@")


def has_url_password(value: object) -> bool:
    return isinstance(value, str) and URL_CREDENTIALS_RE.match(value) is not None


def hide_url_password(value: str, mask: str = "********") -> str:
    """`http://user:pass@host` -> `http://user:********@host` (anything else unchanged): for logs and the GUI."""
    return URL_CREDENTIALS_RE.sub(lambda m: f"{m['head']}{mask}@", value, count=1)


class SecretError(ValueError):
    """A secret cannot be decrypted (wrong or missing key); the message names the key file, never the value."""


def key_path(config_dir: Path) -> Path:
    return Path(os.environ.get(KEY_ENV) or Path(config_dir) / KEY_FILE)


def _write_private(path: Path, data: bytes) -> None:
    """Create/replace a file readable by its owner only (0600), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def reveal_tree(node: Any) -> Any:
    """Copy of a tree with SecretStr values unwrapped: for saving with secrets encryption turned off."""
    if isinstance(node, dict):
        return {k: reveal_tree(v) for k, v in node.items()}
    if isinstance(node, list):
        return [reveal_tree(v) for v in node]
    return node.get_secret_value() if isinstance(node, SecretStr) else node


class SecretBox:
    def __init__(self, key_file: Path):
        self.key_file = Path(key_file)
        self._fernet: MultiFernet | None = None
        self._fernets: list[Fernet] = []  # the keys inside _fernet (MultiFernet keeps its list private)

    def _keys(self, create: bool) -> MultiFernet:
        if self._fernet is None:
            if not self.key_file.exists():
                if not create:
                    raise SecretError(f"the secret key file {self.key_file} is missing; encrypted values need it")
                self.key_file.parent.mkdir(parents=True, exist_ok=True)
                _write_private(self.key_file, Fernet.generate_key())
                log.info("created the secret key file %s (mode 0600)", self.key_file)
            mode = self.key_file.stat().st_mode & 0o777
            if mode & 0o077:
                try:
                    os.chmod(self.key_file, 0o600)
                    log.warning("secret key file %s had mode %o; tightened to 0600", self.key_file, mode)
                except PermissionError:  # not ours, e.g. a read-only Kubernetes Secret mount: usable, but say so
                    log.warning(
                        "secret key file %s has mode %o and is not ours to change: other users may read it; "
                        "mount it with mode 0400/0600 (Kubernetes: defaultMode: 0400) owned by the agent's user",
                        self.key_file,
                        mode,
                    )
            keys = [Fernet(self.key_file.read_bytes().strip())]
            pending = self.key_file.with_name(self.key_file.name + ".new")
            if pending.exists():  # an interrupted rotation
                keys.append(Fernet(pending.read_bytes().strip()))
            self._fernets, self._fernet = keys, MultiFernet(keys)
        return self._fernet

    def encrypt(self, value: str) -> str:
        return PREFIX + self._keys(create=True).encrypt(value.encode()).decode()

    def decrypt(self, value: str, where: str) -> str:
        try:
            return self._keys(create=False).decrypt(value[len(PREFIX) :].encode()).decode()
        except (InvalidToken, ValueError) as exc:
            if isinstance(exc, SecretError):
                raise SecretError(f"{where}: {exc}") from None
            raise SecretError(
                f"{where}: cannot decrypt with {self.key_file} (was the key replaced? re-enter the secret)"
            ) from None

    def decrypt_tree(self, node: Any, where: str = "") -> Any:
        """Copy of a JSON-like tree with every `enc:` string decrypted."""
        if isinstance(node, dict):
            return {k: self.decrypt_tree(v, f"{where}.{k}" if where else str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [self.decrypt_tree(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if isinstance(node, str) and node.startswith(PREFIX):
            return self.decrypt(node, where)
        return node

    def encrypt_tree(self, node: Any, key: str = "") -> Any:
        """Copy of a tree ready to save: SecretStr, values under secret-looking keys and URLs with a password
        in them (a proxy's `http://user:pass@host`) become `enc:` tokens."""
        if isinstance(node, dict):
            return {k: self.encrypt_tree(v, str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [self.encrypt_tree(v, key) for v in node]
        if isinstance(node, SecretStr):
            node = node.get_secret_value()
            return self.encrypt(node) if node else node
        if (
            isinstance(node, str)
            and node
            and not node.startswith(PREFIX)
            and (SECRET_KEY_RE.search(key) or has_url_password(node))
        ):
            return self.encrypt(node)
        return node

    def rotate(self, files: list[Path]) -> int:
        """Re-encrypt every `enc:` token in `files` with a fresh key (text replaced in place, comments kept)."""
        self._keys(create=False)
        new_key = Fernet.generate_key()
        pending = self.key_file.with_name(self.key_file.name + ".new")
        _write_private(pending, new_key)
        rotated = MultiFernet([Fernet(new_key), *self._fernets])
        count = 0
        for path in files:
            if not path.exists():
                continue
            text = path.read_text()

            def _swap(match: re.Match[str]) -> str:
                nonlocal count
                count += 1
                return PREFIX + rotated.rotate(match.group(0)[len(PREFIX) :].encode()).decode()

            try:
                new_text = _ENC_RE.sub(_swap, text)
            except InvalidToken:
                pending.unlink(missing_ok=True)
                raise SecretError(
                    f"{path}: a value cannot be decrypted with {self.key_file}; nothing rotated"
                ) from None
            _write_private(path, new_text.encode())
        os.replace(pending, self.key_file)
        self._fernet = None
        return count
