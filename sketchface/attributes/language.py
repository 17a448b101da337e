"""Plain English → attributes: :func:`parse_description` and :func:`parse_instruction`, and their vocabulary."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .names import ATTRIBUTES, HAIR_COLOURS, Attributes, check_name

# ==============================================================================================
# Plain English → attributes
# ==============================================================================================
#
# A small, deterministic lexicon parser (no ML). The text is lower-cased and split into tokens;
# each position is matched against, longest first: fixed phrases ("five o'clock shadow"), noun
# phrases built from modifiers + a head noun ("big pointy nose", "wavy gray hair", "hair is gray"),
# age expressions ("in his twenties", "25 years old") and function words (negations, edit verbs).
# Every matched phrase yields (attribute, value) effects; later effects override earlier ones.

#: Longest description :func:`parse_description` accepts (characters).
MAX_DESCRIPTION_CHARS = 1000
#: Longest instruction :func:`parse_instruction` accepts (characters).
MAX_INSTRUCTION_CHARS = 500

_Effect = tuple[str, bool]


@dataclass(frozen=True)
class Match:
    """One effect of the text: ``phrase`` (lower-cased words of the text) set ``attribute`` to ``value``."""

    phrase: str
    attribute: str
    value: bool


@dataclass(frozen=True)
class ParseResult:
    """What :func:`parse_description` understood.

    ``attributes``: the tri-state description; ``matches``: every (phrase, attribute, value) effect in
    text order, including ones a later mention overrode; ``unknown_words``: content words that matched
    nothing (so a UI can show "not used: …"); ``conflicts``: human-readable notes on contradictions and
    how they were resolved (the later mention wins).
    """

    attributes: Attributes
    matches: tuple[Match, ...] = ()
    unknown_words: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()


@dataclass(frozen=True)
class EditResult:
    """What :func:`parse_instruction` understood: ``changes`` maps attribute → target value (official order)."""

    changes: dict[str, bool]
    matches: tuple[Match, ...] = ()
    unknown_words: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Sense:
    """The meaning of a word or phrase.

    ``effects`` are stated directly; ``implied`` follow from them (a hair colour makes the other colours
    absent) and are dropped under negation ("no black hair" says nothing about blond). ``negated``
    replaces the default inversion of ``effects`` when the phrase is negated (``None``: invert).
    ``pronoun`` senses (he, her, …) never consume a negation and are ignored in edit instructions.
    """

    effects: tuple[_Effect, ...] = ()
    implied: tuple[_Effect, ...] = ()
    negated: tuple[_Effect, ...] | None = None
    pronoun: bool = False

    def resolve(self, negate: bool) -> tuple[tuple[_Effect, ...], tuple[_Effect, ...]]:
        """``(effects, implied)`` for this sense, negated or not."""
        if not negate:
            return self.effects, self.implied
        if self.negated is not None:
            return self.negated, ()
        return tuple((n, not v) for n, v in self.effects), ()


def _S(
    *on: str,
    off: Iterable[str] = (),
    also_on: Iterable[str] = (),
    also_off: Iterable[str] = (),
    negated: Iterable[_Effect] | None = None,
    pronoun: bool = False,
) -> _Sense:
    effects = tuple((check_name(n), True) for n in on) + tuple((check_name(n), False) for n in off)
    implied = tuple((check_name(n), True) for n in also_on) + tuple((check_name(n), False) for n in also_off)
    neg = None if negated is None else tuple((check_name(n), v) for n, v in negated)
    return _Sense(effects, implied, neg, pronoun)


def _hair(*colours: str) -> _Sense:
    """A hair colour: present, and (exclusivity rule) the other CelebA colours absent."""
    return _S(*colours, also_off=[c for c in HAIR_COLOURS if c not in colours])


_NONE: None = None  # a known modifier with no CelebA meaning ("long hair", "blue eyes"): reported unknown

_BLACK, _BLOND, _BROWN, _GRAY = (_hair(c) for c in HAIR_COLOURS)
_RED_HAIR = _S(off=HAIR_COLOURS, negated=())  # not one of CelebA's four colours; "no red hair" says nothing
_DARK_HAIR = _S(off=("Blond_Hair", "Gray_Hair"), negated=())
_WAVY = _S("Wavy_Hair", also_off=("Straight_Hair",))
_STRAIGHT = _S("Straight_Hair", also_off=("Wavy_Hair",))
_BALD = _S("Bald", also_off=("Bangs",))
_CLEAN_SHAVEN = _S("No_Beard", also_off=("Mustache", "Goatee", "5_o_Clock_Shadow"))
_BEARD = _S(off=("No_Beard",))
_CHUBBY, _NOT_CHUBBY = _S("Chubby"), _S(off=("Chubby",))
_SMILING, _NOT_SMILING = _S("Smiling"), _S(off=("Smiling",))
_YOUNG, _OLD = _S("Young"), _S(off=("Young",))
_MALE, _FEMALE = _S("Male"), _S(off=("Male",))
_PALE, _NOT_PALE = _S("Pale_Skin"), _S(off=("Pale_Skin",))
_ROSY = _S("Rosy_Cheeks")
_MOUTH_OPEN, _MOUTH_CLOSED = _S("Mouth_Slightly_Open"), _S(off=("Mouth_Slightly_Open",))
_MAKEUP = _S("Heavy_Makeup")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _table(groups: Mapping[_Sense | None, str]) -> dict[str, _Sense | None]:
    """``{sense: "word word …"}`` → ``{word: sense}`` (a compact way to write synonym lists)."""
    out: dict[str, _Sense | None] = {}
    for sense, words in groups.items():
        for w in words.split():
            out[w] = sense
    return out


# Modifiers that accessories and facial hair accept without changing their meaning ("black glasses",
# "gold earrings", "bushy mustache"): known words, no CelebA attribute of their own.
_COLOUR_WORDS = (
    "black white gray grey silver gold golden red blue green yellow brown pink purple orange dark light "
    "bright pale navy beige tan"
)
_THING_WORDS = (
    _COLOUR_WORDS + " big large small little tiny huge round square thick thin long short wide narrow heavy "
    "full neat trimmed scruffy bushy pencil handlebar wire rimmed rimless framed horn tinted reading aviator "
    "metal plastic pearl hoop stud dangling dangly baseball wool woolen woollen knit knitted straw cowboy "
    "bucket sun top bow striped plain patterned fancy shiny glossy matte bold subtle slight faint warm "
    "broad crooked toothy"
)


@dataclass(frozen=True)
class _Head:
    """A head noun: its own sense (``glasses`` → Eyeglasses), the modifiers it takes, and whether a
    modifier it does not know may be read on its own (``fallback``: "young face" → Young)."""

    sense: _Sense
    modifiers: dict[str, _Sense | None]
    fallback: bool = False


def _thing(sense: _Sense, extra: Mapping[_Sense | None, str] | None = None) -> _Head:
    mods = _table({_NONE: _THING_WORDS})
    mods.update(_table(extra or {}))
    return _Head(sense, mods)


_HAIR = _Head(
    _S(negated=(("Bald", True),)),  # "no hair" → bald
    _table(
        {
            _NONE: "long short thin thick messy shaggy neat cropped spiky slicked greasy medium shoulder length "
            "dyed light platinum strawberry lots fine coarse frizzy fluffy tidy untidy",
            _BLACK: "black jet raven",
            _BLOND: "blond blonde fair golden yellow flaxen sandy",
            _BROWN: "brown brunette chestnut auburn hazel",
            _GRAY: "gray grey silver white graying greying grizzled grayer greyer",
            _RED_HAIR: "red ginger orange redhead",
            _DARK_HAIR: "dark darker",
            _WAVY: "wavy curly curled wavier curlier",
            _STRAIGHT: "straight straighter",
            _S("Receding_Hairline"): "thinning",
        }
    ),
)

_HEAD_TABLE: dict[tuple[str, ...], _Head] = {
    ("hair", "haired", "hairs", "hairstyle"): _HAIR,
    ("head", "headed"): _Head(_S(), _table({_BALD: "bald shaved shaven bare", _NONE: "big small round"})),
    ("hairline",): _Head(
        _S(),
        _table({_S("Receding_Hairline"): "receding high thinning", _S(off=("Receding_Hairline",)): "low full"}),
    ),
    ("bangs", "fringe"): _thing(_S("Bangs"), {_NONE: "straight side swept blunt"}),
    ("eyebrows", "eyebrow", "brows", "brow", "browed", "eyebrowed"): _Head(
        _S(),
        _table(
            {
                _S("Bushy_Eyebrows"): "bushy thick heavy dense big bushier thicker",
                _S(off=("Bushy_Eyebrows",)): "thin sparse plucked thinner",
                _S("Arched_Eyebrows"): "arched curved high",
                _S(off=("Arched_Eyebrows",)): "straight flat",
                _NONE: _COLOUR_WORDS + " dark light",
            }
        ),
    ),
    ("eyes", "eye", "eyed"): _Head(
        _S(),
        _table(
            {
                _NONE: _COLOUR_WORDS + " hazel bright deep set dark sparkling piercing kind almond",
                _S("Narrow_Eyes"): "narrow squinting squinty slit narrowed narrower",
                _S(off=("Narrow_Eyes",)): "wide big large round",
                _S("Bags_Under_Eyes"): "tired puffy baggy sleepy droopy",
            }
        ),
    ),
    ("nose", "nosed"): _Head(
        _S(),
        _table(
            {
                _S("Big_Nose"): "big large long prominent huge broad wide bulbous hooked bigger larger",
                _S(off=("Big_Nose",)): "small little tiny button short smaller",
                _S("Pointy_Nose"): "pointy pointed sharp pointier",
                _S(off=("Pointy_Nose",)): "flat round rounded",
                _NONE: "straight crooked red",
            }
        ),
    ),
    ("lips", "lip", "lipped"): _Head(
        _S(),
        _table(
            {
                _S("Big_Lips"): "big full thick large plump fat fuller bigger thicker",
                _S(off=("Big_Lips",)): "thin small narrow thinner",
                _S("Wearing_Lipstick"): "red painted glossy pink",
                _MOUTH_OPEN: "parted",
            }
        ),
    ),
    ("mouth", "mouthed"): _Head(
        _S(), _table({_MOUTH_OPEN: "open opened gaping parted", _MOUTH_CLOSED: "closed shut", _NONE: "big wide small"})
    ),
    ("cheeks", "cheek", "cheeked"): _Head(
        _S(),
        _table(
            {
                _ROSY: "rosy red pink flushed ruddy reddish rosier redder",
                _S(off=("Rosy_Cheeks",)): "pale",
                _CHUBBY: "chubby full round fat puffy plump",
                _NOT_CHUBBY: "hollow sunken gaunt thin",
            }
        ),
    ),
    ("cheekbones", "cheekbone"): _Head(
        _S(),
        _table(
            {
                _S("High_Cheekbones"): "high prominent pronounced defined sharp strong",
                _S(off=("High_Cheekbones",)): "low flat soft",
            }
        ),
    ),
    ("face", "faced"): _Head(
        _S(),
        _table(
            {
                _S("Oval_Face"): "oval egg",
                _S(off=("Oval_Face",)): "round square wide broad",
                _CHUBBY: "chubby fat full puffy plump",
                _NOT_CHUBBY: "thin narrow gaunt",
                _ROSY: "red flushed ruddy",
                _NOT_SMILING: "straight serious stern",
                _NONE: "long",
            }
        ),
        fallback=True,
    ),
    ("expression",): _Head(_S(), {}, fallback=True),
    ("chin", "chinned"): _Head(
        _S(),
        _table({_S("Double_Chin"): "double", _NONE: "pointed pointy strong square weak dimpled cleft small"}),
    ),
    ("skin", "skinned", "complexion"): _Head(
        _S(),
        _table(
            {
                _PALE: "pale fair light white pasty porcelain paler lighter",
                _NOT_PALE: "dark tanned tan olive brown black darker",
                _ROSY: "rosy ruddy",
                _NONE: "smooth clear",
            }
        ),
    ),
    ("beard", "beards"): _thing(_BEARD),
    ("mustache", "moustache", "mustaches", "moustaches", "tache"): _thing(_S("Mustache")),
    ("goatee", "goatees"): _thing(_S("Goatee")),
    ("sideburns", "sideburn"): _thing(_S("Sideburns")),
    ("stubble",): _thing(_S("5_o_Clock_Shadow")),
    ("glasses", "eyeglasses", "spectacles", "specs", "sunglasses", "shades"): _thing(_S("Eyeglasses")),
    ("hat", "hats", "cap", "caps", "beanie", "beret", "fedora", "helmet"): _thing(_S("Wearing_Hat")),
    ("earrings", "earring"): _thing(_S("Wearing_Earrings")),
    ("necklace", "necklaces", "pendant", "chain"): _thing(_S("Wearing_Necklace")),
    ("tie", "ties", "necktie", "neckties", "bowtie"): _thing(_S("Wearing_Necktie")),
    ("lipstick",): _thing(_S("Wearing_Lipstick")),
    ("makeup", "mascara", "eyeliner"): _thing(
        _MAKEUP,
        {_MAKEUP: "heavy lots thick dramatic bold full", _S(off=("Heavy_Makeup",)): "light little minimal natural"},
    ),
    ("smile", "grin"): _thing(_SMILING),
}
_HEADS: dict[str, _Head] = {w: head for words, head in _HEAD_TABLE.items() for w in words}
_MODIFIER_WORDS: frozenset[str] = frozenset(m for head in _HEADS.values() for m in head.modifiers)

# Fixed phrases and single words that stand on their own.
_PHRASE_GROUPS: dict[_Sense, tuple[str, ...]] = {
    _MALE: ("man", "men", "male", "guy", "gentleman", "gent", "dude", "lad", "fellow", "bloke"),
    _S("Male", also_on=("Young",), negated=(("Young", False),)): ("boy", "teenage boy"),
    _FEMALE: ("woman", "women", "female", "lady", "gal", "lass"),
    _S(off=("Male",), also_on=("Young",), negated=(("Young", False),)): ("girl", "teenage girl"),
    _S("Male", pronoun=True): ("he", "him", "his", "himself"),
    _S(off=("Male",), pronoun=True): ("she", "her", "hers", "herself"),
    _YOUNG: ("young", "youthful", "younger", "youngish", "teen", "teenage", "teenager", "teenaged", "adolescent"),
    _OLD: ("old", "older", "elderly", "senior", "aged", "aging", "ageing", "oldish", "middle aged", "old aged"),
    _CHUBBY: tuple(
        "chubby chubbier fat fatter plump plumper overweight heavy heavyset stocky portly obese stout pudgy".split()
        + ["chunky", "heavy set"]
    ),
    _NOT_CHUBBY: tuple("thin thinner slim slimmer skinny skinnier slender lean gaunt bony".split()),
    _PALE: ("pale", "paler", "pasty", "fair"),
    _NOT_PALE: ("tanned", "tan", "suntanned"),
    _ROSY: ("rosy", "ruddy", "flushed", "blushing"),
    _S("Oval_Face"): ("oval",),
    _SMILING: tuple(
        "smiling smiles smiley grinning grins beaming laughing happy happier cheerful".split() + ["smiling face"]
    ),
    _NOT_SMILING: tuple(
        "serious frowning frown frowns stern scowling unsmiling grumpy sad angry expressionless glum".split()
        + ["straight face", "poker face"]
    ),
    _S("Narrow_Eyes"): ("squinting", "squint", "squints", "squinty"),
    _BALD: ("bald", "balding", "baldy"),
    _S("Receding_Hairline"): ("receding",),
    _WAVY: ("curly", "wavy", "curls", "curlier", "wavier"),
    _BLOND: ("blond", "blonde", "blondie", "blonder"),
    _BROWN: ("brunette",),
    _GRAY: ("graying", "greying", "salt and pepper", "salt and pepper hair"),
    _RED_HAIR: ("redhead", "ginger"),
    _BEARD: ("bearded",),
    _CLEAN_SHAVEN: (
        "clean shaven",
        "cleanshaven",
        "clean shaved",
        "shaved",
        "shaven",
        "beardless",
        "smooth shaven",
    ),
    _S(off=("No_Beard",), negated=_CLEAN_SHAVEN.effects + _CLEAN_SHAVEN.implied): ("facial hair",),
    _S("Mustache"): ("mustached", "moustached"),
    _S("5_o_Clock_Shadow"): (
        "five o'clock shadow",
        "5 o'clock shadow",
        "5 oclock shadow",
        "five oclock shadow",
        "stubbly",
        "stubbled",
        "unshaven",
        "scruff",
        "scruffy",
    ),
    _S("Sideburns"): ("mutton chops", "muttonchops"),
    _S("Eyeglasses"): ("bespectacled",),
    _MAKEUP: ("make up", "made up", "heavily made up", "eye shadow", "eyeshadow", "heavy makeup"),
    _S("Wearing_Earrings"): ("ear rings",),
    _S("Wearing_Necktie"): ("bow tie",),
    _S("Wearing_Hat"): ("baseball cap", "top hat"),
    _S("Attractive"): (
        "attractive handsome pretty beautiful cute gorgeous lovely".split()
        + ["good looking", "nice looking", "goodlooking"]
    ),
    _S(off=("Attractive",)): ("unattractive", "ugly", "homely"),
    _S("Blurry"): ("blurry", "blurred", "out of focus", "fuzzy", "unfocused", "blur"),
    _S(off=("Blurry",)): ("in focus", "sharpen", "deblur", "unblur"),
    _MOUTH_OPEN: (
        "mouth open",
        "mouth slightly open",
        "mouth a bit open",
        "mouth agape",
        "mouth wide open",
        "mouth partly open",
        "mouth half open",
        "agape",
        "lips parted",
        "lips apart",
    ),
    _MOUTH_CLOSED: ("mouth closed", "mouth shut", "closed mouth"),
    _S("Bags_Under_Eyes"): tuple(
        [f"bags under {d}eyes" for d in ("", "the ", "his ", "her ", "their ", "both ")]
        + ["eye bags", "dark circles", "baggy eyes"]
    ),
    _S("Double_Chin"): ("double chin", "double chinned"),
    _S("Bushy_Eyebrows"): ("unibrow", "monobrow"),
}
_PHRASES: dict[tuple[str, ...], _Sense] = {_words(p): s for s, ps in _PHRASE_GROUPS.items() for p in ps}
_MAX_PHRASE = max(len(p) for p in _PHRASES)

# Function words. Negation cues toggle a pending negation that applies to the next noun phrase.
_NEGATIONS = frozenset(
    "no not without never neither nor lacks lacking lack non none less isn't aren't wasn't weren't doesn't don't "
    "didn't hasn't haven't hadn't won't can't cannot isnt arent wasnt doesnt dont didnt hasnt havent".split()
)
_COPULAS = frozenset("is are was were looks look looked seems seem seemed appears appear be :".split())
_NEG_COPULAS = frozenset("isn't aren't wasn't weren't isnt arent wasnt".split())
_INTENSIFIERS = frozenset("very quite slightly rather really extremely somewhat fairly bit more most too so".split())
_STOP_WORDS = frozenset(
    """a an the with and or has have had having is are was were be been being am wearing wears wear wore worn
    dressed sporting of in on at to for from by as who whom whose that which this these those it its it's they
    them their theirs i me my we our you your looks look looked looking like appears appear seems seem seemed
    very quite slightly somewhat rather really extremely fairly bit kind sort some any also plus about around
    approximately roughly maybe possibly probably perhaps definitely person someone somebody individual suspect
    people one features feature photo image picture portrait shot there here then longer anymore more most too so
    just only even still both either each all can could would should will may might must do does did got gets
    get has let please i'm think off into onto pair years year
    saw seen remember remembered recall described describe description maybe
    s""".split()
)
# Tokens that end a pending negation (and, for instructions, the scope of an edit verb).
_DESCRIBE_BOUNDARIES = frozenset(", . ; : ! ? ( ) [ ] / but".split())
_INSTRUCT_RESETS = frozenset(". ; ! ? but then also".split())

# Edit verbs (instructions only): polarity of what follows, until the next verb or a reset word.
_VERBS: dict[tuple[str, ...], bool | None] = {
    **{
        _words(v): False
        for v in (
            "remove removes removed removing delete erase lose drop strip eliminate minus take replace stop cut".split()
            + ["take off", "take away", "take out", "get rid of", "rid of", "do away with"]
        )
    },
    **{
        _words(v): True
        for v in "add adds give gives put apply make makes turn change dye color colour paint grow wear with "
        "include show become set".split()
        + ["put on", "turn into", "change into"]
    },
    **{_words(v): None for v in "keep keeps leave retain preserve".split()},
}
_MAX_VERB = max(len(v) for v in _VERBS)
_INSTRUCT_COPULAS = _COPULAS | {"to", "into", "look"}

_DECADES = {
    "teens": 15,
    "twenties": 25,
    "thirties": 35,
    "forties": 45,
    "fifties": 55,
    "sixties": 65,
    "seventies": 75,
    "eighties": 85,
    "nineties": 95,
    **{f"{d}0s": d * 10 + 5 for d in range(2, 10)},
}
_YEARS = frozenset(("years", "year", "yrs", "yr", "yo"))
_ABOUT = frozenset(("about", "around", "approximately", "roughly", "circa", "maybe", "perhaps"))
#: Ages below this are read as ``Young`` (teens, twenties, thirties); from this age on, not ``Young``.
YOUNG_BELOW_AGE = 40

_TOKEN_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[.,;:!?()\[\]/]")

_INSTRUCTION_REWRITES = (
    # "shave his head" is about the head, "shave the beard" removes it, "shave him" means clean-shaven.
    (re.compile(r"\bshav(?:e|es|ing)\s+(?:off\s+)?(?:(?:his|her|their|the)\s+)?head\b"), " make shaved head "),
    (re.compile(r"\bshav(?:e|es|ing)\s+(?:him|her|them)\b(?=\s*(?:$|[,.;!?]|and\b|then\b))"), " make clean shaven "),
    (re.compile(r"\bshav(?:e|es|ing)\b(?:\s+off\b)?"), " remove "),
    (re.compile(r"\bopen\s+(?:(?:his|her|their|the)\s+)?mouth\b"), " make open mouth "),
    (re.compile(r"\bclose\s+(?:(?:his|her|their|the)\s+)?mouth\b"), " make mouth closed "),
)


@dataclass(frozen=True)
class _Tok:
    text: str
    start: int  # character offsets in the normalised text
    end: int


def _normalise(text: str) -> str:
    t = text.lower()
    t = re.sub(r"[\u2018\u2019\u02bc`\u00b4]", "'", t)
    t = re.sub(r"\bmake[-\u2010\u2011]up\b", "makeup", t)
    t = re.sub(r"\bw/o\b", " without ", t)
    t = re.sub(r"\bw/", " with ", t)
    t = t.replace("&", " and ")
    t = re.sub(r"(?<=[^\W_])[-\u2010\u2011\u2013\u2014](?=[^\W_])", " ", t)  # clean-shaven → clean shaven
    return re.sub(r"[-\u2013\u2014]+", " , ", t)  # a free-standing dash separates clauses


def _tokenise(norm: str) -> list[_Tok]:
    toks = []
    for m in _TOKEN_RE.finditer(norm):
        w, end = m.group(), m.end()
        if w.endswith("'s"):  # he's → he, man's → man
            w, end = w[:-2], end - 2
        toks.append(_Tok(w, m.start(), end))
    return toks


class _Parser:
    """One pass over the tokens of a description (``instruct=False``) or an edit instruction."""

    def __init__(self, text: str, *, instruct: bool):
        norm = _normalise(text)
        if instruct:
            for pattern, repl in _INSTRUCTION_REWRITES:
                norm = pattern.sub(repl, norm)
        self.norm = norm
        self.toks = _tokenise(norm)
        self.instruct = instruct
        self.state: dict[str, tuple[bool, int, str]] = {}  # attribute → (value, group id, phrase)
        self.matches: list[Match] = []
        self.conflicts: list[str] = []
        self.unknown: list[str] = []
        self._group = 0

    # Candidate matchers: each returns the end token index and a payload, or None. ------------------
    def _phrase(self, i: int) -> tuple[int, _Sense] | None:
        words = tuple(t.text for t in self.toks[i : i + _MAX_PHRASE])
        for length in range(len(words), 0, -1):
            sense = _PHRASES.get(words[:length])
            if sense is not None:
                return i + length, sense
        return None

    def _verb(self, i: int) -> tuple[int, bool | None] | None:
        words = tuple(t.text for t in self.toks[i : i + _MAX_VERB])
        for length in range(len(words), 0, -1):
            if words[:length] in _VERBS:
                return i + length, _VERBS[words[:length]]
        return None

    def _age(self, i: int) -> tuple[int, _Sense] | None:
        toks, n = self.toks, len(self.toks)
        w = toks[i].text
        nxt = toks[i + 1].text if i + 1 < n else ""
        age, end = None, i
        if w in ("early", "mid", "late") and nxt in _DECADES:
            age, end = _DECADES[nxt], i + 2
        elif w in _DECADES:
            age, end = _DECADES[w], i + 1
        elif w in ("aged", "age") and nxt.isdigit():
            age, end = int(nxt), i + 2
        elif w.isdigit() and nxt in _YEARS:
            age, end = int(w), i + 2
            if end < n and toks[end].text == "old":
                end += 1
            elif end < n and toks[end].text in ("older", "younger"):  # "20 years older" is a change, not an age
                return None
        elif w in _ABOUT and nxt.isdigit() and 10 <= int(nxt) < 100:
            after = toks[i + 2].text if i + 2 < n else "."
            if after in _YEARS:  # "about 40 years old"
                return self._age(i + 1)
            if after in _DESCRIBE_BOUNDARIES or after in ("and", "with"):  # "a man, about 40, with …"
                age, end = int(nxt), i + 2
        if age is None:
            return None
        return end, (_YOUNG if age < YOUNG_BELOW_AGE else _OLD)

    def _noun_phrase(self, i: int) -> tuple[int, list[tuple[_Sense, bool]], list[str]] | None:
        """Modifiers + head noun (+ ``is/are`` + modifiers): ``(end, [(sense, negated)], unknown words)``."""
        toks, n = self.toks, len(self.toks)
        mods: list[int] = []
        j = i
        while j < n and j - i <= 8 and toks[j].text not in _HEADS:
            w = toks[j].text
            if w in _MODIFIER_WORDS:
                mods.append(j)
            elif w in _INTENSIFIERS:
                pass
            elif not (w in ("and", ",", "or") and mods and j + 1 < n and toks[j + 1].text in _MODIFIER_WORDS):
                return None
            j += 1
        if j >= n or toks[j].text not in _HEADS:
            return None
        head = _HEADS[toks[j].text]
        end = k = j + 1
        # Predicate: "hair is gray", "eyebrows are not bushy"; edit instructions need no verb ("make the hair brown").
        post: list[int] = []
        post_neg = False
        copulas = _INSTRUCT_COPULAS if self.instruct else _COPULAS
        has_copula = k < n and (toks[k].text in copulas or toks[k].text in _NEG_COPULAS)
        if has_copula:
            post_neg = toks[k].text in _NEG_COPULAS
            k += 1
        if has_copula or self.instruct:
            while k < n and toks[k].text in _NEGATIONS:
                post_neg, k = not post_neg, k + 1
            while k < n and toks[k].text in _INTENSIFIERS:
                k += 1
            while k < n:
                w = toks[k].text
                if w in head.modifiers:
                    post.append(k)
                elif not (w in ("and", ",", "or") and post and k + 1 < n and toks[k + 1].text in head.modifiers):
                    break
                k += 1
            if post:
                end = post[-1] + 1
        senses: list[tuple[_Sense, bool]] = []
        unknown: list[str] = []
        for idx in mods + post:
            w = toks[idx].text
            sense = head.modifiers.get(w)
            if w not in head.modifiers and head.fallback and (w,) in _PHRASES:
                sense = _PHRASES[(w,)]
            if sense is None:
                unknown.append(w)
            else:
                senses.append((sense, idx in post and post_neg))
        # The head's own sense, minus what a modifier overrides ("light makeup"); a special negation
        # ("no hair" → bald) only for the bare noun.
        set_by_mods = {a for s, _ in senses for a, _ in s.effects + (s.negated or ())}
        hs = head.sense
        head_sense = _Sense(
            tuple(e for e in hs.effects if e[0] not in set_by_mods),
            tuple(e for e in hs.implied if e[0] not in set_by_mods),
            hs.negated if not (mods or post) else None,
        )
        return end, [(head_sense, False), *senses], unknown

    # Effects -------------------------------------------------------------------------------------
    def _apply(self, senses: list[tuple[_Sense, bool]], negate: bool, start: int, end_tok: int) -> None:
        primary: dict[str, bool] = {}
        implied: dict[str, bool] = {}
        for sense, local_neg in senses:
            eff, imp = sense.resolve(local_neg != negate)
            primary.update(eff)
            implied.update(imp)
        effects = dict(primary)
        for name, value in implied.items():  # within one phrase, stated effects beat implied ones
            effects.setdefault(name, value)
        phrase = self.norm[start : self.toks[end_tok - 1].end].strip()
        group, self._group = self._group, self._group + 1
        for name, value in effects.items():
            self.matches.append(Match(phrase, name, value))
            prev = self.state.get(name)
            if prev is not None and prev[0] != value and prev[1] != group:
                self.conflicts.append(
                    f"{name}: {prev[2]!r} says {'present' if prev[0] else 'absent'}, then {phrase!r} says "
                    f"{'present' if value else 'absent'}; the later mention wins ({'present' if value else 'absent'})."
                )
            self.state[name] = (value, group, phrase)

    def run(self) -> _Parser:
        toks, n = self.toks, len(self.toks)
        neg, neg_start = False, None  # pending negation and where its cue began
        polarity: bool | None = True  # instructions: add (True), remove (False), keep (None)
        i = 0
        while i < n:
            w = toks[i].text
            if w in _DESCRIBE_BOUNDARIES or (self.instruct and w in _INSTRUCT_RESETS):
                neg, neg_start = False, None
                if self.instruct and w in _INSTRUCT_RESETS:
                    polarity = True
                i += 1
                continue
            if w in _NEGATIONS:
                neg = not neg
                neg_start = toks[i].start if neg else None
                i += 1
                continue
            candidates: list[tuple[int, int, str, object]] = []  # (end, priority, kind, payload)
            if (found := self._phrase(i)) is not None:
                candidates.append((found[0], 3, "phrase", found[1]))
            if (np_ := self._noun_phrase(i)) is not None:
                candidates.append((np_[0], 2, "np", np_))
            if (age := self._age(i)) is not None:
                candidates.append((age[0], 1, "phrase", age[1]))
            if self.instruct and (verb := self._verb(i)) is not None:
                candidates.append((verb[0], 0, "verb", verb[1]))
            if not candidates:
                if w not in _STOP_WORDS:
                    self.unknown.append(w)
                i += 1
                continue
            end, _, kind, payload = max(candidates, key=lambda c: (c[0], c[1]))
            if kind == "verb":
                polarity, neg, neg_start = payload, False, None  # type: ignore[assignment]
                i = end
                continue
            if kind == "phrase":
                sense: _Sense = payload  # type: ignore[assignment]
                if sense.pronoun:  # "he", "her": never negated; not an edit in an instruction
                    if not self.instruct:
                        self._apply([(sense, False)], False, toks[i].start, end)
                    i = end
                    continue
                senses, unknown = [(sense, False)], []
            else:
                _, senses, unknown = payload  # type: ignore[misc]
                self.unknown.extend(unknown)
            if polarity is not None:
                start = neg_start if neg and neg_start is not None else toks[i].start
                self._apply(senses, neg != (polarity is False), start, end)
            # A negation covers one noun phrase, or a list joined by "or"/"nor" ("no glasses or hat").
            if neg and end < n and toks[end].text in ("or", "nor"):
                neg_start = None
                end += 1
            else:
                neg, neg_start = False, None
            i = end
        return self

    def unknown_words(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.unknown))


def _check_text(text: object, limit: int, what: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"The {what} must be a string; got {type(text).__name__}.")
    if len(text) > limit:
        raise ValueError(
            f"The {what} is {len(text):,} characters long; the limit is {limit:,} characters. "
            "Keep it to the main features of the face."
        )
    return text


def parse_description(text: str) -> ParseResult:
    """Plain English → tri-state attributes, deterministic and rule-based (no ML).

    ``parse_description("Chubby young man with glasses and bushy eyebrows")`` sets Chubby, Young, Male,
    Eyeglasses and Bushy_Eyebrows present and leaves the other 35 unknown. Case and punctuation do not
    matter. The result lists each (phrase, attribute, value) it used, the words it did not understand and
    any contradictions it resolved.

    Rules:

    * **Vocabulary.** Synonyms for all 40 attributes where English has them (woman/lady/girl → not Male,
      elderly/old/"in his fifties" → not Young, spectacles → Eyeglasses, brunette → Brown_Hair, stubble →
      5_o_Clock_Shadow, grin → Smiling, heavy-set → Chubby, …). Adjectives attach to the noun they
      modify: "thick lips" → Big_Lips, "thick eyebrows" → Bushy_Eyebrows, "black glasses" → Eyeglasses
      only. A modifier that names no CelebA attribute ("long hair", "blue eyes") is listed in
      ``unknown_words``, as is any content word outside the lexicon and the stop-word list.
    * **Ages.** "25 years old", "aged 52", "in her twenties", "late 40s": under 40 → Young, else not Young.
    * **Negation.** "no", "not", "without", "never", "isn't", "doesn't (have|wear)", "no longer", … make
      the *next noun phrase* absent, and only that one ("no glasses but a hat" → Eyeglasses absent,
      Wearing_Hat present); a list joined by "or"/"nor" stays negated ("without glasses or a hat").
      A comma, full stop, "but" etc. ends a pending negation. "no beard" → No_Beard present.
    * **Exclusivity.** Stating a hair colour (black, blond, brown, gray) makes the other three CelebA
      colours absent; colours named together in one phrase ("black and gray hair") are all present.
      "red hair"/"ginger" makes all four absent; "dark hair" makes Blond_Hair and Gray_Hair absent.
      Bald makes Bangs absent; wavy/curly makes Straight_Hair absent and straight makes Wavy_Hair absent;
      clean-shaven sets No_Beard present and Mustache, Goatee and 5_o_Clock_Shadow absent. These implied
      values are dropped under negation ("no black hair" says nothing about the other colours).
    * **Conflicts.** When two phrases disagree ("blonde with black hair", "a bearded clean-shaven man"),
      the later mention wins, and ``conflicts`` says which phrases disagreed.
    * **Limits.** Empty or whitespace-only text gives all-unknown attributes. Text over
      :data:`MAX_DESCRIPTION_CHARS` (1,000) characters raises ``ValueError``.
    """
    _check_text(text, MAX_DESCRIPTION_CHARS, "description")
    parser = _Parser(text, instruct=False).run()
    attrs = Attributes({name: value for name, (value, _, _) in parser.state.items()})
    return ParseResult(attrs, tuple(parser.matches), parser.unknown_words(), tuple(parser.conflicts))


def parse_instruction(text: str) -> EditResult:
    """An edit instruction → attribute changes, e.g. ``"make the hair brown"`` →
    ``{"Black_Hair": False, "Blond_Hair": False, "Brown_Hair": True, "Gray_Hair": False}``.

    Uses the lexicon of :func:`parse_description` with edit verbs: "remove / take off / get rid of /
    lose / shave (off)" make what follows absent; "add / give (him) / put on / grow / make / turn / dye /
    change (to)" make it present; "keep / leave" change nothing. A verb covers everything up to the next
    verb or to ".", ";", "but", "then" ("remove the hat, glasses and earrings"). "make him older" → not
    Young, "make him bald", "shave the beard" → No_Beard present, "shave his head" → Bald, "open/close the
    mouth", "make her smile"; negations work as in descriptions ("make her not smile"). Pronouns (him, her)
    are not edits. Later edits of the same attribute win. Words that map to no CelebA attribute ("blue
    eyes") are returned in ``unknown_words``. Text over :data:`MAX_INSTRUCTION_CHARS` (500) characters
    raises ``ValueError``. ``changes`` is in official attribute order.
    """
    _check_text(text, MAX_INSTRUCTION_CHARS, "instruction")
    parser = _Parser(text, instruct=True).run()
    changes = {name: parser.state[name][0] for name in ATTRIBUTES if name in parser.state}
    return EditResult(changes, tuple(parser.matches), parser.unknown_words())
