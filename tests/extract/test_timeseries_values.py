"""_split_values (PI `Value` -> value columns) on every shape PI sends, on all-numeric pages (the fast path
with no Python loop) and mixed ones, against a one-value-at-a-time reading of the documented rules."""

from __future__ import annotations

import random

import pytest

from osipi_connector.extract.timeseries import _split_values

SHAPES = [
    1.5,
    -2,
    0,
    float("inf"),
    None,
    True,
    False,
    {"Name": "Active", "Value": 1, "IsSystem": False},
    {"Name": "I/O Timeout", "Value": 246, "IsSystem": True},
    "a string value",
    "",
    {"Errors": ["Point not found", "second"]},
    [1, 2],
]


def expected(v: object) -> tuple:
    """(value, value_string, state name, state code, is_system) of one value."""
    if isinstance(v, dict) and "Errors" in v:
        return (None, "; ".join(v["Errors"]), None, None, None)
    if isinstance(v, dict):
        return (float(v["Value"]), None, v["Name"], v["Value"], v["IsSystem"])
    if isinstance(v, bool):
        return (float(v), None, None, None, None)
    if isinstance(v, (int, float)):
        return (float(v), None, None, None, None)
    if isinstance(v, str):
        return (None, v, None, None, None)
    if v is None:
        return (None, None, None, None, None)
    return (None, "[1,2]", None, None, None)


def rows(values: list) -> list[tuple]:
    return list(zip(*(column.to_pylist() for column in _split_values(values)), strict=True))


@pytest.mark.parametrize("seed", range(5))
def test_mixed_pages_follow_the_rules_value_by_value(seed: int) -> None:
    values = [random.Random(seed).choice(SHAPES) for _ in range(500)]
    assert rows(values) == [expected(v) for v in values]


@pytest.mark.parametrize("values", [[1.0, 2, 3.5], [None, 1.0, None], [True, 0.5], [], [7] * 1000])
def test_numeric_pages_take_the_fast_path_with_the_same_result(values: list) -> None:
    assert rows(values) == [expected(v) for v in values]
    _, *others = _split_values(values)
    assert all(column.null_count == len(values) for column in others)
