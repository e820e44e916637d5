"""Write-only secrets in the GUI: the browser sees MASK instead of a stored secret and sends MASK back to
mean "keep it". Kept only for the destination it was stored for: a config sent back with the mask but a
changed endpoint, URL, host, broker, proxy, type or TLS trust would otherwise make the agent hand the stored
secret to whatever the sender typed (a test connection to an attacker's listener). So any change of those
fields needs the secret typed again, and the refusal names the field.

Also here: the audit diff (`changes`), which names each changed key and never a secret's value.
"""

from __future__ import annotations

import re
from typing import Any

from iot_connector.config import ConfigError
from iot_connector.config.secrets import SECRET_KEY_RE, has_url_password, hide_url_password

MASK = "********"  # what the browser sees instead of a stored secret; sent back, it means "keep it"
# Keys that say where a secret goes, or what protects it on the way (a new CA or trust list allows a MITM).
DESTINATION_RE = re.compile(
    r"(^|_)(url|endpoint|host|hostname|port|broker|server|address|proxy)$"
    r"|^(type|security_policy|security_mode|trust_any_server|trusted_server_certs|ca_file)$"
)


def masked(node: Any, key: str = "") -> Any:
    if isinstance(node, dict):
        return {k: masked(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [masked(v, key) for v in node]
    if isinstance(node, str) and node and SECRET_KEY_RE.search(key):
        return MASK
    return hide_url_password(node, MASK) if has_url_password(node) else node


def _comparable(node: Any) -> Any:
    """`node` with empty values (None, "", [], {}) alike, wherever they sit: a form may send any of them."""
    if node in (None, "", [], {}):
        return None
    if isinstance(node, dict):
        return {k: c for k, v in node.items() if (c := _comparable(v)) is not None}
    if isinstance(node, list):
        return [_comparable(v) for v in node]
    return node


def unmask(new: Any, old: Any, where: str = "") -> Any:
    """Put the stored secret back wherever the browser returned MASK, if it still goes where it was stored
    for; otherwise ConfigError naming the secret and the fields that changed."""
    if isinstance(new, dict):
        prior = old if isinstance(old, dict) else {}
        kept = sorted(k for k, v in new.items() if v == MASK and prior.get(k) not in (None, ""))
        if kept:
            moved = sorted(
                k
                for k in set(new) | set(prior)
                if DESTINATION_RE.search(str(k))
                and _comparable(new.get(k)) != _comparable(masked(prior.get(k), str(k)))
            )
            if moved:
                raise ConfigError(
                    [
                        f"{where}.{k}: {', '.join(moved)} changed, so the stored {k} is not sent there; "
                        f"enter the {k} again"
                        for k in kept
                    ]
                )
        return {k: unmask(v, prior.get(k), f"{where}.{k}" if where else str(k)) for k, v in new.items()}
    if isinstance(new, list):
        prior_items = old if isinstance(old, list) else []
        return [unmask(v, prior_items[i] if i < len(prior_items) else None, f"{where}[{i}]") for i, v in enumerate(new)]
    if isinstance(new, str) and new != MASK and f":{MASK}@" in new:  # a URL with its password masked
        if has_url_password(old) and hide_url_password(old, MASK) == new:
            return old
        raise ConfigError(
            [
                f"{where}: the address changed, so its stored password is not sent there; type the "
                "whole URL with the password again"
            ]
        )
    if new == MASK:
        if old in (None, ""):  # e.g. a stored source's mask copied into a new one: nothing of its own to keep
            raise ConfigError([f"{where}: nothing is stored here to keep; type the value"])
        return old
    return new


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) and "name" in item for item in value)


def changes(old: Any, new: Any, path: str = "") -> dict[str, Any]:
    """Changed key paths with old -> new values, secrets redacted (for the audit log)."""
    if _named_list(old) and _named_list(new):  # sources: compare by name, not by position
        old, new = ({item["name"]: item for item in items} for items in (old, new))
    if isinstance(old, dict) and isinstance(new, dict):
        out: dict[str, Any] = {}
        for key in sorted(set(old) | set(new), key=str):
            out.update(changes(old.get(key), new.get(key), f"{path}.{key}" if path else str(key)))
        return out
    if old == new:
        return {}
    if SECRET_KEY_RE.search(path) or has_url_password(old) or has_url_password(new):
        return {path: "<secret changed>"}
    return {path: {"old": masked(old, path), "new": masked(new, path)}}
