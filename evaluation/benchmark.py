"""Latency, throughput and memory of pipelines, and training speed of each trainable model.

    python -m evaluation.benchmark --models mvae=checkpoints/mvae-procedural-64 psp=checkpoints/psp-procedural-64 \\
        --json results/benchmark.json

For each pipeline: milliseconds per image at batch 1 and 8 (``num_images``; median and p95 after warm-up),
images per second, and peak memory (CUDA: ``torch.cuda.max_memory_allocated``; CPU: the process's peak
resident set size so far, ``ru_maxrss``). For each trainable model type at its default config (built from
its config class, random data): optimiser steps per second in float32, with channels_last, and with bfloat16
autocast + channels_last (``--train_options``), and ``mvae-decode-all``, the MVAE loss as it was before it stopped
decoding faces no term scores (issue 26). ``mvae-2experts`` and ``multivae`` train the same image + attributes
networks with SketchFace's loss and with the peer library multivae's (an optional dependency:
``pip install -r requirements-bench.txt``; reported as skipped without it). ``--loaders`` times one batch of each
data source (in-memory pool, faces rendered on the fly, CelebA decoded per batch, the translator's cached pairs with
their augmentation) against the step it feeds. The numbers are figures to read, not assertions.

    python -m evaluation.benchmark --train_models mvae mvae-2experts multivae \
        --train_architecture mvae=checkpoints/mvae-procedural-64 --loaders procedural-pool celeba-stream
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from sketchface.attributes import Attributes
from sketchface.metrics import time_callable

if not __package__:  # run as a file, not with python -m: the repository root on sys.path, as -m has it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evaluation.evaluate import load_pipeline  # noqa: E402


@dataclass
class BenchConfig:
    models: list[str] = field(default_factory=list)  # NAME=PATH
    kinds: list[str] = field(default_factory=list)  # NAME=attribute|sketch overrides
    batch_sizes: list[int] = field(default_factory=lambda: [1, 8])
    warmup: int = 2
    repeats: int = 10
    train_models: list[str] = field(default_factory=lambda: list(TRAINABLE))
    train_steps: int = 10
    train_batch: int | None = None  # None: each model's own default below
    train_options: list[str] = field(default_factory=lambda: list(TRAIN_OPTIONS))
    train_architecture: list[str] = field(default_factory=list)  # NAME=CHECKPOINT: that model's architecture
    loaders: list[str] = field(default_factory=list)  # data sources to time (DATA_SOURCES)
    data_root: str = "../shared/data/celeba-mini"  # CelebA layout for the celeba and pairs sources
    device: str = "auto"
    seed: int = 0
    json: str | None = None


def parse_args(argv: list[str] | None = None) -> BenchConfig:
    d = BenchConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=[], metavar="NAME=PATH")
    p.add_argument("--kinds", nargs="*", default=[], metavar="NAME=KIND")
    p.add_argument("--batch_sizes", type=int, nargs="+", default=d.batch_sizes)
    p.add_argument("--warmup", type=int, default=d.warmup)
    p.add_argument("--repeats", type=int, default=d.repeats)
    p.add_argument("--train_models", nargs="*", default=d.train_models, help=f"subset of {list(TRAINABLE)}")
    p.add_argument("--train_steps", type=int, default=d.train_steps)
    p.add_argument("--train_batch", type=int, default=d.train_batch)
    p.add_argument("--train_options", nargs="+", default=d.train_options, choices=list(TRAIN_OPTIONS))
    p.add_argument(
        "--train_architecture",
        nargs="*",
        default=[],
        metavar="NAME=CHECKPOINT",
        help="time mvae/cvae (and mvae-decode-all) with a saved checkpoint's architecture, e.g. the starter's",
    )
    p.add_argument(
        "--loaders",
        nargs="*",
        default=d.loaders,
        choices=list(DATA_SOURCES),
        help="also time one batch from each data source (ms per batch beside the step it feeds)",
    )
    p.add_argument("--data_root", default=d.data_root, help="CelebA layout for the celeba and pairs sources")
    p.add_argument("--device", default=d.device)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--json", default=d.json, metavar="PATH", help="also write the results as JSON")
    cfg = BenchConfig(**vars(p.parse_args(argv)))
    for spec in cfg.models + cfg.kinds:
        if "=" not in spec:
            p.error(f"expected NAME=VALUE, got {spec!r}")
    unknown = set(cfg.train_models) - set(TRAINABLE)
    if unknown:
        p.error(f"unknown --train_models {sorted(unknown)}; choose from {list(TRAINABLE)}")
    return cfg


# ------------------------------------------------------------------------------------------------------ memory


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


# --------------------------------------------------------------------------------------------------- pipelines


def _condition(kind: str) -> Any:
    if kind == "attribute":
        return Attributes(Male=True, Young=True, Black_Hair=True, Eyeglasses=True)
    im = Image.new("L", (256, 256), 255)  # a blank page with an oval: enough for timing
    from PIL import ImageDraw

    ImageDraw.Draw(im).ellipse([60, 40, 196, 216], outline=0, width=3)
    return im


def bench_pipeline(kind: str, pipe: Any, cfg: BenchConfig, device: torch.device) -> dict:
    cond = _condition(kind)
    out: dict[str, Any] = {"kind": kind, "latency": {}}
    _reset_peak(device)
    for b in cfg.batch_sizes:
        out["latency"][f"batch_{b}"] = time_callable(
            lambda b=b: pipe(cond, num_images=b, seed=cfg.seed),
            items_per_call=b,
            warmup=cfg.warmup,
            repeats=cfg.repeats,
            device=device,
        )
    out["peak_memory_mb"] = _peak_memory_mb(device)
    return out


# ---------------------------------------------------------------------------------------------- training steps


def _classifier_step(device: torch.device, batch: int | None, cl: bool = False) -> tuple[Callable[[], None], dict]:
    from sketchface.models.classifier import AttributeClassifier, ClassifierConfig

    cfg = ClassifierConfig()
    b = batch or 256  # train/classifier.py default
    model = _fmt(AttributeClassifier(cfg).to(device).train(), cl)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = _fmt(torch.rand(b, 3, cfg.image_size, cfg.image_size, device=device), cl)
    y = (torch.rand(b, 40, device=device) > 0.5).float()

    def step() -> None:
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, {"batch": b, "config": asdict(cfg), "params": sum(p.numel() for p in model.parameters())}


def _stylegan_step(device: torch.device, batch: int | None, cl: bool = False) -> tuple[Callable[[], None], dict]:
    from sketchface.models.stylegan import Discriminator, Generator, StyleGANConfig

    cfg = StyleGANConfig()
    b = batch or 16
    g, d = _fmt(Generator(cfg).to(device).train(), cl), _fmt(Discriminator(cfg).to(device).train(), cl)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-3, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.0, 0.99))
    real = _fmt(torch.rand(b, 3, cfg.resolution, cfg.resolution, device=device) * 2 - 1, cl)

    def step() -> None:  # one discriminator + one generator update (non-saturating loss, no regularisers)
        z = torch.randn(b, cfg.style_dim, device=device)
        loss_d = F.softplus(d(g(z).detach())).mean() + F.softplus(-d(real)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = F.softplus(-d(g(torch.randn(b, cfg.style_dim, device=device)))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

    params = sum(p.numel() for p in g.parameters()) + sum(p.numel() for p in d.parameters())
    return step, {"batch": b, "config": asdict(cfg), "params": params, "note": "G+D step, no regularisers"}


def _psp_step(device: torch.device, batch: int | None, cl: bool = False) -> tuple[Callable[[], None], dict]:
    from sketchface.models.psp import PSP, PSPConfig

    cfg = PSPConfig()
    b = batch or 8
    model = _fmt(PSP(cfg).to(device).train(), cl)
    model.generator.requires_grad_(False)  # pSp trains the encoder into a frozen generator
    opt = torch.optim.Adam(model.encoder.parameters(), lr=1e-4)
    r = cfg.resolution
    sketch = _fmt(torch.rand(b, cfg.in_channels, r, r, device=device), cl)
    target = _fmt(torch.rand(b, 3, r, r, device=device) * 2 - 1, cl)

    def step() -> None:  # L2 only: LPIPS/ID/attention terms of train/psp.py add to this
        image, w_plus = model(sketch)
        loss = F.mse_loss(image, target) + 1e-3 * (w_plus - model.latent_avg).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    params = sum(p.numel() for p in model.encoder.parameters())
    return step, {"batch": b, "config": asdict(cfg), "params": params, "note": "encoder only, L2 + W-norm"}


def _translator_step(device: torch.device, batch: int | None, cl: bool = False) -> tuple[Callable[[], None], dict]:
    from sketchface.models.translator import SketchTranslator, TranslatorConfig

    cfg = TranslatorConfig(resolution=128, channels=[32, 64, 128, 160, 192, 192])  # the starter's architecture
    b = batch or 32
    model = _fmt(SketchTranslator(cfg).to(device).train(), cl)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
    r = cfg.resolution
    sketch, photo = _fmt(torch.rand(b, 1, r, r, device=device), cl), _fmt(torch.rand(b, 3, r, r, device=device), cl)

    def step() -> None:  # L1 + KL: the ST-LPIPS and PatchGAN terms of train/translator.py add to this
        fake, mu, logvar = model(sketch, style_photo=photo)
        loss = (fake - photo).abs().mean() + 2e-3 * 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    params = sum(p.numel() for p in model.parameters())
    return step, {"batch": b, "config": asdict(cfg), "params": params, "note": "U-Net + style code, L1 + KL"}


def _layout_face_step(device: torch.device, batch: int | None, cl: bool = False) -> tuple[Callable[[], None], dict]:
    from sketchface.models.layout_face import LayoutFace, LayoutFaceConfig, hide_attributes

    cfg = LayoutFaceConfig()  # the starter's architecture
    b = batch or 32
    model = _fmt(LayoutFace(cfg).to(device).train(), cl)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
    r = cfg.resolution
    photo = _fmt(torch.rand(b, 3, r, r, device=device), cl)
    labels = torch.where(torch.rand(b, 40, device=device) < 0.5, 1.0, -1.0)

    def step() -> None:  # L1, as train/layout_face.py by default
        fake = model.render_layout(_fmt(model.layout_image(model.layout_code(photo)), cl), hide_attributes(labels))
        loss = (fake - photo).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    params = sum(p.numel() for p in model.parameters())
    return step, {"batch": b, "config": asdict(cfg), "params": params, "note": "layout + attributes → photo, L1"}


#: the image + attributes experts without the sketch expert: the model both SketchFace and multivae can train
#: (multivae needs a decoder per modality)
TWO_EXPERTS = {"use_sketch": False}


def _vae_config(config_name: str, architecture: str | None, overrides: Mapping[str, Any] | None = None) -> Any:
    """A saved checkpoint's architecture (e.g. the shipped starter), else ``config_name``'s defaults; then the fields
    in ``overrides`` changed (e.g. :data:`TWO_EXPERTS`)."""
    import sketchface.models.mvae as mvae

    cfg = mvae.load_vae(architecture).config if architecture else getattr(mvae, config_name)()
    return replace(cfg, **(overrides or {}))


def _vae_step(
    model_name: str,
    config_name: str,
    decode_every_subset: bool = False,
    overrides: Mapping[str, Any] | None = None,
    note: str = "",
) -> Callable[..., tuple[Callable[[], None], dict]]:
    """The model's own training loss (all sub-sampled ELBOs for the MVAE) on random data, its config changed by
    ``overrides`` (``note`` says what that makes it). ``decode_every_subset``: also decode the faces no ELBO term
    scores (the attribute-only subset's), as ``MVAE.loss`` did before issue 26: the figure that shows what dropping
    that wasted work gains (the loss before issue 26 also decoded every subset in one pass; time it from an older
    checkout for the full before/after)."""

    def build(
        device: torch.device, batch: int | None, cl: bool = False, architecture: str | None = None
    ) -> tuple[Callable[[], None], dict]:
        import sketchface.models.mvae as mvae

        cfg = _vae_config(config_name, architecture, overrides)
        b = batch or 64
        model = _fmt(getattr(mvae, model_name)(cfg).to(device).train(), cl)
        s = cfg.image_size
        x = _fmt(torch.rand(b, 3, s, s, device=device), cl)
        y = (torch.rand(b, cfg.num_attributes, device=device) > 0.5).float()
        extra = {"sketch": _fmt(torch.rand(b, 1, s, s, device=device), cl)} if getattr(cfg, "use_sketch", False) else {}
        if decode_every_subset:
            extra["return_image_logits"] = True  # decodes every subset's face (and returns them)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step() -> None:
            loss = model.loss(x, y, **extra)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        params = sum(p.numel() for p in model.parameters())
        notes = [note, "every subset's face decoded, the attribute-only one for nothing" if decode_every_subset else ""]
        notes.append(f"architecture of {architecture}" if architecture else "")
        return step, {"batch": b, "config": asdict(cfg), "params": params, "note": "; ".join(filter(None, notes))}

    return build


def _multivae_step(
    device: torch.device, batch: int | None, cl: bool = False, architecture: str | None = None
) -> tuple[Callable[[], None], dict]:
    """The peer library multivae's MVAE (Wu & Goodman's sub-sampled ELBOs: joint + unimodal, k = 0) training
    the very same networks as ``mvae-2experts`` (SketchFace's encoders and decoders wrapped as pythae
    encoders/decoders, Bernoulli likelihoods on logits, the attributes' likelihood scaled by SketchFace's
    ``attribute_weight``). An optional benchmark dependency (``pip install multivae``), never a runtime one."""
    try:
        from multivae.data.datasets.base import MultimodalBaseDataset
        from multivae.models import MVAE as PeerMVAE
        from multivae.models import MVAEConfig as PeerConfig
        from pythae.models.base.base_utils import ModelOutput
        from pythae.models.nn.base_architectures import BaseDecoder, BaseEncoder
    except ImportError as e:
        raise RuntimeError("multivae is not installed (optional: pip install multivae==1.0.3)") from e
    from sketchface.models.mvae import MVAE

    cfg = _vae_config("MVAEConfig", architecture, TWO_EXPERTS)
    ours = MVAE(cfg)

    class Encoder(BaseEncoder):
        def __init__(self, net, attributes: bool):
            super().__init__()
            self.net, self.attributes = net, attributes

        def forward(self, x):
            mu, logvar = self.net(x, None) if self.attributes else self.net(x)
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class Decoder(BaseDecoder):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z))

    s, a = cfg.image_size, cfg.num_attributes
    peer_cfg = PeerConfig(
        n_modalities=2,
        latent_dim=cfg.latent_dim,
        input_dims={"image": (3, s, s), "attributes": (a,)},
        decoders_dist={"image": "bernoulli", "attributes": "bernoulli"},
        uses_likelihood_rescaling=True,
        rescale_factors={"image": cfg.image_weight, "attributes": cfg.attribute_weight},
        use_subsampling=True,
        k=0,
        warmup=0,
    )
    model = PeerMVAE(
        peer_cfg,
        encoders={"image": Encoder(ours.image_encoder, False), "attributes": Encoder(ours.attribute_encoder, True)},
        decoders={"image": Decoder(ours.image_decoder), "attributes": Decoder(ours.attribute_decoder)},
    )
    model = _fmt(model.to(device).train(), cl)
    b = batch or 64
    data = MultimodalBaseDataset(
        data={
            "image": _fmt(torch.rand(b, 3, s, s, device=device), cl),
            "attributes": (torch.rand(b, a, device=device) > 0.5).float(),
        }
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        # multivae's Bernoulli log-likelihood validates that targets are 0/1; faces are grey levels in [0, 1]
        # (the continuous Bernoulli-as-BCE both libraries mean), so argument checks are off while it runs
        validate = torch.distributions.Distribution._validate_args
        torch.distributions.Distribution.set_default_validate_args(False)
        try:
            loss = model(data).loss
        finally:
            torch.distributions.Distribution.set_default_validate_args(validate)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    note = "multivae 1.0.3 MVAE (subsampling, k=0) on mvae-2experts' networks"
    if architecture:
        note += f", architecture of {architecture}"
    return step, {"batch": b, "config": asdict(cfg), "params": sum(p.numel() for p in model.parameters()), "note": note}


def _fmt(x, channels_last: bool):
    """A module or 4-d tensor in channels_last memory format when asked (oneDNN's / cuDNN's faster conv layout)."""
    return x.to(memory_format=torch.channels_last) if channels_last else x


TRAINABLE: dict[str, Callable[..., tuple[Callable[[], None], dict]]] = {
    "classifier": _classifier_step,
    "mvae": _vae_step("MVAE", "MVAEConfig"),
    "mvae-decode-all": _vae_step("MVAE", "MVAEConfig", decode_every_subset=True),
    "mvae-2experts": _vae_step(  # SketchFace's MVAE.loss on the image + attributes model: multivae's counterpart
        "MVAE",
        "MVAEConfig",
        overrides=TWO_EXPERTS,
        note="image + attributes experts (no sketch): the networks the multivae entry trains",
    ),
    "multivae": _multivae_step,
    "cvae": _vae_step("CrossModalVAE", "CrossModalVAEConfig"),
    "stylegan": _stylegan_step,
    "psp": _psp_step,
    "translator": _translator_step,
    "layout_face": _layout_face_step,
}


ARCHITECTURE_OF = {"mvae-decode-all": "mvae", "mvae-2experts": "mvae", "multivae": "mvae"}  # --train_architecture key

TRAIN_OPTIONS = {  # name: (autocast dtype or None, channels_last); "bf16" is what the Trainer's "auto" picks
    "fp32": (None, False),
    "channels_last": (None, True),
    "bf16": (torch.bfloat16, True),
}


def bench_training(name: str, cfg: BenchConfig, device: torch.device) -> dict:
    """Steps per second of ``name``'s training step under each of ``cfg.train_options`` (same seed, fresh model)."""
    out: dict[str, Any] = {"options": {}}
    for option in cfg.train_options:
        dtype, channels_last = TRAIN_OPTIONS[option]
        torch.manual_seed(cfg.seed)
        try:
            architecture = dict(a.split("=", 1) for a in cfg.train_architecture).get(ARCHITECTURE_OF.get(name, name))
            step, info = TRAINABLE[name](
                device, cfg.train_batch, channels_last, **({"architecture": architecture} if architecture else {})
            )
        except Exception as e:  # noqa: BLE001 - a broken default config must not stop the other figures
            print(f"warning: {name} could not be built: {type(e).__name__}: {e}", file=sys.stderr)
            return {"skipped": f"{type(e).__name__}: {e}"}
        out.update(info)

        def run(step=step, dtype=dtype) -> None:
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                step()

        _reset_peak(device)
        timing = time_callable(run, items_per_call=1, warmup=1, repeats=max(1, cfg.train_steps), device=device)
        out["options"][option] = {
            "steps_per_s": 1000.0 / timing["p50_ms"],
            "step_ms": timing,
            "images_per_s": info["batch"] * 1000.0 / timing["p50_ms"],
            "peak_memory_mb": _peak_memory_mb(device),
        }
    return out


