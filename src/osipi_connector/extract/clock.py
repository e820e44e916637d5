"""The PI server's clock, which ends every extraction window (the runner's and the Spark data source's)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from osipi_connector.config import ConfigError
from osipi_connector.piwebapi.pitime import parse_iso

if TYPE_CHECKING:
    from osipi_connector.piwebapi.client import PIClient


def server_now(client: PIClient) -> datetime:
    """The PI server's clock (data server `ServerTime`), so a skewed job clock cannot skip or re-read data.

    No quiet fallback to the local clock: windows ended by another clock can skip data the server has not
    stamped yet. A server that does not report its time is an error naming the opt-in (`clock: local`)."""
    servers = client.get_json("dataservers", {"selectedFields": "Items.ServerTime"}).get("Items") or []
    stamp = servers[0].get("ServerTime") if servers else None
    if not stamp:
        raise ConfigError(
            "the PI Web API did not report the data server's ServerTime (GET dataservers), which ends each "
            "extraction window. Set extraction.clock: local to use this machine's clock instead (keep it "
            "NTP-synchronised with the PI server), or grant the account read access to the data server."
        )
    return parse_iso(stamp)
