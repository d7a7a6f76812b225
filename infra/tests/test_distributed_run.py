"""`cityblocks up` for real: Kafka, PostgreSQL, a database per service and a service process wired to both."""

import asyncio
import json
import os
import shutil
import tempfile
from pathlib import Path

import asyncpg
import httpx
import pytest

from cityblocks.cli import Progress
from cityblocks.distributed import DistributedRun, down
from cityblocks.processes import free_port, pid_alive
from cityblocks.services import ServiceEntry

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

FAKE_SERVICE = """
import os
from fastapi import FastAPI

def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {key: value for key, value in os.environ.items() if key.startswith("PROBE_")}

    return app
"""


def test_up_starts_each_service_on_its_database_and_the_broker_and_down_stops_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    var_dir = Path(tempfile.mkdtemp(prefix="cityblocks-up-"))
    var_dir.chmod(0o755)
    code_dir = var_dir / "code"
    code_dir.mkdir()
    (code_dir / "probe_service.py").write_text(FAKE_SERVICE)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(code_dir), os.environ.get("PYTHONPATH", "")]))
    entry = ServiceEntry("probe-service", "probe_service", "PROBE_", free_port())
    run = DistributedRun([entry], var_dir, Progress())
    try:
        run.start(health_timeout=60)
        env = httpx.get(f"http://127.0.0.1:{entry.port}/health", timeout=5).json()
        assert env["PROBE_BUS"] == "kafka"
        assert run.broker is not None
        assert env["PROBE_KAFKA_BOOTSTRAP"] == run.broker.bootstrap
        assert env["PROBE_DATABASE_URL"].endswith("/probe_service")
        assert json.loads(env["PROBE_SERVICE_URLS"]) == {"probe-service": f"http://127.0.0.1:{entry.port}"}
        users = httpx.get(f"{env['PROBE_AUTH_URL']}/users", timeout=5)
        assert users.status_code == 200 and users.json()
        assert env["PROBE_DATA_DIR"] == str((var_dir / "data").resolve())
        assert asyncio.run(current_database(env["PROBE_DATABASE_URL"])) == "probe_service"
        pids = json.loads(run.state_file.read_text())["services"]
    finally:
        stopped = down(var_dir, Progress())
        shutil.rmtree(var_dir, ignore_errors=True)
    assert stopped
    assert not pid_alive(pids["probe-service"], "uvicorn")
    assert not pid_alive(pids["auth"], "uvicorn")
    assert run.broker is not None and run.broker.running_pid() is None
    assert run.cluster is not None and not run.cluster.is_running()


async def current_database(url: str) -> str:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        return str(await connection.fetchval("SELECT current_database()"))
    finally:
        await connection.close()
