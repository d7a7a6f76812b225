"""The `cityblocks` command: the embedded platform, the real Kafka and PostgreSQL, and the distributed run."""

from __future__ import annotations

import importlib
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from cityblocks import services as service_catalogue
from cityblocks.distributed import DistributedRun, ServiceFailed, down, start_kafka, start_postgres
from cityblocks.kafka import KafkaBroker, KafkaUnavailable
from cityblocks.postgres import PostgresCluster, PostgresUnavailable

app = typer.Typer(help="CityBlocks: run the platform embedded or distributed.", no_args_is_help=True)
kafka_app = typer.Typer(help="A single-node Kafka broker (KRaft) from Maven jars.", no_args_is_help=True)
postgres_app = typer.Typer(help="A local PostgreSQL cluster for the distributed run.", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")
app.add_typer(postgres_app, name="postgres")

VarDir = Annotated[Path, typer.Option("--var-dir", help="Where runtime state lives.")]


class Progress:
    """Prints each step of a long operation with the seconds since the command began."""

    def __init__(self) -> None:
        self.began = time.monotonic()

    def __call__(self, message: str) -> None:
        typer.echo(f"[{time.monotonic() - self.began:5.1f}s] {message}")


def fail(message: str) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


@app.command()
def run(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: Annotated[Path, typer.Option(help="Folder for the SQLite files.")] = Path("var"),
) -> None:
    """Run every service in one process (in-process bus, SQLite under ./var)."""
    try:
        embedded = importlib.import_module("cityblocks.embedded")
    except ImportError as error:
        raise fail(f"the embedded runner is not available: {error}") from error
    typer.echo(f"Starting CityBlocks embedded on http://{host}:{port}/ (Ctrl-C stops)")
    embedded.serve(host=host, port=port, data_dir=data_dir)


@kafka_app.command("start")
def kafka_start(
    port: Annotated[int | None, typer.Option(help="Broker port (default 9092, else a free one).")] = None,
    var_dir: VarDir = Path("var"),
) -> None:
    """Start the broker in the background (data and pid file under ./var/kafka)."""
    try:
        broker, _ = start_kafka(var_dir, Progress(), port)
    except (KafkaUnavailable, RuntimeError, TimeoutError) as error:
        raise fail(str(error)) from error
    typer.echo(f"CITYBLOCKS_KAFKA_BOOTSTRAP={broker.bootstrap}")


@kafka_app.command("stop")
def kafka_stop(var_dir: VarDir = Path("var")) -> None:
    """Stop the background broker (SIGTERM, then SIGKILL after a timeout)."""
    broker = KafkaBroker.in_folder(var_dir / "kafka", progress=Progress())
    if broker is None or broker.running_pid() is None:
        typer.echo("Kafka is not running")
        return
    broker.stop()
    typer.echo("Kafka stopped")


@kafka_app.command("status")
def kafka_status(var_dir: VarDir = Path("var")) -> None:
    """Tell whether the background broker runs, and where; exit 1 when it does not."""
    broker = KafkaBroker.in_folder(var_dir / "kafka")
    pid = broker.running_pid() if broker is not None else None
    if broker is None or pid is None:
        typer.echo("Kafka is not running")
        raise typer.Exit(code=1)
    typer.echo(f"Kafka runs on {broker.bootstrap} (pid {pid})")


@postgres_app.command("start")
def postgres_start(
    port: Annotated[int | None, typer.Option(help="Server port (default 55432, else a free one).")] = None,
    no_fsync: Annotated[bool, typer.Option(help="fsync off: faster, unsafe on a crash; tests only.")] = False,
    var_dir: VarDir = Path("var"),
) -> None:
    """Start a PostgreSQL cluster in the background (./var/postgres), creating it on first use."""
    try:
        cluster, _ = start_postgres(var_dir, Progress(), port, durable=not no_fsync)
    except (PostgresUnavailable, RuntimeError) as error:
        raise fail(str(error)) from error
    typer.echo(f"CITYBLOCKS_POSTGRES_DSN={cluster.dsn}")


@postgres_app.command("stop")
def postgres_stop(var_dir: VarDir = Path("var")) -> None:
    """Stop the PostgreSQL cluster (fast shutdown)."""
    cluster = PostgresCluster.in_folder((var_dir / "postgres").resolve())
    if cluster is None or not cluster.is_running():
        typer.echo("PostgreSQL is not running")
        return
    cluster.stop()
    typer.echo("PostgreSQL stopped")


@app.command()
def up(var_dir: VarDir = Path("var")) -> None:
    """Run distributed on this machine: Kafka, PostgreSQL, one process per service; Ctrl-C stops all."""
    entries = service_catalogue.SERVICES
    if not entries:
        typer.echo("No service has an app yet (cityblocks.services.SERVICES is empty): nothing to start.")
        return
    distributed = DistributedRun(entries, var_dir, Progress())
    # Both signals stop everything; SIGINT is set explicitly because a shell may start us with it ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    try:
        distributed.start()
        typer.echo("CityBlocks distributed:")
        for entry in entries:
            typer.echo(f"  {entry.name:<16} http://127.0.0.1:{entry.port}/docs")
        typer.echo("Ctrl-C stops everything started here.")
        distributed.watch()
    except KeyboardInterrupt:
        typer.echo("Stopping")
    except (ServiceFailed, KafkaUnavailable, PostgresUnavailable, RuntimeError, TimeoutError) as error:
        typer.secho(str(error), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from error
    finally:
        distributed.stop()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@app.command("down")
def down_command(var_dir: VarDir = Path("var")) -> None:
    """Stop what `cityblocks up` started (from another terminal, or after it crashed)."""
    if not down(var_dir, Progress()):
        typer.echo("Nothing started by `cityblocks up` is running")


@app.command("manifests")
def manifests_command(
    out: Annotated[Path, typer.Option(help="Folder for the Kubernetes manifests.")] = Path("infra/k8s"),
) -> None:
    """Write the Kubernetes manifests (kustomize) for every service in SERVICES."""
    from cityblocks import manifests

    for path in manifests.write(out):
        typer.echo(f"wrote {path}")


def main() -> None:
    app()
