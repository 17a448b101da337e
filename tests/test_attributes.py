"""Tests of sketchface.attributes: the tri-state type, the text parsers, describe() and the presets."""

from __future__ import annotations

import numpy as np
import pytest

from sketchface.attributes import (
    ATTRIBUTES,
    CRIMINALS,
    GROUPS,
    HAIR_COLOURS,
    INDEX,
    MAX_DESCRIPTION_CHARS,
    MAX_INSTRUCTION_CHARS,
    NUM_ATTRIBUTES,
    PRESETS,
    Attributes,
    EditResult,
    Match,
    ParseResult,
    UnknownAttributeError,
    check_name,
    describe,
    parse_description,
    parse_instruction,
    pretty,
)


def hair(*present: str) -> dict[str, bool]:
    """The four CelebA hair colours, ``present`` ones True and the rest False (the exclusivity rule)."""
    return {c: c in present for c in HAIR_COLOURS}


BLACK, BLOND, BROWN, GRAY = (hair(c) for c in HAIR_COLOURS)
NO_COLOUR = hair()
CLEAN_SHAVEN = {"No_Beard": True, "Mustache": False, "Goatee": False, "5_o_Clock_Shadow": False}

# (description, exactly the attributes it must make known)
DESCRIPTIONS: list[tuple[str, dict[str, bool]]] = [
    # The paper's criminal sketch test.
    ("Man with gray hair, pale skin, and a mustache", {"Male": True, **GRAY, "Pale_Skin": True, "Mustache": True}),
    (
        "Young woman with black hair, heavy makeup, wearing a hat",
        {"Young": True, "Male": False, **BLACK, "Heavy_Makeup": True, "Wearing_Hat": True},
    ),
    (
        "Chubby young man with glasses and bushy eyebrows",
        {"Chubby": True, "Young": True, "Male": True, "Eyeglasses": True, "Bushy_Eyebrows": True},
    ),
    # Gender and age synonyms.
    ("A woman", {"Male": False}),
    ("female suspect", {"Male": False}),
    ("an elderly lady", {"Young": False, "Male": False}),
    ("old guy", {"Young": False, "Male": True}),
    ("Middle-aged gentleman", {"Young": False, "Male": True}),
    ("a senior woman", {"Young": False, "Male": False}),
    ("youthful girl", {"Young": True, "Male": False}),
    ("a man in his twenties", {"Male": True, "Young": True}),
    ("she is in her late 50s", {"Male": False, "Young": False}),
    ("25-year-old male", {"Young": True, "Male": True}),
    ("aged 62", {"Young": False}),
    (
        "a tall man, about 40, with short dark hair",
        {"Male": True, "Young": False, "Blond_Hair": False, "Gray_Hair": False},
    ),
    ("about 25 years old", {"Young": True}),
    ("a teenage boy", {"Young": True, "Male": True}),
    # Glasses, hair.
    ("man wearing spectacles", {"Male": True, "Eyeglasses": True}),
    ("specs", {"Eyeglasses": True}),
    ("eyeglasses and a cap", {"Eyeglasses": True, "Wearing_Hat": True}),
    ("fair-haired boy", {**BLOND, "Male": True, "Young": True}),
    ("BLONDE!!!", BLOND),
    ("brunette with wavy hair", {**BROWN, "Wavy_Hair": True, "Straight_Hair": False}),
    ("silver hair", GRAY),
    ("white-haired old man", {**GRAY, "Young": False, "Male": True}),
    ("balding man", {"Bald": True, "Bangs": False, "Male": True}),
    ("shaved head", {"Bald": True, "Bangs": False}),
    ("a receding hairline", {"Receding_Hairline": True}),
    ("long fringe", {"Bangs": True}),
    ("straight black hair with bangs", {**BLACK, "Straight_Hair": True, "Wavy_Hair": False, "Bangs": True}),
    ("curly red hair", {**NO_COLOUR, "Wavy_Hair": True, "Straight_Hair": False}),
    ("Dark hair", {"Blond_Hair": False, "Gray_Hair": False}),
    ("salt-and-pepper hair", GRAY),
    ("black and gray hair", hair("Black_Hair", "Gray_Hair")),
    ("hair: brown", BROWN),
    ("his hair is gray and curly", {"Male": True, **GRAY, "Wavy_Hair": True, "Straight_Hair": False}),
    # Facial hair.
    ("clean-shaven", CLEAN_SHAVEN),
    ("bearded man", {"No_Beard": False, "Male": True}),
    ("five o'clock shadow", {"5_o_Clock_Shadow": True}),
    ("stubble and sideburns", {"5_o_Clock_Shadow": True, "Sideburns": True}),
    ("a moustache and a goatee", {"Mustache": True, "Goatee": True}),
    ("a bushy mustache", {"Mustache": True}),
    # Expression, build, face.
    ("grinning", {"Smiling": True}),
    ("a big smile", {"Smiling": True}),
    ("serious, frowning", {"Smiling": False}),
    ("heavy-set", {"Chubby": True}),
    ("overweight with a double chin", {"Chubby": True, "Double_Chin": True}),
    ("thin woman", {"Chubby": False, "Male": False}),
    ("oval face, high cheekbones", {"Oval_Face": True, "High_Cheekbones": True}),
    ("rosy cheeks", {"Rosy_Cheeks": True}),
    ("red cheeks and a big nose", {"Rosy_Cheeks": True, "Big_Nose": True}),
    ("a pointed nose", {"Pointy_Nose": True}),
    ("a big, pointy nose", {"Big_Nose": True, "Pointy_Nose": True}),
    ("full lips", {"Big_Lips": True}),
    ("thick lips and thick eyebrows", {"Big_Lips": True, "Bushy_Eyebrows": True}),
    ("mouth slightly open", {"Mouth_Slightly_Open": True}),
    ("narrow eyes", {"Narrow_Eyes": True}),
    ("squinting", {"Narrow_Eyes": True}),
    ("bags under his eyes", {"Bags_Under_Eyes": True}),
    ("tired eyes", {"Bags_Under_Eyes": True}),
    ("arched eyebrows", {"Arched_Eyebrows": True}),
    ("fair skin", {"Pale_Skin": True}),
    # Accessories, make-up, overall.
    ("earrings and a necklace", {"Wearing_Earrings": True, "Wearing_Necklace": True}),
    ("wearing a tie", {"Wearing_Necktie": True}),
    ("red lipstick, make-up", {"Wearing_Lipstick": True, "Heavy_Makeup": True}),
    ("a beanie", {"Wearing_Hat": True}),
    ("handsome", {"Attractive": True}),
    ("good-looking woman", {"Attractive": True, "Male": False}),
    ("blurry photo", {"Blurry": True}),
    # Negations.
    ("no glasses", {"Eyeglasses": False}),
    ("without a hat", {"Wearing_Hat": False}),
    ("doesn't wear glasses", {"Eyeglasses": False}),
    ("he doesn't have a beard", {"Male": True, "No_Beard": True}),
    ("never wears a hat", {"Wearing_Hat": False}),
    ("isn't smiling", {"Smiling": False}),
    ("not young", {"Young": False}),
    ("he no longer has a mustache", {"Male": True, "Mustache": False}),
    ("no glasses but a hat", {"Eyeglasses": False, "Wearing_Hat": True}),
    ("without glasses or earrings", {"Eyeglasses": False, "Wearing_Earrings": False}),
    ("no glasses, a hat", {"Eyeglasses": False, "Wearing_Hat": True}),
    ("no black hair", {"Black_Hair": False}),
    ("his hair is not gray", {"Male": True, "Gray_Hair": False}),
    ("not bald, no makeup", {"Bald": False, "Heavy_Makeup": False}),
    ("no beard, no mustache", {"No_Beard": True, "Mustache": False}),
    ("without glasses, with a hat", {"Eyeglasses": False, "Wearing_Hat": True}),
    ("no facial hair", CLEAN_SHAVEN),
    ("woman, not wearing lipstick", {"Male": False, "Wearing_Lipstick": False}),
    # Conflicts: the later mention wins.
    ("blonde with black hair", BLACK),
    ("a bearded clean-shaven man", {**CLEAN_SHAVEN, "Male": True}),
    ("bald man with bangs", {"Bald": True, "Bangs": True, "Male": True}),
    # Words that depend on the noun they modify.
    ("black glasses", {"Eyeglasses": True}),
    ("a black man", {"Male": True}),
    ("thin grey hair", GRAY),
    ("pale blue eyes", {}),
    ("a heavy man", {"Chubby": True, "Male": True}),
    # Empty and nonsense.
    ("", {}),
    ("   \n\t ", {}),
    ("asdf qwerty zxcv", {}),
    ("!!! ??? ...", {}),
]


