"""`osipi-connector run` with `auth_type: kerberos` against `simulate --auth kerberos`, over a real KDC.

Both ends are child processes so the Kerberos environment (KRB5_CONFIG, KRB5CCNAME, KRB5_KTNAME) is
theirs alone: the simulator holds the keytab of HTTP/localhost, the connector a ticket kinit'ed from
piuser's keytab (or none). The URL is http://127.0.0.1:PORT, as when PI Web API is reached by address:
only `kerberos_hostname_override: localhost` names the SPN the realm knows.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.server import running_simulator
from tests.conftest import FIXED_NOW
from tests.extract.conftest import served_rows, table_rows
from tests.extract.test_cli import CLI, RETRY_ONCE, write_config
from tests.kerberos import USER, Realm, kdc, kerberos_simulator  # noqa: F401 (kdc is a fixture)

pytestmark = pytest.mark.integration

SEED, TAGS = 7, 20  # the config's name filter *00001?.PV matches 10 of 20 tags
WINDOW = ("2025-03-01T10:00:00Z", "2025-03-01T12:00:00Z")  # write_config's start_date / end_date


@pytest.fixture(scope="module")
def simulator_url(kdc: Realm) -> Iterator[str]:  # noqa: F811
    args = ["--tags", str(TAGS), "--seed", str(SEED), "--now", FIXED_NOW.isoformat(), "--rate-limit", "0"]
    with kerberos_simulator(kdc, *args) as url:
        yield url


def kerberos_config(path: Path, url: str, root: Path, **options: str) -> Path:
    """test_cli's config with auth_type kerberos and the given pi_web_api.kerberos_* options."""
    write_config(path, url, root, RETRY_ONCE)
    lines = "".join(f"\n  kerberos_{key}: {value}" for key, value in options.items())
    path.write_text(path.read_text().replace("auth_type: anonymous", "auth_type: kerberos" + lines))
    return path


def run(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [CLI, "run", "--config", str(config), "--datasets", "tags,timeseries", "--no-progress"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def assert_clear_error(result: subprocess.CompletedProcess, *expected: str) -> str:
    """A failed run (exit 2) whose messages name the cause; no traceback, no requests-kerberos noise."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "requests_kerberos" not in result.stderr
    for text in expected:
        assert text in result.stderr
    return result.stderr


def served_truth(webids: list[str]) -> set[tuple]:
    """What the same simulator (same seed, tags, clock) serves without auth, read over HTTP."""
    config = SimConfig(seed=SEED, tags=TAGS, now=FIXED_NOW, rate_limit_max_requests=0)
    with running_simulator(config) as plain:
        return served_rows(plain.url, webids, *WINDOW)


def test_run_with_a_ticket_lands_every_served_value_with_mutual_auth_required(kdc, simulator_url, tmp_path):  # noqa: F811
    config = kerberos_config(
        tmp_path / "c.yaml",
        simulator_url,
        tmp_path / "lake",
        hostname_override="localhost",
        mutual_authentication="required",
    )
    env = kdc.client_env(kdc.kinit(tmp_path / "ccache"))
    first = run(config, env)
    assert first.returncode == 0, first.stderr
    landed = table_rows(DeltaSink(tmp_path / "lake"))
    webids = sorted({row[0] for row in landed})
    assert len(webids) == 10
    assert len(landed) == len(set(landed))  # no duplicates
    assert set(landed) == served_truth(webids)
    again = run(config, env)  # a re-run with the same ticket changes nothing
    assert again.returncode == 0, again.stderr
    assert sorted(table_rows(DeltaSink(tmp_path / "lake"))) == sorted(landed)


def test_a_service_keytab_without_kinit_works(kdc, simulator_url, tmp_path):  # noqa: F811
    """KRB5_CLIENT_KTNAME: the library gets the ticket from the keytab itself (a service account's setup)."""
    config = kerberos_config(tmp_path / "c.yaml", simulator_url, tmp_path / "lake", hostname_override="localhost")
    env = {**kdc.client_env(tmp_path / "fresh-ccache"), "KRB5_CLIENT_KTNAME": str(kdc.user_keytab)}
    result = run(config, env)
    assert result.returncode == 0, result.stderr
    assert len(table_rows(DeltaSink(tmp_path / "lake"))) > 0
    klist = kdc.run("klist", env=env)
    assert USER in klist  # the ticket the connector obtained, in the cache KRB5CCNAME names


def test_an_ip_url_without_hostname_override_says_to_set_it(kdc, simulator_url, tmp_path):  # noqa: F811
    config = kerberos_config(tmp_path / "c.yaml", simulator_url, tmp_path / "lake")
    result = run(config, kdc.client_env(kdc.kinit(tmp_path / "ccache")))
    stderr = assert_clear_error(result, "Kerberos", "HTTP/127.0.0.1", "kerberos_hostname_override")
    assert "not found in Kerberos database" in stderr


def test_no_ticket_says_to_kinit_or_use_a_keytab(kdc, simulator_url, tmp_path):  # noqa: F811
    config = kerberos_config(tmp_path / "c.yaml", simulator_url, tmp_path / "lake", hostname_override="localhost")
    empty = tmp_path / "empty-ccache"
    assert_clear_error(run(config, kdc.client_env(empty)), "Kerberos", "no Kerberos ticket", "kinit", "keytab")
    assert not (tmp_path / "lake" / "main" / "bronze" / "pi_timeseries").exists()
