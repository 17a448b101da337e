"""The Compare tab: paper 1's criminal sketch test across models, and the evaluation results."""

from __future__ import annotations

import gradio as gr

from sketchface.attributes import PRESETS, parse_description
from sketchface.export import AI_LABEL, labelled_grid
from sketchface.pipelines.attribute_to_face import DESCRIPTION_WEIGHT

from .common import (
    DEFAULT_RESULTS,
    MAX_COMPARE_CANDIDATES,
    MAX_COMPARE_DESCRIPTIONS,
    MAX_RESULTS_CHARS,
    _availability_md,
    _echo,
    _export,
    log,
    parse_seed,
    run_pipeline,
)


class CompareHandlers:
    """The Compare tab's event functions (a part of :class:`app_handlers.Handlers`)."""

    def compare(self, custom: str, seed, caption, weight=None, candidates=1):
        """Extra descriptions, seed, caption[, description weight[, candidates per description]] -> (grid, status)."""
        weight = DESCRIPTION_WEIGHT if weight is None else float(weight)
        k = 1 if candidates is None else int(candidates)
        if not 1 <= k <= MAX_COMPARE_CANDIDATES:
            raise gr.Error(f"Candidates per description must be 1 to {MAX_COMPARE_CANDIDATES}, got {k}.")
        columns = [(p.name, p.attributes, p.text) for p in PRESETS.values()]
        lines = [line.strip() for line in (custom or "").splitlines() if line.strip()]
        if len(lines) > MAX_COMPARE_DESCRIPTIONS:
            raise gr.Error(
                f"The criminal sketch test takes at most {MAX_COMPARE_DESCRIPTIONS} extra descriptions (one per line); "
                f"got {len(lines)}. Remove some lines, or run the test again with the rest."
            )
        for line in lines:
            try:
                parsed = parse_description(line)
            except ValueError as err:
                raise gr.Error(str(err)) from err
            if not parsed.attributes.known:
                raise gr.Error(
                    f"Nothing in {_echo(line)} was understood as an attribute; rephrase it (or remove the line)."
                )
            columns.append((line[:40], parsed.attributes, line))
        models = self.registry.loaded("attributes")
        if not models:
            raise gr.Error(_availability_md(self.registry, "attributes", "attribute-to-face").replace("⚠ ", ""))
        seed = parse_seed(seed)
        cells = []
        for entry in models:
            pipe = entry.pipeline
            row = []
            options = {"description_weight": weight} if pipe.capabilities.weighs_description else {}
            for _name, attrs, _text in columns:
                row.append(run_pipeline(pipe, attrs, num_images=k, seed=seed, **options).images)
            cells.append(row)
        cell = 128 if k == 1 else 96
        # headers: what each column was drawn from ("Criminal 1: Man with gray hair, …"), not just its name
        headers = [f"{name}: {text}" if i < len(PRESETS) else text for i, (name, _attrs, text) in enumerate(columns)]
        grid = labelled_grid(cells, [e.key for e in models], headers, cell=cell, footer=AI_LABEL)
        # what it takes to draw the same grid again: the weight applies to the models that weigh a description
        weighted = [e.key for e in models if e.pipeline.capabilities.weighs_description]
        meta = {
            "action": "criminal sketch test",
            "models": [e.key for e in models],
            "seed": seed,
            "candidates": k,
            **({"description_weight": weight, "description_weight_models": weighted} if weighted else {}),
            "columns": [{"name": c[0], "description": c[2], "attributes": c[1].known} for c in columns],
        }
        path = _export([grid], [meta], False, "criminal-sketch-test")[0]
        missing = [e for e in self.registry.of_task("attributes") if not e.ok]
        note = "".join(f"\n\nNot in the grid: `{e.key}` ({e.reason})." for e in missing)
        how = f", description weight {weight:g} ({', '.join(weighted)})" if weighted else ""
        each = f" × {k} candidates" if k > 1 else ""
        return path, f"{len(models)} model(s) × {len(columns)} description(s){each}, seed {seed}{how}.{note}"

    def default_results(self) -> str | None:
        """The results set shown first: the first named at start-up, else the shipped eval-procedural."""
        names = list(self.results)
        if self._results_given or DEFAULT_RESULTS not in self.results:
            return names[0] if names else None
        return DEFAULT_RESULTS

    def metrics(self, name: str | None = None) -> str:
        """The evaluation results set ``name`` (one of ``self.results``; empty: the default) as Markdown."""
        name = (name or "").strip() if isinstance(name, str) else name
        if not self.results:
            return (
                "No evaluation results are available. Produce them with `python -m evaluation.evaluate --models "
                "mvae=checkpoints/mvae-procedural-64 ... --out_dir results/eval-procedural` and start the app with "
                "`--results results/eval-procedural`."
            )
        name = name or self.default_results()
        if name not in self.results:  # never echoed, never used as a path
            raise gr.Error(f"Unknown results set. Choose one of: {', '.join(self.results)}.")
        path = self.results[name]
        shown = f"{name}/{path.name}"  # never the server's path
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read(MAX_RESULTS_CHARS + 1)
        except (OSError, UnicodeDecodeError) as err:
            log.warning("results set %s: %s: %s", name, type(err).__name__, err)
            raise gr.Error(f"The results set {name!r} could not be read; see the server log.") from err
        cut = "\n\n_(cut: the file is longer)_" if len(text) > MAX_RESULTS_CHARS else ""
        text = text[:MAX_RESULTS_CHARS]
        if path.suffix == ".json":
            import json

            try:
                text = json.dumps(json.loads(text), indent=1)[:MAX_RESULTS_CHARS]
            except ValueError:
                pass  # cut, or not JSON after all: shown as it is
            return f"From `{shown}`:\n\n```json\n{text}\n```{cut}"
        return f"From `{shown}`:\n\n{text}{cut}"
