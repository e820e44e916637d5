"""docker-compose.yml and deploy/k8s/ parse and say what docs/operations.md promises: ports 8080/9090, the
four volumes, UID 1000, read-only root, 2 CPU / 2 GiB, probes, and every reference (Secret keys, PVC names,
port names, files the image must contain) resolves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
VOLUME_PATHS = {"/app/config", "/app/certs", "/app/spool", "/app/logs"}
HEALTHCHECK = "/opt/iot-connector/healthcheck.py"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["iot-connector"]


def _k8s_documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict[str, Any]]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in _k8s_documents()}


@pytest.fixture(scope="module")
def pod(k8s) -> dict[str, Any]:
    return k8s[("Deployment", "iot-connector")]["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def agent(pod) -> dict[str, Any]:
    (container,) = pod["containers"]
    return container


# --- docker-compose.yml -----------------------------------------------------------------------------------


def test_compose_ports_user_read_only_and_restart(compose) -> None:
    assert compose["ports"] == ["8080:8080", "9090:9090"]
    assert compose["user"] == "1000:1000"
    assert compose["read_only"] is True
    assert compose["restart"] == "unless-stopped"
    assert compose["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in compose["security_opt"]
    assert any(entry.startswith("/tmp:") for entry in compose["tmpfs"])


def test_compose_mounts_exactly_the_four_volumes(compose) -> None:
    targets = {volume.split(":")[1] for volume in compose["volumes"]}
    assert targets == VOLUME_PATHS


def test_compose_limits_and_healthcheck(compose) -> None:
    assert compose["deploy"]["resources"]["limits"] == {"cpus": "2", "memory": "2g"}
    assert compose["healthcheck"]["test"] == ["CMD", "python", HEALTHCHECK]
    assert compose["image"] == "iot-connector:0.1.0"


def test_compose_holds_no_secret_value(compose) -> None:
    for name, value in compose["environment"].items():
        if "PASSWORD" in name or "SECRET" in name or "KEY" in name:
            assert value.startswith("${"), f"{name} must come from the environment / .env, not the file"


# --- deploy/k8s --------------------------------------------------------------------------------------------


def test_kustomization_lists_existing_files_and_the_secret_is_not_applied_with_placeholders() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    assert "secret.yaml" not in kustomization["resources"]
    listed = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.yaml"}
    assert listed == set(kustomization["resources"])


def test_deployment_runs_one_non_root_pod_with_a_read_only_root(k8s, pod, agent) -> None:
    spec = k8s[("Deployment", "iot-connector")]["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["fsGroup"] == 1000
    for container in pod["containers"] + pod["initContainers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert context["runAsUser"] == 1000


def test_deployment_limits_and_probes(agent) -> None:
    assert agent["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}
    assert {p["containerPort"] for p in agent["ports"]} == {8080, 9090}
    assert agent["livenessProbe"]["exec"]["command"] == ["python", HEALTHCHECK]
    assert agent["readinessProbe"]["exec"]["command"] == ["python", HEALTHCHECK]
    assert agent["startupProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}


def test_every_volume_path_is_a_claim_and_every_claim_exists(k8s, pod, agent) -> None:
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in agent["volumeMounts"]}
    assert mounts.keys() >= VOLUME_PATHS
    for path in VOLUME_PATHS:
        claim = volumes[mounts[path]]["persistentVolumeClaim"]["claimName"]
        assert ("PersistentVolumeClaim", claim) in k8s, claim
    assert "emptyDir" in volumes[mounts["/tmp"]]  # read-only root: /tmp is a memory volume
    for container in pod["containers"] + pod["initContainers"]:
        for mount in container["volumeMounts"]:
            assert mount["name"] in volumes, mount


def test_secret_references_resolve_and_the_key_reaches_the_agent(k8s, pod, agent) -> None:
    secret = k8s[("Secret", "iot-connector")]
    assert set(secret["stringData"].values()) == {"CHANGE-ME"}  # a template, never a real value
    env = {item["name"]: item for item in agent["env"]}
    ref = env["IOT_CONNECTOR_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"] in secret["stringData"]) == ("iot-connector", True)
    (secret_volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert secret_volume["secret"]["secretName"] == "iot-connector"
    assert {item["key"] for item in secret_volume["secret"]["items"]} <= secret["stringData"].keys()
    key_file = Path(env["IOT_CONNECTOR_SECRET_KEY_FILE"]["value"])
    (init,) = pod["initContainers"]
    assert str(key_file) in init["command"][-1]  # the init container writes where the agent reads
    key_mount = {m["mountPath"]: m for m in agent["volumeMounts"]}[str(key_file.parent)]
    assert not key_mount.get("readOnly", False)  # rotate-key writes secret.key.new beside it


def test_service_and_network_policy_match_the_pod(k8s, agent) -> None:
    labels = k8s[("Deployment", "iot-connector")]["spec"]["template"]["metadata"]["labels"]
    service = k8s[("Service", "iot-connector")]["spec"]
    assert service["selector"].items() <= labels.items()
    names = {port["name"] for port in agent["ports"]}
    assert {port["targetPort"] for port in service["ports"]} == names
    policy = k8s[("NetworkPolicy", "iot-connector")]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert {port["port"] for rule in policy["ingress"] for port in rule["ports"]} == {8080, 9090}


def test_prometheus_scrape_example_targets_the_metrics_port() -> None:
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "scrape.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert all(target.endswith(":9090") for target in jobs["iot-connector"]["static_configs"][0]["targets"])
    keep = [rule for rule in jobs["iot-connector-k8s"]["relabel_configs"] if rule.get("action") == "keep"]
    assert {rule["regex"] for rule in keep} == {"iot-connector", "metrics"}


def _run_init_script(pod, tmp_path: Path, key: bytes) -> subprocess.CompletedProcess:
    """The init container's own Python, with its two mount points moved into tmp_path."""
    (init,) = pod["initContainers"]
    assert init["command"][:2] == ["python", "-c"]
    (tmp_path / "secrets").mkdir()
    (tmp_path / "keys").mkdir()
    (tmp_path / "secrets" / "fernet-key").write_bytes(key)
    code = init["command"][2].replace("/secrets/", f"{tmp_path}/secrets/").replace("/app/keys/", f"{tmp_path}/keys/")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)


def test_init_container_copies_a_fernet_key_with_mode_0600(pod, tmp_path: Path) -> None:
    key = Fernet.generate_key()
    result = _run_init_script(pod, tmp_path, key + b"\n")
    assert result.returncode == 0, result.stderr
    copied = tmp_path / "keys" / "secret.key"
    assert copied.read_bytes() == key
    assert copied.stat().st_mode & 0o777 == 0o600


def test_init_container_refuses_the_placeholder_with_what_to_do(pod, tmp_path: Path) -> None:
    result = _run_init_script(pod, tmp_path, b"CHANGE-ME")
    assert result.returncode == 1
    assert "fernet-key is not a Fernet key; see docs/operations.md" in result.stderr
    assert not (tmp_path / "keys" / "secret.key").exists()
