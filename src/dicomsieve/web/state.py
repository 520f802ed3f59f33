"""What the web app's parts share: its configuration, its state, its error answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dicomsieve.index.store import Index
from dicomsieve.settings import Settings
from dicomsieve.web.jobs import Jobs
from dicomsieve.web.security import host_header
from dicomsieve.web.volumes import VolumeCache

__all__ = ["ApiError", "ServeConfig", "ServerState"]


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """What one ``dicomsieve serve`` launch needs.

    Attributes
    ----------
    db
        The index database.
    token
        This launch's access token (random; at least 16 characters).
    port
        The port the server listens on (for the Host check and the cookie name).
    host
        The address it listens on: the loopback address unless told otherwise.
    settings
        Scan limits and examine tolerances.
    cache_bytes
        Budget of the in-memory cache of loaded volumes and thumbnails.
    """

    db: Path
    token: str
    port: int
    host: str = "127.0.0.1"
    settings: Settings = field(default_factory=Settings)
    cache_bytes: int = 512 * 1024 * 1024

    @property
    def url(self) -> str:
        """The address to open, with the token."""
        return f"http://{host_header(self.host, self.port)}/?token={self.token}"


@dataclass(frozen=True, eq=False)
class ServerState:
    """What the routes of one app share: its configuration, jobs, cache and work folder."""

    config: ServeConfig
    jobs: Jobs
    cache: VolumeCache
    workdir: Path
    assets: dict[str, tuple[bytes, str]]

    def index(self) -> Index:
        """A new connection to the index, for one request or one job (close it)."""
        return Index(self.config.db)


class ApiError(Exception):
    """An error answer: HTTP status, a stable code, a message without patient data."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.message = message
