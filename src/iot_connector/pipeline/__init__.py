"""Queue, durable spool, batching, breaker and retries between the sources and the sink."""

from iot_connector.pipeline.pipeline import Pipeline, make_buffer

__all__ = ["Pipeline", "make_buffer"]
