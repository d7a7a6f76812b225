"""Schemathesis against every service's OpenAPI on the running embedded platform: no 5xx, schema-true answers.

Each operation is called by a caller the authorisation matrix allows (`tests/authorisation/matrix.yaml`), so
the generated requests reach the handlers instead of stopping at the role check. Examples per operation are
bounded by `CITYBLOCKS_FUZZ_EXAMPLES` (default 8) so the tier stays within a minute or two.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from cityblocks.embedded import build_platform
from cityblocks.services import SERVICES
from servicekit.devidp import DevIdentityProvider, demo_user
from servicekit.settings import ServiceSettings

pytestmark = pytest.mark.fuzz

MATRIX = Path(__file__).parents[1] / "authorisation" / "matrix.yaml"
EXAMPLES = int(os.environ.get("CITYBLOCKS_FUZZ_EXAMPLES", "8"))
INFRASTRUCTURE = {"/health", "/ready", "/metrics"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def platform_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(build_platform(data_dir), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the embedded platform did not start")
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", data_dir
    server.should_exit = True
    thread.join(timeout=30)


def caller_for(entry: Any) -> str | None:
    """The demo user the matrix allows for the operation (None: public)."""
    if entry == "public":
        return None
    if entry in ("any", "login"):
        return "hasselt.citizen"
    return f"hasselt.{entry[0]}"


def fuzz_operation(operation: Any, base_url: str, headers: dict[str, str]) -> int:
    """Run the bounded examples of one operation; returns how many requests were sent, raises on a failure."""
    sent: list[int] = []

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def fuzz(case: Any) -> None:
        sent.append(1)
        case.call_and_validate(
            base_url=base_url,
            headers=headers,
            checks=[not_a_server_error, response_schema_conformance],
            timeout=30,
        )

    fuzz()
    return len(sent)


@pytest.mark.parametrize("service", [entry.name for entry in SERVICES])
def test_no_operation_answers_5xx_or_off_its_schema(service: str, platform_url: tuple[str, Path]) -> None:
    base, data_dir = platform_url
    identity = DevIdentityProvider.from_settings(ServiceSettings(service_name="auth", data_dir=data_dir))
    matrix = (yaml.safe_load(MATRIX.read_text()) or {}).get(service, {})
    schema = schemathesis.openapi.from_url(f"{base}/{service}/openapi.json")
    failures: list[str] = []
    tried = 0
    results: list[Any] = list(schema.get_all_operations())
    for result in results:
        operation = result.ok()  # an operation whose schema is broken raises here, failing the test
        if operation.path in INFRASTRUCTURE:
            continue
        key = f"{operation.method.upper()} {operation.path}"
        username = caller_for(matrix.get(key, "public"))
        headers = {"Authorization": f"Bearer {identity.issue(demo_user(username))}"} if username else {}
        try:
            tried += fuzz_operation(operation, f"{base}/{service}", headers)
        except Exception as error:  # every failing operation is reported, not only the first
            failures.append(f"{key}: {str(error).strip()[:800]}")
    print(f"fuzz {service}: {tried} requests")
    assert not failures, "\n\n".join(failures)
    assert tried > 0