@pytest.mark.parametrize("text, expected", DESCRIPTIONS, ids=[t[:40] or "<empty>" for t, _ in DESCRIPTIONS])
def test_parse_description_table(text, expected):
    result = parse_description(text)
    assert isinstance(result, ParseResult)
    assert result.attributes.known == {n: expected[n] for n in ATTRIBUTES if n in expected}


def test_table_is_large_and_varied():
    assert len(DESCRIPTIONS) >= 60
    covered = {name for _, expected in DESCRIPTIONS for name in expected}
    assert covered == set(ATTRIBUTES), f"not covered: {set(ATTRIBUTES) - covered}"


@pytest.mark.parametrize(
    "text, unknown",
    [
        ("asdf qwerty zxcv", ("asdf", "qwerty", "zxcv")),
        ("pale blue eyes", ("pale", "blue")),
        ("a black man", ("black",)),
        ("thin grey hair", ("thin",)),
        ("long fringe", ("long",)),
        ("man with a scar and a tattoo", ("scar", "tattoo")),
        ("Man with gray hair, pale skin, and a mustache", ()),
        ("the suspect is a woman who was wearing a hat", ()),
        ("", ()),
    ],
)
def test_unknown_words(text, unknown):
    assert parse_description(text).unknown_words == unknown


def test_matches_name_the_phrase():
    result = parse_description("Young woman, no glasses but a red hat")
    assert Match("no glasses", "Eyeglasses", False) in result.matches
    assert Match("red hat", "Wearing_Hat", True) in result.matches
    assert Match("young", "Young", True) in result.matches
    assert Match("woman", "Male", False) in result.matches
    assert result.conflicts == ()


