"""PILakeflowConnector end to end: simulator over HTTP -> real Delta tables, watermarks, run metrics."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import requests

from osipi_connector import PILakeflowConnector
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import RUN_METRICS, TIMESERIES, WATERMARKS, TableSpec
from osipi_connector.lake.sink import WriteResult
from osipi_connector.piwebapi.client import PIWebAPIClient, SubRequest, SubResponse
from osipi_connector.piwebapi.pitime import format_datetime
from osipi_connector.simulator.config import FaultConfig, SimConfig
from osipi_connector.simulator.server import running_simulator
from tests.conftest import FIXED_NOW
from tests.extract.conftest import make_client, served_rows, table_rows

pytestmark = pytest.mark.integration
END = FIXED_NOW
START = END - timedelta(hours=2)


def config(url: str, root: Path, tag_names: list[str], **extraction: object) -> dict:
    return {
        "pi_web_api": {"url": url, "auth_type": "anonymous"},
        "extraction": {
            "tag_names": tag_names,
            "mode": "full",
            "start_date": format_datetime(START),
            "end_date": format_datetime(END),
            "batch_size": 4,
            "max_count_per_tag": 3000,
            **extraction,
        },
        "performance": {"workers": 2, "max_window": "45m", "commit_rows": 20_000},
        "local": {"lakehouse_root": str(root)},
    }


def content(sink: DeltaSink, spec: TableSpec = TIMESERIES) -> list[dict]:
    rows = sink.read(spec).drop_columns(["ingested_at", "run_id"]).to_pylist()
    return sorted(rows, key=lambda r: tuple(str(v) for v in r.values()))


def watermarks(sink: DeltaSink) -> dict[str, dict]:
    return {r["item_id"]: r for r in sink.read(WATERMARKS).to_pylist() if r["dataset"] == "timeseries"}


def test_every_value_lands_once_and_a_rerun_changes_nothing(simulator, names, tmp_path) -> None:
    sink = DeltaSink(tmp_path)
    progress = []
    connector = PILakeflowConnector(config(simulator.url, tmp_path, list(names)), sink=sink, progress=progress.append)
    result = connector.run(datasets=["tags", "timeseries"])
    assert result.status == "success", result.errors
    served = served_rows(simulator.url, list(names.values()), format_datetime(START), format_datetime(END))
    got = table_rows(sink)
    assert len(got) == len(served)
    assert set(got) == served
    assert result.rows[TIMESERIES.name] == len(served)
    assert progress[-1].stage == "timeseries"
    assert progress[-1].done == progress[-1].total > 1
    marks = watermarks(sink)
    assert set(marks) == set(names.values())
    assert all(
        (m["low_watermark"], m["high_watermark"], m["last_status"]) == (START, END, "ok") for m in marks.values()
    )
    metrics = sink.read(RUN_METRICS).to_pylist()
    assert [(m["status"], m["rows_timeseries"], m["tags_succeeded"]) for m in metrics] == [
        ("success", len(served), len(names))
    ]

    before = content(sink)
    again = PILakeflowConnector(config(simulator.url, tmp_path, list(names)), sink=sink).run()
    assert again.status == "success"
    assert content(sink) == before
    again = PILakeflowConnector(config(simulator.url, tmp_path, list(names), mode="incremental"), sink=sink).run()
    assert content(sink) == before


class CrashOnWatermarks(DeltaSink):
    """A sink that dies when the watermarks are written: the data MERGE before it has committed."""

    def merge(self, spec: TableSpec, data: pa.Table, **hints) -> WriteResult:
        if spec.name == WATERMARKS.name:
            raise OSError("simulated crash between the data commit and the watermark commit")
        return super().merge(spec, data, **hints)


def test_a_crash_between_data_and_watermarks_is_repaired_by_the_next_run(simulator, names, tmp_path) -> None:
    tags = list(names)[:6]
    cfg = config(simulator.url, tmp_path / "lake", tags, mode="incremental")
    crashed = PILakeflowConnector(cfg, sink=CrashOnWatermarks(tmp_path / "lake")).run(datasets=["timeseries"])
    assert crashed.status in ("partial", "failed")
    assert any("simulated crash" in e for e in crashed.errors)
    sink = DeltaSink(tmp_path / "lake")
    assert table_rows(sink)  # data landed...
    assert not watermarks(sink)  # ...its watermarks did not
    repaired = PILakeflowConnector(cfg, sink=sink).run(datasets=["timeseries"])
    assert repaired.status == "success"
    clean = DeltaSink(tmp_path / "clean")
    PILakeflowConnector(config(simulator.url, tmp_path / "clean", tags), sink=clean).run(datasets=["timeseries"])
    assert content(sink) == content(clean)
    assert {w: m["high_watermark"] for w, m in watermarks(sink).items()} == {names[t]: END for t in tags}


def test_late_and_edited_values_inside_the_lookback_are_picked_up(tmp_path) -> None:
    first_now, later = END, END + timedelta(hours=1)
    sim = SimConfig(seed=11, tags=40, now=first_now, late_share=0.5, edit_share=0.2, rate_limit_max_requests=0)
    start = format_datetime(first_now - timedelta(hours=3))
    sink = DeltaSink(tmp_path)
    with running_simulator(sim) as first:
        points = requests.get(f"{first.url}/dataservers/{_server(first.url)}/points", params={"maxCount": 12}).json()
        tags = {p["Name"]: p["WebId"] for p in points["Items"]}
        cfg = config(first.url, tmp_path, list(tags), mode="incremental", start_date=start, end_date=None)
        cfg["extraction"]["lookback"] = "2h"
        assert PILakeflowConnector(cfg, sink=sink).run(datasets=["timeseries"]).status == "success"
        early = served_rows(first.url, list(tags.values()), start, format_datetime(first_now))
    sim.now = later
    with running_simulator(sim) as second:
        cfg["pi_web_api"]["url"] = second.url
        assert PILakeflowConnector(cfg, sink=sink).run(datasets=["timeseries"]).status == "success"
        served = served_rows(second.url, list(tags.values()), start, format_datetime(later))
    # the source changed after the first run (late arrivals, edits), so the test means something
    assert {r for r in served if r[1] <= first_now} != early
    got = table_rows(sink)
    assert len(got) == len(served)
    assert set(got) == served
    assert {m["high_watermark"] for m in watermarks(sink).values()} == {later}


def _server(url: str) -> str:
    return requests.get(f"{url}/dataservers").json()["Items"][0]["WebId"]


class BreakOneTag(PIWebAPIClient):
    """The real client, with one tag's recorded-value requests sent to a WebID the server rejects (HTTP 400)."""

    broken: str = ""

    def batch(self, subs: Mapping[str, SubRequest]) -> dict[str, SubResponse]:
        bad = f"streams/{self.broken}/recorded"
        fixed = {
            k: SubRequest("streams/F1DPbroken/recorded", s.params) if s.resource == bad else s for k, s in subs.items()
        }
        return super().batch(fixed)


