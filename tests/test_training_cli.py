"""One command line for every training script (issue 24): each parses with HfArgumentParser over the shared
TrainingArguments and its own dataclass, with the same flag names everywhere (and the older names as aliases), and
every documented command line still parses."""

from __future__ import annotations

import ast
import re
import shlex

import pytest

from sketchface.trainer import TrainingArguments
from tests.helpers import ROOT, load_script

#: the training scripts (cvae: train/mvae.py with --model cvae defaults) and their own dataclass
SCRIPTS = {
    "mvae": "MVAEArguments",
    "cvae": "MVAEArguments",
    "classifier": "ClassifierArguments",
    "stylegan": "StyleGANArguments",
    "psp": "PSPArguments",
    "translator": "TranslatorArguments",
    "psp_real": "PSPRealArguments",
}
#: the defaults of the shared flags each script had before it moved to TrainingArguments (they must not change)
OLD_DEFAULTS = {
    "mvae": dict(output_dir="checkpoints/mvae-procedural-64", max_steps=1500, max_minutes=None, batch_size=64, lr=1e-3,
                 warmup_steps=100, precision="auto", channels_last=True, save_every=500, log_every=50, seed=0,
                 resume=False, num_workers=2, push_to_hub=None),
    "cvae": dict(output_dir="checkpoints/cvae-procedural-64", max_steps=1500, batch_size=64, lr=1e-3, warmup_steps=100,
                 precision="auto", channels_last=True, save_every=500, num_workers=2),
    "classifier": dict(output_dir="checkpoints/classifier-procedural-64", max_steps=10_000, max_minutes=None,
                       batch_size=256, lr=2e-3, warmup_steps=200, precision="auto", channels_last=True,
                       save_every=1000, log_every=100, seed=0, resume=False, num_workers=4, push_to_hub=None),
    "stylegan": dict(output_dir="runs/stylegan-procedural-64", max_steps=100_000, max_minutes=None, batch_size=64,
                     lr=0.0025, warmup_steps=0, lr_schedule="constant", precision="fp32", channels_last=False,
                     save_every=1000, log_every=50, seed=0, resume=False, num_workers=8, push_to_hub=None),
    "psp": dict(output_dir="runs/psp-procedural-64", save_dir=None, max_steps=100_000, max_minutes=None, batch_size=64,
                lr=5e-4, warmup_steps=200, precision="fp32", channels_last=False, save_every=1000, log_every=50,
                seed=0, resume=False, num_workers=8, push_to_hub=None),
    "translator": dict(output_dir="runs/translator-64", max_steps=6000, batch_size=32, lr=2e-4),
    "psp_real": dict(output_dir="runs/psp-real", max_steps=6000, batch_size=32, lr=5e-4),
}  # fmt: skip


@pytest.fixture(scope="module")
def scripts():
    return {name: load_script(name) for name in SCRIPTS}


@pytest.mark.parametrize("name", SCRIPTS)
def test_parse_args_gives_the_dataclass_defaults(scripts, name):
    mod = scripts[name]
    train_args, args = mod.parse_args([])
    own = getattr(mod, SCRIPTS[name])
    assert type(train_args) is TrainingArguments and type(args) is own
    # the shared flags: TrainingArguments with this script's defaults, which are the ones it always had
    script = getattr(mod, "base", mod)  # train/cvae.py is train/mvae.py with other defaults
    defaults = {**script.TRAINING_DEFAULTS, **(OLD_DEFAULTS["cvae"] if name == "cvae" else {})}
    assert train_args == TrainingArguments(**defaults)
    assert {k: getattr(train_args, k) for k in OLD_DEFAULTS[name]} == OLD_DEFAULTS[name]
    # the script's own settings: its dataclass's defaults (the CVAE: --model cvae, which has no sketch expert)
    assert args == (own(model="cvae", sketch=False) if name == "cvae" else own())


