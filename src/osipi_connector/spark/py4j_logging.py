"""Keep py4j's DEBUG lines off unless asked for: formatting a caught Java exception while py4j logs at DEBUG
calls back into the gateway, which logs again, without end (tens of GB of log in a test run that set the root
logger to DEBUG). Imports no pyspark."""

from __future__ import annotations

import logging

PY4J = "py4j"


def cap_py4j_logging() -> None:
    """Pin the `py4j` logger at its inherited level, but no lower than INFO, when nobody configured it (level
    NOTSET: it follows the root's, perhaps DEBUG, even when that changes later). Not simply INFO: under a root
    at WARNING (the CLI's default) that would let py4j's INFO chatter through. A level the user set, DEBUG
    included, is left as it is."""
    logger = logging.getLogger(PY4J)
    if logger.level == logging.NOTSET:
        logger.setLevel(max(logging.INFO, logger.getEffectiveLevel()))
