"""evaluation/evaluate_words.py (issue 25's yardstick) end to end on a tiny CelebA layout, a tiny MVAE and judge."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from sketchface.attributes import ATTRIBUTES, INDEX
from sketchface.data.pairs import EVAL_WORDS
from sketchface.metrics import SexProbe
from sketchface.models.classifier import AttributeClassifier, ClassifierConfig
from sketchface.models.mvae import MVAE
from tests.helpers import tiny_mvae_config
from tests.real_faces import write_celeba_layout

INDEX_MALE = INDEX["Male"]


@pytest.fixture(scope="module")
def words():
    from evaluation import evaluate_words

    return evaluate_words


def test_judge_reliability_is_balanced_accuracy_on_real_photos(words):
    class Judge(torch.nn.Module):  # answers "present" for the first attribute only
        def predict(self, x):
            p = torch.zeros(len(x), 40)
            p[:, 0] = 1.0
            return p

    labels = -np.ones((4, 40), np.int64)
    labels[:2, 0] = 1  # attribute 0 present in half the photos; attribute 1 never
    rel = words.judge_reliability(Judge(), torch.zeros(4, 3, 8, 8), labels)
    assert rel["balanced_accuracy"][ATTRIBUTES[0]] == 0.5  # always "yes": right on the positives only
    assert rel["balanced_accuracy"][ATTRIBUTES[1]] is None  # one class only: cannot be scored
    assert rel["majority_accuracy"] == pytest.approx((0.5 + 39 * 1.0) / 40)


def test_the_true_photos_row_is_the_judge_on_the_photos_against_their_own_labels(words):
    class Judge(torch.nn.Module):  # sees glasses on everyone, a man on no one
        def predict(self, x):
            p = torch.zeros(len(x), 40)
            p[:, INDEX["Eyeglasses"]] = 1.0
            return p

    labels = -np.ones((4, 40), np.int64)
    labels[:2, INDEX["Eyeglasses"]] = 1
    labels[1:, INDEX["Male"]] = 1
    true = words.true_photos(Judge(), torch.zeros(4, 3, 8, 8), labels)
    shares = true["rare_present_fidelity"]
    assert shares["Eyeglasses"] == 1.0 and shares["Male"] == 0.0 and shares["Bald"] is None  # no bald photo
    # 40 stated per photo: wrong on glasses for photos 3-4 and on Male for photos 2-4, right on the rest
    assert true["fidelity"] == pytest.approx(1 - (2 + 3) / (4 * 40))
    # a witness states 15 of the 40 (glasses and sex among them): the same 5 misses among 4 × 15 statements
    assert true["witness_fidelity"] == pytest.approx(1 - (2 + 3) / (4 * 15))


def test_the_sface_sex_probe_reads_what_it_was_fitted_on():
    class Embedder:  # a stand-in for SFace: the embedding is the image's mean colour, men are blue
        def embed(self, faces):
            return faces.mean(dim=(2, 3)).numpy()

    men, women = torch.zeros(6, 3, 8, 8), torch.zeros(6, 3, 8, 8)
    men[:, 2], women[:, 0] = 1.0, 1.0
    probe = SexProbe(Embedder(), torch.cat([men, women]), np.array([True] * 6 + [False] * 6))
    assert probe.male(men).all() and not probe.male(women).any()
    labels = -np.ones((4, 40), np.int64)
    labels[:2, INDEX_MALE] = 1
    faces = torch.cat([men[:2], men[:1], women[:1]])  # two men drawn as men; of two women, one drawn as a man
    assert probe.agreement(faces, labels) == {"men": 1.0, "women": 0.5}
    assert probe.agreement(faces, -np.ones((4, 40), np.int64))["men"] is None  # no man described


def test_evaluate_words_end_to_end(words, tmp_path):
    root = write_celeba_layout(tmp_path / "celeba", n=16)  # 10 train, 2 valid, 4 test photos
    torch.manual_seed(0)
    MVAE(tiny_mvae_config(16)).save_pretrained(tmp_path / "mvae")
    AttributeClassifier(ClassifierConfig(image_size=16, stem_width=4, widths=[8, 8])).save_pretrained(tmp_path / "clf")
    out = tmp_path / "out"
    cfg = words.parse_args(
        ["--models", f"tiny={tmp_path / 'mvae'}", "--data_root", str(root), "--classifier", str(tmp_path / "clf")]
        + ["--size", "16", "--num_faces", "4", "--diversity_descriptions", "2", "--out_dir", str(out), "--draws", "3"]
    )
    results = words.main(cfg)
    saved = json.loads((out / "results.json").read_text())
    assert saved["num_faces"] == 4 and saved["real_vs_real_sface_fd"] >= 0
    m = saved["models"]["tiny"]
    assert m["sface_fd"] >= 0 and 0 <= m["face_found"] <= 1 and 0 <= m["fidelity"] <= 1
    assert set(m["rare_present_fidelity"]) == set(words.RARE) and m["diversity"] >= 0
    assert -1 <= m["more_like_this_sface"] <= 1 and m["ms_8_candidates"] > 0 and m["size_mb"] > 0
    assert len(m["sface_fd_per_draw"]) == 3 and abs(m["sface_fd"] - sum(m["sface_fd_per_draw"]) / 3) < 1e-9
    assert len(set(m["sface_fd_per_draw"])) > 1  # three different draws per label vector
    table = (out / "results.md").read_text()
    assert (
        "| tiny |" in table
        and "two sets of real faces" in table
        and "4 CelebA-mini test label vectors, 3 faces" in table
    )
    head, rule, ceiling, row = (line for line in table.splitlines() if line.startswith("|"))
    assert head.count("|") == rule.count("|") == ceiling.count("|") == row.count("|")  # one column per heading
    assert ceiling.startswith("| the test photos themselves")
    true = saved["true_photos"]
    assert 0 <= true["fidelity"] <= 1 and set(true["rare_present_fidelity"]) == set(words.RARE)
    assert 0 <= m["witness_fidelity"] <= 1 and 0 <= true["witness_fidelity"] <= 1
    stated = {a for a, v in m["witness_fidelity_per_attribute"].items() if v is not None}
    assert stated and stated <= set(EVAL_WORDS)  # only what a witness says is scored
    assert set(true["sface_sex"]) == {"men", "women"} and set(m["sface_sex"]) == {"men", "women"}
    assert Image.open(out / "criminals.png").width > 3 * 96  # three criminals × candidates, generated faces only
    assert results["models"]["tiny"]["sface_fd"] == m["sface_fd"]


def test_a_sketch_model_is_refused(words, tmp_path):
    from sketchface.models.translator import SketchTranslator, TranslatorConfig

    root = write_celeba_layout(tmp_path / "celeba", n=16)
    SketchTranslator(TranslatorConfig(resolution=16, channels=[8, 16, 16], style_dim=4)).save_pretrained(tmp_path / "t")
    AttributeClassifier(ClassifierConfig(image_size=16, stem_width=4, widths=[8, 8])).save_pretrained(tmp_path / "clf")
    cfg = words.parse_args(
        ["--models", f"t={tmp_path / 't'}", "--data_root", str(root), "--classifier", str(tmp_path / "clf")]
        + ["--size", "16", "--num_faces", "4", "--out_dir", str(tmp_path / "out")]
    )
    with pytest.raises(SystemExit, match="takes no words"):
        words.main(cfg)
