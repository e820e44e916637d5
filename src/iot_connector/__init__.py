"""Edge agent: OPC-UA / MQTT / Modbus -> ZeroBus (or a local Delta table)."""

__version__ = "0.1.0"
