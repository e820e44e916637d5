"""Modbus TCP/RTU source: polls register maps (see sample.yaml and docs/sources.md)."""

from iot_connector.sources.base import register
from iot_connector.sources.modbus.config import ModbusConfig, RegisterMap
from iot_connector.sources.modbus.source import ModbusSource

register("modbus", ModbusConfig, ModbusSource)

__all__ = ["ModbusConfig", "ModbusSource", "RegisterMap"]