def test_implied_matches_are_reported():
    result = parse_description("black hair")
    assert [(m.attribute, m.value) for m in result.matches] == [
        ("Black_Hair", True),
        ("Blond_Hair", False),
        ("Brown_Hair", False),
        ("Gray_Hair", False),
    ]
    assert {m.phrase for m in result.matches} == {"black hair"}


def test_conflicts_are_reported_and_later_wins():
    result = parse_description("blonde with black hair")
    assert result.attributes["Black_Hair"] is True and result.attributes["Blond_Hair"] is False
    note = next(c for c in result.conflicts if c.startswith("Blond_Hair"))
    assert "'blonde'" in note and "'black hair'" in note and "later" in note
    reverse = parse_description("black hair, blonde")
    assert reverse.attributes["Blond_Hair"] is True and reverse.attributes["Black_Hair"] is False
    shaven = parse_description("a bearded clean-shaven man")
    assert any("No_Beard" in c and "'bearded'" in c for c in shaven.conflicts)
    assert parse_description("black and gray hair").conflicts == ()


def test_case_punctuation_and_determinism():
    a = parse_description("CHUBBY young MAN, with   glasses; and bushy eyebrows!!")
    b = parse_description("chubby young man with glasses and bushy eyebrows")
    assert a.attributes == b.attributes == PRESETS["Criminal 3"].attributes
    assert parse_description("clean‐shaven, he’s smiling") == parse_description("clean-shaven, he's smiling")
    assert parse_description("A man, w/o glasses").attributes.known == {"Male": True, "Eyeglasses": False}