# ------------------------------------------------------------------------------------------------ data loading


def _procedural_pool(batch: int, root: str) -> tuple[Callable[[], Any], dict]:
    """train/mvae.py's default: faces rendered once into a uint8 pool, batches indexed from it."""
    from sketchface.data.procedural import ProceduralFaces
    from sketchface.training import pool_to_batch, render_pool

    pool = render_pool(ProceduralFaces(64, length=max(4 * batch, 256), sketch="computed"), desc="render")
    g = torch.Generator().manual_seed(0)
    n = len(pool["labels"])
    return lambda: pool_to_batch(pool, torch.randint(0, n, (batch,), generator=g))


def _procedural_render(batch: int, root: str) -> tuple[Callable[[], Any], dict]:
    """Faces rendered on the fly (streaming, one process): what every step costs without the pool."""
    from torch.utils.data import DataLoader

    from sketchface.data.procedural import ProceduralFaces

    it = iter(DataLoader(ProceduralFaces(64, length=10**6, sketch="computed"), batch_size=batch))
    return lambda: next(it)


def _celeba_stream(batch: int, root: str) -> tuple[Callable[[], Any], dict]:
    """CelebA photos decoded, cropped, resized and sketched per batch (``--data celeba --no-cache``)."""
    from torch.utils.data import DataLoader

    from sketchface.data.celeba import CelebA

    data = CelebA(root, "train", 64, sketch="computed")  # here, so that a missing folder is reported up front

    def batches():
        while True:
            yield from DataLoader(data, batch_size=batch, shuffle=True)

    it = batches()
    return lambda: next(it)


