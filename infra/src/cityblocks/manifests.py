"""Kubernetes manifests of the distributed deployment, rendered from `SERVICES` so none is forgotten."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from cityblocks.services import SERVICES, ServiceEntry

NAMESPACE = "cityblocks"
KAFKA_IMAGE = "apache/kafka:4.1.1"
POSTGRES_IMAGE = "postgres:17"
# Images are built by infra/Dockerfile per service; a deployment pins registry and tag in kustomization.yaml.
IMAGE_REPOSITORY = "ghcr.io/cityblocks"
SECRET = "cityblocks-secrets"  # noqa: S105 (the name of the Secret, not a secret)
CONFIG = "cityblocks-config"
APP_UID = 10001
# The solvers (CP-SAT, OR-Tools routing) use a whole core while they run; the other services are I/O bound.
SOLVER_SERVICES = frozenset({"market", "logistics"})

Manifest = dict[str, Any]


def labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": component, "app.kubernetes.io/part-of": "cityblocks"}


def metadata(name: str, component: str | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": NAMESPACE, "labels": labels(component or name)}


def secret_env(name: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": key}}}


def config_env(name: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"configMapKeyRef": {"name": CONFIG, "key": key}}}


def restricted_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def http_probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def service_environment(entry: ServiceEntry) -> list[dict[str, Any]]:
    prefix = entry.env_prefix
    return [
        secret_env(f"{prefix}DATABASE_URL", f"{entry.database}-database-url"),
        {"name": f"{prefix}BUS", "value": "kafka"},
        config_env(f"{prefix}KAFKA_BOOTSTRAP", "kafka-bootstrap"),
        config_env(f"{prefix}KAFKA_PARTITIONS", "kafka-partitions"),
        # Migrations run at start; replicas serialise on a PostgreSQL advisory lock (servicekit.migrations).
        {"name": f"{prefix}MIGRATE_ON_START", "value": "true"},
        {"name": f"{prefix}DEV_IDENTITY", "value": "false"},
        {"name": f"{prefix}DEMO_DATA", "value": "false"},
        config_env(f"{prefix}JWKS_URL", "jwks-url"),
        config_env(f"{prefix}JWT_ISSUER", "jwt-issuer"),
        config_env(f"{prefix}JWT_AUDIENCE", "jwt-audience"),
        {"name": f"{prefix}DATA_DIR", "value": "/data"},
        {"name": f"{prefix}LOG_JSON", "value": "true"},
    ]


def service_deployment(entry: ServiceEntry) -> Manifest:
    solver = entry.name in SOLVER_SERVICES
    container = {
        "name": entry.name,
        "image": f"{IMAGE_REPOSITORY}/{entry.name}:0.1.0",
        "ports": [{"name": "http", "containerPort": 8000}],
        "env": service_environment(entry),
        "startupProbe": http_probe("/health", period=5, failures=24),
        "livenessProbe": http_probe("/health", period=10, failures=3),
        # /ready checks the database and the bus: a replica that lost either gets no traffic until it is back.
        "readinessProbe": http_probe("/ready", period=5, failures=2),
        "resources": {
            "requests": {"cpu": "500m" if solver else "100m", "memory": "512Mi" if solver else "256Mi"},
            "limits": {"cpu": "2" if solver else "1", "memory": "1Gi" if solver else "512Mi"},
        },
        "securityContext": restricted_security(),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(entry.name),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels(entry.name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(entry.name)},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": APP_UID,
                        "fsGroup": APP_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    # uvicorn drains in-flight requests on SIGTERM; the consumer commits what it applied.
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container],
                    "volumes": [{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def service_service(entry: ServiceEntry) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(entry.name),
        "spec": {
            "selector": labels(entry.name),
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def disruption_budget(entry: ServiceEntry) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(entry.name),
        "spec": {"minAvailable": 1, "selector": {"matchLabels": labels(entry.name)}},
    }


def kafka() -> list[Manifest]:
    environment = {
        "CLUSTER_ID": "aahpaEvHSwGdSDk4gEH6VQ",
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://kafka.{NAMESPACE}.svc:9092",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_LOG_DIRS": "/var/lib/kafka/data",
        "KAFKA_NUM_PARTITIONS": "3",
        # One node holds one replica: without these, consumer groups and transactions hang.
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_HEAP_OPTS": "-Xms512m -Xmx512m",
    }
    probe = {"tcpSocket": {"port": 9092}, "periodSeconds": 10, "failureThreshold": 6}
    return stateful_set(
        "kafka",
        image=KAFKA_IMAGE,
        port=9092,
        env=[{"name": key, "value": value} for key, value in environment.items()],
        probe=probe,
        mount="/var/lib/kafka/data",
        storage="20Gi",
        resources={"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
    )


def postgres(entries: Sequence[ServiceEntry]) -> list[Manifest]:
    databases = " ".join(entry.database for entry in entries)
    env = [
        {"name": "POSTGRES_USER", "value": "cityblocks"},
        secret_env("POSTGRES_PASSWORD", "postgres-password"),
        {"name": "CITYBLOCKS_DATABASES", "value": databases},
        {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
    ]
    probe = {
        "exec": {"command": ["pg_isready", "--username", "cityblocks", "--dbname", "postgres"]},
        "periodSeconds": 5,
        "failureThreshold": 6,
    }
    init_script = (Path(__file__).resolve().parents[2] / "postgres" / "create-databases.sh").read_text()
    init = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata("postgres-init", "postgres"),
        "data": {"10-create-databases.sh": init_script},
    }
    manifests = stateful_set(
        "postgres",
        image=POSTGRES_IMAGE,
        port=5432,
        env=env,
        probe=probe,
        mount="/var/lib/postgresql/data",
        storage="50Gi",
        resources={"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
        extra_mounts=[{"name": "init", "mountPath": "/docker-entrypoint-initdb.d", "readOnly": True}],
        extra_volumes=[{"name": "init", "configMap": {"name": "postgres-init"}}],
    )
    return [init, *manifests]


def stateful_set(
    name: str,
    *,
    image: str,
    port: int,
    env: list[dict[str, Any]],
    probe: dict[str, Any],
    mount: str,
    storage: str,
    resources: dict[str, Any],
    extra_mounts: Sequence[dict[str, Any]] = (),
    extra_volumes: Sequence[dict[str, Any]] = (),
) -> list[Manifest]:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name),
        "spec": {"selector": labels(name), "ports": [{"name": name, "port": port, "targetPort": port}]},
    }
    container = {
        "name": name,
        "image": image,
        "ports": [{"name": name, "containerPort": port}],
        "env": env,
        "readinessProbe": probe,
        "livenessProbe": {**probe, "initialDelaySeconds": 30},
        "resources": resources,
        "volumeMounts": [{"name": "data", "mountPath": mount}, *extra_mounts],
    }
    workload = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(name),
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": labels(name)},
            "template": {
                "metadata": {"labels": labels(name)},
                "spec": {"containers": [container], "volumes": list(extra_volumes)},
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": storage}},
                    },
                }
            ],
        },
    }
    return [service, workload]


def shared_config() -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(CONFIG, "cityblocks"),
        "data": {
            "kafka-bootstrap": f"kafka.{NAMESPACE}.svc:9092",
            # Partitions bound how many replicas of one service consume in parallel; see the operations guide.
            "kafka-partitions": "6",
            "jwks-url": "https://login.example.org/realms/cityblocks/protocol/openid-connect/certs",
            "jwt-issuer": "https://login.example.org/realms/cityblocks",
            "jwt-audience": "cityblocks",
        },
    }


def render(entries: Sequence[ServiceEntry] = SERVICES) -> dict[str, list[Manifest]]:
    """File name -> the manifests in it; `kustomization.yaml` lists the files."""
    files: dict[str, list[Manifest]] = {
        "namespace.yaml": [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": NAMESPACE, "labels": labels(NAMESPACE)},
            }
        ],
        "config.yaml": [shared_config()],
        "kafka.yaml": kafka(),
        "postgres.yaml": postgres(entries),
    }
    for entry in entries:
        files[f"{entry.name}.yaml"] = [
            service_deployment(entry),
            service_service(entry),
            disruption_budget(entry),
        ]
    files["kustomization.yaml"] = [
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": NAMESPACE,
            "resources": list(files),
            "images": [{"name": f"{IMAGE_REPOSITORY}/{entry.name}", "newTag": "0.1.0"} for entry in entries],
        }
    ]
    return files


HEADER = "# Generated by `uv run cityblocks manifests` from cityblocks.services.SERVICES; edit that.\n"


def to_text(manifests: Sequence[Manifest]) -> str:
    return HEADER + "---\n".join(yaml.safe_dump(m, sort_keys=False, width=120) for m in manifests)


def write(directory: Path, entries: Sequence[ServiceEntry] = SERVICES) -> list[Path]:
    """Write every file; stale service files from removed entries go too."""
    directory.mkdir(parents=True, exist_ok=True)
    files = render(entries)
    for old in directory.glob("*.yaml"):
        if old.name not in files:
            old.unlink()
    written = []
    for name, manifests in files.items():
        path = directory / name
        path.write_text(to_text(manifests))
        written.append(path)
    return written