SHARED = [  # (flags, the TrainingArguments values they give): the shared names, then the older ones
    (["--max_steps", "7"], {"max_steps": 7}),
    (["--steps", "7"], {"max_steps": 7}),
    (["--max-steps", "7"], {"max_steps": 7}),
    (["--max_minutes", "1.5"], {"max_minutes": 1.5}),
    (["--time_limit", "1.5"], {"max_minutes": 1.5}),
    (["--save_every", "3"], {"save_every": 3}),
    (["--checkpoint_every", "3"], {"save_every": 3}),
    (["--output_dir", "runs/x", "--save_dir", "runs/x/model"], {"output_dir": "runs/x", "save_dir": "runs/x/model"}),
    (["--resume"], {"resume": True}),
    (["--resume", "--no-resume"], {"resume": False}),
    (["--push_to_hub", "me/model"], {"push_to_hub": "me/model"}),
    (["--precision", "bf16"], {"precision": "bf16"}),
    (["--mixed_precision", "no"], {"precision": "fp32"}),
    (["--batch_size", "3", "--lr", "0.5", "--seed", "5"], {"batch_size": 3, "lr": 0.5, "seed": 5}),
    (["--num_workers", "1", "--log_every", "2"], {"num_workers": 1, "log_every": 2}),
]


@pytest.mark.parametrize("flags, values", SHARED, ids=[" ".join(f) for f, _ in SHARED])
def test_a_shared_flag_has_the_same_name_in_every_script(scripts, flags, values):
    for name, mod in scripts.items():
        train_args, _ = mod.parse_args(flags)
        assert {k: getattr(train_args, k) for k in values} == values, name


