"""The 40 CelebA attributes, tri-state descriptions, presets, and plain English ↔ attributes.

A witness rarely remembers everything, so a description is *tri-state*: each attribute is present
(``True``), absent (``False``) or unknown (``None``). This package is the public entry point; import
from ``sketchface.attributes``. Its modules, one job each:

* :mod:`.names`: the 40 names in official order, groups, :class:`Attributes` (the tri-state type);
* :mod:`.language`: plain English → attributes (:func:`parse_description`, :func:`parse_instruction`);
* :mod:`.wording`: attributes → plain English (:func:`describe`);
* :mod:`.presets`: the criminal sketch test's three described suspects (:data:`CRIMINALS`).
"""

from __future__ import annotations

from .language import (
    MAX_DESCRIPTION_CHARS,
    MAX_INSTRUCTION_CHARS,
    YOUNG_BELOW_AGE,
    EditResult,
    Match,
    ParseResult,
    parse_description,
    parse_instruction,
)
from .names import (
    ATTRIBUTES,
    GROUPS,
    HAIR_COLOURS,
    INDEX,
    NUM_ATTRIBUTES,
    Attributes,
    UnknownAttributeError,
    check_name,
    pretty,
)
from .presets import CRIMINALS, PRESETS, Preset
from .wording import describe

__all__ = [
    "ATTRIBUTES",
    "CRIMINALS",
    "GROUPS",
    "HAIR_COLOURS",
    "INDEX",
    "MAX_DESCRIPTION_CHARS",
    "MAX_INSTRUCTION_CHARS",
    "NUM_ATTRIBUTES",
    "PRESETS",
    "YOUNG_BELOW_AGE",
    "Attributes",
    "EditResult",
    "Match",
    "ParseResult",
    "Preset",
    "UnknownAttributeError",
    "check_name",
    "describe",
    "parse_description",
    "parse_instruction",
    "pretty",
]
