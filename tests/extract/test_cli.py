"""The `osipi-connector run | sql | maintain` console script, run as a user runs it: a subprocess."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import socket
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from osipi_connector.extract.af import fetch_af
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import ASSET_HIERARCHY, ELEMENT_ATTRIBUTES
from tests.conftest import FIXED_NOW
from tests.simulator.helpers import all_points, get_json

CLI = str(Path(sys.executable).with_name("osipi-connector"))
DB_PATH = "\\\\PISIM-AF\\Plant"
RETRY_ONCE = "retry:\n  max_attempts: 1"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def write_config(path: Path, url: str, root: Path, extra: str = "") -> Path:
    path.write_text(
        f"""
pi_web_api:
  url: "{url}"
  auth_type: anonymous
extraction:
  name_filter: "*00001?.PV"
  mode: full
  start_date: "2025-03-01T10:00:00Z"
  end_date: "2025-03-01T12:00:00Z"
  af_database: '{DB_PATH}'
{extra}
local:
  lakehouse_root: "{root}"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def af_lake(tmp_path_factory, pi_client):
    """A lakehouse holding the AF tables, written by the dataset code and the Delta sink."""
    root = tmp_path_factory.mktemp("lake")
    sink = DeltaSink(root)
    hierarchy, attributes = fetch_af(pi_client, af_database=DB_PATH, run_id="r1", ingested_at=FIXED_NOW)
    for spec, table in ((ASSET_HIERARCHY, hierarchy), (ELEMENT_ATTRIBUTES, attributes)):
        sink.ensure(spec)
        sink.merge(spec, table)
    return root, hierarchy


@pytest.mark.parametrize("command", ["run", "sql", "maintain", "simulate"])
def test_every_subcommand_has_help(command):
    result = cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert f"osipi-connector {command}" in result.stdout
    assert "--config" in result.stdout or command == "simulate"


def test_sql_prints_what_the_tables_hold(af_lake, simulator, tmp_path):
    root, hierarchy = af_lake
    config = write_config(tmp_path / "c.yaml", simulator.url, root)
    result = cli(
        "sql",
        "--config",
        str(config),
        "SELECT depth, count(*) AS n FROM main.bronze.pi_asset_hierarchy GROUP BY depth ORDER BY depth",
    )
    assert result.returncode == 0, result.stderr
    depths = hierarchy.column("depth").to_pylist()
    lines = [line for line in result.stdout.splitlines() if line.startswith("| ") and "depth" not in line]
    printed = [tuple(int(cell) for cell in line.strip("| ").split(" | ")) for line in lines]
    assert printed == sorted((d, depths.count(d)) for d in set(depths))
    assert f"({len(set(depths))} rows)" in result.stdout


def test_sql_on_an_unknown_table_names_the_tables_that_exist(af_lake, simulator, tmp_path):
    root, _ = af_lake
    config = write_config(tmp_path / "c.yaml", simulator.url, root)
    result = cli("sql", "--config", str(config), "SELECT * FROM bronze.no_such_table")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "pi_asset_hierarchy" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_lakehouse_root_flag_overrides_the_config(af_lake, simulator, tmp_path):
    root, hierarchy = af_lake
    config = write_config(tmp_path / "c.yaml", simulator.url, tmp_path / "elsewhere")
    result = cli(
        "sql", "--config", str(config), "--lakehouse-root", str(root), "SELECT count(*) AS n FROM pi_asset_hierarchy"
    )
    assert result.returncode == 0, result.stderr
    assert f"| {hierarchy.num_rows}" in result.stdout


def test_maintain_compacts_and_vacuums_every_table(af_lake, simulator, tmp_path):
    root, hierarchy = af_lake
    config = write_config(tmp_path / "c.yaml", simulator.url, root)
    result = cli("maintain", "--config", str(config), "--retain-hours", "168")
    assert result.returncode == 0, result.stderr
    assert "pi_asset_hierarchy" in result.stdout
    assert "pi_element_attributes" in result.stdout
    after = cli("sql", "--config", str(config), "SELECT count(*) AS n FROM pi_asset_hierarchy")
    assert f"| {hierarchy.num_rows}" in after.stdout  # maintenance never changes the data


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("  batch_size: 0", "extraction.batch_size"),
        ("  colour: blue", "extraction.colour"),
        ("  mode: sideways", "extraction.mode"),
    ],
)
def test_config_errors_are_one_line_naming_the_key(simulator, tmp_path, extra, expected):
    config = write_config(tmp_path / "c.yaml", simulator.url, tmp_path / "lake", extra)
    assert_one_line_error(cli("run", "--config", str(config)), expected)


def test_sql_and_maintain_report_config_errors_the_same_way(simulator, tmp_path):
    config = write_config(tmp_path / "c.yaml", simulator.url, tmp_path / "lake", "  batch_size: 0")
    assert_one_line_error(cli("sql", "--config", str(config), "SELECT 1"), "extraction.batch_size")
    assert_one_line_error(cli("maintain", "--config", str(config)), "extraction.batch_size")


def assert_one_line_error(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]


