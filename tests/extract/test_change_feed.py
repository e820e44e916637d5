"""`extraction.change_feed: stream_updates` end to end: simulator over HTTP (Stream Updates, edits and removals
older than the lookback) -> real Delta tables, compared with a fresh full read of the simulator.

Reference for the feed itself: https://docs.aveva.com/bundle/pi-web-api-reference/page/help/topics/stream-updates.html
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from osipi_connector import PILakeflowConnector
from osipi_connector.config import ConfigError, ConnectorConfig
from osipi_connector.extract import change_feed
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import CHANGE_MARKERS, RUN_METRICS
from osipi_connector.lake.sink import Sink
from osipi_connector.piwebapi.pitime import format_datetime
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.server import RunningSimulator, running_simulator
from tests.conftest import FIXED_NOW
from tests.extract.conftest import served_rows, table_rows

pytestmark = pytest.mark.integration
T0 = FIXED_NOW
START = T0 - timedelta(hours=8)
# edits 5 h and removals 4 h after a value's time: both far older than the 1 h lookback when they happen
SIM = {
    "seed": 13,
    "tags": 40,
    "late_share": 0.3,
    "edit_share": 0.15,
    "edit_delay_s": 5 * 3600.0,
    "delete_share": 0.08,
    "delete_delay_s": 4 * 3600.0,
    "rate_limit_max_requests": 0,
}


@pytest.fixture
def source() -> Iterator[RunningSimulator]:
    with running_simulator(SimConfig(now=T0, **SIM)) as running:
        yield running


def tags_of(source: RunningSimulator, count: int = 8) -> list[str]:
    """Points with at most one value a minute (a one-request truth stays small)."""
    catalog = source.sim.points
    server = requests.get(f"{source.url}/dataservers").json()["Items"][0]["WebId"]
    points = requests.get(f"{source.url}/dataservers/{server}/points", params={"maxCount": 200}).json()["Items"]
    slow = [p for p in points if catalog.point(catalog.index_of(p["WebId"])).interval_ticks >= 60 * 10**7]
    return [p["Name"] for p in slow[:count]]


def config(url: str, root: Path, tags: list[str], feed: bool) -> dict:
    return {
        "pi_web_api": {"url": url, "auth_type": "anonymous"},
        "extraction": {
            "tag_names": tags,
            "mode": "incremental",
            "start_date": format_datetime(START),
            "lookback": "1h",
            "batch_size": 4,
            **({"change_feed": "stream_updates"} if feed else {}),
        },
        "performance": {"workers": 2},
        "local": {"lakehouse_root": str(root)},
    }


def run(cfg: dict, sink: Sink) -> None:
    result = PILakeflowConnector(cfg, sink=sink).run(datasets=["timeseries"])
    assert result.status == "success", result.errors


def truth(source: RunningSimulator, sink: Sink) -> set[tuple]:
    """A fresh full read of the selected tags from START to the simulator's now."""
    webids = sorted({row[0] for row in table_rows(sink)})
    return served_rows(source.url, webids, format_datetime(START), format_datetime(source.sim.now()))


