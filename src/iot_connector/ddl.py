"""The DDL of the edge agent's ZeroBus landing table, generated from `model.RECORD_FIELDS`.

ZeroBus ingests only into a plain managed Delta table: stream creation fails on `CLUSTER BY` (error 1521)
and on generated columns (error 1015), so neither appears here; optimisations belong downstream. Columns
follow RECORD_FIELDS in order, because ZeroBus numbers the protobuf fields by column position.
"""

from __future__ import annotations

import pyarrow as pa

from iot_connector.model import RECORD_FIELDS, SCHEMA_VERSION

TABLE_COMMENT = "Edge agent readings (OPC-UA / MQTT / Modbus) landed by ZeroBus; one row per Record."

_SCALAR_TYPES: dict[pa.DataType, str] = {
    pa.string(): "STRING",
    pa.bool_(): "BOOLEAN",
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INT",
    pa.int64(): "BIGINT",
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
    pa.binary(): "BINARY",
    pa.date32(): "DATE",
}


def is_timestamp_column(field: pa.Field) -> bool:
    """Record timestamps are int64 µs since the epoch (`*_ts`). ZeroBus writes a TIMESTAMP column from exactly
    that int64, so the table gets real timestamps while the protobuf message stays int64."""
    return field.name.endswith("_ts") and field.type == pa.int64()


def sql_type(dtype: pa.DataType) -> str:
    """Databricks SQL type of an Arrow type; raises for types ZeroBus cannot carry (nested maps, decimals...)."""
    if dtype in _SCALAR_TYPES:
        return _SCALAR_TYPES[dtype]
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMP" if dtype.tz else "TIMESTAMP_NTZ"
    if pa.types.is_map(dtype) and dtype.key_type in _SCALAR_TYPES and dtype.item_type in _SCALAR_TYPES:
        return f"MAP<{sql_type(dtype.key_type)}, {sql_type(dtype.item_type)}>"
    if pa.types.is_list(dtype) and dtype.value_type in _SCALAR_TYPES:
        return f"ARRAY<{sql_type(dtype.value_type)}>"
    raise TypeError(f"no ZeroBus-compatible SQL type for Arrow type {dtype}; use a scalar, a list or a flat map")


def quote_identifier(name: str) -> str:
    """Backtick-quote one identifier (`a``b` for a backtick inside)."""
    if not name:
        raise ValueError("empty identifier in the landing table name")
    return "`" + name.replace("`", "``") + "`"


def table_identifier(table: str) -> str:
    """`catalog.schema.table` -> quoted three-part name; ZeroBus needs the full Unity Catalog name."""
    parts = table.split(".")
    if len(parts) != 3:
        raise ValueError(f"landing table {table!r} must be a three-part name catalog.schema.table")
    return ".".join(quote_identifier(p) for p in parts)


def column_definition(field: pa.Field) -> str:
    dtype = "TIMESTAMP" if is_timestamp_column(field) else sql_type(field.type)
    return f"{quote_identifier(field.name)} {dtype}{'' if field.nullable else ' NOT NULL'}"


def columns_sql(fields: list[pa.Field] = RECORD_FIELDS) -> str:
    """The column list, one per line: what notebooks/create_zerobus_table.py embeds (a test keeps it equal)."""
    return ",\n".join(f"  {column_definition(f)}" for f in fields)


def landing_table_ddl(table: str, fields: list[pa.Field] = RECORD_FIELDS) -> str:
    """`CREATE TABLE IF NOT EXISTS` for the landing table: plain Delta, no CLUSTER BY, no generated columns."""
    columns = columns_sql(fields)
    comment = f"{TABLE_COMMENT} Record schema_version {SCHEMA_VERSION}.".replace("'", "\\'")
    return f"CREATE TABLE IF NOT EXISTS {table_identifier(table)} (\n{columns}\n)\nUSING DELTA\nCOMMENT '{comment}'"


if __name__ == "__main__":  # python -m iot_connector.ddl main.iot.readings: print the DDL to paste or review
    import sys

    print(landing_table_ddl(sys.argv[1] if len(sys.argv) > 1 else "main.iot_bronze.edge_records"))
