"""The training loop (paper Methods, "Training"), the same on every rank; only `dist.is_main` writes.

    prepare(config)          every input check, before any process group exists (bad input → UserError)
    train(config, resume)    → TrainResult; `python -m trajcast_dist.train` and torchrun both end up here

Recipe: Adam + AMSGrad (lr 0.01), ReduceLROnPlateau on the validation loss (factor 0.8, patience 20), early
stopping after 100 epochs without improvement, at most 1,500 epochs, loss eq. (8) over the global batch.
Validation (with the EMA weights when `ema_decay` is set) after every epoch; `last` after every epoch (and
every `checkpoint_every` steps), `best` and the exported `model.pt` whenever the validation loss improves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ase.data import atomic_numbers

from trajcast_dist import __version__
from trajcast_dist.config import Config, ModelConfig, Scales, stored_model
from trajcast_dist.errors import UserError
from trajcast_dist.progress import progress_bar
from trajcast_dist.runtime import DTYPES, set_threads
from trajcast_dist.training import checkpoint as ckpt
from trajcast_dist.training.batch import BatchMaker
from trajcast_dist.training.distributed import Dist
from trajcast_dist.training.ema import EMA
from trajcast_dist.training.engine import check_deepspeed_config, make_engine
from trajcast_dist.training.evaluate import evaluate, table_s1
from trajcast_dist.training.log import plot_curves, write_log
from trajcast_dist.training.metrics import Metrics, squared_errors
from trajcast_dist.training.sampler import GlobalBatchSampler
from trajcast_dist.training.targets import Augmentation, augment, pushforward, target_rms

__all__ = ["Prepared", "prepare", "train", "TrainResult"]
STATISTICS_KEYS = ("displacement_rms_A", "velocity_rms_A_per_fs", "avg_num_neighbors", "temperature_K")


@dataclass
class Prepared:
    """What `prepare` found: the open store, the model's species, the config with its scales from the data and, for
    a new run with `training.init_from`, the checked starting weights; with --resume, (path, checkpoint state)."""

    store: object
    species: list[int]
    config: Config
    statistics: dict
    init_weights: dict | None = None
    resumed: tuple[Path, dict] | None = None


@dataclass
class TrainResult:
    out_dir: Path
    epochs: int
    global_step: int
    best_val_loss: float
    stopped: str
    model_path: Path | None
    test_summary: dict | None


def prepare(config: Config, world_size: int = 1, resume: str | None = None) -> Prepared:
    """Check the data, species, batch and files; return the config with the scales measured on the data."""
    from trajcast_dist.data.store import PairStore

    tc = config.training
    if not tc.data:
        raise UserError("no training data: set training.data in the config or pass --data STORE.zarr")
    store = PairStore(tc.data)
    attrs = store.attrs
    for split in ("train", "val"):
        if split not in store.splits:
            raise UserError(f"{tc.data}: has no {split!r} split (it has {', '.join(store.splits)}); rebuild it with "
                            "`trajcast-dist data pairs --split train=0.8,val=0.1,test=0.1`")
    statistics = attrs.get("statistics") or {}
    missing = [k for k in STATISTICS_KEYS if k not in statistics]
    if missing:
        raise UserError(f"{tc.data}: attrs.statistics lacks {', '.join(missing)}; rebuild it with "
                        "`trajcast-dist data pairs`")
    data_species = sorted(int(z) for z in attrs["species"])
    species = sorted(tc.species) if tc.species else data_species
    uncovered = sorted(set(data_species) - set(species))
    if uncovered:
        from ase.data import chemical_symbols

        raise UserError(f"{tc.data} contains {','.join(chemical_symbols[z] for z in uncovered)} but training.species "
                        f"= {tc.species} does not; add them to training.species (or remove the key)")
    absent = [el for el in (tc.noise_displacement_by_element or {}) if atomic_numbers[el] not in species]
    if absent:
        raise UserError(f"training.noise_displacement_by_element names {','.join(absent)}, which {tc.data} and "
                        "training.species do not hold; remove it or train on data that has it")
    if not math.isclose(float(attrs["dt_fs"]), config.model.dt_fs, rel_tol=1e-9):
        raise UserError(f"{tc.data} pairs are Δt = {attrs['dt_fs']} fs apart but model.dt_fs = {config.model.dt_fs}; "
                        f"set model.dt_fs: {attrs['dt_fs']} or use a store built with --dt {config.model.dt_fs}")
    if tc.batch_size % world_size:
        raise UserError(f"training.batch_size = {tc.batch_size} (global) does not divide over {world_size} ranks; "
                        "choose a batch size that is a multiple of the number of ranks")
    if tc.engine == "deepspeed":
        check_deepspeed_config(tc.deepspeed_config)
    last = Path(tc.out_dir) / "checkpoints" / "last.pt"
    if resume is None and last.exists():
        raise UserError(f"{last} exists; pass --resume to continue that run, or choose another --out")
    if resume == "auto" and not last.exists():
        raise UserError(f"--resume: {last} not found; start without --resume or give the run's --out")
    if resume not in (None, "auto") and not Path(resume).is_file():
        raise UserError(f"--resume {resume}: checkpoint not found")
    init_weights = resumed = None
    if resume is not None:  # a run goes on with the scales it started with (its loss is normalised by them)
        path = last if resume == "auto" else Path(resume)
        resumed = (path, ckpt.load_state(path))
        scales = stored_model(resumed[1]["config"]["model"], resumed[1]["config"].get("scales"), str(path))[1]
    elif tc.init_from:
        # The weights were learnt with the init model's scales: keep them, so that training starts from the same
        # function whatever this store's statistics are.
        init_weights, scales = _init_weights(tc.init_from, config.model, species)
    else:
        scales = Scales(displacement_rms_A=float(statistics["displacement_rms_A"]),
                        velocity_rms_A_per_fs=float(statistics["velocity_rms_A_per_fs"]),
                        temperature_K=float(statistics["temperature_K"]),
                        avg_num_neighbors=_avg_neighbours(store, statistics, config.model.cutoff_A))
        if config.model.baseline != "none" or config.model.per_species_scale:
            scales = dataclasses.replace(scales, **target_rms(store, species, config.model.dt_fs,
                                                              config.model.baseline))
        scales.validate(f"{tc.data} statistics")
    return Prepared(store, species, dataclasses.replace(config, scales=scales), dict(statistics), init_weights,
                    resumed)


def train(config: Config, resume: str | None = None, progress: bool = True, log=print) -> TrainResult:
    """Train as one rank of the job described by torchrun's environment (or alone)."""
    tc = config.training
    dist = Dist(tc.dist_backend, tc.device)
    prepared = prepare(config, dist.world_size, resume)
    if dist.device.type == "cpu":
        set_threads(tc.threads, dist.env.local_world_size)
    dist.init()
    try:
        return _Trainer(prepared, dist, progress, log if dist.is_main else _silent).run()
    finally:
        dist.close()


