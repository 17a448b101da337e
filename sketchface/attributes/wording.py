"""Attributes → plain English: :func:`describe`, worded so that :func:`~.language.parse_description` reads it back."""

from __future__ import annotations

from collections.abc import Mapping

from .names import ATTRIBUTES, HAIR_COLOURS, Attributes

# Absent-attribute wording (each parses back to the attribute being absent).
_ABSENT_PHRASES: dict[str, str] = {
    "5_o_Clock_Shadow": "no stubble",
    "Arched_Eyebrows": "no arched eyebrows",
    "Bags_Under_Eyes": "no bags under the eyes",
    "Bald": "not bald",
    "Bangs": "no bangs",
    "Big_Lips": "no big lips",
    "Big_Nose": "no big nose",
    "Blurry": "not blurry",
    "Bushy_Eyebrows": "no bushy eyebrows",
    "Double_Chin": "no double chin",
    "Goatee": "no goatee",
    "Heavy_Makeup": "no heavy makeup",
    "High_Cheekbones": "no high cheekbones",
    "Mustache": "no mustache",
    "Narrow_Eyes": "no narrow eyes",
    "Oval_Face": "no oval face",
    "Pale_Skin": "not pale",
    "Pointy_Nose": "no pointy nose",
    "Receding_Hairline": "no receding hairline",
    "Rosy_Cheeks": "no rosy cheeks",
    "Sideburns": "no sideburns",
    "Straight_Hair": "no straight hair",
    "Wavy_Hair": "no wavy hair",
    **{c: f"no {c.split('_')[0].lower()} hair" for c in HAIR_COLOURS},
}
_ACCESSORY_WORDS: dict[str, str] = {
    "Eyeglasses": "glasses",
    "Wearing_Hat": "a hat",
    "Wearing_Earrings": "earrings",
    "Wearing_Necklace": "a necklace",
    "Wearing_Necktie": "a necktie",
    "Wearing_Lipstick": "lipstick",
}


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def describe(attributes: Mapping[str, bool | None]) -> str:
    """A short readable sentence for a description, e.g. ``"A young man with gray hair, pale skin and a
    mustache; not wearing glasses."`` Unknown attributes are left out; ``"No attributes specified."`` when
    nothing is known. The wording is chosen so that :func:`parse_description` reads it back to the same
    known attributes (plus the values the exclusivity rules imply).
    """
    a = attributes if isinstance(attributes, Attributes) else Attributes(attributes)
    if a.is_empty:
        return "No attributes specified."
    v = a.__getitem__

    # Subject: "A blurry photo of an attractive chubby bald smiling young man".
    adjectives = []
    for name, yes, no in (
        ("Attractive", "attractive", "unattractive"),
        ("Chubby", "chubby", "slim"),
        ("Bald", "bald", None),
        ("Smiling", "smiling", "serious"),
        ("Young", "young", "older"),
    ):
        if v(name) is True:
            adjectives.append(yes)
        elif v(name) is False and no:
            adjectives.append(no)
    noun = {True: "man", False: "woman", None: "person"}[v("Male")]
    words = [*adjectives, noun]
    subject = ("an " if words[0][0] in "aeiou" else "a ") + " ".join(words)
    if v("Blurry"):
        subject = "a blurry photo of " + subject

    # Present features, grouped by the noun they describe.
    features: list[str] = []
    colours = [c.split("_")[0].lower() for c in HAIR_COLOURS if v(c)]
    texture = [t for t, n in (("straight", "Straight_Hair"), ("wavy", "Wavy_Hair")) if v(n)]
    if colours or texture:
        features.append(" ".join(texture + [" and ".join(colours)]).strip() + " hair")
    for name, phrase in (("Bangs", "bangs"), ("Receding_Hairline", "a receding hairline")):
        if v(name):
            features.append(phrase)
    brows = [w for w, n in (("bushy", "Bushy_Eyebrows"), ("arched", "Arched_Eyebrows")) if v(n)]
    if brows:
        features.append(" ".join(brows) + " eyebrows")
    for name, phrase in (("Narrow_Eyes", "narrow eyes"), ("Bags_Under_Eyes", "bags under the eyes")):
        if v(name):
            features.append(phrase)
    nose = [w for w, n in (("big", "Big_Nose"), ("pointy", "Pointy_Nose")) if v(n)]
    if nose:
        features.append("a " + " ".join(nose) + " nose")
    for name, phrase in (
        ("Big_Lips", "big lips"),
        ("High_Cheekbones", "high cheekbones"),
        ("Oval_Face", "an oval face"),
        ("Double_Chin", "a double chin"),
        ("Rosy_Cheeks", "rosy cheeks"),
        ("Pale_Skin", "pale skin"),
    ):
        if v(name):
            features.append(phrase)
    if v("No_Beard") is False:
        features.append("a beard")
    for name, phrase in (
        ("Mustache", "a mustache"),
        ("Goatee", "a goatee"),
        ("Sideburns", "sideburns"),
        ("5_o_Clock_Shadow", "stubble"),
        ("Heavy_Makeup", "heavy makeup"),
    ):
        if v(name):
            features.append(phrase)
    features += [phrase for name, phrase in _ACCESSORY_WORDS.items() if v(name)]
    if v("Mouth_Slightly_Open") is not None:
        features.append("the mouth slightly open" if v("Mouth_Slightly_Open") else "the mouth closed")

    # Absent features: each with its own negation (a comma ends one).
    absent: list[str] = []
    for name in ATTRIBUTES:
        if v(name) is not False or name not in _ABSENT_PHRASES:
            continue
        if name in HAIR_COLOURS and colours:
            continue  # implied by the colour that is present
        if (name, texture) in (("Straight_Hair", ["wavy"]), ("Wavy_Hair", ["straight"])):
            continue
        absent.append(_ABSENT_PHRASES[name])
    if v("No_Beard") is True:
        absent.append("no beard")
    not_worn = [phrase for name, phrase in _ACCESSORY_WORDS.items() if v(name) is False]
    if not_worn:
        absent.append("not wearing " + " or ".join(not_worn))

    sentence = subject + (" with " + _join(features) if features else "")
    if absent:
        sentence += "; " + ", ".join(absent)
    return sentence[0].upper() + sentence[1:] + "."
