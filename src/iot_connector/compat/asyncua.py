"""asyncua's private API the OPC UA source relies on (checked with asyncua 2.1.0).

* `Subscription._explode_datachange(datachange)` is replaced on our subscriptions (`whole_notifications`):
  asyncua 2.1 explodes every DataChangeNotification into one event per monitored item, each through an
  asyncio.Queue; at 20,000 values/s that was about a fifth of the agent's CPU. asyncua has no public
  whole-notification hook in iterator mode. Its caller `_explode_notifications` also serves Republish after
  a reconnect, and `Subscription._replaying` says whether the values are replayed.
* `Subscription._make_monitored_item_request(...)` builds monitored-item requests with asyncua's own
  client-handle bookkeeping (needed by its subscription restore), with our queue size and DiscardOldest.
* `Client._stale_check_margin` is set to infinity (`no_stale_subscription_check`): asyncua 2.1 re-creates a
  subscription it finds silent, also while its own restore after a reconnect works on the same object, and
  resets the subscription's clock when it does; the source's own check (sources/opcua/liveness.py) decides.
* `TrustStore._load_trust_location(location)` is overridden (`TrustList`): asyncua reads trusted
  certificates from folders only; users also name single certificate files.

Each hook is checked before use (`require`), so an asyncua release that drops one fails loudly.
Tests: tests/edge/sources/test_compat.py, tests/edge/sources/test_opcua_batches.py, test_opcua_security.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from asyncua import Client, Node, ua
from asyncua.common.subscription import Subscription
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.uacrypto import load_certificate
from cryptography import x509

from iot_connector.compat import missing, require

CHECKED = "2.1.0"
DISTRIBUTION = "asyncua"


def _require(owner: type, name: str, params: tuple[str, ...], why: str) -> None:
    require(DISTRIBUTION, owner, name, params, CHECKED, why)


def check_explode_datachange() -> None:
    _require(Subscription, "_explode_datachange", ("datachange",), "one event per DataChangeNotification")


def check_make_monitored_item_request() -> None:
    params = ("node", "attr", "mfilter", "queuesize", "monitoring", "sampling_interval")
    _require(Subscription, "_make_monitored_item_request", params, "monitored items with asyncua's client handles")


def check_load_trust_location() -> None:
    _require(TrustStore, "_load_trust_location", ("location",), "trusted certificates given as single files")


CHECKS = (check_explode_datachange, check_make_monitored_item_request, check_load_trust_location)


@dataclass(slots=True)
class DataChangeBatch:
    """The items of one DataChangeNotification, queued as one event (see `whole_notifications`)."""

    items: list[ua.MonitoredItemNotification]
    replayed: bool


def whole_notifications(sub: Subscription) -> None:
    """Make `sub`'s iterator yield one DataChangeBatch per DataChangeNotification instead of one event per item
    (the private `_explode_datachange` is replaced on this instance only)."""
    check_explode_datachange()
    if not hasattr(sub, "_replaying"):
        raise missing(DISTRIBUTION, "Subscription._replaying", CHECKED, "the replayed flag of republished values")

    def explode(datachange: ua.DataChangeNotification) -> Iterator[DataChangeBatch]:
        if datachange.MonitoredItems:
            yield DataChangeBatch(datachange.MonitoredItems, sub._replaying)

    # a deliberate patch of a private method, yielding our batch type instead of asyncua's events
    sub._explode_datachange = explode  # type: ignore[method-assign,assignment]


def no_stale_subscription_check(client: Client) -> None:
    """Turn asyncua's stale-subscription re-create off for `client` (the source checks liveness itself)."""
    if not isinstance(getattr(client, "_stale_check_margin", None), float):
        raise missing(DISTRIBUTION, "Client._stale_check_margin", CHECKED, "asyncua's stale-subscription check off")
    client._stale_check_margin = math.inf


def monitored_item_request(
    sub: Subscription,
    node: Node,
    attr: ua.AttributeIds,
    mfilter: ua.MonitoringFilter | None,
    queue_size: int,
    monitoring: ua.MonitoringMode,
    sampling_interval_ms: float,
) -> ua.MonitoredItemCreateRequest:
    """asyncua's own request builder (its client-handle bookkeeping is what restore() relies on)."""
    check_make_monitored_item_request()
    interval = ua.Duration(sampling_interval_ms)  # asyncua annotates Duration (a float subclass), not float
    return sub._make_monitored_item_request(node, attr, mfilter, queue_size, monitoring, interval)


class TrustList(TrustStore):
    """asyncua's TrustStore reads folders only; this also takes single certificate files."""

    def __init__(self, trust_locations: list[Path], crl_locations: list[Path]) -> None:
        check_load_trust_location()
        super().__init__(trust_locations, crl_locations)

    async def _load_trust_location(self, location: Path) -> list[x509.Certificate]:
        if location.is_file():
            return [await load_certificate(location)]
        return await super()._load_trust_location(location)
