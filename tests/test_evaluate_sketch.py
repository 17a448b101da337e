"""evaluation/evaluate_sketch.py end to end on tiny models and a procedural CelebA-layout folder."""

from __future__ import annotations

import json

import pytest
import torch

from sketchface.data.pairs import EVAL_STYLES
from tests.real_faces import write_celeba_layout


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from sketchface.models.classifier import AttributeClassifier, ClassifierConfig
    from sketchface.models.translator import SketchTranslator, TranslatorConfig

    root = tmp_path_factory.mktemp("eval-sketch")
    layout = write_celeba_layout(root / "celeba", n=12)
    torch.manual_seed(0)
    translator = root / "tiny-translator"
    SketchTranslator(TranslatorConfig(resolution=32, channels=[8, 16], groups=4)).save_pretrained(translator)
    (translator / "README.md").write_text("---\nlicense: other\n---\n\n# tiny\n")
    classifier = root / "tiny-classifier"
    AttributeClassifier(ClassifierConfig(image_size=16, stem_width=4, widths=[8])).eval().save_pretrained(classifier)
    return root, layout, translator, classifier


def test_table_grids_and_cards(setup, conftest_psp):
    from evaluation import evaluate_sketch

    root, layout, translator, classifier = setup
    argv = [
        "--models", f"tiny={translator}", f"psp={conftest_psp}", "--data_root", str(layout), "--photos", "2",
        "--candidates", "3", "--candidate_photos", "1", "--classifier", str(classifier), "--words_judge", "",
        "--threads", "1",
        "--out_dir", str(root / "out"), "--grid_dir", str(root / "grids"), "--update_cards",
    ]  # fmt: skip
    results = evaluate_sketch.main(evaluate_sketch.parse_args(argv))
    assert results["photos"] == 2 and results["perceptual"].startswith(("ST-LPIPS", "LPIPS"))
    tiny = results["models"]["tiny"]
    for style in ("computed", "edges", "xdog"):
        assert {
            "mse",
            "ssim",
            "lpips",
            "sface_true",
            "sface_other",
            "sface_crop_true",
            "sface_crop_other",
            "agreement",
        } <= set(tiny[style])
    assert tiny["runtime_ms"] > 0 and tiny["candidates"]["per_sketch"] == 3 and tiny["checkpoint_mb"] >= 0
    constant = results["models"]["mean training face (a constant)"]
    assert "runtime_ms" not in constant and constant["computed"]["mse"] > 0
    # one face against every photo, or against the same photos in another order: the same mean, both readings
    c = constant["computed"]
    assert c["sface_crop_true"] == pytest.approx(c["sface_crop_other"]) and c["sface_true"] == pytest.approx(
        c["sface_other"]
    )
    assert 0.5 <= results["majority_baseline"] <= 1
    saved = json.loads((root / "out" / "results.json").read_text())
    assert saved["models"].keys() == results["models"].keys()
    md = (root / "out" / "results.md").read_text()
    assert (
        "| tiny |" in md
        and "**edges sketches**" in md
        and "SFace, centre crop: true / other" in md
        and "3 candidates per computed sketch" in md
    )
    # grids with dataset photos go to grid_dir only; the committable picture uses no dataset pixels
    assert sorted(p.name for p in (root / "grids").iterdir()) == [
        "candidates.png",
        "sketch_to_face_computed.png",
        "sketch_to_face_edges.png",
    ]
    assert sorted(p.name for p in (root / "out").iterdir()) == ["drawings.png", "results.json", "results.md"]
    card = (translator / "README.md").read_text()
    assert card.count(evaluate_sketch.CARD_START) == 1 and "on held-out real faces" in card
    evaluate_sketch.update_card(translator, "tiny", results)  # again: the block is replaced, not repeated
    assert (translator / "README.md").read_text().count(evaluate_sketch.CARD_START) == 1


def test_update_cards_writes_each_card_once_for_the_first_name_that_owns_it(tmp_path, capsys):
    from evaluation.evaluate_sketch import cards_to_update

    shipped, variant, other = tmp_path / "shipped", tmp_path / "variant", tmp_path / "other"
    for folder in (shipped, variant, other):
        folder.mkdir()
    (shipped / "README.md").write_text("# shipped\n")
    (other / "README.md").write_text("# other\n")
    (variant / "README.md").symlink_to(shipped / "README.md")  # the shipped weights with another config.json
    models = {"translator": str(shipped), "variant": str(variant), "again": str(shipped), "other": str(other)}
    assert cards_to_update(models) == {"translator": str(shipped), "other": str(other)}
    said = capsys.readouterr().out
    assert "'variant' shares its model card with 'translator'" in said and "'again'" in said


@pytest.fixture(scope="module")
def conftest_psp(tmp_path_factory):
    from tests.conftest import _tiny_psp_folder

    return _tiny_psp_folder(tmp_path_factory.mktemp("psp"))


def test_a_translator_with_words_is_also_scored_with_a_witness_s_words(setup):
    from evaluation import evaluate_sketch
    from sketchface.models.translator import SketchTranslator, TranslatorConfig

    root, layout, _translator, classifier = setup
    torch.manual_seed(1)
    net = SketchTranslator(TranslatorConfig(resolution=32, channels=[8, 16], groups=4, attr_dim=40))
    for weight in net.word_parameters():
        torch.nn.init.normal_(weight, std=0.5)
    folder = root / "tiny-words"
    net.save_pretrained(folder)
    argv = [
        "--models", f"words={folder}", "--data_root", str(layout), "--photos", "2", "--candidates", "2",
        "--candidate_photos", "1", "--classifier", str(classifier), "--words_judge", str(classifier), "--threads", "1",
        "--no_constant",
        "--out_dir", str(root / "out-words"), "--grid_dir", str(root / "grids-words"), "--update_cards",
    ]  # fmt: skip
    results = evaluate_sketch.main(evaluate_sketch.parse_args(argv))
    words = results["models"]["words"]["words"]
    assert set(words) == set(EVAL_STYLES)
    for style, w in words.items():
        assert {"mse", "sface_true", "stated_agreement", "stated_agreement_without"} <= set(w)
        assert w["mse"] != results["models"]["words"][style]["mse"]  # the words changed the faces
    assert "Sketch + a witness's words" in (root / "out-words" / "results.md").read_text()
    assert "with a witness's words" in (folder / "README.md").read_text()
    said = evaluate_sketch.witness(torch.ones(40).numpy())
    assert said.known["Male"] is True and said["Attractive"] is None  # only the witness's attributes are stated