def test_a_failing_tag_gives_partial_status_and_the_others_commit(simulator, names, tmp_path) -> None:
    tags = list(names)[:5]
    client = BreakOneTag(make_client(simulator.url).settings)
    client.broken = names[tags[0]]
    sink = DeltaSink(tmp_path)
    cfg = config(simulator.url, tmp_path, [*tags, "NO_SUCH_TAG.PV"])
    ghost = "F1DP8O9wYSLWy-YAAQAAAAAAAAAQAAAAUElTSU1cTk9QRS5QVg"  # well-formed, no such point
    cfg["extraction"]["tags"] = [ghost]
    with client:
        result = PILakeflowConnector(cfg, sink=sink, client=client).run(datasets=["tags", "timeseries"])
    assert result.status == "partial"
    assert any("NO_SUCH_TAG.PV" in e and ghost in e for e in result.errors)
    assert any(tags[0] in e and "HTTP 400" in e for e in result.errors)
    good = [names[t] for t in tags[1:]]
    assert set(table_rows(sink)) == served_rows(simulator.url, good, format_datetime(START), format_datetime(END))
    marks = watermarks(sink)
    assert marks[names[tags[0]]]["last_status"] == "failed"
    assert "HTTP 400" in marks[names[tags[0]]]["last_error"]
    assert marks[names[tags[0]]]["high_watermark"] is None
    assert all(marks[w]["last_status"] == "ok" for w in good)
    metrics = sink.read(RUN_METRICS).to_pylist()[0]
    assert (metrics["status"], metrics["tags_failed"]) == ("partial", 3)
    assert len(metrics["errors"]) == 2


