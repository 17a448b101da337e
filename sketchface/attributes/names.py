"""The 40 CelebA attribute names, their groups and the tri-state :class:`Attributes` type.

A witness rarely remembers everything, so a description is *tri-state*: each attribute is present
(``True``), absent (``False``) or unknown (``None``). :class:`Attributes` holds one description and
converts it to the ±1 CelebA vectors (0 for unknown) and to a model input (values + known-mask).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping

import numpy as np

#: The 40 CelebA attributes in the official order of ``list_attr_celeba.txt``.
ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)
NUM_ATTRIBUTES = len(ATTRIBUTES)
#: Attribute name → index in :data:`ATTRIBUTES`.
INDEX: dict[str, int] = {name: i for i, name in enumerate(ATTRIBUTES)}

#: Display groups (each attribute appears in exactly one group, in a witness-friendly order).
GROUPS: dict[str, tuple[str, ...]] = {
    "Hair": (
        "Black_Hair",
        "Blond_Hair",
        "Brown_Hair",
        "Gray_Hair",
        "Bald",
        "Bangs",
        "Receding_Hairline",
        "Straight_Hair",
        "Wavy_Hair",
    ),
    "Face shape": ("Chubby", "Double_Chin", "Oval_Face", "High_Cheekbones", "Pale_Skin", "Rosy_Cheeks"),
    "Eyes and brows": ("Arched_Eyebrows", "Bushy_Eyebrows", "Narrow_Eyes", "Bags_Under_Eyes"),
    "Nose and mouth": ("Big_Nose", "Pointy_Nose", "Big_Lips", "Mouth_Slightly_Open"),
    "Facial hair": ("No_Beard", "Mustache", "Goatee", "Sideburns", "5_o_Clock_Shadow"),
    "Accessories and make-up": (
        "Eyeglasses",
        "Wearing_Hat",
        "Wearing_Earrings",
        "Wearing_Necklace",
        "Wearing_Necktie",
        "Wearing_Lipstick",
        "Heavy_Makeup",
    ),
    "Expression": ("Smiling",),
    "Demographics": ("Male", "Young", "Attractive"),
    "Image quality": ("Blurry",),
}

#: Hair colours CelebA labels; stating one makes the others absent (see :func:`parse_description`).
HAIR_COLOURS: tuple[str, ...] = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")


def pretty(name: str) -> str:
    """Human label for an attribute: ``'5_o_Clock_Shadow'`` → ``'5 o'clock shadow'``."""
    if name == "5_o_Clock_Shadow":
        return "5 o'clock shadow"
    return name.replace("_", " ").lower()


