"""Examine through the index and the command line: stored results, reuse, JSON output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import dicomsieve
from dicomsieve import Index, LoadableKind, Settings
from dicomsieve.cli.main import cli
from dicomsieve.loadables import examine as examine_module
from dicomsieve.synthetic import make_demo

SETTINGS = Settings(jobs=1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[Path]]]:
    root = tmp_path_factory.mktemp("demo") / "dicom"
    return root, make_demo(root)


def _loadable_files(examination: dicomsieve.Examination) -> set[str]:
    files = {f for lo in examination.loadables() for f in lo.files}
    return files | {f for s in examination.series for f in s.left_out}


def test_every_demo_file_is_in_a_loadable(demo: tuple[Path, dict[str, list[Path]]]) -> None:
    root, cases = demo
    examination = dicomsieve.examine(root, SETTINGS)
    expected = {str(p) for paths in cases.values() for p in paths}
    assert _loadable_files(examination) == expected


def test_demo_localizer_is_split_from_the_oblique_stack(
    demo: tuple[Path, dict[str, list[Path]]],
) -> None:
    root, cases = demo
    stack_files = {str(p) for p in cases["ct_oblique_with_localizer"]}
    examination = dicomsieve.examine(root, SETTINGS)
    (series,) = [s for s in examination.series if set(s.loadables[0].files) <= stack_files]
    kinds = sorted((str(lo.kind), len(lo.slices), lo.selected) for lo in series.loadables)
    assert kinds == [("localizer", 1, False), ("volume", len(stack_files) - 1, True)]


def test_stored_result_round_trips_and_is_reused(
    tmp_path: Path, demo: tuple[Path, dict[str, list[Path]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = demo
    with Index(tmp_path / "index.sqlite") as index:
        dicomsieve.scan([str(root)], index, SETTINGS)
        first = dicomsieve.examine(index, SETTINGS)
        for series in first.series:
            assert index.stored_examination(series.series_instance_uid) == series

        def fail(*args: object, **kwargs: object) -> None:
            raise AssertionError("examined again although nothing changed")

        monkeypatch.setattr("dicomsieve.api.examine_series", fail)
        again = dicomsieve.examine(index, SETTINGS)
    assert again == first


def test_changed_tolerance_or_file_recomputes(tmp_path: Path) -> None:
    root = tmp_path / "dicom"
    cases = make_demo(root)
    calls: list[str] = []
    real = examine_module.examine_series

    def counting(instances: object, settings: Settings) -> object:
        calls.append("x")
        return real(instances, settings)  # type: ignore[arg-type]

    with Index(tmp_path / "index.sqlite") as index:
        dicomsieve.scan([str(root)], index, SETTINGS)
        series_count = len(index.series_uids())
        mp = pytest.MonkeyPatch()
        mp.setattr("dicomsieve.api.examine_series", counting)
        try:
            dicomsieve.examine(index, SETTINGS)
            assert len(calls) == series_count
            dicomsieve.examine(index, SETTINGS.with_changes(tilt_tolerance_deg=2.0))
            assert len(calls) == 2 * series_count
            # A changed file (new mtime and size) changes only its own series.
            path = cases["mr_3d"][0]
            path.write_bytes(path.read_bytes() + b"\0\0")
            os.utime(path, ns=(1, 1))
            dicomsieve.scan([str(root)], index, SETTINGS)
            dicomsieve.examine(index, SETTINGS.with_changes(tilt_tolerance_deg=2.0))
            assert len(calls) == 2 * series_count + 1
        finally:
            mp.undo()


def test_cli_examine_json(demo: tuple[Path, dict[str, list[Path]]]) -> None:
    root, cases = demo
    result = CliRunner().invoke(cli, ["examine", str(root), "--jobs", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    series = data["series"]
    assert {len(s["loadables"]) > 0 for s in series} == {True}
    for s in series:
        assert set(s) >= {"series_instance_uid", "series_description", "modality", "loadables"}
        for lo in s["loadables"]:
            assert set(lo) >= {
                "name",
                "kind",
                "selected",
                "confidence",
                "reason",
                "files",
                "shape",
                "spacing",
                "affine_lps",
                "warnings",
            }
            assert lo["kind"] in {str(k) for k in LoadableKind}
            assert 0 < lo["confidence"] <= 1
            assert lo["reason"]
            if lo["affine_lps"] is not None:
                assert lo["affine_lps"][3] == [0, 0, 0, 1]
    sequences = [lo for s in series for lo in s["loadables"] if lo["kind"] == "sequence"]
    assert [len(lo["shape"]) for lo in sequences] == [4]
    files = {f for s in series for lo in s["loadables"] for f in lo["files"]}
    assert files == {str(p) for paths in cases.values() for p in paths}


def test_cli_examine_db_table(tmp_path: Path, demo: tuple[Path, dict[str, list[Path]]]) -> None:
    root, _ = demo
    db = tmp_path / "index.sqlite"
    runner = CliRunner()
    assert runner.invoke(cli, ["scan", str(root), "--db", str(db), "--jobs", "1"]).exit_code == 0
    result = runner.invoke(cli, ["examine", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "CT OBLIQUE WITH LOCALIZER" in result.output
    assert "localizer" in result.output
    one = dicomsieve.examine(root, SETTINGS).series[0].series_instance_uid
    result = runner.invoke(cli, ["examine", "--db", str(db), "--series", one, "--json"])
    assert [s["series_instance_uid"] for s in json.loads(result.stdout)["series"]] == [one]
