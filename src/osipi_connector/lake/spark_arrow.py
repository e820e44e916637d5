"""Arrow tables <-> Spark DataFrames on both Spark lines a job may run on.

Spark 4 (DBR 17.3 LTS, the bundle's job clusters; serverless environment 4; Databricks Connect 17+) takes and
returns Arrow directly (`createDataFrame(pa.Table)`, `DataFrame.toArrow()`). Spark 3.5 (DBR 16.4 LTS, older
Databricks Connect clients) has neither, so there the batch goes through pandas, and reads collect timestamps as `unix_micros`
integers: exact UTC microseconds whatever the session or driver time zone. Both paths run in the local tests
(pyspark 4) by forcing `native=False`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType


def arrow_native(spark: Any) -> bool:
    """True when this Spark (classic or Connect) has the Arrow-native DataFrame API (Spark 4+)."""
    return int(str(spark.version).split(".")[0]) >= 4


def to_dataframe(spark: Any, table: pa.Table, schema: StructType, native: bool | None = None) -> DataFrame:
    """`table` (already conformed to its spec) as a DataFrame with exactly `schema`."""
    if native if native is not None else arrow_native(spark):
        return spark.createDataFrame(table, schema=schema)
    import pandas as pd

    # Python ints/None instead of NaN-filled floats; dates as datetime.date; UTC-aware timestamps stay instants
    frame = table.to_pandas(integer_object_nulls=True, date_as_object=True)
    for field in table.schema:
        if pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
            frame[field.name] = pd.Series(table[field.name].to_pylist(), dtype=object)  # lists, not numpy arrays
    return spark.createDataFrame(frame, schema=schema)


def to_arrow(df: DataFrame, schema: pa.Schema, native: bool | None = None) -> pa.Table:
    """The (small) DataFrame collected as Arrow with `schema`'s column order and types."""
    if native if native is not None else arrow_native(df.sparkSession):
        return df.select(*schema.names).toArrow()
    from pyspark.sql import functions as F

    stamps = {f.name for f in schema if pa.types.is_timestamp(f.type)}
    # F.expr, not F.unix_micros: the Python wrapper only exists from pyspark 3.5, the SQL function from 3.1
    columns = [F.expr(f"unix_micros(`{n}`)").alias(n) if n in stamps else F.col(n) for n in schema.names]
    as_ints = pa.schema([pa.field(f.name, pa.int64()) if f.name in stamps else f.with_nullable(True) for f in schema])
    rows = [row.asDict(recursive=True) for row in df.select(*columns).collect()]
    table = pa.Table.from_pylist(rows, schema=as_ints)
    return pa.Table.from_arrays(
        [table[f.name].cast(f.type) if f.name in stamps else table[f.name] for f in schema], names=schema.names
    )
