"""The `python -m contracts.tools` commands: generate writes, check catches drift and breaks, release."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import Field

import contracts.registry
from contracts.base import Event
from contracts.schemas import ENVELOPE_PATH, RELEASED_DIR, event_schema, render
from contracts.tools import check, contracts_root, generate, generated_files, main, release


def parcel_v1() -> type[Event]:
    class Parcel(Event, service="test", topic="test.parcels", key="parcel_id"):
        parcel_id: str
        weight_g: int = Field(ge=0)

    return Parcel


def parcel_with_optional_note() -> type[Event]:
    class Parcel(Event, service="test", topic="test.parcels", key="parcel_id"):
        parcel_id: str
        weight_g: int = Field(ge=0)
        note: str | None = None

    return Parcel


def parcel_in_kilograms() -> type[Event]:
    class Parcel(Event, service="test", topic="test.parcels", key="parcel_id"):
        parcel_id: str
        weight_kg: float

    return Parcel


def parcel_v2_in_kilograms() -> type[Event]:
    class Parcel(Event, service="test", topic="test.parcels", key="parcel_id", version=2):
        parcel_id: str
        weight_kg: float

    return Parcel


def test_committed_artefacts_are_current_and_compatible() -> None:
    problems = check(contracts_root())

    assert not problems, "\n".join(problems)


def test_the_probe_event_is_released() -> None:
    released = contracts_root() / "schemas" / RELEASED_DIR / "probe" / "ProbeRecorded.v1.json"

    assert json.loads(released.read_text(encoding="utf-8"))["$id"] == "be.cityblocks.probe.ProbeRecorded.v1"
    assert (contracts_root() / "schemas" / RELEASED_DIR / ENVELOPE_PATH).is_file()


def test_generation_is_deterministic() -> None:
    assert generated_files() == generated_files()


def test_generate_then_check_passes(tmp_path: Path) -> None:
    events = [parcel_v1()]

    written = generate(tmp_path, events)

    assert sorted(written) == ["asyncapi.yaml", f"schemas/{ENVELOPE_PATH}", "schemas/test/Parcel.v1.json"]
    assert check(tmp_path, events) == []
    assert generate(tmp_path, events) == []


def test_check_reports_a_changed_schema_with_a_diff(tmp_path: Path) -> None:
    generate(tmp_path, [parcel_v1()])

    problems = check(tmp_path, [parcel_with_optional_note()])

    assert problems[0].startswith("out of date: asyncapi.yaml") or problems[0].startswith(
        "out of date: schemas"
    )
    report = "\n".join(problems)
    assert "out of date: schemas/test/Parcel.v1.json" in report
    assert '+    "note": {' in report
    assert "python -m contracts.tools generate" in report


def test_check_reports_missing_and_stale_files(tmp_path: Path) -> None:
    generate(tmp_path, [parcel_v1()])
    (tmp_path / "schemas/test/Parcel.v1.json").unlink()
    (tmp_path / "schemas/test/Gone.v1.json").write_text("{}\n", encoding="utf-8")

    problems = check(tmp_path, [parcel_v1()])

    assert "missing: schemas/test/Parcel.v1.json" in problems
    assert "stale (no event type generates it): schemas/test/Gone.v1.json" in problems


def test_generate_removes_stale_files_but_keeps_released_snapshots(tmp_path: Path) -> None:
    generate(tmp_path, [parcel_v1()])
    release(tmp_path, events=[parcel_v1()])

    generate(tmp_path, [parcel_v2_in_kilograms()])

    assert not (tmp_path / "schemas/test/Parcel.v1.json").exists()
    assert (tmp_path / "schemas/released/test/Parcel.v1.json").exists()


def test_check_passes_an_optional_addition_to_a_released_type(tmp_path: Path) -> None:
    release(tmp_path, events=[parcel_v1()])
    generate(tmp_path, [parcel_with_optional_note()])

    assert check(tmp_path, [parcel_with_optional_note()]) == []


def test_check_fails_a_breaking_change_to_a_released_type(tmp_path: Path) -> None:
    release(tmp_path, events=[parcel_v1()])
    generate(tmp_path, [parcel_in_kilograms()])

    problems = check(tmp_path, [parcel_in_kilograms()])

    assert "breaking: be.cityblocks.test.Parcel.v1 at /properties/weight_g: property removed" in problems[0]
    assert "version=N+1" in problems[-1]


def test_check_passes_a_breaking_change_made_as_a_new_version(tmp_path: Path) -> None:
    release(tmp_path, events=[parcel_v1()])
    events = [parcel_v1(), parcel_v2_in_kilograms()]
    generate(tmp_path, events)

    assert check(tmp_path, events) == []


def test_check_fails_when_a_released_type_disappears(tmp_path: Path) -> None:
    release(tmp_path, events=[parcel_v1()])
    generate(tmp_path, [parcel_v2_in_kilograms()])

    problems = check(tmp_path, [parcel_v2_in_kilograms()])

    assert problems[0] == (
        "breaking: be.cityblocks.test.Parcel.v1 at /: released event type was removed (retire it by release)"
    )


def test_release_refuses_a_breaking_change_and_writes_nothing(tmp_path: Path) -> None:
    release(tmp_path, events=[parcel_v1()])
    snapshot = tmp_path / "schemas/released/test/Parcel.v1.json"
    before = snapshot.read_text(encoding="utf-8")

    problems, changed = release(tmp_path, events=[parcel_in_kilograms()])

    assert problems and changed == []
    assert snapshot.read_text(encoding="utf-8") == before


def test_release_retires_a_removed_type_only_when_named(tmp_path: Path) -> None:
    release(tmp_path, events=[parcel_v1()])

    refused, _ = release(tmp_path, events=[parcel_v2_in_kilograms()])
    problems, changed = release(
        tmp_path, events=[parcel_v2_in_kilograms()], retire=["be.cityblocks.test.Parcel.v1"]
    )

    assert refused
    assert problems == []
    assert "schemas/released/test/Parcel.v1.json (retired)" in changed
    assert (tmp_path / "schemas/released/test/Parcel.v2.json").read_text(encoding="utf-8") == render(
        event_schema(parcel_v2_in_kilograms())
    )


def test_cli_generate_check_and_release_on_a_fresh_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = ["--root", str(tmp_path)]

    assert main([*root, "check"]) == 1
    assert "missing: asyncapi.yaml" in capsys.readouterr().err
    assert main([*root, "generate"]) == 0
    assert main([*root, "release"]) == 0
    assert "released schemas/released/probe/ProbeRecorded.v1.json" in capsys.readouterr().out
    assert main([*root, "check"]) == 0

    (tmp_path / "asyncapi.yaml").write_text("asyncapi: 3.0.0\n", encoding="utf-8")
    assert main([*root, "check"]) == 1
    assert "out of date: asyncapi.yaml" in capsys.readouterr().err


def test_help_explains_the_three_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "contracts.tools", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    for command in ("generate", "check", "release"):
        assert f"  {command}  " in result.stdout
    assert "released snapshot" in result.stdout


def test_cli_reports_an_event_that_cannot_be_a_closed_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Loose(Event, service="test", topic="test.loose", key="loose_id"):
        loose_id: str
        anything: dict[str, object]

    monkeypatch.setattr(contracts.registry, "catalogue", lambda: {Loose.event_type: Loose})

    assert main(["--root", str(tmp_path), "generate"]) == 2
    assert "Loose.v1: open objects at /properties/anything" in capsys.readouterr().err
