"""A single-node Apache Kafka broker (KRaft) run from Maven Central jars, for tests and local runs."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from string import Template

from cityblocks.processes import free_port, pid_alive, port_is_open, read_int, run_coroutine, terminate

KAFKA_VERSION = "4.1.1"
KAFKA_DIR = Path(__file__).resolve().parents[2] / "kafka"
MAIN_CLASS = "kafka.Kafka"

Progress = Callable[[str], None]


class KafkaUnavailable(RuntimeError):
    """Java, Maven or the jars cannot be had on this machine."""


def default_cache_dir() -> Path:
    """`$CITYBLOCKS_CACHE_DIR/kafka`, else `~/.cache/cityblocks/kafka` (honouring XDG_CACHE_HOME)."""
    if os.environ.get("CITYBLOCKS_CACHE_DIR"):
        return Path(os.environ["CITYBLOCKS_CACHE_DIR"]) / "kafka"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "cityblocks" / "kafka"


def missing_tools() -> list[str]:
    return [tool for tool in ("java", "mvn") if shutil.which(tool) is None]


def random_cluster_id() -> str:
    # Same shape as `kafka.tools.StorageTool random-uuid` (url-safe base64 of 16 bytes), without a JVM start.
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not value.startswith("-"):
            return value


class KafkaBroker:
    """One combined broker+controller on 127.0.0.1 whose data lives in `data_dir`."""

    def __init__(
        self,
        cache_dir: Path | None = None,
        data_dir: Path | None = None,
        port: int | None = None,
        *,
        version: str = KAFKA_VERSION,
        heap: str = "512m",
        progress: Progress | None = None,
    ) -> None:
        self.version = version
        self.cache_dir = (cache_dir or default_cache_dir()) / version
        # A folder made here is ours to delete on stop; one handed in belongs to the caller.
        self._owns_data_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="cityblocks-kafka-"))
        self.port = port or free_port()
        self.heap = heap
        self._progress = progress or (lambda _message: None)
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def in_folder(cls, data_dir: Path, *, progress: Progress | None = None) -> KafkaBroker | None:
        """The broker last started from `data_dir`, known by the port it recorded, or None."""
        port = read_int(data_dir / "broker.port")
        return cls(data_dir=data_dir, port=port, progress=progress) if port is not None else None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def libs_dir(self) -> Path:
        return self.cache_dir / "libs"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    def ensure_jars(self) -> Path:
        """Fetch the broker jars with Maven once; later calls find them in the cache."""
        marker = self.libs_dir / f"kafka_2.13-{self.version}.jar"
        if marker.exists():
            return self.libs_dir
        missing = missing_tools()
        if missing:
            raise KafkaUnavailable(f"Kafka needs {' and '.join(missing)} on PATH (Java 17+ and Maven)")
        self._progress(f"Fetching Apache Kafka {self.version} jars with Maven into {self.libs_dir}")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="libs-", dir=self.cache_dir))
        command = [
            "mvn", "-B", "-q", "-f", str(KAFKA_DIR / "pom.xml"), "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-Dkafka.version={self.version}", f"-DoutputDirectory={staging}",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0 or not (staging / marker.name).exists():
            shutil.rmtree(staging, ignore_errors=True)
            raise KafkaUnavailable(
                f"Maven could not fetch Kafka {self.version}:\n{result.stdout}{result.stderr}"
            )
        # A rename is atomic, so a concurrent fetch never sees half a folder of jars.
        try:
            staging.rename(self.libs_dir)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
        return self.libs_dir

    def running_pid(self) -> int | None:
        pid = read_int(self.pid_file)
        return pid if pid is not None and pid_alive(pid, MAIN_CLASS) else None

    def start(self, timeout: float = 90.0) -> None:
        """Start the broker in the background and return once a client can fetch metadata."""
        if self.running_pid() is not None:
            raise RuntimeError(f"a broker already runs from {self.data_dir} (pid file {self.pid_file})")
        if port_is_open(self.port):
            raise RuntimeError(f"port {self.port} is already in use")
        libs = self.ensure_jars()
        config = self._write_config()
        if not (self.data_dir / "data" / "meta.properties").exists():
            self._progress("Formatting the KRaft storage")
            self._format(libs, config)
        self._progress(f"Starting Kafka {self.version} on {self.bootstrap}")
        self._launch(libs, config)
        self._wait_ready(timeout)
        self._progress(f"Kafka is ready on {self.bootstrap}")

    def stop(self, timeout: float = 20.0) -> None:
        """Stop with SIGTERM (a clean shutdown), then SIGKILL after `timeout` seconds."""
        pid = self._process.pid if self._process is not None else self.running_pid()
        if pid is not None:
            terminate(pid, timeout, MAIN_CLASS)
        if self._process is not None:
            self._process.wait(timeout=5)
            self._process = None
        self.pid_file.unlink(missing_ok=True)
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _java(self, libs: Path) -> list[str]:
        return ["java", "-cp", f"{libs}/*"]

    def _write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        template = Template((KAFKA_DIR / "server.properties.template").read_text())
        config = self.data_dir / "server.properties"
        config.write_text(
            template.substitute(
                port=self.port, controller_port=self._controller_port(), log_dirs=self.data_dir / "data"
            )
        )
        shutil.copyfile(KAFKA_DIR / "log4j2.properties", self.data_dir / "log4j2.properties")
        return config

    def _controller_port(self) -> int:
        # Stable across restarts of the same data folder so the static voter set never changes.
        port_file = self.data_dir / "controller.port"
        known = read_int(port_file)
        if known is not None and not port_is_open(known):
            return known
        port = free_port()
        port_file.write_text(str(port))
        return port

    def _format(self, libs: Path, config: Path) -> None:
        command = [
            *self._java(libs),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            random_cluster_id(),
            "-c",
            str(config),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise RuntimeError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")

    def _launch(self, libs: Path, config: Path) -> None:
        command = [
            "java", f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
            "-cp", f"{libs}/*", MAIN_CLASS, str(config),
        ]  # fmt: skip
        with self.log_file.open("ab") as log:
            # A session of its own keeps the broker alive after the CLI that started it exits, and out of
            # reach of the terminal's Ctrl-C, which the runner handles itself.
            self._process = subprocess.Popen(  # noqa: S603
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(self._process.pid))
        (self.data_dir / "broker.port").write_text(str(self.port))

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise RuntimeError(f"Kafka exited with {self._process.returncode}:\n{self._log_tail()}")
            if port_is_open(self.port) and metadata_available(self.bootstrap):
                return
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"Kafka did not become ready within {timeout:.0f}s:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def metadata_available(bootstrap: str, timeout: float = 5.0) -> bool:
    """Tell whether a client can fetch cluster metadata listing at least one broker."""
    from aiokafka import AIOKafkaClient
    from aiokafka.errors import KafkaError

    async def probe() -> bool:
        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
        try:
            await client.bootstrap()
            return bool(client.cluster.brokers())
        except (KafkaError, OSError):
            return False
        finally:
            await client.close()

    return run_coroutine(probe)
