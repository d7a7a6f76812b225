"""The distributed run on one machine: Kafka, PostgreSQL and one uvicorn process per service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cityblocks.kafka import KafkaBroker
from cityblocks.postgres import PostgresCluster
from cityblocks.processes import free_port, pid_alive, port_is_open, terminate
from cityblocks.services import ServiceEntry

Progress = Callable[[str], None]
KAFKA_PORT = 9092
POSTGRES_PORT = 55432
AUTH_PORT = 8100
SERVICE_MARKER = "uvicorn"
# The dev identity provider: what `make run` mounts under /auth, here a process of its own.
AUTH = ServiceEntry("auth", "servicekit.devidp", "DEVIDP_", AUTH_PORT)


class ServiceFailed(RuntimeError):
    """A service process exited or never became healthy."""


def choose_port(requested: int | None, default: int) -> int:
    """None means the default port when it is free; 0 means any free port."""
    if requested is None:
        return default if not port_is_open(default) else free_port()
    return requested or free_port()


def start_kafka(var_dir: Path, progress: Progress, port: int | None = None) -> tuple[KafkaBroker, bool]:
    """The broker under `var_dir/kafka`, started unless it runs already; True when we started it."""
    data_dir = var_dir / "kafka"
    known = KafkaBroker.in_folder(data_dir, progress=progress)
    if known is not None and known.running_pid() is not None:
        progress(f"Kafka already runs on {known.bootstrap}")
        return known, False
    broker = KafkaBroker(data_dir=data_dir, port=choose_port(port, KAFKA_PORT), progress=progress)
    broker.start()
    return broker, True


def start_postgres(
    var_dir: Path, progress: Progress, port: int | None = None, *, durable: bool = True
) -> tuple[PostgresCluster, bool]:
    """The cluster under `var_dir/postgres`, started unless it runs already; True when we started it."""
    data_dir = (var_dir / "postgres").resolve()
    known = PostgresCluster.in_folder(data_dir, progress=progress)
    if known is not None and known.is_running():
        progress(f"PostgreSQL already runs on {known.host}:{known.port}")
        return known, False
    cluster = PostgresCluster(
        data_dir=data_dir, port=choose_port(port, POSTGRES_PORT), durable=durable, progress=progress
    )
    cluster.start()
    return cluster, True


@dataclass
class DistributedRun:
    """Everything `cityblocks up` started, so that Ctrl-C or `cityblocks down` can stop exactly that."""

    services: Sequence[ServiceEntry]
    var_dir: Path
    progress: Progress
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    broker: KafkaBroker | None = None
    cluster: PostgresCluster | None = None
    started_kafka: bool = False
    started_postgres: bool = False
    auth: ServiceEntry = AUTH

    @property
    def state_file(self) -> Path:
        return self.var_dir / "up" / "state.json"

    def log_file(self, service: ServiceEntry) -> Path:
        return self.var_dir / "up" / f"{service.name}.log"

    def start(self, health_timeout: float = 60.0) -> None:
        (self.var_dir / "up").mkdir(parents=True, exist_ok=True)
        self.broker, self.started_kafka = start_kafka(self.var_dir, self.progress)
        self._save_state()
        self.cluster, self.started_postgres = start_postgres(self.var_dir, self.progress)
        self._save_state()
        self.auth = ServiceEntry(AUTH.name, AUTH.module, AUTH.env_prefix, choose_port(None, AUTH_PORT))
        self._launch(self.auth, "", self.broker.bootstrap)
        for service in self.services:
            url = self.cluster.create_database(service.database, exist_ok=True)
            self.progress(f"Database {service.database} ready for {service.name}")
            self._launch(service, url, self.broker.bootstrap)
            self._save_state()
        self._wait_healthy(health_timeout)

    def _launch(self, service: ServiceEntry, database_url: str, bootstrap: str) -> None:
        command = [
            sys.executable, "-m", SERVICE_MARKER, service.factory, "--factory",
            "--host", "127.0.0.1", "--port", str(service.port),
        ]  # fmt: skip
        env = {**self._shared_environment(service), **os.environ}
        env.update(service.environment(database_url, bootstrap) if database_url else {})
        self.progress(f"Starting {service.name} on port {service.port} (log {self.log_file(service)})")
        with self.log_file(service).open("ab") as log:
            self.processes[service.name] = subprocess.Popen(  # noqa: S603
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _shared_environment(self, service: ServiceEntry) -> dict[str, str]:
        """What every process gets unless the environment says otherwise: one data dir (the dev identity
        provider's key lives there), where the others listen (the console calls them) and the login."""
        urls = {entry.name: f"http://127.0.0.1:{entry.port}" for entry in self.services}
        prefix = service.env_prefix
        return {
            f"{prefix}DATA_DIR": str((self.var_dir / "data").resolve()),
            f"{prefix}SERVICE_URLS": json.dumps(urls),
            f"{prefix}AUTH_URL": f"http://127.0.0.1:{self.auth.port}",
        }

    def _wait_healthy(self, timeout: float) -> None:
        pending = {service.name: service for service in [self.auth, *self.services]}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            self.check_alive()
            for name, service in list(pending.items()):
                if _healthy(service):
                    self.progress(f"{name} is healthy: http://127.0.0.1:{service.port}/docs")
                    del pending[name]
            time.sleep(0.5)
        if pending:
            raise ServiceFailed(f"not healthy within {timeout:.0f}s: {', '.join(sorted(pending))}")

    def check_alive(self) -> None:
        for service in [self.auth, *self.services]:
            process = self.processes.get(service.name)
            if process is not None and process.poll() is not None:
                tail = self.log_file(service).read_text(errors="replace").splitlines()[-20:]
                raise ServiceFailed(f"{service.name} exited with {process.returncode}:\n" + "\n".join(tail))

    def watch(self) -> None:
        """Block until a service dies (raises ServiceFailed) or the user interrupts."""
        while True:
            self.check_alive()
            time.sleep(1)

    def stop(self) -> None:
        for name, process in self.processes.items():
            self.progress(f"Stopping {name}")
            terminate(process.pid, 10)
            process.wait(timeout=5)
        self.processes.clear()
        if self.cluster is not None and self.started_postgres:
            self.progress("Stopping PostgreSQL")
            self.cluster.stop()
        if self.broker is not None and self.started_kafka:
            self.progress("Stopping Kafka")
            self.broker.stop()
        self.state_file.unlink(missing_ok=True)

    def _save_state(self) -> None:
        state = {
            "services": {name: process.pid for name, process in self.processes.items()},
            "kafka": self.started_kafka,
            "postgres": self.started_postgres,
        }
        self.state_file.write_text(json.dumps(state))


def _healthy(service: ServiceEntry) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{service.port}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def down(var_dir: Path, progress: Progress) -> bool:
    """Stop what a `cityblocks up` elsewhere (or one that crashed) left running; False if nothing."""
    state_file = var_dir / "up" / "state.json"
    if not state_file.exists():
        return False
    state = json.loads(state_file.read_text())
    for name, pid in state.get("services", {}).items():
        if pid_alive(pid, SERVICE_MARKER):
            progress(f"Stopping {name} (pid {pid})")
            terminate(pid, 10, SERVICE_MARKER)
    if state.get("postgres"):
        cluster = PostgresCluster.in_folder((var_dir / "postgres").resolve())
        if cluster is not None and cluster.is_running():
            progress("Stopping PostgreSQL")
            cluster.stop()
    if state.get("kafka"):
        broker = KafkaBroker.in_folder(var_dir / "kafka")
        if broker is not None and broker.running_pid() is not None:
            progress("Stopping Kafka")
            broker.stop()
    state_file.unlink()
    return True
