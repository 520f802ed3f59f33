"""``dicomsieve ls``: patients, studies and series in the index."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from dicomsieve.cli.options import db_option, json_option, open_index
from dicomsieve.index.store import SeriesRow

__all__ = ["ls_command"]


def _nested(rows: list[SeriesRow]) -> list[dict[str, object]]:
    """Patients > studies > series, in the order of ``rows``."""
    patients: dict[tuple[str | None, str | None], dict[str, object]] = {}
    studies: dict[str, dict[str, object]] = {}
    for row in rows:
        patient = patients.setdefault(
            (row.patient_id, row.patient_name),
            {"patient_id": row.patient_id, "patient_name": row.patient_name, "studies": []},
        )
        study = studies.get(row.study_instance_uid)
        if study is None:
            study = {
                "study_instance_uid": row.study_instance_uid,
                "study_date": row.study_date,
                "study_description": row.study_description,
                "series": [],
            }
            studies[row.study_instance_uid] = study
            patient["studies"].append(study)  # type: ignore[attr-defined]
        study["series"].append(  # type: ignore[attr-defined]
            {
                "series_instance_uid": row.series_instance_uid,
                "series_number": row.series_number,
                "series_description": row.series_description,
                "modality": row.modality,
                "instances": row.instances,
                "frames": row.frames,
                "duplicates": row.duplicates,
            }
        )
    return list(patients.values())


@click.command("ls")
@db_option
@json_option
def ls_command(db: Path | None, as_json: bool) -> None:
    """List the patients, studies and series in the index, with counts."""
    with open_index(db) as index:
        rows = index.series_overview()
        states = index.state_counts()
    if as_json:
        sys.stdout.write(json.dumps({"patients": _nested(rows), "files": states}) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} series")
    for column in ("patient", "study date", "study", "#", "series", "modality", "instances"):
        table.add_column(column, justify="right" if column in ("#", "instances") else "left")
    for row in rows:
        table.add_row(
            row.patient_name or row.patient_id or "",
            row.study_date or "",
            row.study_description or "",
            "" if row.series_number is None else str(row.series_number),
            row.series_description or "",
            row.modality or "",
            f"{row.instances}" + (f" ({row.frames} frames)" if row.frames != row.instances else ""),
        )
    Console().print(table)
    Console().print("files: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
