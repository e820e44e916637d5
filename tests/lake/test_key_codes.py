"""Packed int64 keys (lake/key_codes.py): equal exactly where the composite keys are equal, and the matches
between a batch and a table's rows are the ones an Arrow join finds."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pyarrow as pa

from osipi_connector.lake.key_codes import matches, packed_keys

KEYS = ["tag_webid", "timestamp", "value_seq"]
T0 = dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc)
TS = pa.timestamp("us", tz="UTC")


def keys_table(keys: list[tuple[str, dt.datetime, int]]) -> pa.Table:
    webids, stamps, seqs = zip(*keys, strict=True) if keys else ((), (), ())
    return pa.table(
        {
            "tag_webid": pa.array(webids, pa.string()),
            "timestamp": pa.array(stamps, TS),
            "value_seq": pa.array(seqs, pa.int32()),
        }
    )


def random_keys(rng: random.Random, count: int, tags: int = 30) -> list[tuple[str, dt.datetime, int]]:
    return [
        (f"W{rng.randrange(tags):04d}", T0 + dt.timedelta(seconds=rng.randrange(7200)), rng.randrange(3))
        for _ in range(count)
    ]


def test_packed_keys_are_equal_exactly_where_the_keys_are() -> None:
    rng = random.Random(5)
    keys = random_keys(rng, 3000)
    packed = packed_keys(keys_table(keys), KEYS)
    assert packed is not None
    first: dict[tuple, int] = {}
    for key, code in zip(keys, packed[0].tolist(), strict=True):
        assert first.setdefault(key, code) == code
    assert len(set(packed[0].tolist())) == len(set(keys))


def test_matches_are_the_pairs_a_join_finds_in_source_order() -> None:
    rng = random.Random(11)
    source = list(dict.fromkeys(random_keys(rng, 2000)))
    # the target: some source keys, keys of other tags, times and value_seq outside the source's range
    target = rng.sample(source, 700) + [(f"X{i}", T0, 0) for i in range(50)]
    target += [(source[0][0], T0 - dt.timedelta(days=1), 0), (source[1][0], source[1][1], 7)]
    target = list(dict.fromkeys(target))
    rng.shuffle(target)
    packed = packed_keys(keys_table(source), KEYS, keys_table(target))
    assert packed is not None
    mine, theirs = matches(*packed)
    expected = sorted((i, target.index(key)) for i, key in enumerate(source) if key in set(target))
    assert list(zip(mine.tolist(), theirs.tolist(), strict=True)) == expected


def test_unpackable_keys_say_so() -> None:
    floats = pa.table({"k": pa.array([1.0, 2.0])})
    nulls = pa.table({"k": pa.array(["a", None])})
    wide = pa.table({"a": pa.array([0, 2**40], pa.int64()), "b": pa.array([0, 2**40], pa.int64())})
    assert packed_keys(floats, ["k"]) is None
    assert packed_keys(nulls, ["k"]) is None
    assert packed_keys(wide, ["a", "b"]) is None  # ranges multiply past 62 bits
    mine, theirs = matches(np.arange(3, dtype=np.int64), np.zeros(0, np.int64))  # an empty target
    assert len(mine) == len(theirs) == 0