class _Trainer:
    def __init__(self, prepared: Prepared, dist: Dist, progress: bool, log):
        self.p, self.dist, self.log = prepared, dist, log
        self.config, self.tc = prepared.config, prepared.config.training
        self.progress = progress and dist.is_main
        self.out = Path(self.tc.out_dir)
        self.checkpoints = self.out / "checkpoints"
        self.weights = (self.tc.loss_weight_displacement, self.tc.loss_weight_velocity)
        self.rms = (self.config.scales.displacement_rms_A, self.config.scales.velocity_rms_A_per_fs)

        from trajcast_dist.model import TrajCast
        from trajcast_dist.model.backends import resolve_backend

        _seed_everything(self.tc.seed)
        dtype = DTYPES[self.tc.dtype]
        backend = resolve_backend(self.tc.tensor_backend, dist.device)  # auto: cueq on a GPU, as forecast's
        self.model = TrajCast(self.config.model, prepared.species, backend, self.config.scales).to(
            dtype=dtype, device=dist.device)
        if prepared.init_weights is not None:  # before the engine and the EMA take their copies
            self.model.load_state_dict(prepared.init_weights)
        if self.tc.path == "fast":  # same parameters and state dict; only the tensor-product contraction differs
            self.model.use_fast_training()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.tc.lr, amsgrad=self.tc.amsgrad)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=self.tc.scheduler_factor, patience=self.tc.scheduler_patience)
        self.engine = make_engine(self.tc.engine, self.model, self.optimizer, dist, self.tc.batch_size,
                                  self.tc.deepspeed_config)
        self.ema = EMA(self.model, self.tc.ema_decay) if self.tc.ema_decay else None
        self.sampler = GlobalBatchSampler(prepared.store, "train", self.tc.batch_size, dist.rank, dist.world_size,
                                          self.tc.seed, self.tc.max_train_frames)
        self.maker = BatchMaker(self.model.species_index, self.model.cutoff_A, dtype, dist.device)
        self.augmentation = Augmentation.from_training(vars(self.tc))
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.best_val, self.bad_epochs, self.history = math.inf, 0, []
        self.train_sums = None  # partial training sums of the epoch in progress (from a mid-epoch checkpoint)
        self.stopped = ""
        self.tags = {}  # DeepSpeed tags that `last` and `best` name (the others are pruned)
        self.best_weights = None  # state_dict of the best epoch as exported (EMA weights when EMA is on)

    # --- the loop ---------------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        if self.p.resumed:
            self._load(*self.p.resumed)
            self.p.resumed = None  # the weights and optimiser state are in the model now; free the checkpoint copy
        else:
            self.log(f"# trajcast-dist train: {self.model.num_weights()} weights, species {self.p.species}, "
                     f"{self.tc.dtype}, {self.tc.path} path, engine {self.engine.name}, {self.dist.world_size} rank(s) "
                     f"({self.dist.backend if self.dist.initialised else 'no process group'}, "
                     f"{self.dist.device}), global batch {self.tc.batch_size} = {self.sampler.per_rank} × "
                     f"{self.dist.world_size}, {self.sampler.steps_per_epoch(0)} steps/epoch")
        while not self.stopped:
            if self.epoch >= self.tc.max_epochs:
                self.stopped = f"max_epochs {self.tc.max_epochs}"
                break
            if self.tc.max_steps and self.global_step >= self.tc.max_steps:
                self.stopped = f"max_steps {self.tc.max_steps}"
                break
            self._train_epoch()
        model_path, test_summary = self._finish()
        self.log(f"# stopped: {self.stopped}; best validation loss {self.best_val:.6e}")
        return TrainResult(self.out, self.epoch, self.global_step, self.best_val, self.stopped, model_path,
                           test_summary)

    def _train_epoch(self) -> None:
        started = time.perf_counter()
        metrics = Metrics(self.p.species, self.weights, self.rms, self.dist.device)
        if self.train_sums is not None:
            metrics.load(self.train_sums)
            self.train_sums = None
        steps = self.sampler.steps_per_epoch(self.epoch)
        bar = progress_bar(total=steps, initial=self.step_in_epoch, desc=f"epoch {self.epoch}", unit="step",
                           enabled=self.progress, leave=False)
        frames_seen = 0
        self.model.train()
        for step, frames in self.sampler.batches(self.epoch, self.step_in_epoch):
            frames = pushforward(frames, self.p.store, "train", self._forecast, self.tc.pushforward, self.epoch,
                                 self.tc.seed, self.tc.pushforward_steps)
            loss = self._train_step(self.maker(augment(frames, self.epoch, self.tc.seed, self.augmentation)),
                                    metrics)
            frames_seen += self.tc.batch_size
            self.step_in_epoch, self.global_step = step + 1, self.global_step + 1
            bar.update(1)
            if self.global_step % self.tc.log_every == 0:
                bar.set_postfix(loss=f"{loss:.3e}", lr=f"{self.optimizer.param_groups[0]['lr']:.2e}", refresh=False)
            if self.tc.max_steps and self.global_step >= self.tc.max_steps:
                self.stopped = f"max_steps {self.tc.max_steps}"
                break
            if self.tc.checkpoint_every and self.global_step % self.tc.checkpoint_every == 0:
                self._save_last(metrics)
        bar.close()
        if self.step_in_epoch < steps:  # stopped inside the epoch: keep the position
            if self.stopped:
                self._validate_at_stop()
            self._save_last(metrics)
            return
        self._end_epoch(metrics.reduce(self.dist), time.perf_counter() - started, frames_seen)

    @torch.no_grad()
    def _forecast(self, frames: list[dict]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The model's one-step forecast (Δr, v′) of each frame, float64 numpy (pushforward inputs)."""
        displacement, velocity = self.model(self.maker(frames).graph)
        sizes = [len(frame["positions"]) for frame in frames]
        return list(zip(*(np.split(x.to(torch.float64).cpu().numpy(), np.cumsum(sizes)[:-1])
                          for x in (displacement, velocity))))

    def _train_step(self, batch, metrics: Metrics) -> float:
        pred_d, pred_v = self.engine(batch.graph)
        scales = self.model.readout.scales(batch.graph.species)
        sse_d, sse_v = squared_errors(pred_d, pred_v, batch.target_displacement, batch.target_velocity, *scales)
        # Eq. (8) normalises by the atoms of the *global* batch; DDP/DeepSpeed average gradients over W ranks.
        # The same all-reduce tells every rank whether any rank's loss is non-finite, so all stop together.
        finite = bool(torch.isfinite(sse_d + sse_v))
        totals = self.dist.sum(torch.tensor([float(batch.n_atoms), float(not finite)], dtype=torch.float64,
                                            device=self.dist.device))
        if totals[1] > 0:
            where = f"frames {batch.indices} of the train split" if not finite else "another rank"
            raise FloatingPointError(f"non-finite training loss at epoch {self.epoch} step {self.step_in_epoch} on "
                                     f"{int(totals[1])} rank(s) (rank {self.dist.rank}: {where}); check the data "
                                     "for NaN/inf or lower training.lr")
        loss = (self.weights[0] * sse_d + self.weights[1] * sse_v) / (3.0 * totals[0].to(sse_d.dtype))
        self.engine.backward(loss * self.dist.world_size)
        self.engine.step()
        if self.ema is not None:
            self.ema.update(self.model)
        metrics.add(pred_d.detach(), pred_v.detach(), batch.target_displacement, batch.target_velocity,
                    batch.graph.species, scales)
        return float(loss.detach()) * self.dist.world_size

    def _end_epoch(self, train_metrics: Metrics, seconds: float, frames: int) -> None:
        val = self._validate()
        train = train_metrics.summary()
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step(val["loss"])
        improved = val["loss"] < self.best_val
        self.best_val = min(self.best_val, val["loss"])
        self.bad_epochs = 0 if improved else self.bad_epochs + 1
        self.history.append({"epoch": self.epoch, "step": self.global_step, "lr": lr, "train_loss": train["loss"],
                             "val_loss": val["loss"], "val_mae_d_A": val["mae_d"],
                             "val_mae_v_A_per_fs": val["mae_v"], "val_rel_rms_d": val["rel_rms_d"],
                             "val_rel_rms_v": val["rel_rms_v"], "train_mae_d_A": train["mae_d"],
                             "train_mae_v_A_per_fs": train["mae_v"], "epoch_s": seconds,
                             "samples_per_s": frames / seconds if seconds else float("nan")}
                            | {f"val_{k}": v for k, v in val.items() if k.startswith("mae_") and k.count("_") == 2})
        self.log(f"epoch {self.epoch:4d} step {self.global_step:7d}  train {train['loss']:.4e}  "
                 f"val {val['loss']:.4e}  MAE Δr {val['mae_d']:.3e} Å  v {val['mae_v']:.3e} Å/fs  "
                 f"lr {lr:.2e}  {seconds:.1f} s{'  *' if improved else ''}")
        self.epoch, self.step_in_epoch = self.epoch + 1, 0
        if self.bad_epochs > self.tc.early_stopping_patience:
            self.stopped = f"early stopping ({self.tc.early_stopping_patience} epochs without improvement)"
        if self.tc.max_steps and self.global_step >= self.tc.max_steps:
            self.stopped = f"max_steps {self.tc.max_steps}"
        if improved:
            self.best_weights = self._export_weights()
        self._save("last.pt", None)
        if improved:
            self._save("best.pt", None)
            if self.dist.is_main:
                self._export(self.best_weights, {})
        if self.dist.is_main:
            write_log(self.out / "train_log.csv", self.history)
            plot_curves(self.out / "learning_curves.png", self.history)

    def _validate_at_stop(self) -> None:
        """A run that stops inside an epoch (max_steps) has not validated its latest weights: validate them,
        and keep them as the best if they are, so every run ends with a validated, exported model."""
        val = self._validate()
        improved = val["loss"] < self.best_val
        self.log(f"# stopped inside epoch {self.epoch} at step {self.global_step}: val {val['loss']:.4e}  "
                 f"MAE Δr {val['mae_d']:.3e} Å  v {val['mae_v']:.3e} Å/fs{'  *' if improved else ''}")
        if not improved:
            return
        self.best_val = val["loss"]
        self.best_weights = self._export_weights()
        self._save("best.pt", None)

    def _validate(self) -> dict:
        with self.ema.applied(self.model) if self.ema else contextlib.nullcontext():
            return evaluate(self.model, self.p.store, "val", self.dist, self.sampler.per_rank, self.rms,
                            self.weights, self.tc.max_val_frames).summary()

    # --- checkpoints ------------------------------------------------------------------------------------------
    def _save_last(self, metrics: Metrics) -> None:
        """Mid-epoch `last`: the partial training sums of all ranks go into rank 0's file."""
        sums = Metrics(self.p.species, self.weights, self.rms, self.dist.device)
        sums.load(metrics.sums.clone())
        self._save("last.pt", sums.reduce(self.dist).state())

    def _save(self, name: str, train_sums) -> None:
        """Collective (the DeepSpeed engine writes per-rank parts); rank 0 writes the file last, atomically."""
        tag = f"step{self.global_step}-{name.removesuffix('.pt')}"
        self.engine.save_shards(self.checkpoints, tag)
        self.dist.barrier()
        if self.dist.is_main:
            state = {"model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                     "engine": self.engine.state_dict(), "engine_name": self.engine.name,
                     "deepspeed_tag": tag if self.engine.name == "deepspeed" else None,
                     "scheduler": self.scheduler.state_dict(),
                     "ema": self.ema.state_dict() if self.ema else None,
                     "export_weights": self.best_weights if name == "best.pt" and self.ema else None,
                     "epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
                     "train_sums": train_sums, "best_val": self.best_val, "bad_epochs": self.bad_epochs,
                     "history": self.history, "rng": ckpt.rng_state(), "species": self.p.species,
                     "statistics": self.p.statistics, "config": dataclasses.asdict(self.config),
                     "provenance": self._provenance()}
            ckpt.save_state(self.checkpoints / name, state)
            self.tags[name] = tag
            self.engine.prune_shards(self.checkpoints, set(self.tags.values()))
        self.dist.barrier()

    def _load(self, path: Path, state: dict) -> None:
        if state["species"] != self.p.species:
            raise UserError(f"{path}: checkpoint species {state['species']} differ from {self.p.species}")
        if state["engine_name"] != self.engine.name:
            raise UserError(f"{path}: written by the {state['engine_name']} engine; resume with "
                            f"--engine {state['engine_name']}")
        self.model.load_state_dict(state["model"])
        self.engine.load_state_dict(state["engine"], path.parent, state["deepspeed_tag"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.epoch, self.step_in_epoch, self.global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        self.best_val, self.bad_epochs, self.history = state["best_val"], state["bad_epochs"], state["history"]
        self.tags = {"last.pt": state["deepspeed_tag"]}
        if (path.parent / "best.pt").exists():
            best = ckpt.load_state(path.parent / "best.pt")
            self.tags["best.pt"] = best["deepspeed_tag"]
            self.best_weights = best["export_weights"] or best["model"]
        if state["train_sums"] is not None and self.dist.is_main:  # other ranks start their partial sums at 0
            self.train_sums = state["train_sums"]
        ckpt.set_rng_state(state["rng"])
        self.log(f"# resumed {path}: epoch {self.epoch} step {self.step_in_epoch} (global step {self.global_step})")

    def _provenance(self) -> dict:
        return {"data": str(self.tc.data), "data_provenance": self.p.store.attrs.get("provenance"),
                "world_size": self.dist.world_size, "engine": self.engine.name, "backend": self.dist.backend,
                "trajcast_dist_version": __version__, "torch_version": str(torch.__version__)}

    def _export_weights(self) -> dict:
        with self.ema.applied(self.model) if self.ema else contextlib.nullcontext():
            return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def _export(self, weights: dict, extra: dict) -> Path:
        """Rank 0: the forecast model file (io.checkpoint.save_model) with the best epoch's weights."""
        from trajcast_dist.io.checkpoint import save_model

        own = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(weights)
        state = {"statistics": self.p.statistics, "provenance": self._provenance(), "epoch": self.epoch,
                 "global_step": self.global_step, "best_val": self.best_val, "ema": self.ema,
                 "config": dataclasses.asdict(self.config)}
        save_model(self.out / "model.pt", self.model, {**ckpt.export_metadata(state), **extra})
        self.model.load_state_dict(own)
        return self.out / "model.pt"

    def _finish(self) -> tuple[Path | None, dict | None]:
        """Evaluate the best model on the test split (all ranks, if there is one); rank 0 exports it with the
        test errors."""
        if self.best_weights is None:
            return None, None
        extra, summary = {}, None
        if "test" in self.p.store.splits:
            own = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.model.load_state_dict(self.best_weights)
            summary = evaluate(self.model, self.p.store, "test", self.dist, self.sampler.per_rank, self.rms,
                               self.weights).summary()
            self.model.load_state_dict(own)
            extra = {"test_metrics": summary}
            self.log(table_s1(summary, Path(self.tc.data).stem, self.config.model.dt_fs, self.p.species,
                              self.p.store.n_frames("test")))
        if not self.dist.is_main:
            return None, summary
        path = self._export(self.best_weights, extra)
        self.log(f"# exported {path} (best epoch, {'EMA' if self.ema else 'raw'} weights)")
        return path, summary


def _avg_neighbours(store, statistics: dict, cutoff_A: float) -> float:
    """The store's statistic when it was computed at the model's cutoff; otherwise recounted on ≤ 64 frames."""
    if math.isclose(float(store.attrs.get("cutoff_A", -1)), cutoff_A, rel_tol=1e-9):
        return float(statistics["avg_num_neighbors"])
    from trajcast_dist.graph.graph import neighbor_pairs

    n = store.n_frames("train")
    pairs = atoms = 0
    for index in np.unique(np.linspace(0, n - 1, min(n, 64)).round().astype(int)):
        frame = store.frame("train", int(index))
        i, _, _ = neighbor_pairs(frame["positions"], frame["cell"], frame["pbc"], cutoff_A)
        pairs, atoms = pairs + len(i), atoms + len(frame["species"])
    return pairs / atoms


def _init_weights(path: str, model: ModelConfig, species: list[int]) -> tuple[dict, Scales]:
    """(weights, scales) of the model file `training.init_from`, which must have this run's architecture and
    species."""
    from trajcast_dist.io.checkpoint import read_metadata

    meta, weights = read_metadata(path)
    if sorted(meta["species"]) != species:
        raise UserError(f"training.init_from {path}: model species {meta['species']} differ from this run's "
                        f"{species}; fine-tune on data with the same elements")
    theirs, scales = stored_model(meta["config"], meta.get("scales"), path)
    theirs, mine = dataclasses.asdict(theirs), dataclasses.asdict(model)
    differ = [k for k in mine if mine[k] != theirs[k]]
    if differ:
        listed = ", ".join(f"{k} ({theirs[k]!r} vs {mine[k]!r})" for k in differ)
        raise UserError(f"training.init_from {path}: its model differs from the config in {listed}; "
                        "give the model: section the model file's settings")
    return weights, scales


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _silent(*args, **kwargs) -> None:
    pass
