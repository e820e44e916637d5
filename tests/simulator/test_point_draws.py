"""A plant point's random properties come from one table drawn for every point at once: the same numbers as
hashing each point's keys on its own (`rng.u`), so names, kinds and values do not change with the speed-up."""

from __future__ import annotations

from osipi_connector.simulator import rng
from osipi_connector.simulator.ids import IdFactory
from osipi_connector.simulator.points import PointCatalog


def test_drawn_table_is_rng_u_of_each_point() -> None:
    for seed in (0, 42, 12_345):
        catalog = PointCatalog(seed, 500, "PISIM", IdFactory(seed), 0.1)
        for index in range(0, 500, 7):
            for salt in range(11, 20):
                assert catalog._u(salt, index) == rng.u(seed, salt, index)
            assert catalog._kind(index) == PointCatalog.kind_of(seed, index)
