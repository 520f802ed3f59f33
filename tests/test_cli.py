"""The command line: every command has help; scan and ls print what they promise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dicom_bytes import PHI_STRINGS, ct_dataset, encode
from dicomsieve.cli.main import cli, main

COMMANDS = cli.list_commands(click.Context(cli))


def test_commands_are_the_documented_ones() -> None:
    assert COMMANDS == ["convert", "examine", "ls", "scan", "serve"]
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for name in COMMANDS:
        assert f"dicomsieve {name}" in readme


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert isinstance(command, click.Command)
    assert command.help
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


_CONVERTER = ("numpy", "rich", "dicomsieve.api")
_READERS = ("dicomsieve.index.store", "dicomsieve.scan.scanner", "dicomsieve.model")


@pytest.mark.parametrize(
    ("name", "heavy"),
    [
        ("scan", _CONVERTER + _READERS),
        ("convert", _CONVERTER + _READERS),
        ("examine", _CONVERTER + _READERS),
        ("ls", _CONVERTER),
    ],
)
def test_commands_import_light(name: str, heavy: tuple[str, ...]) -> None:
    """A command imports what it needs when it runs. One that reads files starts the
    readers' fork server first, before it imports the readers, the index, numpy or the
    converter, so that the server's start-up and its own imports overlap on two cores
    (dicomsieve/scan/server.py); rich is imported only to draw."""
    code = (
        f"import sys, dicomsieve.cli.main, dicomsieve.cli.{name}; "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _tree(root: Path) -> None:
    (root / "a").mkdir(parents=True)
    for i in range(3):
        (root / "a" / f"{i}").write_bytes(encode(ct_dataset(i)))
    (root / "notes.txt").write_text("not DICOM")


def test_scan_json_summary_adds_up(tmp_path: Path) -> None:
    _tree(tmp_path / "data")
    db = tmp_path / "index.sqlite"
    result = CliRunner().invoke(
        cli, ["scan", str(tmp_path / "data"), "--db", str(db), "--jobs", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert list(summary)[:7] == [
        "files",
        "indexed",
        "unchanged",
        "not_dicom",
        "errors",
        "ignored",
        "by_code",
    ]
    assert summary["files"] == 4
    assert summary["files"] == sum(
        summary[k] for k in ("indexed", "unchanged", "not_dicom", "errors", "ignored")
    )
    assert (summary["indexed"], summary["not_dicom"]) == (3, 1)


def test_ls_json_lists_patients_studies_series(tmp_path: Path) -> None:
    _tree(tmp_path / "data")
    db = tmp_path / "index.sqlite"
    runner = CliRunner()
    runner.invoke(cli, ["scan", str(tmp_path / "data"), "--db", str(db), "--jobs", "1"])
    result = runner.invoke(cli, ["ls", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    (patient,) = listing["patients"]
    (study,) = patient["studies"]
    (series,) = study["series"]
    assert series["instances"] == 3
    assert series["modality"] == "CT"
    assert listing["files"] == {"indexed": 3, "not_dicom": 1}


def test_db_from_environment(tmp_path: Path) -> None:
    _tree(tmp_path / "data")
    db = tmp_path / "env.sqlite"
    result = CliRunner().invoke(
        cli, ["scan", str(tmp_path / "data"), "--jobs", "1"], env={"DICOMSIEVE_DB": str(db)}
    )
    assert result.exit_code == 0, result.output
    assert db.exists()


def test_console_script_logs_no_patient_data(tmp_path: Path) -> None:
    """The installed command at the most verbose level: no sentinel PHI on stderr."""
    _tree(tmp_path / "data")
    (tmp_path / "data" / "broken").write_bytes(encode(ct_dataset(9))[:500])
    command = [
        sys.executable,
        "-c",
        "from dicomsieve.cli.main import console_main; console_main()",
        "-vv",
        "scan",
        str(tmp_path / "data"),
        "--db",
        str(tmp_path / "i.sqlite"),
        "--json",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout)["errors"] == 1
    for secret in PHI_STRINGS:
        assert secret not in result.stderr
        assert secret not in result.stdout


def test_unusable_database_exits_3(tmp_path: Path) -> None:
    (tmp_path / "not_a_db").write_text("this is not sqlite" * 100)
    command = [
        sys.executable,
        "-c",
        "from dicomsieve.cli.main import console_main; console_main()",
        "ls",
        "--db",
        str(tmp_path / "not_a_db"),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 3
    assert "cannot open the index" in result.stderr


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("4", "4")])
def test_entry_point_keeps_openblas_to_one_thread(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    given: str | None,
    expected: str,
) -> None:
    """The command's numpy does not start OpenBLAS threads (they spin on the cores the
    readers and deflate use), unless the user asked for them."""
    if given is None:
        monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", given)
    monkeypatch.setattr(sys, "argv", ["dicomsieve", "--version"])
    main()
    assert "dicomsieve" in capsys.readouterr().out
    assert os.environ["OPENBLAS_NUM_THREADS"] == expected


@pytest.mark.parametrize(
    ("args", "code", "stream", "text"),
    [
        (["--version"], 0, "stdout", "dicomsieve, version"),
        (["scan"], 2, "stderr", "Missing argument"),
        (["no-such-command"], 2, "stderr", "No such command"),
    ],
)
def test_console_script_exit_status_and_output(
    args: list[str], code: int, stream: str, text: str
) -> None:
    """The console script exits without the interpreter's teardown: its status and its
    output must still be those of main()."""
    command = [sys.executable, "-c", "from dicomsieve.cli.main import console_main; console_main()"]
    result = subprocess.run([*command, *args], capture_output=True, text=True)
    assert result.returncode == code
    assert text in getattr(result, stream)