def _pairs_pool(batch: int, root: str) -> tuple[Callable[[], Any], dict]:
    """train/translator.py: a cached pool of (sketch, photo) pairs at 128 px, indexed, then augmented per batch."""
    from sketchface.data.pairs import augment_pairs, pair_pool
    from sketchface.training import pool_to_batch

    pool = pair_pool(root, 128, variants=1, split="valid")  # a small split: the cost per batch is the same
    g = torch.Generator().manual_seed(0)
    n = len(pool["image"])

    def get():
        b = pool_to_batch(pool, torch.randint(0, n, (batch,), generator=g))
        return augment_pairs(b["sketch"], b["image"], g)

    return get


DATA_SOURCES: dict[str, tuple[str, int, Callable[[int, str], Callable[[], Any]]]] = {  # name: (feeds, px, builder)
    "procedural-pool": ("mvae", 64, _procedural_pool),
    "procedural-render": ("mvae", 64, _procedural_render),
    "celeba-stream": ("mvae", 64, _celeba_stream),
    "pairs-pool": ("translator", 128, _pairs_pool),
}


def bench_loader(name: str, cfg: BenchConfig, training: dict) -> dict:
    """Milliseconds to produce one batch of ``name`` (batch size of the model it feeds), and that as a share of the
    model's training step when that step was timed in this run (p50 in bf16, the default, else the first option)."""
    model, size, build = DATA_SOURCES[name]
    batch = cfg.train_batch or {"mvae": 64, "translator": 32}[model]
    try:
        get = build(batch, cfg.data_root)
    except Exception as e:  # noqa: BLE001 - e.g. no CelebA folder: the other sources still report
        print(f"warning: data source {name} unavailable: {type(e).__name__}: {e}", file=sys.stderr)
        return {"skipped": f"{type(e).__name__}: {e}"}
    timing = time_callable(get, items_per_call=1, warmup=1, repeats=max(3, cfg.train_steps))
    out = {"feeds": model, "size": size, "batch": batch, "batch_ms": timing}
    step = training.get(model, {}).get("options", {})
    if step:  # against the step as the Trainer runs it by default (bf16 when timed), else the first option timed
        option = "bf16" if "bf16" in step else next(iter(step))
        out["step_option"], out["share_of_step"] = option, timing["p50_ms"] / step[option]["step_ms"]["p50_ms"]
    return out


