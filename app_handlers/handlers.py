"""The app's event functions, one mixin per tab, and the state they share."""

from __future__ import annotations

import os

from sketchface.registry import Registry, split_sources

from .common import results_sets
from .compare import CompareHandlers
from .describe import DescribeHandlers
from .models import ModelsHandlers
from .sketch import SketchHandlers
from .stylize import StylizeHandlers


class Handlers(DescribeHandlers, SketchHandlers, StylizeHandlers, CompareHandlers, ModelsHandlers):
    """Every event's function; holds the registry (loaded models) and the lazily built InstructPix2Pix backend."""

    def __init__(self, registry: Registry, results: str | list[str] | None = None):
        self.registry = registry
        given = split_sources(results) or split_sources(os.environ.get("SKETCHFACE_RESULTS"))
        #: The only files the Compare tab's metrics can show, by name; nothing a browser sends is used as a path.
        self.results = results_sets(given)
        self._results_given = len(results_sets(given, shipped=None))  # listed first
        self._ip2p = None
        self._ip2p_checked: tuple[float, str, str] | None = None  # (when, state, why): see ip2p_status
