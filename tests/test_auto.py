"""sketchface.models.auto: one config.json format (flat, with model_type) and one entry point for every model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from sketchface.models.auto import (
    MODELS,
    PIPELINES,
    AutoModel,
    AutoPipeline,
    UnknownModelError,
    migrate,
    model_type,
    normalise_config,
)
from sketchface.models.classifier import AttributeClassifier, ClassifierConfig
from sketchface.models.layout_face import LayoutFace, LayoutFaceConfig
from sketchface.models.mvae import MVAE, CrossModalVAE
from sketchface.models.psp import PSP
from sketchface.models.stylegan import Generator
from sketchface.models.translator import SketchTranslator, TranslatorConfig
from tests.helpers import tiny_cvae_config, tiny_mvae_config, tiny_psp_config, tiny_stylegan_config

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for p in (ROOT / "checkpoints").iterdir() if (p / "config.json").is_file())

TINY_MODELS = {
    "mvae": lambda: MVAE(tiny_mvae_config()),
    "cvae": lambda: CrossModalVAE(tiny_cvae_config()),
    "attribute-classifier": lambda: AttributeClassifier(ClassifierConfig(image_size=16, stem_width=4, widths=[8, 8])),
    "psp": lambda: PSP(tiny_psp_config()),
    "stylegan2": lambda: Generator(tiny_stylegan_config()),
    "sketch-translator": lambda: SketchTranslator(TranslatorConfig(resolution=16, channels=[8, 16, 16], style_dim=4)),
    "layout-face": lambda: LayoutFace(
        LayoutFaceConfig(resolution=16, channels=[8, 16], layout_size=4, layout_dim=3, bank_size=6, guidance=1.5)
    ),
}


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].float(), sb[k].float()) for k in sa)


def test_every_model_type_has_a_tiny_model_here():
    assert set(TINY_MODELS) == set(MODELS) and set(PIPELINES) <= set(MODELS)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_save_writes_flat_config_with_model_type_and_auto_model_loads_it(kind, tmp_path):
    torch.manual_seed(0)
    model = TINY_MODELS[kind]().eval()
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == kind and "config" not in saved  # flat: huggingface_hub's dataclass round trip
    loaded = AutoModel.from_pretrained(tmp_path)
    assert type(loaded) is type(model) and loaded.config == model.config
    assert _same_weights(model, loaded)


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_shipped_checkpoints_are_in_the_current_format(folder):
    raw = json.loads((folder / "config.json").read_text())
    assert raw.get("model_type") in MODELS and normalise_config(raw) == raw
    assert not migrate(folder)  # nothing to rewrite
    if raw["model_type"] == "psp":
        assert raw["generator"]["model_type"] == "stylegan2"


def test_auto_pipeline_serves_each_shipped_face_model():
    from sketchface.pipelines.attribute_to_face import AttributeToFace
    from sketchface.pipelines.translator import SketchTranslatorPipeline

    assert isinstance(AutoPipeline.from_pretrained(ROOT / "checkpoints/mvae-procedural-64"), AttributeToFace)
    pipe = AutoPipeline.from_pretrained(ROOT / "checkpoints/translator-celeba-mini-128")
    assert isinstance(pipe, SketchTranslatorPipeline)
    with pytest.raises(UnknownModelError, match="no face pipeline"):
        AutoPipeline.from_pretrained(ROOT / "checkpoints/classifier-procedural-64")


@pytest.mark.parametrize("kind", ["mvae", "attribute-classifier", "psp"])
def test_legacy_configs_load_and_migrate(kind, tmp_path):
    """Folders written before the unified format (nested under "config", or pSp without model_type) load with the
    same weights; migrate() rewrites them once, after which they load the same again."""
    torch.manual_seed(1)
    model = TINY_MODELS[kind]().eval()
    model.save_pretrained(tmp_path)
    current = json.loads((tmp_path / "config.json").read_text())
    flat = {k: v for k, v in current.items() if k != "model_type"}
    if kind == "psp":
        flat["generator"] = {k: v for k, v in flat["generator"].items() if k != "model_type"}
        legacy = flat  # pSp wrote a flat config without model_type
    else:
        legacy = {"config": {**flat, **({"model_type": kind} if kind == "mvae" else {})}}  # the old nesting
    (tmp_path / "config.json").write_text(json.dumps(legacy))
    assert model_type(tmp_path) == kind
    old = AutoModel.from_pretrained(tmp_path)
    assert _same_weights(model, old) and old.config == model.config
    assert migrate(tmp_path) and not migrate(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text()) == current
    assert _same_weights(model, AutoModel.from_pretrained(tmp_path))


def test_unknown_or_broken_configs_say_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        model_type(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "unet2d"}))
    with pytest.raises(UnknownModelError, match="unet2d"):
        AutoModel.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UnknownModelError, match="not valid JSON"):
        model_type(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(UnknownModelError, match="JSON object"):
        model_type(tmp_path)


def test_migrating_the_shipped_mvae_keeps_its_faces(tmp_path):
    """The shipped starter's config rewritten from the old nesting: the same faces come out."""
    from sketchface.pipelines.attribute_to_face import AttributeToFace

    src = ROOT / "checkpoints/mvae-procedural-64"
    dst = tmp_path / "old"
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    (dst / "config.json").write_text(json.dumps({"config": cfg}))
    a = AttributeToFace.from_pretrained(str(src))("a man with glasses", num_images=2, seed=3).images
    b = AttributeToFace.from_pretrained(str(dst))("a man with glasses", num_images=2, seed=3).images
    assert [list(i.getdata()) for i in a] == [list(i.getdata()) for i in b]