def test_a_missing_config_file_is_a_clear_error(tmp_path):
    result = cli("run", "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "nope.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_datasets_are_refused(tmp_path):
    result = cli("run", "--config", str(tmp_path / "c.yaml"), "--datasets", "tags,weather")
    assert result.returncode == 2
    assert "weather" in result.stderr


def served_counts(http, base: str, names: list[str]) -> dict[str, int]:
    webids = {p["Name"]: p["WebId"] for p in all_points(http, base)}
    window = {"startTime": "2025-03-01T10:00:00Z", "endTime": "2025-03-01T12:00:00Z", "maxCount": 150_000}
    return {n: len(get_json(http, f"{base}/streams/{webids[n]}/recorded", **window)["Items"]) for n in names}


def test_run_lands_every_served_value_once_and_a_rerun_changes_nothing(simulator, http, tmp_path):
    config = write_config(tmp_path / "c.yaml", simulator.url, tmp_path / "lake")
    query = "SELECT tag_name, count(*) AS n FROM main.bronze.pi_timeseries GROUP BY tag_name ORDER BY tag_name"
    first = cli("run", "--config", str(config), "--datasets", "tags,timeseries", "--no-progress")
    assert first.returncode == 0, first.stderr
    assert ": success in " in first.stdout
    counted = table_rows(cli("sql", "--config", str(config), query).stdout)
    expected = served_counts(http, simulator.url, [name for name, _ in counted])
    assert len(counted) >= 2
    assert {name: int(n) for name, n in counted} == expected
    again = cli("run", "--config", str(config), "--datasets", "tags,timeseries", "--no-progress")
    assert again.returncode == 0, again.stderr
    assert table_rows(cli("sql", "--config", str(config), query).stdout) == counted


def test_run_with_a_missing_tag_is_partial_and_names_it(simulator, tmp_path):
    config = write_config(tmp_path / "c.yaml", simulator.url, tmp_path / "lake", "  tag_names: [NO.SUCH.TAG]")
    result = cli("run", "--config", str(config), "--datasets", "tags", "--no-progress")
    assert result.returncode == 1, result.stderr
    assert "NO.SUCH.TAG" in result.stderr
    assert ": partial in " in result.stdout
    tags = cli("sql", "--config", str(config), "SELECT count(*) AS n FROM pi_tags")
    assert table_rows(tags.stdout) != [("0",)]  # the tags that exist were still written


def test_run_against_an_unreachable_server_fails_with_one_line(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_config(tmp_path / "c.yaml", f"http://127.0.0.1:{port}/piwebapi", tmp_path / "lake", RETRY_ONCE)
    result = cli("run", "--config", str(config), "--no-progress")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"127.0.0.1:{port}" in result.stderr


def test_flags_override_the_config(simulator, tmp_path):
    config = write_config(tmp_path / "c.yaml", "http://127.0.0.1:9/piwebapi", tmp_path / "ignored", RETRY_ONCE)
    root = tmp_path / "lake"
    args = ["--pi-web-api-url", simulator.url, "--lakehouse-root", str(root), "--catalog", "dev", "--schema", "raw"]
    result = cli("run", "--config", str(config), *args, "--datasets", "af", "--mode", "full", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert (root / "dev" / "raw" / "pi_asset_hierarchy" / "_delta_log").is_dir()
    assert (root / "dev" / "checkpoints" / "pi_run_metrics" / "_delta_log").is_dir()


def table_rows(printed: str) -> list[tuple[str, ...]]:
    """The body rows of `sql`'s grid."""
    lines = [line for line in printed.splitlines() if line.startswith("| ")]
    return [tuple(cell.strip() for cell in line.strip("| ").split(" | ")) for line in lines[1:]]


def test_maintain_without_tables_says_to_run_first(simulator, tmp_path):
    config = write_config(tmp_path / "c.yaml", simulator.url, tmp_path / "empty")
    result = cli("maintain", "--config", str(config))
    assert_one_line_error(result, "run `osipi-connector run` first")


def run_on_terminal(*args: str) -> str:
    """The command with stderr on a pseudo-terminal (100 columns), as a user at a shell sees it."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    chunks = []
    try:
        process = subprocess.Popen([CLI, *args], stdout=subprocess.DEVNULL, stderr=terminal)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # read while it runs: a full terminal buffer would block it
            if select.select([controller], [], [], 0.2)[0]:
                chunks.append(os.read(controller, 65536))
            elif process.poll() is not None:
                break
        assert process.wait(timeout=5) == 0
        return b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(controller)
        os.close(terminal)


def test_a_progress_bar_on_a_terminal_unless_no_progress(simulator, tmp_path):
    config = write_config(tmp_path / "c.yaml", simulator.url, tmp_path / "lake")
    shown = run_on_terminal("run", "--config", str(config), "--datasets", "tags,af")
    assert "af: 100%" in shown
    assert "tags: 100%" in shown
    hidden = run_on_terminal("run", "--config", str(config), "--datasets", "tags,af", "--no-progress")
    assert "100%" not in hidden


def test_a_start_that_is_not_a_time_is_refused_before_any_request(tmp_path):
    result = cli("run", "--config", str(tmp_path / "c.yaml"), "--start", "yesterday-ish")
    assert result.returncode == 2
    assert "argument --start" in result.stderr
    assert "PI time" in result.stderr
