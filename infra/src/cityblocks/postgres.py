"""A throwaway PostgreSQL cluster (initdb, pg_ctl, free port) or an attached server handing out databases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from cityblocks.processes import free_port, read_int, run_coroutine

Progress = Callable[[str], None]
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def find_bin_dir() -> Path | None:
    """The newest `/usr/lib/postgresql/<version>/bin`, else the folder of `pg_ctl` on PATH."""
    override = os.environ.get("CITYBLOCKS_PG_BIN")
    if override:
        return Path(override)
    root = Path("/usr/lib/postgresql")
    versions = sorted(
        (p for p in root.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    return None


class PostgresCluster:
    """A PostgreSQL cluster in `data_dir` on 127.0.0.1:`port`, or an attached server (see `attach`)."""

    def __init__(
        self,
        data_dir: Path | None = None,
        port: int | None = None,
        *,
        durable: bool = True,
        user: str = "postgres",
        progress: Progress | None = None,
    ) -> None:
        # A folder made here is ours to delete on stop; one handed in belongs to the caller.
        self._owns_data_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="cityblocks-pg-"))
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.user = user
        self.password: str | None = None
        # fsync and synchronous commit off trade crash safety for speed: only asked for explicitly, in tests.
        self.durable = durable
        self._progress = progress or (lambda _message: None)
        self._managed = True

    @classmethod
    def attach(cls, dsn: str) -> PostgresCluster:
        """Use a running server (`postgresql://user[:password]@host:port/db`); start and stop do nothing."""
        parts = urlsplit(dsn)
        cluster = cls.__new__(cls)
        cluster.data_dir = Path()
        cluster.host = parts.hostname or "127.0.0.1"
        cluster.port = parts.port or 5432
        cluster.user = unquote(parts.username or "postgres")
        cluster.password = unquote(parts.password) if parts.password else None
        cluster.durable = True
        cluster._progress = lambda _message: None
        cluster._managed = False
        cluster._owns_data_dir = False
        return cluster

    @classmethod
    def in_folder(cls, data_dir: Path, *, progress: Progress | None = None) -> PostgresCluster | None:
        """The cluster last started from `data_dir`, known by the port it recorded, or None."""
        port = read_int(data_dir / "port")
        return cls(data_dir=data_dir, port=port, progress=progress) if port is not None else None

    @property
    def dsn(self) -> str:
        """A libpq DSN of the server's maintenance database, the form `CITYBLOCKS_POSTGRES_DSN` takes."""
        return self._url("postgresql", "postgres")

    def url(self, database: str) -> str:
        """SQLAlchemy asyncpg URL of `database` on this server."""
        return self._url("postgresql+asyncpg", database)

    @property
    def socket_dir(self) -> Path:
        return self.data_dir / "sockets"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def _url(self, scheme: str, database: str) -> str:
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        return f"{scheme}://{auth}@{self.host}:{self.port}/{database}"

    def start(self) -> None:
        """Create the cluster if the folder is empty, start the server, wait until it accepts connections."""
        if not self._managed:
            return
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise PostgresUnavailable("PostgreSQL server binaries not found (apt-get install -y postgresql)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        owner = _server_owner()
        if owner is not None:
            _chown_tree(self.data_dir, owner)
        pgdata = self.data_dir / "data"
        if not (pgdata / "PG_VERSION").exists():
            self._progress(f"Creating a PostgreSQL cluster in {pgdata}")
            self._run(owner, [str(bin_dir / "initdb"), "-D", str(pgdata), "-U", self.user, "--auth=trust",
                              "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])  # fmt: skip
        self._progress(f"Starting PostgreSQL on {self.host}:{self.port}")
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses={self.host} -c max_connections=200"
        )
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        (self.data_dir / "port").write_text(str(self.port))
        self._run(owner, [str(bin_dir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(pgdata),
                          "-l", str(self.log_file), "-o", options])  # fmt: skip

    def stop(self) -> None:
        if not self._managed:
            return
        bin_dir = find_bin_dir()
        pgdata = self.data_dir / "data"
        if bin_dir is not None and (pgdata / "postmaster.pid").exists():
            command = [str(bin_dir / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(pgdata)]
            self._run(_server_owner(), command)
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def is_running(self) -> bool:
        return (self.data_dir / "data" / "postmaster.pid").exists()

    def create_database(self, name: str, *, exist_ok: bool = False) -> str:
        """Create an empty database and return its `postgresql+asyncpg://` URL."""
        if not _IDENTIFIER.match(name):
            raise ValueError(f"database names are lower-case identifiers, got {name!r}")
        import asyncpg

        async def create() -> None:
            connection = await asyncpg.connect(self.dsn, timeout=10)
            try:
                exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
                if not (exists and exist_ok):
                    await connection.execute(f'CREATE DATABASE "{name}"')
            finally:
                await connection.close()

        run_coroutine(create)
        return self.url(name)

    def _run(self, owner: str | None, command: list[str]) -> None:
        result = subprocess.run(  # noqa: S603
            command,
            capture_output=True,
            text=True,
            check=False,
            user=owner,
            cwd=self.data_dir,
            env={**os.environ, "LC_ALL": "C.UTF-8"},
            start_new_session=True,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{Path(command[0]).name} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                f"{self._log_tail()}"
            )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def _server_owner() -> str | None:
    """PostgreSQL refuses to run as root, so as root the server runs as the `postgres` (or `nobody`) user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise PostgresUnavailable("running as root and neither a 'postgres' nor a 'nobody' user exists")


def _chown_tree(path: Path, owner: str) -> None:
    entry = pwd.getpwnam(owner)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


@contextlib.asynccontextmanager
async def server_for_run(prefix: str) -> AsyncIterator[str]:
    """A libpq DSN for a benchmark run: `CITYBLOCKS_POSTGRES_DSN`, else a durable cluster for the run."""
    external = os.environ.get("CITYBLOCKS_POSTGRES_DSN")
    if external:
        yield external
        return
    data_dir = Path(tempfile.mkdtemp(prefix=f"cityblocks-{prefix}-"))
    cluster = PostgresCluster(data_dir=data_dir, durable=True)
    await asyncio.to_thread(cluster.start)
    try:
        yield cluster.dsn
    finally:
        await asyncio.to_thread(cluster.stop)
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.asynccontextmanager
async def fresh_database(dsn: str, prefix: str) -> AsyncIterator[str]:
    """A new empty database on the server of `dsn`, as a `postgresql+asyncpg://` URL; dropped afterwards."""
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = dsn.rsplit("/", 1)[0]
    try:
        yield f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
    finally:
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def checkpoint(database_url: str) -> None:
    """Write every dirty page of the server to disk now (CHECKPOINT), e.g. between two benchmark phases.

    A phase that wrote a lot leaves the server and the kernel flushing it for a while afterwards; a phase that
    measures commit latency next would be measured against that flush (here, fsyncs of 100-500 ms).
    """
    import asyncpg

    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()
