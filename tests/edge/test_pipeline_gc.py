"""The pipeline raises the garbage collector's first threshold (a Record per value, none cyclic)."""

from __future__ import annotations

import gc
from pathlib import Path

from iot_connector.config.models import PipelineSettings
from iot_connector.pipeline import Pipeline, make_buffer
from iot_connector.pipeline.pipeline import GC_GEN0_THRESHOLD
from tests.edge.helpers import RecordingSink


async def test_the_pipeline_raises_the_gc_threshold_but_never_enables_a_disabled_gc(tmp_path: Path) -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, before[1], before[2])
        settings = PipelineSettings()
        pipe = Pipeline(settings, RecordingSink(), make_buffer(settings, tmp_path / "spool"))
        await pipe.start()
        assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD
        await pipe.stop()
        gc.set_threshold(0, before[1], before[2])  # collection turned off by the embedding program: left off
        pipe = Pipeline(settings, RecordingSink(), make_buffer(settings, tmp_path / "spool2"))
        await pipe.start()
        assert gc.get_threshold()[0] == 0
        await pipe.stop()
    finally:
        gc.set_threshold(*before)
