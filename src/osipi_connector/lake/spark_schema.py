"""Arrow schema -> Spark StructType: the Spark side of the one schema in `lake/schemas.py`.

Imported only where Spark is (Databricks, or the `[spark]` extra): the base wheel does not need pyspark.
"""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import types as T

_SCALARS: dict[pa.DataType, T.DataType] = {
    pa.string(): T.StringType(),
    pa.large_string(): T.StringType(),
    pa.bool_(): T.BooleanType(),
    pa.int8(): T.ByteType(),
    pa.int16(): T.ShortType(),
    pa.int32(): T.IntegerType(),
    pa.int64(): T.LongType(),
    pa.float32(): T.FloatType(),
    pa.float64(): T.DoubleType(),
    pa.date32(): T.DateType(),
    pa.binary(): T.BinaryType(),
}


def spark_schema(schema: pa.Schema) -> T.StructType:
    """Same names, order and nullability; UTC timestamps become TIMESTAMP (instants), naive ones TIMESTAMP_NTZ."""

    def convert(dtype: pa.DataType, where: str) -> T.DataType:
        if dtype in _SCALARS:
            return _SCALARS[dtype]
        if pa.types.is_timestamp(dtype):
            return T.TimestampType() if dtype.tz else T.TimestampNTZType()
        if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
            return T.ArrayType(convert(dtype.value_type, where), containsNull=dtype.value_field.nullable)
        if pa.types.is_struct(dtype):
            return T.StructType([T.StructField(f.name, convert(f.type, where), f.nullable) for f in dtype])
        raise TypeError(f"column {where!r}: no Spark type for Arrow {dtype}; add it to lake/spark_schema.py")

    return T.StructType([T.StructField(f.name, convert(f.type, f.name), f.nullable) for f in schema])