# ------------------------------------------------------------------------------------------------------- report


def format_table(results: dict) -> str:
    meta = results["meta"]
    mem = "CUDA max allocated" if meta["device"].startswith("cuda") else "process peak RSS"
    lines = [f"Device: {meta['device']}, torch {meta['torch']}", ""]
    if results["pipelines"]:
        bs = meta["batch_sizes"]
        head = ["Pipeline", *(f"b={b} ms/img p50 (p95)" for b in bs), *(f"b={b} img/s" for b in bs), f"Peak MB ({mem})"]
        lines += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
        for name, r in results["pipelines"].items():
            lat = [r["latency"][f"batch_{b}"] for b in bs]
            cells = [f"{t['p50_ms']:.1f} ({t['p95_ms']:.1f})" for t in lat] + [f"{t['items_per_s']:.1f}" for t in lat]
            lines.append(f"| {name} ({r['kind']}) | " + " | ".join(cells) + f" | {r['peak_memory_mb']:.0f} |")
        lines.append("")
    if results["training"]:
        lines += [
            "| Model (default config) | Params | Batch | Option | Steps/s | Images/s | vs first option | Peak MB |",
            "|---|---:|---:|---|---:|---:|---:|---:|",
        ]
        for name, r in results["training"].items():
            if "skipped" in r:
                lines.append(f"| {name} | – | – | – | skipped: {r['skipped']} | – | – | – |")
                continue
            base = next(iter(r["options"].values()))["steps_per_s"]
            for option, o in r["options"].items():
                lines.append(
                    f"| {name} | {r['params'] / 1e6:.2f} M | {r['batch']} | {option} | {o['steps_per_s']:.2f} | "
                    f"{o['images_per_s']:.0f} | {o['steps_per_s'] / base:.2f}× | {o['peak_memory_mb']:.0f} |"
                )
        notes = [f"{n}: {r['note']}" for n, r in results["training"].items() if r.get("note")]
        lines += [
            "",
            "Options: fp32; channels_last (float32, channels_last memory format); bf16 (bfloat16 autocast "
            "+ channels_last, the Trainer's default where the hardware runs bfloat16 natively).",
        ]
        lines += [f"- {n}" for n in notes] + [""]
    if results.get("loaders"):
        lines += [
            "| Data source | Feeds | Batch | ms per batch p50 | vs its model's step |",
            "|---|---|---:|---:|---:|",
        ]
        for name, r in results["loaders"].items():
            if "skipped" in r:
                lines.append(f"| {name} | – | – | skipped: {r['skipped']} | – |")
                continue
            share = f"{100 * r['share_of_step']:.1f} % of {r['step_option']}" if "share_of_step" in r else "–"
            ms = r["batch_ms"]["p50_ms"]
            lines.append(f"| {name} | {r['feeds']} ({r['size']} px) | {r['batch']} | {ms:.1f} | {share} |")
        lines.append("")
    return "\n".join(lines)


