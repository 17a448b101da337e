"""One training harness on Accelerate: device, precision, per-rank seeds, threads, resume, atomic saves, cards, push.

A script owns its loop (a GAN step differs from a VAE step) and leaves everything else to :class:`Trainer`::

    args = TrainingArguments(output_dir="runs/x", max_steps=1000)
    trainer = Trainer(args)
    model, opt = trainer.prepare(model, opt)
    sched = trainer.scheduler(opt)
    step = trainer.resume()                      # 0, or where a killed run stopped (weights, optimiser, RNG, step)
    for batch in trainer.pool_batches(pool, step):   # each rank its own rows; resumes exactly
        with trainer.autocast():
            loss = ...
        trainer.backward(loss); opt.step(); sched.step(); opt.zero_grad()
        step += 1
        if trainer.should_save(step): trainer.save_state(step)
        if trainer.done(step): break
    trainer.save_pretrained(model, "checkpoints/x", card="...")   # exactly what --push_to_hub uploads

The command line is the same in every script: :func:`parse_training_args` reads the shared flags (``--max_steps``,
``--max_minutes``, ``--output_dir`` ...: :class:`TrainingArguments`) beside the script's own dataclass, with
transformers' ``HfArgumentParser``; the script gives its own defaults for the shared flags::

    train_args, args = parse_training_args(MyArguments, argv, description=__doc__, defaults={"max_steps": 1500})

Precision: ``"auto"`` is bfloat16 autocast where the hardware runs it natively (CUDA with bf16; a CPU with AMX or
AVX-512 BF16), float32 elsewhere; ``"fp32"`` forces float32. Threads: on a CPU each of N processes gets
``usable cores // N`` threads, so ``torchrun`` on a 2-core machine does not oversubscribe it.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
T = TypeVar("T")


def option(default: Any = MISSING, help: str | None = None, **kwargs: Any) -> Any:
    """A dataclass field that is also a command-line flag (:func:`training_parser`): ``help`` for ``--help``, and any
    of ``aliases`` (older flag names: ``["--steps"]``), ``choices``, ``metavar``, ``nargs`` (a list field takes
    ``+`` values unless given) and ``default_factory``."""
    metadata = {k: v for k, v in kwargs.items() if k != "default_factory" and v is not None}
    if help is not None:
        metadata["help"] = help
    if "default_factory" in kwargs:
        return field(default_factory=kwargs["default_factory"], metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainingArguments:
    """The flags every training script shares (``--max_steps``, ``--max_minutes``, ``--resume`` ...)."""

    output_dir: str = option("runs/run", "training state (resumable), samples, log.jsonl")
    save_dir: str | None = option(None, "the final model folder (None: the script's own place, e.g. output_dir/final)")
    max_steps: int = option(10_000, "training steps", aliases=["--steps"])
    max_minutes: float | None = option(
        None, "stop earlier once this much training time has passed, resumes included", aliases=["--time_limit"]
    )
    batch_size: int = option(32, "per process: the global batch is batch_size × processes")
    lr: float = option(2e-4, "peak learning rate")
    warmup_steps: int = option(200, "linear warm-up steps")
    lr_schedule: str = option("cosine", "after warm-up, over max_steps", choices=["constant", "linear", "cosine"])
    precision: str = option(
        "auto", "auto: bfloat16 autocast where the hardware runs it natively, else float32; fp16 (with a scaler) "
        "needs CUDA; no = fp32", aliases=["--mixed_precision"], choices=[*PRECISIONS, "no"],
    )  # fmt: skip
    channels_last: bool = option(True, "conv models: faster oneDNN / cuDNN kernels")
    save_every: int = option(1000, "steps between training states (output_dir/state)", aliases=["--checkpoint_every"])
    eval_every: int = option(1000, "steps between evaluations")
    log_every: int = option(50, "steps between log lines")
    seed: int = option(0, "each process seeds seed + its rank")
    resume: bool = option(False, "continue from output_dir/state: weights, optimisers, every rank's RNG, scaler")
    num_workers: int = option(0, "DataLoader workers per process")
    push_to_hub: str | None = option(None, "repo id: upload exactly the saved folder", metavar="REPO_ID")

    def __post_init__(self) -> None:
        if self.precision == "no":  # the older --mixed_precision's name for float32
            self.precision = "fp32"
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}; got {self.precision!r}")
        if self.lr_schedule not in ("constant", "linear", "cosine"):
            raise ValueError(f"lr_schedule must be constant, linear or cosine; got {self.lr_schedule!r}")
        if self.max_steps < 0 or self.batch_size < 1:
            raise ValueError("max_steps must be >= 0 and batch_size >= 1")


# -- the command line: one parser for every training script ------------------------------------------------------
class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with the script's docstring as written (its command examples) and every flag's default."""


