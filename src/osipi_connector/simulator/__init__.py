"""A deterministic PI Web API server: demo source, test fixture and load generator.

Everything it serves is a pure function of (seed, object, time, now): the same seed and `now` give the
same bytes whatever the order of calls. Start it with `osipi-connector simulate` or, in Python, with
`osipi_connector.simulator.server.running_simulator(SimConfig(...))`.
"""

from osipi_connector.simulator.config import SimConfig

__all__ = ["SimConfig"]
