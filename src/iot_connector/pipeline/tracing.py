"""Optional OpenTelemetry tracing: spans around source emits, spool appends/commits and sink batch sends.

Why this shape: the agent depends only on `opentelemetry-api` (no-op unless a provider is set). When
`tracing.enabled` is on, a tracer provider already registered by the host (e.g. `opentelemetry-instrument`)
is used as is; otherwise one is built with `opentelemetry-sdk` and the OTLP exporter (or the console
exporter). If the SDK is missing, one clear log line says so and the agent runs without tracing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from iot_connector.config.models import TracingSettings

log = logging.getLogger(__name__)
INSTRUMENTATION = "iot_connector"


def make_tracer(settings: TracingSettings) -> Any | None:
    """A tracer when tracing is enabled and usable, else None (the pipeline then makes no spans at all)."""
    if not settings.enabled:
        return None
    try:
        from opentelemetry import trace
    except ImportError:
        log.warning("tracing.enabled is set but opentelemetry-api is not installed; running without tracing")
        return None
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return trace.get_tracer(INSTRUMENTATION)  # the host configured OpenTelemetry already
    provider = _sdk_provider(settings)
    if provider is None:
        return None
    trace.set_tracer_provider(provider)
    return trace.get_tracer(INSTRUMENTATION)


def _sdk_provider(settings: TracingSettings) -> Any | None:
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
    except ImportError:
        log.warning(
            "tracing.enabled is set but opentelemetry-sdk is not installed (pip install opentelemetry-sdk "
            "opentelemetry-exporter-otlp); running without tracing"
        )
        return None
    exporter: SpanExporter
    if settings.exporter == "console":
        exporter = ConsoleSpanExporter()
    else:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.warning(
                "tracing.exporter is otlp but opentelemetry-exporter-otlp is not installed; running without tracing"
            )
            return None
        exporter = OTLPSpanExporter(endpoint=settings.endpoint) if settings.endpoint else OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


@contextlib.contextmanager
def span(tracer: Any | None, name: str, **attributes: Any) -> Iterator[None]:
    """A current span when tracing is on; nothing (not even an allocation of a span) when it is off."""
    if tracer is None:
        yield
        return
    with tracer.start_as_current_span(name, attributes=attributes):
        yield


def span_until(tracer: Any | None, name: str, future: asyncio.Future[Any], **attributes: Any) -> None:
    """A span from now until `future` completes (a batch's acknowledgement), marked as an error if it fails."""
    if tracer is None:
        return
    started = tracer.start_span(name, attributes=attributes)

    def finish(done: asyncio.Future[Any]) -> None:
        if done.cancelled():
            started.set_attribute("cancelled", True)
        elif done.exception() is not None:
            started.record_exception(done.exception())
            from opentelemetry.trace import Status, StatusCode

            started.set_status(Status(StatusCode.ERROR, str(done.exception())))
        started.end()

    future.add_done_callback(finish)
