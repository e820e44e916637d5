"""provably_unique: the fast proof DeltaSink/SparkSink run before the exact group-by duplicate check."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from osipi_connector.lake.unique_keys import provably_unique
from osipi_connector.lake.validate import DuplicateKeyError, check_unique_keys
from tests.lake import rows

KEYS = ["tag_webid", "timestamp", "value_seq"]


def shuffled(table: pa.Table, seed: int = 7) -> pa.Table:
    order = list(range(table.num_rows))
    random.Random(seed).shuffle(order)
    return table.take(pa.array(order))


def test_sorted_and_shuffled_unique_batches_are_proved() -> None:
    batch = rows.timeseries(tags=5, days=2, per_day=50)
    assert provably_unique(batch, KEYS)
    assert provably_unique(shuffled(batch), KEYS)


def test_one_repeated_key_anywhere_is_not_proved_and_the_exact_check_names_it() -> None:
    batch = rows.timeseries(tags=5, days=2, per_day=50)
    for where in (0, 137, batch.num_rows - 1):
        doubled = shuffled(pa.concat_tables([batch, batch.slice(where, 1)]), seed=where)
        assert not provably_unique(doubled, KEYS)
        with pytest.raises(DuplicateKeyError, match="appear more than once"):
            check_unique_keys(rows.TIMESERIES, doubled)


def test_same_timestamp_distinct_value_seq_is_unique() -> None:
    batch = rows.timeseries(tags=2, days=1, per_day=3)
    second = batch.set_column(3, "value_seq", pa.array([1] * batch.num_rows, pa.int32())).cast(batch.schema)
    assert provably_unique(shuffled(pa.concat_tables([batch, second])), KEYS)


def test_keys_it_cannot_reason_about_are_left_to_the_exact_check() -> None:
    floats = pa.table({"k": pa.array([1.0, 2.0])})
    nulls = pa.table({"k": pa.array(["a", None])})
    assert not provably_unique(floats, ["k"])
    assert not provably_unique(nulls, ["k"])
    assert provably_unique(pa.table({"k": pa.array(["a"])}), ["k"])
