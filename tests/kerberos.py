"""A throwaway MIT Kerberos realm on 127.0.0.1 for the SPNEGO tests: a real KDC, real keytabs, real tickets.

Everything lives in one temp directory: kdc.conf / krb5.conf (KDC on a free port, no DNS, no reverse
lookups, so `127.0.0.1` is never turned into `localhost` behind the test's back), the database, the
keytab of `HTTP/localhost` (the server) and of `piuser` (the client, kinit'ed like a service account).
`krb5kdc -n` runs in the foreground as a child process and is stopped at the end.

The Kerberos libraries read KRB5_CONFIG, KRB5CCNAME, KRB5_KTNAME from the environment, so the realm
hands out *environments for child processes* (`client_env`, `server_env`) and never touches os.environ.
Without the Debian packages the fixture skips and names them; CI installs them (`.ci/run`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from osipi_connector.demo import announced_url, stop_process

REALM = "OSIPI.TEST"
SERVICE = f"HTTP/localhost@{REALM}"  # what PI Web API's SPN looks like: HTTP/<host the client names>
USER = f"piuser@{REALM}"
PACKAGES = "krb5-kdc krb5-admin-server krb5-user"
TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit")
_SBIN = os.pathsep.join(["/usr/sbin", "/sbin"])  # the KDC tools live in sbin, often not on a user's PATH


@dataclass
class Realm:
    dir: Path
    port: int
    tools: dict[str, str]

    @property
    def krb5_conf(self) -> Path:
        return self.dir / "krb5.conf"

    @property
    def server_keytab(self) -> Path:
        return self.dir / "http.keytab"

    @property
    def user_keytab(self) -> Path:
        return self.dir / "piuser.keytab"

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KRB5")}
        env["KRB5_CONFIG"] = str(self.krb5_conf)
        env["KRB5_KDC_PROFILE"] = str(self.dir / "kdc.conf")
        return env

    def server_env(self) -> dict[str, str]:
        """For the simulator: its keytab, and a replay cache of its own (not /var/tmp)."""
        return {**self.base_env(), "KRB5_KTNAME": f"FILE:{self.server_keytab}", "KRB5RCACHEDIR": str(self.dir)}

    def client_env(self, ccache: Path) -> dict[str, str]:
        """For the connector: the realm's krb5.conf and `ccache` as the ticket cache (may be empty)."""
        return {**self.base_env(), "KRB5CCNAME": f"FILE:{ccache}"}

    def kinit(self, ccache: Path) -> Path:
        """A TGT for piuser in `ccache`, from its keytab (as a service account does in production)."""
        self.run("kinit", "-k", "-t", str(self.user_keytab), USER, env=self.client_env(ccache))
        return ccache

    def run(self, tool: str, *args: str, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            [self.tools.get(tool, tool), *args],
            env=env or self.base_env(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout


def _tools() -> dict[str, str]:
    path = os.environ.get("PATH", "") + os.pathsep + _SBIN
    found = {name: shutil.which(name, path=path) for name in TOOLS}
    missing = [name for name, where in found.items() if where is None]
    if missing:
        pytest.fail(
            f"no Kerberos KDC tools ({', '.join(missing)}): run `bash tools/system-deps.sh` (apt-get install {PACKAGES})",
            pytrace=False,
        )
    return {name: where for name, where in found.items() if where}


def _free_port() -> int:
    """A port free for both TCP and UDP (the KDC listens on both)."""
    for _ in range(20):
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for the KDC")


def _write_configs(directory: Path, port: int) -> None:
    (directory / "krb5.conf").write_text(
        f"""[libdefaults]
    default_realm = {REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1
[realms]
    {REALM} = {{
        kdc = 127.0.0.1:{port}
    }}
[domain_realm]
    localhost = {REALM}
""",
        encoding="utf-8",
    )
    (directory / "kdc.conf").write_text(
        f"""[kdcdefaults]
    kdc_listen = 127.0.0.1:{port}
    kdc_tcp_listen = 127.0.0.1:{port}
[realms]
    {REALM} = {{
        database_name = {directory}/principal
        key_stash_file = {directory}/stash
        acl_file = {directory}/kadm5.acl
        max_life = 1h
    }}
[logging]
    kdc = FILE:{directory}/kdc.log
    admin_server = FILE:{directory}/kadmin.log
    default = FILE:{directory}/krb5.log
""",
        encoding="utf-8",
    )


def _wait_listening(process: subprocess.Popen, port: int, log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"krb5kdc exited with {process.returncode}: {log.read_text(errors='replace')[-500:]}")
        with socket.socket() as probe:
            probe.settimeout(0.2)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"krb5kdc did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


def build_realm(directory: Path) -> Realm:
    """Configs, database, principals and keytabs (the KDC is not started)."""
    realm = Realm(directory, _free_port(), _tools())
    _write_configs(directory, realm.port)
    realm.run("kdb5_util", "create", "-s", "-r", REALM, "-P", "throwaway-master-key")
    for principal, keytab in ((SERVICE, realm.server_keytab), (USER, realm.user_keytab)):
        realm.run("kadmin.local", "-r", REALM, "-q", f"addprinc -randkey {principal}")
        realm.run("kadmin.local", "-r", REALM, "-q", f"ktadd -k {keytab} {principal}")
    return realm


@pytest.fixture(scope="module")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Realm]:
    """A running realm for a test module; its KDC is stopped afterwards."""
    realm = build_realm(tmp_path_factory.mktemp("krb5"))
    log = realm.dir / "kdc.stderr"
    with log.open("w") as err:
        process = subprocess.Popen(
            [realm.tools["krb5kdc"], "-n", "-r", REALM], env=realm.base_env(), stdout=err, stderr=err
        )
    try:
        _wait_listening(process, realm.port, realm.dir / "kdc.log")
        yield realm
    finally:
        stop_process(process)


@contextmanager
def kerberos_simulator(realm: Realm, *args: str) -> Iterator[str]:
    """`osipi-connector simulate --auth kerberos` in a child process holding the service keytab; yields
    its URL (http://127.0.0.1:PORT/piwebapi). `args` are more `simulate` flags; its log is simulator.log."""
    command = [sys.executable, "-m", "osipi_connector.cli", "simulate", "--port", "0", "--auth", "kerberos", *args]
    with (realm.dir / "simulator.log").open("a") as log:
        process = subprocess.Popen(command, env=realm.server_env(), stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        yield announced_url(process, 30)
    finally:
        stop_process(process)
