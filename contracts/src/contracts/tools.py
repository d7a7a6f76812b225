"""Command line for the contract artefacts: generate the JSON Schemas and AsyncAPI document, check them."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from contracts.asyncapi import build_document, to_yaml
from contracts.base import Event
from contracts.compat import NEW_VERSION_HINT, Schema, compare_catalogue
from contracts.jsonld import SERVICES as JSONLD_SERVICES
from contracts.jsonld import context_for
from contracts.registry import catalogue
from contracts.schemas import RELEASED_DIR, all_schemas, render

ASYNCAPI_FILE = "asyncapi.yaml"
SCHEMAS_DIR = "schemas"
JSONLD_DIR = "jsonld"
ASYNCAPI_HEADER = "Generated from the contract events by `python -m contracts.tools generate`; do not edit."
_DIFF_LINES = 40

DESCRIPTION = """\
Keep the generated contract artefacts in step with the event models in contracts/src/contracts/.

  generate  write contracts/schemas/<service>/<Event>.v<N>.json (closed JSON Schema, draft 2020-12) for every
            event type in the catalogue, the envelope schema, contracts/asyncapi.yaml and the JSON-LD
            context of every service (contracts/jsonld/<service>.jsonld); remove stale files.
  check     regenerate in memory and fail when a committed file is missing, stale or different (run generate),
            or when a schema breaks its released snapshot in contracts/schemas/released/ (only optional
            additions and documentation may change within a version; anything else needs a new vN type).
  release   snapshot the current schemas as the released versions (a deliberate step); refuses breaking
            changes, and removes a released type only when it is named with --retire.
"""


def contracts_root() -> Path:
    """The `contracts/` folder of the workspace (this module lives in contracts/src/contracts/)."""
    return Path(__file__).resolve().parents[2]


def generated_files(events: Iterable[type[Event]] | None = None) -> dict[str, str]:
    """Every generated artefact's text by its path relative to `contracts/`."""
    event_list = None if events is None else list(events)
    files = {f"{SCHEMAS_DIR}/{path}": render(schema) for path, schema in all_schemas(event_list).items()}
    files[ASYNCAPI_FILE] = to_yaml(build_document(event_list), header=ASYNCAPI_HEADER)
    chosen = event_list if event_list is not None else list(catalogue().values())
    present = {event.event_service for event in chosen}
    for service in JSONLD_SERVICES:
        if service in present:
            context = context_for(service, event_list)
            files[f"{JSONLD_DIR}/{service}.jsonld"] = json.dumps(context, indent=2, ensure_ascii=False) + "\n"
    return files


