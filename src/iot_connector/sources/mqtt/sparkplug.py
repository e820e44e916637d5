"""Sparkplug B decoding with per-node/device alias tables learned from NBIRTH/DBIRTH.

A DATA message may name metrics only by alias; the table comes from the last BIRTH. A DATA metric whose
alias was never born is not dropped: it is emitted with tag `.../alias:<n>` and quality UNCERTAIN, counted,
and (if configured) a rebirth is requested, so a restart of the agent between BIRTH and DATA loses nothing.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any  # protobuf messages (Payload, its Metric): classes built at runtime, untyped

from google.protobuf.message import DecodeError

from iot_connector.model import Record
from iot_connector.sources.mqtt.payloads import MalformedPayload, checked_us, set_value
from iot_connector.sources.mqtt.sparkplug_pb import DATATYPES, Payload

_MESSAGE_TYPES = {"NBIRTH", "NDEATH", "DBIRTH", "DDEATH", "NDATA", "DDATA", "NCMD", "DCMD"}
_SIGNED_WIDTH = {1: 8, 2: 16, 3: 32}  # Int8/16/32 travel in the uint32 int_value
_INT_FIELDS = {1, 2, 3, 5, 6, 7}
_LONG_FIELDS = {4, 8, 13}  # Int64, UInt64, DateTime (ms)
_STRING_TYPES = {12, 14, 15}
# Datatype implied by the value field, for metrics whose datatype is unknown (alias never born).
_ONEOF_TYPE = {
    "int_value": 7,
    "long_value": 8,
    "float_value": 9,
    "double_value": 10,
    "boolean_value": 11,
    "string_value": 12,
    "bytes_value": 17,
}


@dataclass
class SparkplugResult:
    records: list[Record]
    rebirth_topic: str | None = None  # NCMD topic to ask the edge node for a rebirth
    unsupported: list[str] = field(default_factory=list)  # metrics left out: "<tag>: <why>", to be rejected


@dataclass
class SparkplugState:
    """Alias tables: (group, edge node, device or "") -> alias -> (metric name, datatype)."""

    aliases: dict[tuple[str, str, str], dict[int, tuple[str, int]]] = field(default_factory=dict)
    datatypes: dict[tuple[str, str, str], dict[str, int]] = field(default_factory=dict)
    unknown_aliases: int = 0
    unsupported_metrics: int = 0


def _signed(value: int, bits: int) -> int:
    if value >= 1 << 31:  # sign-extended to 32 bits (Java tahu)
        return value - (1 << 32)
    if bits < 32 and value >= 1 << (bits - 1):  # two's complement of the declared width (Python tahu)
        return value - (1 << bits)
    return value


def metric_value(metric: Any, datatype: int) -> object:
    """The Python value of a metric given its (born) datatype; raises KeyError for unsupported types."""
    if datatype in _SIGNED_WIDTH:
        return _signed(metric.int_value, _SIGNED_WIDTH[datatype])
    if datatype in _INT_FIELDS:
        return metric.int_value
    if datatype == 4:
        v = metric.long_value
        return v - (1 << 64) if v >= 1 << 63 else v
    if datatype in _LONG_FIELDS:
        return metric.long_value
    if datatype == 9:
        return metric.float_value
    if datatype == 10:
        return metric.double_value
    if datatype == 11:
        return metric.boolean_value
    if datatype in _STRING_TYPES:
        value = metric.string_value
        if not isinstance(value, str):  # protobuf hands out invalid UTF-8 of a proto2 string as bytes
            raise MalformedPayload(f"metric {metric.name!r}: string value is not UTF-8")
        return value
    if datatype in (17, 18):
        return base64.b64encode(metric.bytes_value).decode()
    raise KeyError(datatype)


class SparkplugDecoder:
    """Turns spBv1.0 messages into records, keeping alias state between messages."""

    def __init__(self, source_id: str, endpoint: str):
        self.source_id = source_id
        self.endpoint = endpoint
        self.state = SparkplugState()

    def decode(self, topic: str, payload: bytes, edge_ts: int) -> SparkplugResult:
        parts = topic.split("/")
        if len(parts) < 4 or parts[0] != "spBv1.0" or parts[2] not in _MESSAGE_TYPES:
            if len(parts) >= 2 and parts[1] == "STATE":
                return SparkplugResult([])  # host application state: not data
            raise MalformedPayload(f"topic {topic!r} is not spBv1.0/<group>/<message type>/<edge node>[/<device>]")
        group, kind, node = parts[1], parts[2], parts[3]
        device = parts[4] if len(parts) > 4 else ""
        if kind in ("NCMD", "DCMD"):
            return SparkplugResult([])
        try:
            message = Payload.FromString(payload)
        except DecodeError as exc:
            raise MalformedPayload(f"not a Sparkplug B payload: {exc}") from exc
        for metric in message.metrics:  # before any alias table changes: a rejected message changes nothing
            if not isinstance(metric.name, str):  # protobuf hands out invalid UTF-8 of a proto2 string as bytes
                raise MalformedPayload(f"metric name {metric.name!r} is not UTF-8")
        key = (group, node, device)
        if kind in ("NBIRTH", "NDEATH"):  # a node (re)birth or death invalidates its devices' tables too
            for known in [k for k in self.state.aliases if k[:2] == (group, node)]:
                self.state.aliases.pop(known)
                self.state.datatypes.pop(known, None)
        if kind in ("DDEATH", "NDEATH"):
            self.state.aliases.pop(key, None)
            self.state.datatypes.pop(key, None)
            return SparkplugResult([])
        if kind.endswith("BIRTH"):
            aliases = self.state.aliases.setdefault(key, {})
            datatypes = self.state.datatypes.setdefault(key, {})
            for metric in message.metrics:
                if metric.HasField("alias"):
                    aliases[metric.alias] = (metric.name, metric.datatype)
                datatypes[metric.name] = metric.datatype
        return self._records(message, key, kind, edge_ts)

    def _records(self, message: Any, key: tuple[str, str, str], kind: str, edge_ts: int) -> SparkplugResult:
        group, node, device = key
        prefix = f"{group}/{node}/{device}/" if device else f"{group}/{node}/"
        aliases = self.state.aliases.get(key, {})
        datatypes = self.state.datatypes.get(key, {})
        attributes = {"spb_group_id": group, "spb_edge_node_id": node, "spb_message_type": kind}
        if device:
            attributes["spb_device_id"] = device
        server_ts = checked_us(message.timestamp * 1000, "payload timestamp") if message.HasField("timestamp") else None
        seq = message.seq if message.HasField("seq") else None
        records: list[Record] = []
        unsupported: list[str] = []
        unknown = False
        for metric in message.metrics:
            name, datatype, unresolved = metric.name, metric.datatype, False
            if not name:
                name, born_type = aliases.get(metric.alias, ("", 0))
                if not name:
                    unknown = unresolved = True
                    self.state.unknown_aliases += 1
                    name = f"alias:{metric.alias}"
                datatype = datatype or born_type
            datatype = datatype or datatypes.get(name, 0) or _ONEOF_TYPE.get(metric.WhichOneof("value") or "", 0)
            rec = Record(
                source_id=self.source_id,
                protocol="sparkplugb",
                endpoint=self.endpoint,
                tag_id=prefix + name,
                tag_path=prefix + name,
                data_type=DATATYPES.get(datatype, str(datatype)),
                source_ts=checked_us(metric.timestamp * 1000, "metric %s timestamp", name)
                if metric.HasField("timestamp")
                else None,
                server_ts=server_ts,
                edge_ts=edge_ts,
                seq=seq,
                attributes={**attributes, "is_historical": "true"} if metric.is_historical else dict(attributes),
            )
            if metric.is_null:
                rec.quality = "BAD"
            else:
                try:
                    set_value(rec, metric_value(metric, datatype))
                except KeyError:
                    self.state.unsupported_metrics += 1
                    unsupported.append(f"{prefix}{name}: datatype {datatype} ({rec.data_type}) is not decoded")
                    continue
            if unresolved:
                rec.quality = "UNCERTAIN"
            records.append(rec)
        rebirth = f"spBv1.0/{group}/NCMD/{node}" if unknown else None
        return SparkplugResult(records, rebirth, unsupported)


def rebirth_request() -> bytes:
    """The NCMD payload that asks an edge node to publish its BIRTH messages again."""
    message = Payload()
    message.metrics.add(name="Node Control/Rebirth", datatype=11, boolean_value=True)
    return message.SerializeToString()