@functools.cache
def _parser_class() -> type:
    """``HfArgumentParser`` (imported when a script parses, not when this module loads) with the flag forms the
    scripts have always taken: a boolean ``--x`` also as ``--no_x``, ``--no-x`` (and hyphenated), whatever its
    default, ``--x`` alone meaning true also for ``bool | None`` fields, and a list field's ``nargs`` when its
    :func:`option` gives one (``--widths`` takes exactly 4 numbers in train/mvae.py)."""
    from transformers import HfArgumentParser
    from transformers.hf_argparser import string_to_bool

    class TrainingArgumentParser(HfArgumentParser):
        @staticmethod
        def _parse_dataclass_field(parser: argparse.ArgumentParser, field: Field) -> None:
            kwargs = dict(field.metadata)
            names = list(dict.fromkeys([f"--{field.name}", f"--{field.name.replace('_', '-')}"]))
            names += list(kwargs.pop("aliases", []))
            is_bool = field.type is bool or set(get_args(field.type)) == {bool, type(None)}
            is_list = get_origin(field.type) is list or any(get_origin(a) is list for a in get_args(field.type))
            if is_bool:
                parser.add_argument(
                    *names, type=string_to_bool, nargs="?", const=True, default=field.default, metavar="BOOL", **kwargs
                )
                hyphen = field.name.replace("_", "-")
                negative = dict.fromkeys([f"--no_{field.name}", f"--no-{field.name}", f"--no-{hyphen}"])
                parser.add_argument(
                    *negative,
                    dest=field.name,
                    action="store_false",
                    default=argparse.SUPPRESS,
                    help=f"= --{field.name} false",
                )
            elif is_list and "nargs" in kwargs:
                item = get_args(next(a for a in (field.type, *get_args(field.type)) if get_origin(a) is list))[0]
                default = field.default_factory() if field.default_factory is not MISSING else field.default
                parser.add_argument(*names, type=item, default=default, **kwargs)
            else:
                HfArgumentParser._parse_dataclass_field(parser, field)

    return TrainingArgumentParser


def training_parser(
    script_args: type,
    *,
    description: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    unused: Mapping[str, str] | None = None,
) -> argparse.ArgumentParser:
    """The command line of a training script: ``transformers.HfArgumentParser`` over (:class:`TrainingArguments`,
    ``script_args``), the flags named as the fields (also hyphenated) plus their :func:`option` aliases.

    ``defaults``: the script's own defaults for shared fields (``{"max_steps": 1500}``); ``unused``: shared flags
    the script has no use for, each with the reason (left out of ``--help``; refused by :func:`parse_training_args`)."""
    parser = _parser_class()((TrainingArguments, script_args), description=description, formatter_class=HelpFormatter)
    parser.set_defaults(**(defaults or {}))
    for action in parser._actions:
        if action.dest in (unused or {}):
            action.help = argparse.SUPPRESS
        elif action.help is None and action.default is not argparse.SUPPRESS:
            action.help = "(default: %(default)s)"  # every flag shows its default, with or without a help text
    return parser