def test_empty_is_all_unknown():
    for text in ("", "   ", "\n"):
        result = parse_description(text)
        assert result.attributes.is_empty and result.matches == () and result.unknown_words == ()


def test_too_long_is_rejected_with_a_clear_error():
    ok = "glasses " * 124  # 992 characters
    assert parse_description(ok).attributes["Eyeglasses"] is True
    text = "x" * (MAX_DESCRIPTION_CHARS + 1)
    with pytest.raises(ValueError, match=r"1,001 characters.*limit is 1,000"):
        parse_description(text)
    with pytest.raises(TypeError):
        parse_description(None)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# Presets
# ----------------------------------------------------------------------------------------------


def test_presets_parse_exactly_to_their_attributes():
    assert list(PRESETS) == ["Criminal 1", "Criminal 2", "Criminal 3"]
    assert CRIMINALS == tuple(PRESETS.values())
    for preset in CRIMINALS:
        assert preset.attributes == parse_description(preset.text).attributes
    assert PRESETS["Criminal 1"].text == "Man with gray hair, pale skin, and a mustache"
    assert PRESETS["Criminal 1"].attributes.present == ["Gray_Hair", "Male", "Mustache", "Pale_Skin"]
    assert PRESETS["Criminal 2"].attributes.present == ["Black_Hair", "Heavy_Makeup", "Wearing_Hat", "Young"]
    assert PRESETS["Criminal 2"].attributes["Male"] is False
    assert PRESETS["Criminal 3"].attributes.present == ["Bushy_Eyebrows", "Chubby", "Eyeglasses", "Male", "Young"]
    assert PRESETS["Criminal 3"].attributes.absent == []


# ----------------------------------------------------------------------------------------------
# describe
# ----------------------------------------------------------------------------------------------


def test_describe_examples():
    assert describe(Attributes()) == "No attributes specified."
    a = Attributes(Male=True, Young=True, Gray_Hair=True, Pale_Skin=True, Mustache=True, Eyeglasses=False)
    assert describe(a) == "A young man with gray hair, pale skin and a mustache; not wearing glasses."
    assert describe({"Male": False}) == "A woman."
    assert describe(Attributes(Smiling=False, No_Beard=True)) == "A serious person; no beard."
    assert describe(PRESETS["Criminal 3"].attributes) == "A chubby young man with bushy eyebrows and glasses."


@pytest.mark.parametrize("seed", range(5))
def test_describe_round_trip_random(seed):
    """parse_description(describe(a)) recovers every known attribute of random tri-state descriptions."""
    rng = np.random.default_rng(seed)
    for _ in range(100):
        a = Attributes.from_vector(rng.integers(-1, 2, size=NUM_ATTRIBUTES))
        text = describe(a)
        result = parse_description(text)
        assert result.unknown_words == (), text
        recovered = {n: result.attributes[n] for n in a.known}
        assert recovered == a.known, text


def test_describe_round_trip_presets_and_sparse():
    for preset in CRIMINALS:
        assert parse_description(describe(preset.attributes)).attributes == preset.attributes
    for name in ATTRIBUTES:
        for value in (True, False):
            a = Attributes({name: value})
            assert parse_description(describe(a)).attributes[name] is value, describe(a)


# ----------------------------------------------------------------------------------------------
# parse_instruction
# ----------------------------------------------------------------------------------------------

