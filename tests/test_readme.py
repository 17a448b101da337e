"""The README is a front door and the Space card: small, a valid Space header, the two set-up commands, and every
relative link in it and in docs/*.md leads somewhere (files and, for Markdown targets, headings)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MAX_README_BYTES = 10_240
DOCS = sorted((ROOT / "docs").glob("*.md"))

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    """Markdown without fenced code blocks and inline code spans (links there are code, not links)."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    """Targets of the inline links and images of a Markdown text."""
    return _LINK.findall(_prose(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation and symbols dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading anchors by its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown text, duplicates numbered as GitHub numbers them (-1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for _, title in _HEADING.findall(_FENCE.sub("", text)):
        base = slug(title)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(md: Path, root: Path = ROOT) -> list[str]:
    """Relative links of ``md`` whose file (inside ``root``) or heading does not exist, with the reason."""
    text = md.read_text(encoding="utf-8")
    problems = []
    for target in links(text):
        if _SCHEME.match(target) or target.startswith("//"):
            continue  # a web address: not checked offline
        path_part, _, fragment = target.partition("#")
        if path_part.startswith("/"):
            problems.append(f"{target}: use a path relative to {md.name}, not to a server root")
            continue
        dest = (md.parent / unquote(path_part)).resolve() if path_part else md
        if not dest.is_relative_to(root):
            problems.append(f"{target}: leaves the repository")
        elif not dest.exists():
            problems.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and unquote(fragment) not in anchors(dest.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading with that anchor in {dest.name}")
    return problems


# ----------------------------------------------------------------------------------------------------- the helpers
def test_link_checker_finds_missing_files_anchors_and_escapes(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Sketch → face (paper 2)\n\n## Notes\n## Notes\n")
    md = tmp_path / "README.md"
    md.write_text(
        "[ok](docs/a.md) [ok](docs/a.md#sketch--face-paper-2) [ok](docs/a.md#notes-1) ![ok](docs/a.md)\n"
        "[web](https://example.org/x) [self](#top)\n\n# Top\n\n"
        "[gone](docs/b.md) [bad anchor](docs/a.md#nope) [outside](../x.md) [rooted](/docs/a.md)\n"
        "`[code](nowhere.md)`\n\n```\n[block](nowhere.md)\n```\n"
    )
    problems = broken_links(md, root=tmp_path)
    assert [p.split(":")[0] for p in problems] == ["docs/b.md", "docs/a.md#nope", "../x.md", "/docs/a.md"]


# ------------------------------------------------------------------------------------------------------ the README
def test_readme_is_a_front_door_under_10_kb():
    size = len(README.read_bytes())
    assert size < MAX_README_BYTES, f"README.md is {size} bytes; move detail into docs/ (limit {MAX_README_BYTES})"


def test_readme_header_is_a_valid_space_card():
    from huggingface_hub import SpaceCard, SpaceCardData, metadata_load
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    card = SpaceCard.load(README)  # huggingface_hub's own parser: raises on a malformed header
    data = card.data
    assert isinstance(data, SpaceCardData)
    assert metadata_load(README) == data.to_dict()
    assert data.sdk == "gradio" and data.app_file == "app.py" and (ROOT / data.app_file).is_file()
    assert data.title and data.license
    assert 0 < len(data.short_description) <= 60  # the Hub's limit for short_description
    # The Space pins Gradio to sdk_version: it must be one requirements.txt allows.
    gradio_spec = next(
        line.split("gradio", 1)[1].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.startswith("gradio") and not line.startswith("gradio-")
    )
    assert Version(str(data.sdk_version)) in SpecifierSet(gradio_spec), (data.sdk_version, gradio_spec)
    # A string such as "3.11" (an unquoted 3.10 would parse as the number 3.1).
    assert isinstance(data.python_version, str) and re.fullmatch(r"3\.\d+", data.python_version)
    assert Version(data.python_version) >= Version("3.10")  # pyproject's requires-python


def test_readme_header_lists_the_hub_models_the_app_loads():
    from huggingface_hub import SpaceCard

    from sketchface.registry import KINDS

    models = SpaceCard.load(README).data.models or []
    hub_defaults = {d for k in KINDS.values() for d in k.defaults if not (ROOT / d).exists()}
    assert hub_defaults, "the registry names no Hub model by default: update this test"
    assert hub_defaults <= set(models), f"add {sorted(hub_defaults - set(models))} to the header's models"


def test_readme_has_the_two_setup_commands_as_the_makefile_defines_them():
    makefile = (ROOT / "Makefile").read_text()
    text = README.read_text(encoding="utf-8")
    blocks = "\n".join(m.group(0) for m in _FENCE.finditer(text))
    for target in ("demo", "test"):
        assert re.search(rf"^{target}:", makefile, re.M), f"the Makefile has no `{target}` target"
        assert re.search(rf"^make {target}\b", blocks, re.M), f"`make {target}` is not a command in the README"
    assert "app.py" in re.search(r"^demo:.*\n(\t.*\n)+", makefile, re.M).group(0)  # make demo runs the app


@pytest.mark.parametrize("md", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_somewhere(md):
    assert broken_links(md) == []


def test_docs_pages_are_all_reachable_from_the_readme_or_the_docs_index():
    linked = set()
    for md in (README, ROOT / "docs" / "README.md"):
        for target in links(md.read_text(encoding="utf-8")):
            if not _SCHEME.match(target):
                linked.add((md.parent / target.partition("#")[0]).resolve())
    assert [p.name for p in DOCS if p.resolve() not in linked and p.name != "README.md"] == []


def test_the_api_table_names_every_endpoint_of_the_app():
    endpoints = set(re.findall(r'api_name="(\w+)"', (ROOT / "app.py").read_text()))
    documented = set(re.findall(r"^\| `/(\w+)` \|", (ROOT / "docs" / "app.md").read_text(), re.M))
    assert endpoints and documented == endpoints