def parse_training_args(
    script_args: type[T],
    argv: Sequence[str] | None = None,
    *,
    description: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    unused: Mapping[str, str] | None = None,
    check: Callable[[TrainingArguments, T], None] | None = None,
) -> tuple[TrainingArguments, T]:
    """(:class:`TrainingArguments`, ``script_args``) from ``argv`` (default: the command line), as
    :func:`training_parser` reads it. Unknown flags, a flag in ``unused`` given a value other than its default, and
    a ``ValueError`` of ``check`` (the script's own checks, which may also fill in fields) are usage errors
    (``SystemExit`` 2 with the message); a dataclass's own ``__post_init__`` errors stay ``ValueError``s, as
    ``HfArgumentParser`` gives them."""
    parser = training_parser(script_args, description=description, defaults=defaults, unused=unused)
    values = vars(parser.parse_args(argv))
    for name, why in (unused or {}).items():
        if values[name] != parser.get_default(name):
            parser.error(f"--{name} is not used by {parser.prog}: {why}")
    train_args = TrainingArguments(**{f.name: values[f.name] for f in fields(TrainingArguments) if f.init})
    args = script_args(**{f.name: values[f.name] for f in fields(script_args) if f.init})
    if check is not None:
        try:
            check(train_args, args)
        except ValueError as e:
            parser.error(str(e))
    return train_args, args


def usable_cpus() -> int:
    """The cores this process may run on (``taskset``, cgroup cpusets), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def native_bf16(device: torch.device) -> bool:
    """Whether bfloat16 runs natively here: CUDA with bf16, or a CPU with AMX / AVX-512 BF16."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = getattr(torch, "cpu", None)
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(cpu, p, lambda: False)()) for p in probes)


def resolve_precision(precision: str, device: torch.device) -> str:
    """Map ``auto`` to ``bf16`` where the hardware runs it natively, else ``fp32``; ``fp16`` needs CUDA."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs a CUDA device (use bf16 or fp32 on a CPU)")
    return precision


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up: ``(step + 1) / warmup_steps`` until warm, then 1 (always 1 without warm-up steps)."""
    return min(1.0, (step + 1) / max(warmup_steps, 1))