INSTRUCTIONS: list[tuple[str, dict[str, bool]]] = [
    ("make the hair brown", BROWN),
    ("remove the mustache", {"Mustache": False}),
    ("take off the glasses", {"Eyeglasses": False}),
    ("get rid of the beard", {"No_Beard": True}),
    ("add a hat", {"Wearing_Hat": True}),
    ("give him glasses", {"Eyeglasses": True}),
    ("put on earrings", {"Wearing_Earrings": True}),
    ("make her smile", {"Smiling": True}),
    ("make him older", {"Young": False}),
    ("make her younger", {"Young": True}),
    ("make him bald", {"Bald": True, "Bangs": False}),
    ("shave the beard", {"No_Beard": True}),
    ("add glasses and make the hair gray", {"Eyeglasses": True, **GRAY}),
    ("remove the hat, glasses and earrings", {"Wearing_Hat": False, "Eyeglasses": False, "Wearing_Earrings": False}),
    ("shave his head", {"Bald": True, "Bangs": False}),
    ("shave him", CLEAN_SHAVEN),
    ("make him clean-shaven", CLEAN_SHAVEN),
    ("make her blonde", BLOND),
    ("dye his hair black", BLACK),
    ("change the hair to blonde", BLOND),
    ("make the nose bigger", {"Big_Nose": True}),
    ("make the lips fuller", {"Big_Lips": True}),
    ("make him chubbier", {"Chubby": True}),
    ("make him thinner", {"Chubby": False}),
    ("close his mouth", {"Mouth_Slightly_Open": False}),
    ("open the mouth", {"Mouth_Slightly_Open": True}),
    ("stop smiling", {"Smiling": False}),
    ("make her not smile", {"Smiling": False}),
    ("replace the glasses with a hat", {"Eyeglasses": False, "Wearing_Hat": True}),
    ("keep the glasses but remove the hat", {"Wearing_Hat": False}),
    ("add lipstick and heavy makeup", {"Wearing_Lipstick": True, "Heavy_Makeup": True}),
    ("remove the makeup", {"Heavy_Makeup": False}),
    ("make the hair wavy", {"Wavy_Hair": True, "Straight_Hair": False}),
    ("give her bangs", {"Bangs": True}),
    ("make him a woman", {"Male": False}),
    ("grow a beard", {"No_Beard": False}),
    ("make the picture blurry", {"Blurry": True}),
    ("make the skin paler", {"Pale_Skin": True}),
    ("Remove the glasses. Add a hat.", {"Eyeglasses": False, "Wearing_Hat": True}),
    ("give him a receding hairline and sideburns", {"Receding_Hairline": True, "Sideburns": True}),
    ("shave off the mustache and add a goatee", {"Mustache": False, "Goatee": True}),
    ("take the hat off", {"Wearing_Hat": False}),
    ("turn her into a man", {"Male": True}),
    ("make him look 20 years older", {"Young": False}),
    ("make the eyes blue", {}),
    ("add a tattoo", {}),
    ("", {}),
]


@pytest.mark.parametrize("text, expected", INSTRUCTIONS, ids=[t[:40] or "<empty>" for t, _ in INSTRUCTIONS])
def test_parse_instruction_table(text, expected):
    result = parse_instruction(text)
    assert isinstance(result, EditResult)
    assert result.changes == {n: expected[n] for n in ATTRIBUTES if n in expected}
    assert list(result.changes) == sorted(result.changes, key=INDEX.get), "official order"


def test_instruction_table_size():
    assert len(INSTRUCTIONS) >= 25


def test_instruction_unknown_words_and_matches():
    result = parse_instruction("make the eyes blue and add a tattoo")
    assert result.changes == {}
    assert result.unknown_words == ("blue", "tattoo")
    edit = parse_instruction("give him glasses")
    assert edit.matches == (Match("glasses", "Eyeglasses", True),)
    assert "him" not in edit.unknown_words, "pronouns are understood, and are not edits"


def test_instruction_too_long():
    with pytest.raises(ValueError, match=r"limit is 500"):
        parse_instruction("add a hat " * 60)
    assert parse_instruction("add a hat " * 49).changes == {"Wearing_Hat": True}
    assert MAX_INSTRUCTION_CHARS == 500