def main(cfg: BenchConfig) -> dict:
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device)
    torch.manual_seed(cfg.seed)
    overrides = dict(spec.split("=", 1) for spec in cfg.kinds)
    name_dev = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    )
    results: dict[str, Any] = {
        "meta": {
            "device": f"{device.type} ({name_dev}, {torch.get_num_threads()} threads, {os.cpu_count()} cores)",
            "torch": torch.__version__,
            "batch_sizes": cfg.batch_sizes,
            "repeats": cfg.repeats,
            "config": asdict(cfg),
        },
        "pipelines": {},
        "training": {},
    }
    for spec in tqdm(cfg.models, desc="pipelines"):
        name, path = spec.split("=", 1)
        kind, pipe = load_pipeline(path, overrides.get(name), device)
        with torch.inference_mode():
            results["pipelines"][name] = bench_pipeline(kind, pipe, cfg, device)
    for name in tqdm(cfg.train_models, desc="training steps"):
        results["training"][name] = bench_training(name, cfg, device)
    if cfg.loaders:
        results["loaders"] = {name: bench_loader(name, cfg, results["training"]) for name in cfg.loaders}
    print(format_table(results))
    if cfg.json:
        path = Path(cfg.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(results, indent=2))
        os.replace(tmp, path)
    return results


if __name__ == "__main__":
    main(parse_args())
