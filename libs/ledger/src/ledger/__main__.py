"""Command line: `python -m ledger verify <url>` checks the journal and every balance; exit 1 when broken."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from ledger.store import create_engine
from ledger.verify import verify


async def _verify(url: str) -> bool:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            report = await verify(conn)
    finally:
        await engine.dispose()
    print(json.dumps(report.as_dict(), indent=2))
    return report.ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ledger")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="verify the hash-chained journal and all balances")
    check.add_argument(
        "url", help="SQLAlchemy async URL, e.g. postgresql+asyncpg://... or sqlite+aiosqlite:///..."
    )
    args = parser.parse_args(argv)
    return 0 if asyncio.run(_verify(args.url)) else 1


if __name__ == "__main__":
    sys.exit(main())
