"""The package version (kept equal to pyproject.toml by tests/test_cli.py)."""

__version__ = "0.1.0"
