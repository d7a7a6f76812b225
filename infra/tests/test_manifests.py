"""The Kubernetes manifests: current with SERVICES, valid against the Kubernetes API schemas, safe to run."""

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from cityblocks import manifests
from cityblocks.services import SERVICES

K8S = Path(__file__).resolve().parents[1] / "k8s"
KUBERNETES_VERSION = "1.33"


def committed() -> dict[str, list[dict[str, Any]]]:
    return {path.name: list(yaml.safe_load_all(path.read_text())) for path in sorted(K8S.glob("*.yaml"))}


def workloads(kind: str) -> dict[str, dict[str, Any]]:
    return {
        m["metadata"]["name"]: m for docs in committed().values() for m in docs if m and m.get("kind") == kind
    }


def test_the_committed_manifests_are_what_the_generator_writes(tmp_path: Path) -> None:
    manifests.write(tmp_path)

    expected = {path.name: path.read_text() for path in sorted(tmp_path.glob("*.yaml"))}
    actual = {path.name: path.read_text() for path in sorted(K8S.glob("*.yaml"))}
    assert actual == expected, "run `uv run cityblocks manifests` and commit infra/k8s"


MANIFEST_FILES = sorted(path.name for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")


@pytest.mark.parametrize("name", MANIFEST_FILES)
def test_every_manifest_is_valid_for_the_kubernetes_api(name: str) -> None:
    for manifest in committed()[name]:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_an_invalid_manifest_is_refused_by_the_schema_check() -> None:
    deployment = workloads("Deployment")[SERVICES[0].name]
    deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = {"cores": 2}

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomize_lists_every_file_and_pins_every_image() -> None:
    (kustomization,) = committed()["kustomization.yaml"]

    assert set(kustomization["resources"]) == set(committed()) - {"kustomization.yaml"}
    pinned = {image["name"].rsplit("/", 1)[1] for image in kustomization["images"]}
    assert pinned == {entry.name for entry in SERVICES}


def test_every_service_runs_with_probes_limits_and_no_privileges() -> None:
    deployments = workloads("Deployment")
    budgets = workloads("PodDisruptionBudget")
    for entry in SERVICES:
        spec = deployments[entry.name]["spec"]
        pod = spec["template"]["spec"]
        (container,) = pod["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready", entry.name
        assert container["livenessProbe"]["httpGet"]["path"] == "/health", entry.name
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), entry.name
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert spec["replicas"] >= 2 and budgets[entry.name]["spec"]["minAvailable"] == 1


def test_secrets_come_from_the_environment_not_from_the_manifests() -> None:
    for docs in committed().values():
        for manifest in docs:
            assert manifest.get("kind") != "Secret"
    deployments = workloads("Deployment")
    for entry in SERVICES:
        (container,) = deployments[entry.name]["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item for item in container["env"]}
        database = env[f"{entry.env_prefix}DATABASE_URL"]
        assert "value" not in database
        assert database["valueFrom"]["secretKeyRef"]["name"] == manifests.SECRET
        assert env[f"{entry.env_prefix}BUS"]["value"] == "kafka"
        assert env[f"{entry.env_prefix}DEV_IDENTITY"]["value"] == "false"
    (postgres,) = workloads("StatefulSet")["postgres"]["spec"]["template"]["spec"]["containers"]
    password = next(item for item in postgres["env"] if item["name"] == "POSTGRES_PASSWORD")
    assert password["valueFrom"]["secretKeyRef"]["name"] == manifests.SECRET


def test_postgres_creates_a_database_for_every_service() -> None:
    (postgres,) = workloads("StatefulSet")["postgres"]["spec"]["template"]["spec"]["containers"]
    databases = next(item for item in postgres["env"] if item["name"] == "CITYBLOCKS_DATABASES")["value"]

    assert set(databases.split()) == {entry.database for entry in SERVICES}
