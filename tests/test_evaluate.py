"""evaluation/evaluate.py and benchmark.py end to end on tiny stand-in pipelines and an untrained classifier."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from evaluation import benchmark
from sketchface.attributes import ATTRIBUTES, INDEX, Attributes
from sketchface.models.classifier import AttributeClassifier, ClassifierConfig
from sketchface.pipelines.base import Capabilities, FaceOutput
from tests.helpers import tiny_mvae_config, tiny_psp_config

SIZE = 32


class StandInFaces(Dataset):
    """Faces whose colour encodes two attributes, with a 'sketch' (grey version)."""

    def __init__(self, n: int = 6, size: int = SIZE):
        g = torch.Generator().manual_seed(0)
        self.labels = (torch.rand(n, 40, generator=g) > 0.5).float()
        self.images = torch.stack([_face(self.labels[i], i, size) for i in range(n)])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        img = self.images[i]
        return {"image": img, "labels": self.labels[i], "sketch": img.mean(0, keepdim=True)}


def _face(labels: torch.Tensor, seed: int, size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.tensor([0.3 + 0.5 * float(labels[INDEX["Blond_Hair"]]), 0.4, 0.3 + 0.5 * float(labels[INDEX["Male"]])])
    return (base[:, None, None] + 0.1 * torch.rand(3, size, size, generator=g)).clamp(0, 1)


class FakeAttributeToFace:
    """Duck-typed AttributeToFace: colour from the attributes, noise from the seed."""

    capabilities = Capabilities(takes_words=True)

    def __init__(self, size: int = 48):
        self.size = size
        self.device = torch.device("cpu")
        self.calls = 0

    def to(self, device):
        self.device = torch.device(device)
        return self

    def __call__(self, attributes, *, num_images: int = 1, seed: int = 0) -> FaceOutput:
        self.calls += 1
        attrs = Attributes(attributes)
        labels = torch.as_tensor((attrs.to_vector() > 0).astype(np.float32))
        return FaceOutput(
            [
                Image.fromarray((_face(labels, seed * 100 + k, self.size) * 255).byte().permute(1, 2, 0).numpy())
                for k in range(num_images)
            ]
        )


class FakeMVAE(FakeAttributeToFace):
    """A stand-in with an image encoder whose decoder is perfect: ``reconstruct`` gives the face back."""

    capabilities = Capabilities(takes_words=True, has_image_encoder=True)

    def reconstruct(self, image: torch.Tensor) -> Image.Image:
        return Image.fromarray((image * 255).round().byte().permute(1, 2, 0).numpy())


class FakeSketchToFace:
    """Duck-typed SketchToFace: the sketch tinted, plus seeded noise."""

    device = torch.device("cpu")
    capabilities = Capabilities(takes_sketch=True)

    def to(self, device):
        return self

    def __call__(self, sketch: Image.Image, *, num_images: int = 1, seed: int = 0) -> FaceOutput:
        rng = np.random.default_rng(seed)
        a = np.asarray(sketch.convert("RGB"), dtype=np.float32)
        return FaceOutput(
            [
                Image.fromarray(np.clip(a * 0.9 + rng.uniform(0, 20, a.shape), 0, 255).astype(np.uint8))
                for _ in range(num_images)
            ]
        )


@pytest.fixture(scope="module")
def evaluate():
    from evaluation import evaluate

    return evaluate


@pytest.fixture()
def tiny_classifier(tmp_path):
    torch.manual_seed(0)
    clf = AttributeClassifier(ClassifierConfig(image_size=16, stem_width=4, widths=[8, 8]))
    clf.save_pretrained(tmp_path / "clf")
    return tmp_path / "clf"


def _fake_checkpoint(path: Path, config: dict) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_detect_kind_and_clear_errors(evaluate, tmp_path, tiny_classifier):
    mvae = _fake_checkpoint(tmp_path / "mvae", {"model_type": "mvae", "latent_dim": 100})
    old_mvae = _fake_checkpoint(tmp_path / "old-mvae", {"config": {"model_type": "cvae", "latent_dim": 100}})
    psp = _fake_checkpoint(tmp_path / "psp", {"fpn_channels": 96, "generator": {"n_mlp": 8}})  # pSp before model_type
    gen = _fake_checkpoint(tmp_path / "gen", {"model_type": "stylegan2", "n_mlp": 8})
    assert evaluate.detect_kind(mvae) == evaluate.detect_kind(old_mvae) == "attribute"
    assert evaluate.detect_kind(psp) == "sketch"
    with pytest.raises(evaluate.CheckpointError, match="bare StyleGAN"):
        evaluate.detect_kind(gen)
    with pytest.raises(evaluate.CheckpointError, match="not found"):
        evaluate.detect_kind(tmp_path / "nowhere")
    with pytest.raises(evaluate.CheckpointError, match="classifier"):
        evaluate.detect_kind(tiny_classifier)
    with pytest.raises(evaluate.CheckpointError, match="cannot tell"):
        evaluate.detect_kind(_fake_checkpoint(tmp_path / "odd", {"foo": 1}))
    with pytest.raises(evaluate.CheckpointError, match="no config.json"):
        (tmp_path / "bare").mkdir()
        evaluate.detect_kind(tmp_path / "bare")
    # a real pipeline class that cannot read the folder gives a load error naming the path
    with pytest.raises(evaluate.CheckpointError, match="odd"):
        evaluate.load_pipeline(str(tmp_path / "odd"), kind="attribute")
    with pytest.raises(evaluate.CheckpointError, match="classifier checkpoint not found"):
        evaluate.load_classifier(str(tmp_path / "missing-clf"), torch.device("cpu"))


def test_criminals_are_three_partial_descriptions(evaluate):
    crims = evaluate.criminals()
    assert [name for name, _, _ in crims] == ["Criminal 1", "Criminal 2", "Criminal 3"]
    for _, text, attrs in crims:
        assert text and 0 < len(attrs.known) < 40


def test_evaluate_end_to_end(evaluate, tmp_path, tiny_classifier, monkeypatch):
    fakes = {"attr-a": FakeMVAE(), "attr-b": FakeAttributeToFace(24), "sketchy": FakeSketchToFace()}
    kinds = {"attr-a": "attribute", "attr-b": "attribute", "sketchy": "sketch"}
    monkeypatch.setattr(evaluate, "load_pipeline", lambda path, kind=None, device="cpu": (kinds[path], fakes[path]))
    monkeypatch.setattr(evaluate, "build_dataset", lambda cfg, with_sketch: StandInFaces(6))
    out = tmp_path / "eval"
    cfg = evaluate.parse_args(
        [
            "--models",
            *(f"{n}={n}" for n in fakes),
            "--classifier",
            str(tiny_classifier),
            "--num_samples",
            "5",
            "--size",
            str(SIZE),
            "--candidates",
            "3",
            "--grid_candidates",
            "2",
            "--runtime_repeats",
            "2",
            "--out_dir",
            str(out),
            "--device",
            "cpu",
        ]
    )
    results = evaluate.main(cfg)

    saved = json.loads((out / "results.json").read_text())
    assert set(saved["models"]) == set(fakes)
    a, s = saved["models"]["attr-a"], saved["models"]["sketchy"]
    assert a["kind"] == "attribute" and s["kind"] == "sketch"
    for r in (a, s):
        assert 0 <= r["mse"] < 1 and r["runtime_ms"]["p50_ms"] > 0
        assert 0 <= r["attribute_fidelity"] <= 1 and r["diversity"] > 0 and r["fcd"] >= 0
        assert -1 <= r["identity"] <= 1
    assert 0 <= a["criminal_fidelity"] <= 1 and "Gray_Hair" in a["criminals"]["per_attribute"]
    # the attribute stand-in reproduces the truth's colours from its labels; the sketch stand-in returns grey
    assert a["mse"] < s["mse"]
    assert results["meta"]["perceptual"] in ("LPIPS (alex)", "ST-LPIPS (alex)")

    table = (out / "results.md").read_text()
    assert "| Model | Runtime (ms) | MSE ↓ |" in table and "SFace cos ↑" in table and "Attr. fidelity ↑" in table
    assert "### Sketch → face" in table and "| sketchy |" in table and "| attr-b |" in table
    assert set(s["attribute_bias"]) == set(ATTRIBUTES) and "Largest attribute biases" in table
    assert (
        0.5 <= s["attribute_majority_baseline"] <= 1
        and f"would score {s['attribute_majority_baseline']:.3f} agreement" in table
    )
    # decoder ceiling, for models with an image encoder only: a perfect decoder scores what the real faces score
    rec = a["reconstruction"]
    assert rec["rms"] < 0.01 and abs(rec["attribute_fidelity"] - saved["reference"]["attribute_fidelity"]) < 0.05
    assert "reconstruction" not in saved["models"]["attr-b"] and "reconstruction" not in s
    assert (
        "Decoder ceiling (each held-out face re-rendered" in table
        and f"attr-a {rec['attribute_fidelity']:.3f}" in table
    )

    # sketch → face examples: a row per held-out face (4 at most), the face, its sketch and 2 candidates
    assert Image.open(out / "sketch_examples.png").size == (110 + 4 * 96 + 6, 58 + 4 * 96)
    assert saved["sketch_examples_grid"].endswith("sketch_examples.png")
    grid = Image.open(out / "criminals.png")
    # rows: header + 2 attribute models; columns: label + 3 criminals × 2 candidates
    assert grid.size[1] == 58 + 2 * 96 and grid.size[0] == 110 + 3 * (2 * 96 + 6)
    assert fakes["attr-a"].calls > 5


def test_attribute_bias_finds_what_the_outputs_overdo(evaluate):
    requested = torch.ones(4, len(ATTRIBUTES))
    requested[:, INDEX["Blurry"]] = -1  # nobody asked for Blurry ...
    probs = torch.where(requested > 0, 0.9, 0.1)
    probs[:, INDEX["Blurry"]] = 0.8  # ... yet every output looks blurred
    probs[:2, INDEX["Young"]] = 0.2  # and half the faces look older than asked
    bias = evaluate.attribute_bias(probs, requested)
    assert bias["Blurry"] == {"output": 1.0, "asked": 0.0} and bias["Young"] == {"output": 0.5, "asked": 1.0}
    assert bias["Male"] == {"output": 1.0, "asked": 1.0}
    line = evaluate.bias_line("m", bias, top=2)
    assert line == "- m: Blurry 1.00 vs 0.00, Young 0.50 vs 1.00"


def test_benchmark_end_to_end(tmp_path, monkeypatch):
    fake = FakeAttributeToFace()
    monkeypatch.setattr(benchmark, "load_pipeline", lambda path, kind=None, device="cpu": ("attribute", fake))
    out = tmp_path / "bench.json"
    cfg = benchmark.parse_args(
        [
            "--models",
            "fake=somewhere",
            "--repeats",
            "2",
            "--train_steps",
            "2",
            "--train_models",
            "classifier",
            "--train_batch",
            "8",
            "--json",
            str(out),
            "--device",
            "cpu",
        ]
    )
    results = benchmark.main(cfg)
    saved = json.loads(out.read_text())
    lat = saved["pipelines"]["fake"]
    assert set(lat["latency"]) == {"batch_1", "batch_8"}
    assert lat["latency"]["batch_8"]["items_per_call"] == 8 and lat["latency"]["batch_1"]["p50_ms"] > 0
    assert lat["peak_memory_mb"] > 0
    options = saved["training"]["classifier"]["options"]
    assert set(options) == {"fp32", "channels_last", "bf16"} and all(o["steps_per_s"] > 0 for o in options.values())
    assert results == saved


@pytest.mark.skipif(
    importlib.util.find_spec("sketchface.pipelines.sketch_to_face") is None, reason="SketchToFace not available"
)
@pytest.mark.parametrize("spatial", [0, 8])
def test_evaluate_real_untrained_psp_checkpoint(evaluate, tmp_path, tiny_classifier, monkeypatch, spatial):
    """A tiny untrained pSp checkpoint (with a spatial code too) goes through detection,
    SketchToFace.from_pretrained and every metric."""

    from sketchface.models.psp import PSP

    torch.manual_seed(0)
    PSP(tiny_psp_config(16, spatial_resolution=spatial)).save_pretrained(tmp_path / "psp")
    assert evaluate.detect_kind(tmp_path / "psp") == "sketch"
    kind, pipe = evaluate.load_pipeline(str(tmp_path / "psp"))
    assert kind == "sketch" and isinstance(pipe, evaluate.SketchPipeline)

    monkeypatch.setattr(evaluate, "build_dataset", lambda cfg, with_sketch: StandInFaces(3))
    args = ["--models", f"psp={tmp_path / 'psp'}", "--classifier", str(tiny_classifier), "--num_samples", "3"]
    args += ["--size", str(SIZE), "--candidates", "2", "--runtime_repeats", "1", "--out_dir", str(tmp_path / "out")]
    results = evaluate.main(evaluate.parse_args(args))
    r = results["models"]["psp"]
    assert r["kind"] == "sketch" and 0 < r["mse"] < 1 and r["runtime_ms"]["p50_ms"] > 0
    assert not (tmp_path / "out" / "criminals.png").exists()  # no attribute model, no grid
    assert "inversion" not in r  # the generator ceiling is opt-in

    # generator ceiling: W+ optimised against the photos gets closer to them than the encoder's latents
    inv_args = [*args[:-1], str(tmp_path / "inv"), "--inversion_steps", "10", "--inversion_faces", "2"]
    inv = evaluate.main(evaluate.parse_args(inv_args))["models"]["psp"]["inversion"]
    assert inv["faces"] == 2 and inv["steps"] == 10 and inv["mse"] < inv["encoder_mse"]
    assert 0 <= inv["attribute_agreement"] <= 1 and 0 <= inv["encoder_attribute_agreement"] <= 1
    assert (
        "Generator ceiling (W+ optimised against each held-out photo" in (tmp_path / "inv" / "results.md").read_text()
    )
    with pytest.raises(SystemExit):
        evaluate.parse_args([*args, "--inversion_steps", "-1"])


@pytest.mark.skipif(
    importlib.util.find_spec("sketchface.pipelines.attribute_to_face") is None, reason="AttributeToFace not available"
)
def test_evaluate_and_benchmark_real_untrained_mvae_checkpoint(evaluate, tmp_path, tiny_classifier, monkeypatch):
    """A tiny untrained MVAE checkpoint: detected as an attribute model, evaluated, gridded and benchmarked."""
    from sketchface.models.mvae import MVAE

    torch.manual_seed(0)
    MVAE(tiny_mvae_config(32, widths=[4, 8, 8, 8], attr_hidden=16)).save_pretrained(tmp_path / "mvae")
    assert evaluate.detect_kind(tmp_path / "mvae") == "attribute"
    monkeypatch.setattr(evaluate, "build_dataset", lambda cfg, with_sketch: StandInFaces(3))
    args = ["--models", f"mvae={tmp_path / 'mvae'}", "--classifier", str(tiny_classifier), "--num_samples", "3"]
    args += ["--size", str(SIZE), "--candidates", "2", "--grid_candidates", "1", "--runtime_repeats", "1"]
    results = evaluate.main(evaluate.parse_args([*args, "--out_dir", str(tmp_path / "out")]))
    r = results["models"]["mvae"]
    assert r["kind"] == "attribute" and 0 < r["mse"] < 1 and 0 <= r["criminal_fidelity"] <= 1
    assert 0 <= r["reconstruction"]["attribute_fidelity"] <= 1 and r["reconstruction"]["rms"] > 0
    assert Image.open(tmp_path / "out" / "criminals.png").size == (110 + 3 * (96 + 6), 58 + 96)

    # sketch + description, per description weight, on a tuning split (another start seed)
    sa = ["--sketch_attributes", "--description_weights", "1", "3", "--start_seed", "20000000"]
    results = evaluate.main(evaluate.parse_args([*args, *sa, "--out_dir", str(tmp_path / "sa")]))
    sa_r = results["sketch_attributes"]["mvae"]
    assert set(sa_r["weights"]) == {"1.0", "3.0"} and sa_r["candidates"] == 2
    for row in sa_r["weights"].values():
        assert 0 <= row["attribute_fidelity"] <= 1 and 0 <= row["glasses_rate"] <= 1 and row["rms_to_sketched_face"] > 0
    assert sa_r["sketch_only_rms"] > 0 and sa_r["attributes_only_rms"] > 0
    table = (tmp_path / "sa" / "results.md").read_text()
    assert "### Sketch + attributes → face: procedural seeds from 20,000,000" in table and "| mvae | 3 |" in table
    # rows: header + 3 faces; columns: label + (face, sketch) and 2 weights, each group one candidate wide
    assert Image.open(tmp_path / "sa" / "sketch_attributes.png").size == (110 + 3 * (2 * 96 + 6), 58 + 3 * 96)
    with pytest.raises(SystemExit):
        evaluate.parse_args([*args, "--description_weights", "0"])
    with pytest.raises(SystemExit):
        evaluate.parse_args([*args, "--description_weight", "-1"])
    # --description_weight 1: the plain product of experts everywhere (the main table, the criminals)
    from sketchface.pipelines.attribute_to_face import AttributeToFace

    seen, original = [], AttributeToFace.__call__

    def spy(self, attributes=None, *, description_weight=None, **options):
        seen.append(description_weight)
        return original(self, attributes, description_weight=description_weight, **options)

    monkeypatch.setattr(AttributeToFace, "__call__", spy)
    results = evaluate.main(
        evaluate.parse_args([*args, "--description_weight", "1", "--out_dir", str(tmp_path / "w1")])
    )
    assert results["meta"]["description_weight"] == 1.0 and seen and set(seen) == {1.0}
    assert "MVAE description weight: 1 " in (tmp_path / "w1" / "results.md").read_text()

    bench = benchmark.main(
        benchmark.parse_args(
            ["--models", f"mvae={tmp_path / 'mvae'}", "--repeats", "1", "--train_models", "--device", "cpu"]
        )
    )
    assert bench["pipelines"]["mvae"]["latency"]["batch_8"]["p50_ms"] > 0 and bench["training"] == {}