def test_faults_are_survived_with_identical_results(simulator, sim_config, names, tmp_path) -> None:
    tags = list(names)[:6]
    faulty = SimConfig(
        seed=sim_config.seed,
        tags=sim_config.tags,
        now=sim_config.now,
        rate_limit_max_requests=40,
        faults=FaultConfig(error_rate=0.1, truncate_rate=0.1, drop_rate=0.05, seed=3),
    )
    sink = DeltaSink(tmp_path)
    with running_simulator(faulty) as flaky:
        cfg = config(flaky.url, tmp_path, tags, max_count_per_tag=500)
        cfg["retry"] = {"backoff_seconds": 0.01, "max_backoff_seconds": 0.2, "max_attempts": 8}
        result = PILakeflowConnector(cfg, sink=sink).run(datasets=["timeseries"])
    assert result.status == "success", result.errors
    expected = served_rows(simulator.url, [names[t] for t in tags], format_datetime(START), format_datetime(END))
    got = table_rows(sink)
    assert len(got) == len(expected)
    assert set(got) == expected


def test_backfill_widens_low_and_never_moves_high_back(simulator, names, tmp_path) -> None:
    tags = list(names)[:3]
    sink = DeltaSink(tmp_path)
    PILakeflowConnector(config(simulator.url, tmp_path, tags), sink=sink).run(datasets=["timeseries"])
    early_start, early_end = START - timedelta(hours=1), START + timedelta(minutes=10)
    result = PILakeflowConnector(config(simulator.url, tmp_path, tags), sink=sink).run(
        mode="backfill", start=early_start, end=early_end, datasets=["timeseries"]
    )
    assert result.status == "success"
    marks = watermarks(sink)
    assert {(m["low_watermark"], m["high_watermark"]) for m in marks.values()} == {(early_start, END)}
    expected = served_rows(simulator.url, [names[t] for t in tags], format_datetime(early_start), format_datetime(END))
    got = table_rows(sink)
    assert len(got) == len(expected)
    assert set(got) == expected


def test_the_guides_flat_keys_and_default_sink(simulator, names, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    tag = next(iter(names))
    connector = PILakeflowConnector(
        {
            "pi_web_api_url": simulator.url,
            "pi_auth_type": "anonymous",
            "catalog": "main",
            "schema": "bronze",
            "tags": [names[tag]],
            "start_date": format_datetime(END - timedelta(minutes=20)),
            "mode": "full",
        }
    )
    result = connector.run()
    assert result.status == "success"
    assert (tmp_path / "lakehouse" / "main" / "bronze" / "pi_timeseries" / "_delta_log").is_dir()
    assert (tmp_path / "lakehouse" / "main" / "checkpoints" / "pi_watermarks" / "_delta_log").is_dir()
    assert result.rows[TIMESERIES.name] == len(
        served_rows(simulator.url, [names[tag]], format_datetime(END - timedelta(minutes=20)), format_datetime(END))
    )


def test_all_datasets_land_and_an_incremental_rerun_changes_nothing(simulator, names, tmp_path) -> None:
    from osipi_connector.lake.schemas import ASSET_HIERARCHY, ELEMENT_ATTRIBUTES, EVENT_FRAMES, TAGS

    sink = DeltaSink(tmp_path)
    cfg = config(simulator.url, tmp_path, list(names)[:3], af_database="\\\\PISIM-AF\\Plant", mode="incremental")
    first = PILakeflowConnector(cfg, sink=sink).run()
    assert first.status == "success", first.errors
    tables = (TAGS, ASSET_HIERARCHY, ELEMENT_ATTRIBUTES, EVENT_FRAMES, TIMESERIES)
    assert all(first.rows[spec.name] == sink.read(spec).num_rows > 0 for spec in tables)
    frames = {r["item_id"]: r for r in sink.read(WATERMARKS).to_pylist() if r["dataset"] == "event_frames"}
    assert frames["\\\\PISIM-AF\\Plant"]["high_watermark"] == END
    before = {spec.name: content(sink, spec) for spec in tables}
    second = PILakeflowConnector(cfg, sink=sink).run()
    assert second.status == "success"
    assert {spec.name: content(sink, spec) for spec in tables} == before
    assert [m["status"] for m in sink.read(RUN_METRICS).to_pylist()] == ["success", "success"]
