"""The local web app of ``dicomsieve serve``: browse, view, check localizers, convert.

>>> from dicomsieve.web import ServeConfig, create_app
>>> app = create_app(ServeConfig(db=Path("index.sqlite"), token="...", port=8765))  # doctest: +SKIP

Layers: :mod:`~dicomsieve.web.security` (Host check, token, headers) in front of
:mod:`~dicomsieve.web.routes` (the API over the library), with background
:mod:`~dicomsieve.web.jobs` and a bounded cache of loaded volumes
(:mod:`~dicomsieve.web.volumes`). The page is ``static/``: plain HTML, CSS and one
script, written by hand.
"""

from __future__ import annotations

from dicomsieve.web.app import create_app
from dicomsieve.web.state import ServeConfig

__all__ = ["ServeConfig", "create_app"]
