"""The index schema, in standard SQL, with numbered migrations.

The DDL avoids SQLite-only syntax so that a PostgreSQL backend can run it: the only
dialect difference, the type of an auto-numbered key, is the ``{id}`` placeholder.
Multi-valued DICOM values are stored as JSON text.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "FRAME_COLUMNS",
    "INSTANCE_COLUMNS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "id_type",
]

# (column, SQL type). JSON columns hold tuples. The order is the insert order.
_INSTANCE_COLUMNS_V1: Final[tuple[tuple[str, str], ...]] = (
    ("sop_instance_uid", "TEXT NOT NULL"),
    ("sop_class_uid", "TEXT"),
    ("transfer_syntax_uid", "TEXT"),
    ("series_number", "INTEGER"),
    ("series_description", "TEXT"),
    ("modality", "TEXT"),
    ("manufacturer", "TEXT"),
    ("manufacturer_model_name", "TEXT"),
    ("protocol_name", "TEXT"),
    ("sequence_name", "TEXT"),
    ("instance_number", "INTEGER"),
    ("acquisition_number", "INTEGER"),
    ("image_type", "TEXT"),
    ("content_time", "TEXT"),
    ("acquisition_time", "TEXT"),
    ("image_position", "TEXT"),
    ("image_orientation", "TEXT"),
    ("pixel_spacing", "TEXT"),
    ("slice_thickness", "DOUBLE PRECISION"),
    ("spacing_between_slices", "DOUBLE PRECISION"),
    ("gantry_detector_tilt", "DOUBLE PRECISION"),
    ("frame_of_reference_uid", "TEXT"),
    ("patient_position", "TEXT"),
    ("rows", "INTEGER"),
    ("columns", "INTEGER"),
    ("number_of_frames", "INTEGER"),
    ("samples_per_pixel", "INTEGER"),
    ("photometric_interpretation", "TEXT"),
    ("bits_allocated", "INTEGER"),
    ("bits_stored", "INTEGER"),
    ("high_bit", "INTEGER"),
    ("pixel_representation", "INTEGER"),
    ("rescale_slope", "DOUBLE PRECISION"),
    ("rescale_intercept", "DOUBLE PRECISION"),
    ("rescale_type", "TEXT"),
    ("window_center", "TEXT"),
    ("window_width", "TEXT"),
    ("echo_numbers", "TEXT"),
    ("echo_time", "DOUBLE PRECISION"),
    ("repetition_time", "DOUBLE PRECISION"),
    ("inversion_time", "DOUBLE PRECISION"),
    ("flip_angle", "DOUBLE PRECISION"),
    ("temporal_position_identifier", "INTEGER"),
    ("number_of_temporal_positions", "INTEGER"),
    ("trigger_time", "DOUBLE PRECISION"),
    ("diffusion_b_value", "DOUBLE PRECISION"),
    ("diffusion_gradient_orientation", "TEXT"),
    ("xray_tube_current", "DOUBLE PRECISION"),
    ("exposure", "DOUBLE PRECISION"),
    ("has_referenced_image_sequence", "INTEGER NOT NULL"),
    ("pixel_tag", "INTEGER"),
    ("pixel_offset", "BIGINT"),
    ("pixel_length", "BIGINT"),
    ("pixel_deflated", "INTEGER"),
)

# Added by migration 3: Siemens mosaic geometry from the CSA image header.
_INSTANCE_COLUMNS_V3: Final[tuple[tuple[str, str], ...]] = (
    ("mosaic_slices", "INTEGER"),
    ("slice_normal", "TEXT"),
)
# Added by migration 4: what vendors keep in private elements (GE image type, UIH VFRAME
# tiles) and the grid of every mosaic.
_INSTANCE_COLUMNS_V4: Final[tuple[tuple[str, str], ...]] = (
    ("private_image_type", "TEXT"),
    ("mosaic_grid", "TEXT"),
    ("mosaic_positions", "TEXT"),
)
INSTANCE_COLUMNS: Final = _INSTANCE_COLUMNS_V1 + _INSTANCE_COLUMNS_V3 + _INSTANCE_COLUMNS_V4

FRAME_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("frame_number", "INTEGER NOT NULL"),
    ("image_position", "TEXT"),
    ("image_orientation", "TEXT"),
    ("pixel_spacing", "TEXT"),
    ("slice_thickness", "DOUBLE PRECISION"),
    ("spacing_between_slices", "DOUBLE PRECISION"),
    ("rescale_slope", "DOUBLE PRECISION"),
    ("rescale_intercept", "DOUBLE PRECISION"),
    ("rescale_type", "TEXT"),
    ("window_center", "TEXT"),
    ("window_width", "TEXT"),
    ("dimension_index_values", "TEXT"),
    ("temporal_position_index", "INTEGER"),
    ("stack_id", "TEXT"),
    ("in_stack_position", "INTEGER"),
    ("frame_acquisition_number", "INTEGER"),
    ("frame_acquisition_datetime", "TEXT"),
    ("echo_time", "DOUBLE PRECISION"),
    ("trigger_time", "DOUBLE PRECISION"),
    ("diffusion_b_value", "DOUBLE PRECISION"),
    ("diffusion_gradient_orientation", "TEXT"),
    ("frame_type", "TEXT"),
)


def _columns(columns: tuple[tuple[str, str], ...]) -> str:
    return ",\n    ".join(f"{name} {sql_type}" for name, sql_type in columns)


_V1: Final = f"""
CREATE TABLE scan_runs (
    id {{id}},
    started_at TEXT NOT NULL,
    finished_at TEXT,
    roots TEXT NOT NULL,
    files INTEGER, indexed INTEGER, unchanged INTEGER, not_dicom INTEGER,
    errors INTEGER, ignored INTEGER, missing INTEGER
);
CREATE TABLE patients (
    id {{id}},
    patient_key TEXT NOT NULL UNIQUE,
    patient_id TEXT,
    patient_name TEXT,
    birth_date TEXT
);
CREATE TABLE studies (
    id {{id}},
    study_instance_uid TEXT NOT NULL UNIQUE,
    patient_ref INTEGER NOT NULL REFERENCES patients(id),
    study_date TEXT,
    study_time TEXT,
    study_description TEXT,
    accession_number TEXT
);
CREATE TABLE series (
    id {{id}},
    series_instance_uid TEXT NOT NULL UNIQUE,
    study_ref INTEGER NOT NULL REFERENCES studies(id),
    series_number INTEGER,
    series_description TEXT,
    modality TEXT
);
CREATE TABLE files (
    id {{id}},
    path TEXT NOT NULL UNIQUE,
    size BIGINT,
    mtime_ns BIGINT,
    inode BIGINT,
    device BIGINT,
    state TEXT NOT NULL,
    code TEXT,
    message TEXT,
    last_run INTEGER REFERENCES scan_runs(id)
);
CREATE INDEX files_state ON files(state);
CREATE TABLE file_flags (
    file_ref INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    PRIMARY KEY (file_ref, code)
);
CREATE TABLE instances (
    id {{id}},
    file_ref INTEGER NOT NULL UNIQUE REFERENCES files(id) ON DELETE CASCADE,
    series_ref INTEGER NOT NULL REFERENCES series(id),
    duplicate_of INTEGER REFERENCES instances(id) ON DELETE SET NULL,
    {_columns(_INSTANCE_COLUMNS_V1)}
);
CREATE INDEX instances_sop ON instances(sop_instance_uid);
CREATE INDEX instances_series ON instances(series_ref);
CREATE TABLE frames (
    instance_ref INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    {_columns(FRAME_COLUMNS)},
    PRIMARY KEY (instance_ref, frame_number)
);
"""

# Version 2: examine results, so that later commands and the web app reuse them. A
# series' row in ``examinations`` carries the fingerprint of the instances and settings
# it was computed from; a stale fingerprint means "examine again".
_V2: Final = """
CREATE TABLE examinations (
    series_ref INTEGER NOT NULL PRIMARY KEY REFERENCES series(id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,
    examined_at TEXT NOT NULL,
    warnings TEXT NOT NULL,
    left_out TEXT NOT NULL
);
CREATE TABLE loadables (
    id {id},
    series_ref INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    selected SMALLINT NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    reason TEXT NOT NULL,
    shape TEXT NOT NULL,
    spacing TEXT,
    affine_lps TEXT,
    warnings TEXT NOT NULL,
    mosaic_slices INTEGER,
    UNIQUE (series_ref, ordinal)
);
CREATE TABLE loadable_slices (
    loadable_ref INTEGER NOT NULL REFERENCES loadables(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    instance_ref INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    frame_number INTEGER,
    position TEXT,
    PRIMARY KEY (loadable_ref, ordinal)
);
CREATE INDEX loadable_slices_instance ON loadable_slices(instance_ref);
"""

_V3: Final = ";\n".join(
    f"ALTER TABLE instances ADD COLUMN {name} {sql_type}" for name, sql_type in _INSTANCE_COLUMNS_V3
)

# Version 4 also forgets the modification time of the files whose records lack what the
# readers now find (GE images, UIH VFRAME objects, Siemens mosaics without their CSA
# values), so that the next scan reads them again instead of skipping them as unchanged.
_V4: Final = ";\n".join(
    [
        *(
            f"ALTER TABLE instances ADD COLUMN {name} {sql_type}"
            for name, sql_type in _INSTANCE_COLUMNS_V4
        ),
        "UPDATE files SET mtime_ns = NULL WHERE id IN (SELECT file_ref FROM instances "
        "WHERE UPPER(manufacturer) LIKE 'GE%' OR image_type LIKE '%VFRAME%' "
        "OR (image_type LIKE '%MOSAIC%' AND mosaic_slices IS NULL))",
    ]
)

MIGRATIONS: Final[tuple[str, ...]] = (_V1, _V2, _V3, _V4)
"""Migration ``n`` (1-based) takes the schema from version ``n - 1`` to ``n``."""

SCHEMA_VERSION: Final = len(MIGRATIONS)


def id_type(dialect: str) -> str:
    """The SQL for an auto-numbered primary key in ``dialect`` (``sqlite`` or ``postgresql``)."""
    if dialect == "postgresql":
        return "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    return "INTEGER PRIMARY KEY"