class UnknownAttributeError(KeyError):
    """An attribute name that is not one of the 40 CelebA attributes."""

    def __init__(self, name: object):
        close = difflib.get_close_matches(str(name), ATTRIBUTES, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        self.name = name
        super().__init__(f"Unknown attribute {name!r}: expected one of the 40 CelebA attribute names.{hint}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


def check_name(name: str) -> str:
    """Return ``name`` if it is a CelebA attribute; raise :class:`UnknownAttributeError` otherwise."""
    if name not in INDEX:
        raise UnknownAttributeError(name)
    return name


class Attributes(Mapping[str, "bool | None"]):
    """A tri-state description: every CelebA attribute is present, absent or unknown.

    Behaves as a read-only mapping over all 40 names (value ``True``, ``False`` or ``None``).
    Build one from keywords or a mapping (``Attributes(Male=True, Eyeglasses=False)``), from a ±1 /
    0-1 vector (:meth:`from_vector`), or from text with :func:`parse_description`.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, bool | None] | None = None, **kwargs: bool | None):
        self._values: list[bool | None] = [None] * NUM_ATTRIBUTES
        for name, value in {**(values or {}), **kwargs}.items():
            self._values[INDEX[check_name(name)]] = _as_tristate(name, value)

    # Mapping protocol --------------------------------------------------------------------------
    def __getitem__(self, name: str) -> bool | None:
        return self._values[INDEX[check_name(name)]]

    def __iter__(self) -> Iterator[str]:
        return iter(ATTRIBUTES)

    def __len__(self) -> int:
        return NUM_ATTRIBUTES

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Attributes):
            return self._values == other._values
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._values))

    def __repr__(self) -> str:
        known = ", ".join(f"{n}={v}" for n, v in self.known.items())
        return f"Attributes({known})"

    # Views --------------------------------------------------------------------------------------
    @property
    def known(self) -> dict[str, bool]:
        """The attributes stated present or absent, in official order."""
        return {n: v for n, v in zip(ATTRIBUTES, self._values) if v is not None}

    @property
    def present(self) -> list[str]:
        return [n for n, v in zip(ATTRIBUTES, self._values) if v is True]

    @property
    def absent(self) -> list[str]:
        return [n for n, v in zip(ATTRIBUTES, self._values) if v is False]

    @property
    def is_empty(self) -> bool:
        """True when nothing is known."""
        return all(v is None for v in self._values)

    def replace(self, **changes: bool | None) -> Attributes:
        """A copy with some attributes changed (``None`` makes one unknown)."""
        values = dict(zip(ATTRIBUTES, self._values))
        for name, value in changes.items():
            values[check_name(name)] = _as_tristate(name, value)
        return Attributes(values)

    def merge(self, other: Mapping[str, bool | None]) -> Attributes:
        """A copy where every attribute known in ``other`` overrides this one."""
        values = dict(zip(ATTRIBUTES, self._values))
        values.update({n: v for n, v in other.items() if v is not None})
        return Attributes(values)

    # Conversions ---------------------------------------------------------------------------------
    @classmethod
    def from_vector(cls, vector: Iterable[float], *, unknown_zero: bool = True) -> Attributes:
        """Build from a length-40 vector in official order.

        Accepts the CelebA ±1 convention (``1`` present, ``-1`` absent, ``0`` unknown when
        ``unknown_zero``) or booleans. Raises ``ValueError`` naming the problem otherwise.
        """
        arr = np.asarray(list(vector) if not isinstance(vector, np.ndarray) else vector)
        if arr.ndim != 1 or arr.shape[0] != NUM_ATTRIBUTES:
            raise ValueError(
                f"An attribute vector must have {NUM_ATTRIBUTES} values in CelebA order; got shape {arr.shape}."
            )
        if arr.dtype == bool:
            return cls(dict(zip(ATTRIBUTES, (bool(v) for v in arr))))
        values: dict[str, bool | None] = {}
        for name, v in zip(ATTRIBUTES, arr.astype(float)):
            if v == 1:
                values[name] = True
            elif v == -1:
                values[name] = False
            elif v == 0 and unknown_zero:
                values[name] = None
            else:
                raise ValueError(f"Attribute {name} has value {v:g}; expected 1 (present), -1 (absent) or 0 (unknown).")
        return cls(values)

    def to_vector(self) -> np.ndarray:
        """The ±1 CelebA vector, 0 where unknown: int8, shape (40,)."""
        return np.array([0 if v is None else (1 if v else -1) for v in self._values], dtype=np.int8)

    def to_model_input(self) -> tuple[np.ndarray, np.ndarray]:
        """``(values, mask)``, float32 each of shape (40,): values in {0, 1} (0 where unknown), mask 1 where known."""
        values = np.array([1.0 if v else 0.0 for v in self._values], dtype=np.float32)
        mask = np.array([0.0 if v is None else 1.0 for v in self._values], dtype=np.float32)
        return values, mask


def _as_tristate(name: str, value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, np.integer)) and value in (1, -1, 0):
        return None if value == 0 else value == 1
    if isinstance(value, (np.bool_,)):
        return bool(value)
    raise ValueError(f"Attribute {name} must be True, False or None (unknown); got {value!r}.")