def test_change_feed_lands_edits_and_removals_older_than_the_lookback(source, tmp_path) -> None:
    tags = tags_of(source)
    fed, plain = DeltaSink(tmp_path / "fed"), DeltaSink(tmp_path / "plain")
    for hours in (0, 3, 6):
        source.sim.config.now = T0 + timedelta(hours=hours)
        run(config(source.url, tmp_path / "fed", tags, feed=True), fed)
        run(config(source.url, tmp_path / "plain", tags, feed=False), plain)
    expected = truth(source, fed)
    got = table_rows(fed)
    assert len(got) == len(set(got)), "no duplicate rows"
    assert set(got) == expected
    # without the feed the same runs keep removed values and pre-edit values: the test means something
    stale = set(table_rows(plain)) - expected
    assert any(row[10] is False for row in stale), "an edited value's old version"
    assert len(table_rows(plain)) > len(expected), "removed values"
    markers = fed.read(CHANGE_MARKERS).to_pylist()
    assert len(markers) == len(tags)
    assert all(m["marker"] for m in markers)


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the run catches it."""


def test_a_run_killed_between_delete_and_rewrite_is_repaired_by_the_next(source, tmp_path, monkeypatch) -> None:
    tags = tags_of(source, 6)
    sink = DeltaSink(tmp_path)
    cfg = config(source.url, tmp_path, tags, feed=True)
    run(cfg, sink)
    real_delete = change_feed.delete_ranges

    def delete_then_die(*args, **kwargs):
        real_delete(*args, **kwargs)
        raise Killed

    source.sim.config.now = T0 + timedelta(hours=4)
    monkeypatch.setattr(change_feed, "delete_ranges", delete_then_die)
    with pytest.raises(Killed):
        PILakeflowConnector(cfg, sink=sink).run(datasets=["timeseries"])
    assert set(table_rows(sink)) != truth(source, sink), "the kill left the table wrong"
    monkeypatch.setattr(change_feed, "delete_ranges", real_delete)
    run(cfg, sink)
    got = table_rows(sink)
    assert len(got) == len(set(got))
    assert set(got) == truth(source, sink)


def test_an_expired_marker_falls_back_to_the_lookback_counted_and_registers_again(source, tmp_path) -> None:
    tags = tags_of(source, 4)
    sink = DeltaSink(tmp_path)
    cfg = config(source.url, tmp_path, tags, feed=True)
    run(cfg, sink)
    before = {m["tag_webid"]: m["marker"] for m in sink.read(CHANGE_MARKERS).to_pylist()}
    source.sim.config.stream_updates_marker_lifetime_s = 3600.0
    source.sim.config.now = T0 + timedelta(hours=2)  # older than the lifetime: every marker expired
    result = PILakeflowConnector(cfg, sink=sink).run(datasets=["timeseries"])
    assert result.status == "success"
    assert result.change_feed_fallbacks == len(tags)
    metrics = {r["run_id"]: r for r in sink.read(RUN_METRICS).to_pylist()}
    assert metrics[result.run_id]["change_feed_fallbacks"] == len(tags)
    after = {m["tag_webid"]: m["marker"] for m in sink.read(CHANGE_MARKERS).to_pylist()}
    assert after.keys() == before.keys()
    assert all(after[w] != before[w] for w in after)
    # the fallback window [marker time - lookback, now] is as PI holds it now; older gap edits cannot be seen
    since = T0 - timedelta(hours=1)
    assert {r for r in table_rows(sink) if r[1] >= since} == {r for r in truth(source, sink) if r[1] >= since}
    source.sim.config.now = T0 + timedelta(hours=2, minutes=30)
    again = PILakeflowConnector(cfg, sink=sink).run(datasets=["timeseries"])
    assert again.status == "success"
    assert again.change_feed_fallbacks == 0


@pytest.mark.parametrize(("value", "expected"), [("stream_updates", "stream_updates"), (False, None), ("off", None)])
def test_change_feed_setting(value, expected, tmp_path) -> None:
    cfg = ConnectorConfig.from_dict(config("http://127.0.0.1:1", tmp_path, ["t"], feed=False))
    assert cfg.extraction.change_feed is None  # off by default
    data = config("http://127.0.0.1:1", tmp_path, ["t"], feed=False)
    data["extraction"]["change_feed"] = value
    assert ConnectorConfig.from_dict(data).extraction.change_feed == expected


def test_an_unknown_change_feed_names_the_key_and_the_choice(tmp_path) -> None:
    data = config("http://127.0.0.1:1", tmp_path, ["t"], feed=False)
    data["extraction"]["change_feed"] = "cdc"
    with pytest.raises(ConfigError, match=r"extraction\.change_feed: must be one of 'stream_updates'"):
        ConnectorConfig.from_dict(data)


def test_the_cli_run_summary_warns_about_the_fallback(source, tmp_path, capsys) -> None:
    import yaml

    from osipi_connector import cli

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config(source.url, tmp_path / "lake", tags_of(source, 2), feed=True)))
    args = ["run", "--config", str(path), "--datasets", "timeseries", "--no-progress"]
    assert cli.main(args) == 0
    source.sim.config.stream_updates_marker_lifetime_s = 60.0
    source.sim.config.now = T0 + timedelta(minutes=5)
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "warning: 2 tag(s) had an expired Stream Updates marker" in out