def cosine_decay(progress: float, floor: float) -> float:
    """Half-cosine factor from 1 at ``progress`` 0 down to ``floor`` at 1 (and after)."""
    return floor + (1.0 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def warmup_cosine(peak: float, step: int, warmup_steps: int, total_steps: int, floor: float) -> float:
    """Learning rate at ``step``: linear warm-up to ``peak`` over ``warmup_steps``, then cosine decay to
    ``floor · peak`` over the remaining steps up to ``total_steps``."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    return peak * cosine_decay((step - warmup_steps) / max(1, total_steps - warmup_steps), floor)


def make_accelerator(precision: str = "auto", *, cpu: bool | None = None):
    """(Accelerator, resolved precision) set up as every SketchFace training run is: ``precision`` resolved
    (:func:`resolve_precision`), CPU threads shared out between the processes (no oversubscription under
    ``torchrun``), cuDNN autotuning and TF32 on CUDA. Scripts with their own loop that do not use :class:`Trainer`
    (``train/mvae.py``, ``train/classifier.py``) call this, so the options behave the same everywhere."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    probe_device = torch.device("cuda" if torch.cuda.is_available() and not cpu else "cpu")
    resolved = resolve_precision(precision, probe_device)
    # a new run in the same process (tests, notebooks) may ask for another precision: Accelerate keeps one global
    # state, so drop it, keeping the distributed process group
    AcceleratorState._reset_state(reset_partial_state=False)
    mixed = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[resolved]
    accelerator = Accelerator(mixed_precision=mixed, cpu=bool(cpu) or probe_device.type == "cpu")
    if accelerator.device.type == "cpu":
        torch.set_num_threads(max(1, usable_cpus() // accelerator.num_processes))
    else:  # fixed shapes: let cuDNN pick its fastest kernels; TF32 where float32 matmuls remain
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return accelerator, resolved


class Trainer:
    """Accelerate-backed harness around a script's own loop (see the module docstring)."""

    def __init__(self, args: TrainingArguments, *, cpu: bool | None = None):
        from accelerate.utils import set_seed

        self.args = args
        self.accelerator, self.precision = make_accelerator(args.precision, cpu=cpu)
        set_seed(args.seed + self.process_index)  # each rank its own random draws
        self.output_dir = Path(args.output_dir)
        self.state_dir = self.output_dir / "state"
        self._t0 = time.monotonic()
        self._elapsed_before = 0.0  # training seconds of earlier runs (resume)
        self._saved_files: dict[Path, list[str]] = {}  # model files saved into the run's own folder
        self.meta: dict[str, Any] = {}  # a script's own JSON values, saved with the state and restored by resume()
        if self.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)

    # -- the run ------------------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def num_processes(self) -> int:
        return self.accelerator.num_processes

    @property
    def process_index(self) -> int:
        return self.accelerator.process_index

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def prepare(self, *objects: Any) -> Any:
        """Models (channels_last when asked) and optimisers for this device (DDP-wrapped under several processes)."""
        if self.args.channels_last:
            objects = tuple(o.to(memory_format=torch.channels_last) if isinstance(o, nn.Module) else o for o in objects)
        out = self.accelerator.prepare(*objects)
        return out

    def progress(self, step: int) -> float:
        """How far the run is, 0 → 1: by steps, or by training time when ``max_minutes`` comes first (the time of
        earlier runs of a resumed training counts, so a resumed schedule carries on where it was)."""
        by_steps = step / max(1, self.args.max_steps)
        if self.args.max_minutes:
            by_steps = max(by_steps, self.elapsed_minutes() / self.args.max_minutes)
        return min(1.0, by_steps)

    def scheduler(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
        """Linear warm-up, then constant / linear / cosine decay over the run's :meth:`progress` (saved with the
        state)."""
        warm, kind = self.args.warmup_steps, self.args.lr_schedule

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            progress = self.progress(step)
            if kind == "constant":
                return 1.0
            if kind == "linear":
                return 1.0 - 0.9 * progress
            return cosine_decay(progress, 0.1)

        sched = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        self.accelerator.register_for_checkpointing(sched)
        return sched

    def autocast(self) -> AbstractContextManager:
        return self.accelerator.autocast()

    def backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)

    def critic_step(
        self,
        critic: nn.Module,
        optimizer: torch.optim.Optimizer,
        real: torch.Tensor,
        fake: torch.Tensor,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One hinge-loss step of a PatchGAN critic: ``real`` images up, ``fake`` ones (detached) down; a conditional
        critic gets ``condition`` (a sketch, a layout) first, beside each. Returns the critic's loss."""
        critic.requires_grad_(True)
        given = () if condition is None else (condition,)
        with self.autocast():
            loss = F.relu(1 - critic(*given, real)).mean() + F.relu(1 + critic(*given, fake.detach())).mean()
        optimizer.zero_grad(set_to_none=True)
        self.backward(loss)
        optimizer.step()
        return loss

    def unwrap(self, model: nn.Module) -> nn.Module:
        return self.accelerator.unwrap_model(model)

    def batch_indices(self, n: int, start_step: int = 0) -> Iterator[torch.Tensor]:
        """Endless row indices (into ``n`` samples) of this rank's batch at each step from ``start_step``.

        Epoch ``e`` is a permutation seeded by (seed, e), the same on every rank; step ``s`` takes its next
        ``batch_size × processes`` rows and each rank its own slice of them, so ranks never see the same rows and a
        resumed run (any ``start_step``) continues exactly where the killed one was.
        """
        per_rank, world = self.args.batch_size, self.num_processes
        per_step = per_rank * world
        if n < per_step:
            raise ValueError(f"the pool has {n} samples, fewer than one step's {per_step} (batch × processes)")
        steps_per_epoch = n // per_step
        step, epoch, perm = start_step, None, None
        while True:
            e, i = divmod(step, steps_per_epoch)
            if e != epoch:
                epoch, perm = (
                    e,
                    torch.randperm(n, generator=torch.Generator().manual_seed(self.args.seed * 100_003 + e)),
                )
            start = i * per_step + self.process_index * per_rank
            yield perm[start : start + per_rank]
            step += 1

    def pool_batches(self, pool: dict[str, torch.Tensor], start_step: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        """Endless batches of an in-memory pool (tensors with one row per sample), on this device: the rows of
        :meth:`batch_indices` (each rank its own; a resumed run continues exactly)."""
        n = len(next(iter(pool.values())))
        for idx in self.batch_indices(n, start_step):
            yield {k: v[idx.to(v.device)].to(self.device, non_blocking=True) for k, v in pool.items()}

    def dataset_batches(
        self, dataset: Dataset, start_step: int = 0, *, num_workers: int | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Endless batches of a map-style dataset read by DataLoader workers (streaming: nothing is held in memory),
        on this device. The same rows as :meth:`pool_batches` would take: each rank reads only its own slice of every
        step, and a resumed run continues exactly. The loader draws nothing from the global RNG (it has its own
        generator), so a resumed run's random draws stay in step with an uninterrupted one."""
        workers = self.args.num_workers if num_workers is None else num_workers
        loader = DataLoader(
            dataset,
            batch_sampler=_StepBatches(self, len(dataset), start_step),
            num_workers=workers,
            generator=torch.Generator().manual_seed(self.args.seed * 1009 + self.process_index),
            pin_memory=self.device.type == "cuda",
        )
        for batch in loader:
            yield {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    def step_generator(self, step: int) -> torch.Generator:
        """A CPU generator for this rank and step (augmentation draws): repeatable, so resuming needs no state."""
        return torch.Generator().manual_seed((self.args.seed * 1_000_003 + step) * 1009 + self.process_index)

    # -- stopping, saving, resuming -----------------------------------------------------------------------------
    def elapsed_minutes(self) -> float:
        """Training minutes so far, earlier runs of a resumed training included."""
        return (self._elapsed_before + time.monotonic() - self._t0) / 60

    def done(self, step: int) -> bool:
        """``max_steps`` reached, or ``max_minutes`` spent (all ranks agree: rank 0's clock decides)."""
        out = step >= self.args.max_steps
        if self.args.max_minutes is not None and not out:
            flag = torch.tensor([float(self.elapsed_minutes() >= self.args.max_minutes)], device=self.device)
            out = (
                bool(self.accelerator.reduce(flag, reduction="mean").item() > 0)
                if self.num_processes > 1
                else bool(flag)
            )
        return out

    def should_save(self, step: int) -> bool:
        return self.args.save_every > 0 and step % self.args.save_every == 0

    def save_state(self, step: int) -> None:
        """Everything a resumed run needs (models, optimisers, schedulers, scaler, every rank's RNG, the step),
        written to a temporary folder and renamed, so a kill mid-save leaves the previous state intact."""
        tmp = self.output_dir / "state.tmp"
        if self.is_main and tmp.exists():
            shutil.rmtree(tmp)
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(tmp))
        # every rank writes its own RNG state and accelerate waits for none of them: without this barrier a slow rank
        # could write into a state.tmp that the main process has already renamed (its RNG then lost on resume)
        self.accelerator.wait_for_everyone()
        if self.is_main:
            meta = {"step": step, "elapsed_seconds": self.elapsed_minutes() * 60, "args": asdict(self.args)}
            meta["script"] = self.meta
            (tmp / "trainer.json").write_text(json.dumps(meta, indent=1))
            old = self.output_dir / "state.old"
            if self.state_dir.exists():
                self.state_dir.rename(old)
            tmp.rename(self.state_dir)
            shutil.rmtree(old, ignore_errors=True)
        self.accelerator.wait_for_everyone()

    def resume(self) -> int:
        """With ``--resume`` and a saved state: restore it and return its step; otherwise 0."""
        meta_path = self.state_dir / "trainer.json"
        if not self.args.resume:
            return 0
        if not meta_path.is_file():
            self.print(f"--resume: no saved state in {self.state_dir}; starting from step 0")
            return 0
        missing = [
            f"random_states_{i}.pkl"
            for i in range(self.accelerator.num_processes)
            if not (self.state_dir / f"random_states_{i}.pkl").is_file()
        ]
        if missing:  # accelerate would skip them silently
            self.print(
                f"--resume: {', '.join(missing)} missing from {self.state_dir} (a state saved by an older version or "
                "with another number of processes): those ranks start from fresh random states, so the run will not "
                "repeat an uninterrupted one exactly"
            )
        self.accelerator.load_state(str(self.state_dir))
        meta = json.loads(meta_path.read_text())
        self._elapsed_before = float(meta.get("elapsed_seconds", 0.0))
        self.meta = dict(meta.get("script", {}))
        self._t0 = time.monotonic()
        self.print(f"resumed from step {meta['step']} ({self._elapsed_before / 60:.1f} min trained)")
        return int(meta["step"])

    def print(self, *args: Any) -> None:
        self.accelerator.print(*args, flush=True)

    def log(self, step: int, values: dict[str, float]) -> None:
        """One JSON line per call in output_dir/log.jsonl (main process)."""
        if self.is_main:
            with open(self.output_dir / "log.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps({"step": step, "minutes": round(self.elapsed_minutes(), 3), **values}) + "\n")

    def save_pretrained(self, model: nn.Module, folder: str | os.PathLike, *, card: str, fp16: bool = True) -> Path:
        """The final model folder (config.json, model.safetensors, README.md), written whole to a temporary
        folder and renamed; ``fp16`` stores half-precision weights (they load into float32).

        The older scripts (``train/mvae.py``, ``train/classifier.py``) save the model into the run's own
        ``output_dir``, beside its training state: there the files are moved in one by one and the rest of the
        folder is kept; :meth:`push_to_hub` then uploads exactly the files saved here, never the training state."""
        folder = Path(folder)
        if not self.is_main:
            return folder
        net = self.unwrap(model)
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        _storage_copy(net, fp16).save_pretrained(tmp)
        (tmp / "README.md").write_text(card, encoding="utf-8")
        if self._holds_run(folder):
            folder.mkdir(parents=True, exist_ok=True)
            names = sorted(f.name for f in tmp.iterdir())
            for name in names:
                os.replace(tmp / name, folder / name)
            tmp.rmdir()
            self._saved_files[folder.resolve()] = names
        else:
            if folder.exists():
                shutil.rmtree(folder)
            tmp.rename(folder)
        return folder

    def _holds_run(self, folder: Path) -> bool:
        """Whether ``folder`` is (or contains) this run's output_dir, which must survive a save into it."""
        run, target = self.output_dir.resolve(), folder.resolve()
        return run == target or target in run.parents

    def saved_files(self, folder: str | os.PathLike) -> list[str] | None:
        """The files :meth:`save_pretrained` (and :meth:`finish`) put into ``folder`` when it is the run's own
        folder (None: the folder is the saved model whole)."""
        return self._saved_files.get(Path(folder).resolve())

    def push_to_hub(self, folder: str | os.PathLike, repo_id: str) -> None:
        """Upload exactly what :meth:`save_pretrained` wrote to ``folder`` to ``repo_id``."""
        if self.is_main:
            push_folder(folder, repo_id, files=self.saved_files(folder))
            self.print(f"pushed to https://huggingface.co/{repo_id}")

    def run_summary(self, model: nn.Module, steps: int, samples: int, seconds: float) -> dict[str, Any]:
        """What every model card says about its run: steps, minutes, speed, device, precision, parameters."""
        return {
            "steps": steps,
            "minutes": self.elapsed_minutes(),
            "speed": training_speed(samples, seconds) if samples else "not measured (resumed at the end)",
            "device": str(self.device) + (f" × {self.num_processes}" if self.num_processes > 1 else ""),
            "precision": self.precision,
            "parameters": sum(p.numel() for p in self.unwrap(model).parameters()),
        }

    def finish(self, model: nn.Module, folder: str | os.PathLike, *, card: str, record: dict, fp16: bool) -> Path:
        """The end of a run: the model folder (:meth:`save_pretrained`), its ``eval.json`` (``record``), and, with
        ``--push_to_hub``, exactly that folder uploaded."""
        folder = self.save_pretrained(model, folder, card=card, fp16=fp16)
        if self.is_main:
            from sketchface.training import atomic_write

            atomic_write(folder / "eval.json", json.dumps(record, indent=1))
            if self.saved_files(folder) is not None:
                self._saved_files[folder.resolve()] = sorted({*self.saved_files(folder), "eval.json"})
            self.print(f"saved {folder}")
            if self.args.push_to_hub:
                self.push_to_hub(folder, self.args.push_to_hub)
        return folder


def _storage_copy(model: nn.Module, half: bool) -> nn.Module:
    """A CPU copy of ``model`` for saving: contiguous tensors (safetensors stores no channels_last layout), in
    float16 when ``half``; the live model is untouched."""
    import copy

    out = copy.deepcopy(model).to(memory_format=torch.contiguous_format).cpu()
    if half:
        for p in list(out.parameters()) + list(out.buffers()):
            if p.is_floating_point():
                p.data = p.data.half()
    return out


def _half_copy(model: nn.Module) -> nn.Module:
    return _storage_copy(model, half=True)


class _StepBatches:
    """A DataLoader batch sampler: this rank's rows of every step from ``start`` on (:meth:`Trainer.batch_indices`)."""

    def __init__(self, trainer: Trainer, n: int, start: int):
        self.trainer, self.n, self.start = trainer, n, start
        per_step = trainer.args.batch_size * trainer.num_processes
        if n < per_step:  # fail here, not in a worker
            raise ValueError(f"the data set has {n} samples, fewer than one step's {per_step} (batch × processes)")

    def __iter__(self) -> Iterator[list[int]]:
        for idx in self.trainer.batch_indices(self.n, self.start):
            yield idx.tolist()


def push_folder(folder: str | os.PathLike, repo_id: str, api: Any = None, files: list[str] | None = None) -> str:
    """Create ``repo_id`` if needed and upload the folder as it is on disk (only ``files`` when given: the model
    files saved into a run's folder, not its training state); returns the commit URL."""
    from huggingface_hub import HfApi

    api = api or HfApi()
    api.create_repo(repo_id, exist_ok=True)
    kwargs = {"allow_patterns": list(files)} if files is not None else {}
    info = api.upload_folder(
        folder_path=str(folder), repo_id=repo_id, commit_message="Upload from SketchFace", **kwargs
    )
    return str(info)


def model_name(args: TrainingArguments) -> str:
    """The name a model card gives its model: the save folder's name, or the run's when that is a generic "final"."""
    folder = Path(args.save_dir or Path(args.output_dir) / "final")
    return folder.name if folder.name != "final" else folder.parent.name


def training_speed(samples: int, seconds: float) -> str:
    """ "1,234 samples/s" for model cards."""
    return f"{samples / max(seconds, 1e-9):,.0f} samples/s"


def lineage(init_from: str | None) -> str:
    """A model card line for a run that started from another saved model: how that one was trained (from the
    ``eval.json`` the training scripts write beside it)."""
    if not init_from:
        return ""
    try:
        prev = json.loads((Path(init_from) / "eval.json").read_text())
        s, t = prev["summary"], prev.get("training", {})
        before = (
            f"{s['steps']} steps × batch {t.get('batch_size', '?')} in {s['minutes']:.1f} min on {s['device']} "
            f"({s['speed']}, precision {s['precision']})"
        )
    except (OSError, ValueError, KeyError):
        before = "its own card says how it was trained"
    return f"\n- Started from `{init_from}`: {before}."