def test_boolean_flags_take_every_form_and_unused_shared_flags_are_refused(scripts, capsys):
    mvae, stylegan = scripts["mvae"], scripts["stylegan"]
    for flags in (["--no-channels_last"], ["--no_channels_last"], ["--no-channels-last"], ["--channels_last", "false"]):
        assert mvae.parse_args(flags)[0].channels_last is False
    for flags, expected in ((["--sample_subsets"], True), (["--no-sample_subsets"], False), (["--no-sketch"], False)):
        _, args = mvae.parse_args(flags)
        assert getattr(args, flags[0].lstrip("-").removeprefix("no-").removeprefix("no_")) is expected
    assert [mvae.parse_args(f)[1].cache for f in ([], ["--cache"], ["--no-cache"], ["--no_cache"])] == [
        None, True, False, False,
    ]  # fmt: skip
    assert [stylegan.parse_args(f)[1].stream for f in ([], ["--stream"], ["--no-stream"])] == [None, True, False]
    for mod, flags, why in [
        (mvae, ["--lr_schedule", "linear"], "cosine down to 5 %"),
        (scripts["classifier"], ["--eval_every", "10"], "evaluates once"),
        (stylegan, ["--warmup_steps", "5"], "constant"),
        (stylegan, ["--channels_last"], "memory layout"),
        (scripts["psp"], ["--channels_last"], "memory layout"),
    ]:
        with pytest.raises(SystemExit):
            mod.parse_args(flags)
        assert why in capsys.readouterr().err
    assert stylegan.parse_args(["--no-channels_last"])[0].channels_last is False  # its default: fine
    for mod in scripts.values():
        with pytest.raises(SystemExit):
            mod.parse_args(["--no_such_flag", "1"])  # a usage error, as argparse gives it


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_keeps_the_docstring_and_names_the_shared_flags(scripts, name, capsys):
    mod = scripts[name]
    with pytest.raises(SystemExit) as exit_:
        mod.parse_args(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    doc = mod.__doc__.strip().splitlines()
    assert doc[0] in text and all(line in text for line in doc if line.startswith("    python"))  # as written
    assert "--max_steps MAX_STEPS, --max-steps MAX_STEPS, --steps MAX_STEPS" in text
    assert "--output_dir" in text and "--push_to_hub REPO_ID" in text and "(default: " in text


# ---------------------------------------------------------------------------------- documented command lines
_SCRIPT = r"(psp_real|psp|mvae|cvae|classifier|stylegan|translator|sweep_attention)"
#: a command: ``python train/X.py``, ``python -m train.X`` (or ``evaluation.sweep_attention``, which trains pSp),
#: or an ``accelerate launch`` / ``torchrun`` of either, then
#: its arguments up to the end of the line or of the inline code span
COMMAND = re.compile(
    rf"(?:\bpython\s+|\baccelerate\s+launch\b[^`\n]*?\s|\btorchrun\b[^`\n]*?\s)(?:-m\s+(?:train|evaluation)\.{_SCRIPT}\b|(?:train|evaluation)/{_SCRIPT}\.py)"
    r"([^`\n]*)"
)


def documented_commands(text: str) -> list[tuple[str, list[str]]]:
    """(script, arguments) of every command line in a markdown text or docstring: lines continued with ``\\``
    joined, an inline code span that wraps onto the next line followed, ``# comments`` dropped; commands with ``…``
    (elided) skipped."""
    text = re.sub(r"\\\n\s*", " ", text)
    out = []
    for m in COMMAND.finditer(text):
        script, rest = m.group(1) or m.group(2), m.group(3)
        line_start = text.rfind("\n", 0, m.start()) + 1
        in_span = len(re.findall(r"`+", text[line_start : m.start()])) % 2 == 1
        if in_span and text.startswith("\n", m.end()):  # the span goes on on the next line, to its closing `
            rest += " " + text[m.end() + 1 :].split("`", 1)[0]
        if "…" in rest or "..." in rest:
            continue
        out.append((script, shlex.split(rest, comments=True)))
    return out


def _sources() -> dict[str, str]:
    files = [
        *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "README.md",
        *sorted((ROOT / "checkpoints").glob("*/README.md")),
    ]
    texts = {str(f.relative_to(ROOT)): f.read_text(encoding="utf-8") for f in files}
    # the scripts' own docstrings (what --help shows): the training scripts and the evaluation scripts that train
    for path in (*sorted((ROOT / "train").glob("*.py")), *sorted((ROOT / "evaluation").glob("*.py"))):
        texts[str(path.relative_to(ROOT))] = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return texts


def test_every_documented_command_line_parses(scripts):
    found: dict[str, int] = {}
    for source, text in _sources().items():
        for script, argv in documented_commands(text):
            mod = scripts.get(script) or load_script(script, "evaluation" if script == "sweep_attention" else "train")
            try:
                mod.parse_args(argv)
            except SystemExit as e:
                raise AssertionError(f"{source}: python train/{script}.py {shlex.join(argv)} does not parse") from e
            found[script] = found.get(script, 0) + 1
    # the search finds what is there: every script has documented commands, the docs and cards dozens
    assert set(found) == {*SCRIPTS, "sweep_attention"}, found
    assert sum(found.values()) >= 40, found


def test_the_command_search_reads_markdown_as_written():
    text = (
        "    python train/mvae.py --steps 3 \\\n        --time_limit 4   # on the CPU\n"
        "(`accelerate launch --num_processes 4\ntrain/stylegan.py --max_minutes 9`, and `python -m train.psp_real"
        " --stage autoencoder`); `torchrun train/mvae.py …`; `train/psp.py --generator_lr LR` is prose"
    )
    assert documented_commands(text) == [
        ("mvae", ["--steps", "3", "--time_limit", "4"]),
        ("stylegan", ["--max_minutes", "9"]),
        ("psp_real", ["--stage", "autoencoder"]),
    ]


def test_cards_record_commands_that_parse(scripts, monkeypatch):
    """A card written from Python (not the command line) gives the flags that differ from the defaults, booleans as
    --no-x: the command line it records parses back to the same settings."""
    from sketchface.training import cli_command, config_dict

    monkeypatch.setattr("sys.argv", ["pytest"])
    for name in ("mvae", "classifier", "stylegan", "psp"):
        mod = scripts[name]
        argv = ["--max_steps", "9", "--no-channels_last", "--seed", "3"] if name in ("mvae", "classifier") else []
        argv += ["--no-xflip", "--max_minutes", "2"] if name in ("stylegan", "psp") else ["--batch_size", "8"]
        parsed = mod.parse_args(argv)
        command = cli_command(name, config_dict(*parsed), config_dict(*mod.parse_args([])), skip=("resume",))
        assert command.startswith(f"python train/{name}.py --")
        assert mod.parse_args(shlex.split(command)[2:]) == parsed, command
