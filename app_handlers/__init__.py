"""The web app's event functions (``app.py`` builds the page and wires them): :class:`Handlers`, one mixin per
tab (describe, sketch, stylize, compare, models) over the helpers in :mod:`.common`. Like ``app.py``, this
package is UI only: every model and all tensor work live in ``sketchface``."""

from __future__ import annotations

from .handlers import Handlers

__all__ = ["Handlers"]
