"""Named descriptions: the three suspects of paper 1's "criminal sketch test"."""

from __future__ import annotations

from dataclasses import dataclass

from .language import parse_description
from .names import Attributes


@dataclass(frozen=True)
class Preset:
    """A named description, as text and as attributes."""

    name: str
    text: str
    attributes: Attributes


def _preset(name: str, text: str) -> Preset:
    return Preset(name, text, parse_description(text).attributes)


#: The three suspects of paper 1's "criminal sketch test", as text and as parsed attributes.
CRIMINALS: tuple[Preset, ...] = (
    _preset("Criminal 1", "Man with gray hair, pale skin, and a mustache"),
    _preset("Criminal 2", "Young woman with black hair, heavy makeup, wearing a hat"),
    _preset("Criminal 3", "Chubby young man with glasses and bushy eyebrows"),
)
#: Presets by name (the criminal sketch test).
PRESETS: dict[str, Preset] = {p.name: p for p in CRIMINALS}