def committed_files(root: Path) -> dict[str, str]:
    """The generated artefacts as committed under `root` (released snapshots are not generated ones)."""
    found: dict[str, str] = {}
    schemas = root / SCHEMAS_DIR
    if schemas.is_dir():
        for path in sorted(schemas.rglob("*.json")):
            relative = path.relative_to(root).as_posix()
            if not relative.startswith(f"{SCHEMAS_DIR}/{RELEASED_DIR}/"):
                found[relative] = path.read_text(encoding="utf-8")
    for path in sorted((root / JSONLD_DIR).glob("*.jsonld")):
        found[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8")
    asyncapi = root / ASYNCAPI_FILE
    if asyncapi.is_file():
        found[ASYNCAPI_FILE] = asyncapi.read_text(encoding="utf-8")
    return found


def drift(expected: dict[str, str], committed: dict[str, str]) -> list[str]:
    """One message per artefact that is missing, stale or different, with the start of a unified diff."""
    problems: list[str] = []
    for path in sorted(expected.keys() - committed.keys()):
        problems.append(f"missing: {path}")
    for path in sorted(committed.keys() - expected.keys()):
        problems.append(f"stale (no event type generates it): {path}")
    for path in sorted(expected.keys() & committed.keys()):
        if expected[path] != committed[path]:
            diff = list(
                difflib.unified_diff(
                    committed[path].splitlines(),
                    expected[path].splitlines(),
                    f"{path} (committed)",
                    f"{path} (generated)",
                    lineterm="",
                )
            )
            shown = "\n".join(diff[:_DIFF_LINES]) + ("\n..." if len(diff) > _DIFF_LINES else "")
            problems.append(f"out of date: {path}\n{shown}")
    return problems


def released_schemas(root: Path) -> dict[str, Schema]:
    """The released snapshots by schema path (relative to `schemas/`, as the current ones)."""
    released = root / SCHEMAS_DIR / RELEASED_DIR
    if not released.is_dir():
        return {}
    return {
        path.relative_to(released).as_posix(): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(released.rglob("*.json"))
    }


def check(root: Path, events: Iterable[type[Event]] | None = None) -> list[str]:
    """Every reason the committed artefacts are stale or break a released version; empty when all is well."""
    event_list = None if events is None else list(events)
    problems = drift(generated_files(event_list), committed_files(root))
    if problems:
        problems.append("run `python -m contracts.tools generate` and commit the result")
    breaking = compare_catalogue(released_schemas(root), all_schemas(event_list))
    problems.extend(f"breaking: {change}" for change in breaking)
    if breaking:
        problems.append(NEW_VERSION_HINT)
    return problems


def generate(root: Path, events: Iterable[type[Event]] | None = None) -> list[str]:
    """Write the artefacts under `root` and delete stale ones; returns the paths that changed."""
    expected = generated_files(events)
    committed = committed_files(root)
    changed: list[str] = []
    for path, text in expected.items():
        if committed.get(path) != text:
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            changed.append(path)
    for path in sorted(committed.keys() - expected.keys()):
        (root / path).unlink()
        changed.append(path)
    return changed


def release(
    root: Path, *, retire: Sequence[str] = (), events: Iterable[type[Event]] | None = None
) -> tuple[list[str], list[str]]:
    """Snapshot the current schemas as released; returns (problems, changed paths); no write on a problem."""
    current = all_schemas(None if events is None else list(events))
    released = released_schemas(root)
    problems = [f"breaking: {change}" for change in compare_catalogue(released, current, retired=retire)]
    if problems:
        return [*problems, NEW_VERSION_HINT], []
    target = root / SCHEMAS_DIR / RELEASED_DIR
    changed: list[str] = []
    for path, schema in current.items():
        text = render(schema)
        file = target / path
        if not file.is_file() or file.read_text(encoding="utf-8") != text:
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(text, encoding="utf-8")
            changed.append(f"{SCHEMAS_DIR}/{RELEASED_DIR}/{path}")
    for path in sorted(released.keys() - current.keys()):
        (target / path).unlink()
        changed.append(f"{SCHEMAS_DIR}/{RELEASED_DIR}/{path} (retired)")
    return [], changed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m contracts.tools",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="the contracts/ folder (default: the one this package lives in)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{generate,check,release}")
    commands.add_parser("generate", help="write the JSON Schemas and asyncapi.yaml from the event models")
    commands.add_parser(
        "check", help="fail on drift from the models or on a breaking change to a released schema"
    )
    releasing = commands.add_parser("release", help="snapshot the current schemas as the released versions")
    releasing.add_argument(
        "--retire",
        action="append",
        default=[],
        metavar="TYPE",
        help="a released event type (be.cityblocks.<service>.<Event>.v<N>) that may leave; repeatable",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root: Path = args.root or contracts_root()
    try:
        return _run(args.command, root, retire=args.retire if args.command == "release" else [])
    except (TypeError, ValueError) as exc:
        # an event class that cannot become a closed schema, or a schema the checker cannot read
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(command: str, root: Path, *, retire: Sequence[str]) -> int:
    if command == "generate":
        changed = generate(root)
        print("\n".join(f"wrote {path}" for path in changed) or "all artefacts are current")
        return 0
    if command == "check":
        problems = check(root)
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 1
        print("contract artefacts are current and compatible with the released versions")
        return 0
    problems, changed = release(root, retire=retire)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print("\n".join(f"released {path}" for path in changed) or "nothing new to release")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
