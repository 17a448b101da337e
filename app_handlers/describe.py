"""The Describe tab: words and attribute controls → candidate faces, history, more like this, cross."""

from __future__ import annotations

import time
from typing import Any

import gradio as gr
from PIL import Image

from sketchface.attributes import ATTRIBUTES, PRESETS, Attributes, describe, parse_description, pretty
from sketchface.pipelines.attribute_to_face import DESCRIPTION_WEIGHT
from sketchface.registry import attribute_agreement

from .common import (
    TRISTATE,
    UNKNOWN,
    _echo,
    _entry_or_error,
    _export,
    _history_offset,
    _radio_value,
    _sentence,
    _short,
    _tristate_value,
    download_copy,
    md_text,
    parse_seed,
    run_pipeline,
)


class DescribeHandlers:
    """The Describe tab's event functions (a part of :class:`app_handlers.Handlers`)."""

    def parse(self, text: str, *args):
        """text[, the 40 attribute radios, the last reading] → the 40 radios, the "Understood" line, the new reading.

        Applies :data:`READING_RULE` (see :meth:`_read`); called with the text alone (the API's short form), the
        text fills the controls."""
        attrs, reading = self._read(text, *self._radios_and_reading(args))
        return [*(reading["values"][name] for name in ATTRIBUTES), reading["md"], reading]

    @staticmethod
    def _radios_and_reading(args: tuple) -> tuple[list[str], dict | None]:
        radios = list(args[: len(ATTRIBUTES)])
        return radios, (args[len(ATTRIBUTES)] if len(args) > len(ATTRIBUTES) else None)

    @staticmethod
    def show_reading(reading: dict):
        """A new reading on the page: the 40 radios and the "Understood" line as it left them (after Understand,
        Enter, a preset or Generate: what was actually used), and the reading itself, kept for the next one."""
        return [*(reading["values"][name] for name in ATTRIBUTES), reading["md"], reading]

    def _read(self, text: str, radios: list[str], reading: dict | None) -> tuple[Attributes, dict]:
        """What to generate from, by :data:`READING_RULE`; returns (attributes, the new reading).

        ``reading`` is the last reading: ``{"text": the text read, "values": the 40 radio values it left on
        screen, "md": its "Understood" line}``. When the text is the one last read, the radios on screen are used
        as they are. When it changed, the text is read again and every radio set to yes or no since the last
        reading (now differing from what that reading left) wins over it; a radio reset to "?" leaves the
        attribute to the new text. ``None`` (nothing read yet on the page, and always for an API call): every
        radio set to yes or no wins over the text."""
        reading = reading or {}
        last = reading.get("values") or {}
        shown = {name: (v if v in TRISTATE else UNKNOWN) for name, v in zip(ATTRIBUTES, radios)}
        shown.update({name: UNKNOWN for name in ATTRIBUTES[len(radios) :]})
        try:
            result = parse_description(text or "")
        except ValueError as err:
            raise gr.Error(str(err)) from err
        if (text or "").strip() == (reading.get("text") or "").strip():
            attrs = Attributes({name: _tristate_value(v) for name, v in shown.items()})
        else:
            by_hand = {
                name: _tristate_value(v) for name, v in shown.items() if v != UNKNOWN and v != last.get(name, UNKNOWN)
            }
            attrs = result.attributes.merge(by_hand)
        values = {name: _radio_value(attrs[name]) for name in ATTRIBUTES}
        return attrs, {"text": text or "", "values": values, "md": self._parse_md(result, attrs)}

    @staticmethod
    def _parse_md(result: Any, attrs: Attributes | None = None) -> str:
        """The "Understood" line: what is used (``attrs``, default the text's reading), what was set by hand over
        the text, the words not understood and the text's own contradictions."""
        attrs = result.attributes if attrs is None else attrs
        parts = [f"**Understood:** {describe(attrs)}" if attrs.known else "**Understood:** nothing yet."]
        by_hand = [name for name in ATTRIBUTES if attrs[name] != result.attributes[name]]
        if by_hand:
            parts.append(
                "**Set by hand, over the text:** "
                + ", ".join(f"{pretty(name)} = {_radio_value(attrs[name])}" for name in by_hand)
            )
        if result.unknown_words:
            # a code span shows its text as is (no HTML); only a backtick could end it early
            parts.append("**Not understood:** " + ", ".join(f"`{w.replace('`', '')}`" for w in result.unknown_words))
        for note in getattr(result, "conflicts", ()):
            parts.append(f"_{md_text(note)}_")  # quotes the user's phrases
        return "\n\n".join(parts)

    def preset(self, name: str):
        """A criminal preset: its text, and every control as that text alone says (a preset starts afresh)."""
        preset = PRESETS.get(name)
        if preset is None:
            raise gr.Error(f"Unknown preset {_echo(name)}; choose one of {', '.join(PRESETS)}.")
        return [preset.text, *self.parse(preset.text)]

    def _captions(self, images: list[Image.Image], attrs: Attributes | None) -> list[str]:
        clf = self.registry.loaded("classifier")
        caps = [f"#{i + 1}" for i in range(len(images))]
        if clf and attrs is not None and attrs.known:
            try:
                agreement = attribute_agreement(clf[0].pipeline, images, attrs)
            except Exception:  # noqa: BLE001 - the check is a bonus; never fail a generation over it
                return caps
            caps = [f"#{i + 1} · classifier sees {m}/{n}" for i, (m, n) in enumerate(agreement)]
        return caps

    def _new_round(
        self, state: dict, label: str, out, meta, caption: bool, attrs: Attributes | None, prefix: str
    ) -> dict:
        """A new round of candidates from a pipeline's ``FaceOutput`` ``out``: its faces and, for more like this
        and crossing, their latents (row i for candidate i + 1; ``None`` when the pipeline has none)."""
        images = out.images
        paths = _export(images, meta, caption, prefix, full=False)
        rnd = {
            "label": label,
            "images": images,
            "latents": out.latents,
            "paths": paths,
            "meta": meta,
            "captions": self._captions(images, attrs),
        }
        state = {"rounds": [*state.get("rounds", []), rnd], "current": len(state.get("rounds", []))}
        return state

    def _round_outputs(self, state: dict, status: str):
        """Outputs of a round: the history strip is refreshed by a chained event (see history_view), so an API
        call returns (and a client downloads) only this round's candidates."""
        rnd = state["rounds"][state["current"]]
        gallery = list(zip(rnd["paths"], rnd["captions"]))
        status = f"**Round {state['current'] + 1}** · {status}"
        return gallery, state, status, 0, 0, "Pick a candidate (click it) to continue.", None

    def history_view(self, state: dict):
        """The history strip, and the candidates' preview closed (``selected_index=None``): a new round resets the
        selection to none, and an open preview would show the old index in the new round as if it were picked."""
        first = _history_offset(state)
        rounds = state.get("rounds", [])[first:]
        strip = [(r["paths"][0], f"Round {first + i + 1}: {r['label']}") for i, r in enumerate(rounds)]
        return strip, gr.Gallery(selected_index=None)

    def generate(self, text, *args):
        """text, the 40 attribute radios, model, n, seed, caption, state[, description weight[, last reading]].

        The attributes follow :data:`READING_RULE` (:meth:`_read`); the new reading is returned last, and the
        page then shows it (radios and "Understood" line: what was actually used)."""
        radios, (model, n, seed, caption, state, *rest) = list(args[: len(ATTRIBUTES)]), args[len(ATTRIBUTES) :]
        weight = float(rest[0]) if rest and rest[0] is not None else DESCRIPTION_WEIGHT
        attrs, reading = self._read(text, radios, rest[1] if len(rest) > 1 else None)
        if not attrs.known:
            raise gr.Error(
                "Nothing to go on: type a description (e.g. 'young man with glasses') or set at least one attribute "
                "to yes or no, or pick a criminal preset."
            )
        entry = _entry_or_error(self.registry, model, "attributes", "attribute-to-face")
        n, seed = int(n), parse_seed(seed)
        t0 = time.perf_counter()
        pipe = entry.pipeline
        # what it takes to draw the same faces again: a pipeline that weighs the description (an MVAE) gets the weight
        weighted = {"description_weight": weight} if pipe.capabilities.weighs_description else {}
        out = run_pipeline(pipe, attrs, num_images=n, seed=seed, **weighted)
        images = out.images
        ms = (time.perf_counter() - t0) * 1000
        known = {k: bool(v) for k, v in attrs.known.items()}
        meta = [
            {
                "model": entry.key,
                "source": entry.source,
                "action": "describe",
                "attributes": known,
                "description": text,
                "seed": seed,
                **weighted,
                "candidate": i + 1,
            }
            for i in range(len(images))
        ]
        state = self._new_round(state or {}, _short(describe(attrs)), out, meta, caption, attrs, "candidate")
        status = f"{len(images)} candidates from `{entry.key}` (seed {seed}) in {ms:.0f} ms: {describe(attrs)}"
        status += self._seldom_note(entry, attrs)
        return (*self._round_outputs(state, status), reading)

    def _seldom_note(self, entry, attrs: Attributes) -> str:
        """A warning when the description asks for attributes this model was measured to seldom draw (its
        ``seldom_drawn``), naming another loaded model that has no such finding for them; "" otherwise."""
        asked = [name for name in entry.pipeline.seldom_drawn if attrs[name] is True]
        if not asked:
            return ""
        shares = ", ".join(f"{pretty(n)} ({entry.pipeline.seldom_drawn[n]:.0%} of the time)" for n in asked)
        others = [
            e.key
            for e in self.registry.loaded("attributes")
            if e is not entry and not set(asked) & set(e.pipeline.seldom_drawn)
        ]
        tip = f" `{others[0]}` may draw them." if others else ""
        return f"\n\n⚠️ Asked for, but this model seldom draws it (measured on held-out descriptions): {shares}.{tip}"

    def select(self, state: dict, a: float | None, caption: bool, evt: gr.SelectData):
        b = a
        a = int(evt.index) + 1
        return a, b, self._selection_md(state, a, b), download_copy(self._selected_path(state, a), caption)

    @staticmethod
    def _selected_path(state: dict, idx: int | None) -> str | None:
        if not state or not state.get("rounds") or not idx:
            return None
        paths = state["rounds"][state["current"]]["paths"]
        return paths[int(idx) - 1] if 1 <= int(idx) <= len(paths) else None

    @staticmethod
    def _selection_md(state: dict, a: int | None, b: int | None) -> str:
        if not a:
            return "Pick a candidate (click it) to continue."
        text = f"**Selected: #{int(a)}.** More like this makes variations of it; Send to Stylize edits it."
        if b and int(b) != int(a):
            text += f" Cross with… blends #{int(a)} with your previous pick #{int(b)}."
        else:
            text += " To cross two faces, click a second candidate."
        return text

    def _pick(self, state: dict, idx: Any, what: str = "candidate") -> tuple[Image.Image, dict]:
        """The picked candidate's face and metadata (gr.Error when nothing valid is picked)."""
        if not state or not state.get("rounds"):
            raise gr.Error("There are no candidates yet: generate some first.")
        rnd = state["rounds"][state["current"]]
        try:
            i = int(idx)
        except (TypeError, ValueError):
            i = 0
        if i == 0:
            raise gr.Error(f"Pick a {what} first (click one in the gallery).")
        if not 1 <= i <= len(rnd["images"]):
            raise gr.Error(f"There is no candidate #{i}: this round has {len(rnd['images'])}.")
        return rnd["images"][i - 1], rnd["meta"][i - 1]

    @staticmethod
    def _subject(state: dict, idx: Any, image: Image.Image, meta: dict, entry) -> Any:
        """What to breed from: the picked candidate's own latent when ``entry``'s model drew it (so strength 0 is the
        face itself), else its image, which the pipeline reads with its image encoder (or refuses, saying why)."""
        latents = state["rounds"][state["current"]].get("latents")
        if latents is not None and meta.get("model") == entry.key:
            return latents[int(idx) - 1]
        return image

    def more_like_this(self, a, strength, n, seed, model, caption, state):
        image, parent = self._pick(state, a)
        entry = _entry_or_error(self.registry, model, "attributes", "attribute-to-face")
        pipe = entry.pipeline
        if not callable(getattr(pipe, "variations", None)):
            raise gr.Error(f"{entry.key} cannot make variations (its pipeline has no variations()).")
        n, seed = int(n), parse_seed(seed)
        subject = self._subject(state, a, image, parent, entry)
        out = run_pipeline(pipe.variations, subject, num_images=n, seed=seed, strength=float(strength))
        images = out.images
        attrs_known = parent.get("attributes") or {}
        meta = [
            {
                "model": entry.key,
                "source": entry.source,
                "action": "variations",
                "parent": parent,
                "strength": float(strength),
                "attributes": attrs_known,
                "seed": seed,
                "candidate": i + 1,
            }
            for i in range(len(images))
        ]
        label = f"like #{int(a)} of round {state['current'] + 1}"
        state = self._new_round(state, label, out, meta, caption, Attributes(attrs_known), "variation")
        return self._round_outputs(
            state, f"{len(images)} variations of #{int(a)} (strength {float(strength):.2f}, seed {seed})."
        )

    def cross(self, a, b, n, seed, model, caption, state):
        img_a, meta_a = self._pick(state, a)
        if not b or (a is not None and int(b) == int(a)):
            raise gr.Error("Cross with… needs two different picks: click one candidate, then another.")
        img_b, meta_b = self._pick(state, b)
        entry = _entry_or_error(self.registry, model, "attributes", "attribute-to-face")
        pipe = entry.pipeline
        if not callable(getattr(pipe, "cross", None)):
            raise gr.Error(f"{entry.key} cannot cross two faces (its pipeline has no cross()).")
        n, seed = int(n), parse_seed(seed)
        subject_a = self._subject(state, a, img_a, meta_a, entry)
        subject_b = self._subject(state, b, img_b, meta_b, entry)
        out = run_pipeline(pipe.cross, subject_a, subject_b, num_images=n)  # deterministic: the seed is recorded
        images = out.images
        meta = [
            {
                "model": entry.key,
                "source": entry.source,
                "action": "cross",
                "parents": [meta_a, meta_b],
                "seed": seed,
                "candidate": i + 1,
            }
            for i in range(len(images))
        ]
        state = self._new_round(state, f"#{int(a)} × #{int(b)}", out, meta, caption, None, "cross")
        return self._round_outputs(state, f"{len(images)} blends of #{int(a)} and #{int(b)} (seed {seed}).")

    def restore_round(self, round_no, state):
        if not state or not state.get("rounds"):
            raise gr.Error("There is no history yet: generate some candidates first.")
        i = int(round_no or 0) - 1
        if not 0 <= i < len(state["rounds"]):
            raise gr.Error(f"There is no round {int(round_no or 0)}; rounds go from 1 to {len(state['rounds'])}.")
        state = {**state, "current": i}
        return self._round_outputs(state, _sentence(f"Back to round {i + 1}: {state['rounds'][i]['label']}"))

    def history_select(self, state: dict, evt: gr.SelectData):
        return _history_offset(state) + int(evt.index) + 1

    def refresh_downloads(self, state, a, paths, pick, caption):
        """The Describe and Sketch downloads again, after the caption box was ticked or unticked."""
        i = int(pick or 0)
        sketch = paths[i - 1] if paths and 1 <= i <= len(paths) else None
        return download_copy(self._selected_path(state, a), caption), download_copy(sketch, caption)

    def send_to_stylize(self, a, state, caption=True):
        """The selected candidate → the Stylize tab (as its download copy: label in the metadata, caption strip
        when ticked), with its provenance (see :meth:`stylize`) and an empty undo trail."""
        self._pick(state, a)
        return self._to_stylize(self._selected_path(state, a), caption)
