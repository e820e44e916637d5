"""PI Web API -> Delta Lake connector (bronze timeseries, AF hierarchy, event frames, watermarks)."""

__version__ = "0.1.0"