# ----------------------------------------------------------------------------------------------
# Attributes (the tri-state type)
# ----------------------------------------------------------------------------------------------


def test_attribute_tables():
    assert len(ATTRIBUTES) == NUM_ATTRIBUTES == 40 and ATTRIBUTES[0] == "5_o_Clock_Shadow"
    assert ATTRIBUTES[-1] == "Young" and INDEX["Male"] == 20
    grouped = [n for names in GROUPS.values() for n in names]
    assert sorted(grouped) == sorted(ATTRIBUTES) and len(grouped) == 40
    assert pretty("5_o_Clock_Shadow") == "5 o'clock shadow" and pretty("Wearing_Hat") == "wearing hat"


def test_attributes_vector_round_trip():
    vec = np.zeros(40, dtype=np.int8)
    vec[INDEX["Male"]], vec[INDEX["Eyeglasses"]] = 1, -1
    a = Attributes.from_vector(vec)
    assert a.known == {"Eyeglasses": False, "Male": True}
    assert a["Young"] is None and len(a) == 40 and list(a) == list(ATTRIBUTES)
    assert np.array_equal(a.to_vector(), vec) and a.to_vector().dtype == np.int8
    values, mask = a.to_model_input()
    assert values.dtype == mask.dtype == np.float32 and values.shape == mask.shape == (40,)
    assert values[INDEX["Male"]] == 1 and values[INDEX["Eyeglasses"]] == 0 and values.sum() == 1
    assert mask[INDEX["Male"]] == mask[INDEX["Eyeglasses"]] == 1 and mask.sum() == 2
    full = Attributes.from_vector(np.where(np.arange(40) % 2 == 0, 1, -1))
    assert len(full.known) == 40 and full.to_model_input()[1].sum() == 40
    assert Attributes.from_vector(np.arange(40) % 3 == 0)["5_o_Clock_Shadow"] is True


def test_attributes_from_vector_errors():
    with pytest.raises(ValueError, match="40 values"):
        Attributes.from_vector([1, -1, 0])
    bad = [0] * 40
    bad[5] = 2
    with pytest.raises(ValueError, match="Bangs has value 2"):
        Attributes.from_vector(bad)
    with pytest.raises(ValueError, match="5_o_Clock_Shadow has value 0"):
        Attributes.from_vector([0, 0, 0] + [1] * 37, unknown_zero=False)


def test_attributes_replace_merge_equality():
    a = Attributes(Male=True, Eyeglasses=False)
    b = a.replace(Eyeglasses=True, Male=None)
    assert b.known == {"Eyeglasses": True} and a.known == {"Eyeglasses": False, "Male": True}
    merged = a.merge({"Eyeglasses": True, "Young": None, "Smiling": False})
    assert merged.known == {"Eyeglasses": True, "Male": True, "Smiling": False}
    assert a == Attributes({"Male": True}, Eyeglasses=False) and hash(a) == hash(Attributes(Male=1, Eyeglasses=-1))
    assert a != b and a.present == ["Male"] and a.absent == ["Eyeglasses"]
    assert repr(a) == "Attributes(Eyeglasses=False, Male=True)"
    with pytest.raises(ValueError, match="True, False or None"):
        Attributes(Male="yes")


@pytest.mark.parametrize("name, hint", [("Glasses", "Eyeglasses"), ("Blonde_Hair", "Blond_Hair"), ("Smile", "Smiling")])
def test_unknown_attribute_names_suggest(name, hint):
    with pytest.raises(UnknownAttributeError, match=f"Did you mean {hint}") as info:
        Attributes({name: True})
    assert isinstance(info.value, KeyError) and info.value.name == name
    with pytest.raises(UnknownAttributeError):
        Attributes()[name]
    with pytest.raises(UnknownAttributeError):
        Attributes().replace(**{name: True})
    assert check_name("Young") == "Young"
    with pytest.raises(UnknownAttributeError, match="expected one of the 40"):
        check_name("Tattoo")
