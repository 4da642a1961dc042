"""fact train-net: train a network with weight decay until every layer is stationary (docs/SPEC.md §3).

Along training, every ``train.log_every`` steps, metrics.csv gets one row per layer: loss, accuracy,
stationarity residual and the Pearson correlation of WᵀW with F, (F Fᵀ)^{1/2}, AGOP^{1/2} (NFA) and
E^s (eNFA). Training stops when every layer's residual ‖∇_W L + λW‖/‖λW‖ is below ``train.tol``
(checked on the full training set every ``train.check_every`` steps) or at ``train.max_steps``.
checkpoint.pt (model, optimizer, schedule, sampler, config, step, metrics so far) is rewritten
atomically along the way; rerunning in the same run directory resumes from it.
"""

from __future__ import annotations

import logging
import math
import time

import torch
from omegaconf import OmegaConf

from factcli.choices import FULL_BATCH_OPTIMIZERS
from factcli.core.fact import loss_gradient, stationarity_residual
from factcli.core.losses import CONVENTIONS, make_targets, per_sample_loss
from factcli.core.nets import MLP, ConvNet, weight_layers, weight_matrix
from factcli.errors import FactError
from factcli.runtime import resolve_device

from ..common.batches import Batches
from ..common.optim import FACT_VALIDITY, make_optimizer, make_scheduler, optimizer_step
from .checkpoint import CHECKPOINT, check_architecture, load_checkpoint, save_checkpoint
from .data import NetData, load_net_data
from .metrics import DTYPES, accuracy, agreement_rows, statistics
from .plots import plot_training
from .polish import polish_quadratic_net

log = logging.getLogger("fact")

# A resumed run must be the same experiment: these config entries must match the checkpoint's.
RESUME_MUST_MATCH = ("seed", "dataset", "data", "loss", "dtype", "optim.name", "optim.weight_decay")


def run(cfg, run) -> dict:
    device = resolve_device(cfg.device)
    data = load_net_data(cfg.dataset, cfg.data, cfg.seed)
    training = Training(cfg, data, device)
    checkpoint = run.file(CHECKPOINT)
    if cfg.train.resume and checkpoint.is_file():
        training.resume(checkpoint)
        run.log_many(training.metrics)
        log.info("resuming from %s at step %d", checkpoint, training.step)
    estimate = training.estimate_time()
    log.info(
        "estimated time on %s: %s for the %d steps left (%.3g s/step, %.3g s per metrics evaluation)",
        device.type, _duration(estimate["total_seconds"]), estimate["steps"],
        estimate["seconds_per_step"], estimate["seconds_per_evaluation"],
    )  # fmt: skip
    if cfg.train.estimate_only:
        return {"stop_reason": "estimate_only", "estimate": estimate, "device": device.type}
    stop_reason = training.fit(run, checkpoint)
    return training.summary(stop_reason, estimate, checkpoint, plots=cfg.plots and _plot(run))


def _plot(run) -> bool:
    return plot_training(run.metrics, run.plot_file("fact_vs_nfa_along_training.png")) is not None


def build_network(model_cfg, data: NetData) -> torch.nn.Module:
    if model_cfg.kind == "mlp":
        return MLP(
            math.prod(data.input_shape), list(model_cfg.hidden), data.outputs,
            model_cfg.activation, model_cfg.bias,
        )  # fmt: skip
    if not data.is_image or data.input_shape[1] != data.input_shape[2]:
        raise FactError(
            f"model.kind=conv needs square images (mnist, cifar10, digits), but dataset "
            f"{data.name} has inputs of shape {data.input_shape}; use model=mlp"
        )
    channels, size, _ = data.input_shape
    return ConvNet(
        channels, size, list(model_cfg.channels), data.outputs, model_cfg.kernel_size,
        model_cfg.stride, model_cfg.activation, model_cfg.bias,
    )  # fmt: skip


def initial_network(cfg, data: NetData) -> torch.nn.Module:
    """The seeded initial network, drawn in float32 whatever the process's default dtype (another
    library may have changed it), so the same seed always gives the same weights."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        torch.manual_seed(cfg.seed)
        model = build_network(cfg.model, data)
        initialize(model, cfg.model.init)
    finally:
        torch.set_default_dtype(default)
    return model


def initialize(model: torch.nn.Module, scheme: str) -> None:
    """``kaiming``: He-normal weights (std √(2/fan_in)), zero biases; ``default`` keeps PyTorch's."""
    if scheme == "default":
        return
    with torch.no_grad():
        for _, layer in weight_layers(model):
            torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                layer.bias.zero_()


def training_targets(data: NetData, loss: str, dtype: torch.dtype):
    """(train, test) targets in the form the loss expects (one-hot for MSE, labels for CE)."""
    if data.task == "regression":
        if loss != "mse":
            raise FactError(f"dataset {data.name} is a regression task: use loss=mse, not {loss}")
        return data.y_train.to(dtype), data.y_test.to(dtype)
    return (
        make_targets(data.y_train, data.outputs, loss, dtype),
        make_targets(data.y_test, data.outputs, loss, dtype),
    )


def optimizer_of(parameters, optim) -> torch.optim.Optimizer:
    """The optimizer of train-net's ``optim`` group."""
    return make_optimizer(
        parameters, optim.name, lr=optim.lr, weight_decay=optim.weight_decay, momentum=optim.momentum,
        betas=optim.betas, eps=optim.eps, history_size=optim.history_size,
    )  # fmt: skip


class Training:
    """Model, optimizer, schedule and sampler of one train-net run, and its loop."""

    def __init__(self, cfg, data: NetData, device: torch.device):
        self.cfg, self.data, self.device = cfg, data, device
        self.lam = float(cfg.optim.weight_decay)
        self.dtype = DTYPES[cfg.dtype]
        self.model = initial_network(cfg, data).to(device=device, dtype=self.dtype)
        self.X = data.X_train.to(device=device, dtype=self.dtype)
        self.X_test = data.X_test.to(device=device, dtype=self.dtype)
        self.Y, self.Y_test = (t.to(device) for t in training_targets(data, cfg.loss, self.dtype))
        self.loss_fn = per_sample_loss(cfg.loss)
        self.optimizer = optimizer_of(self.model.parameters(), cfg.optim)
        self.scheduler = make_scheduler(self.optimizer, cfg.optim, cfg.train.max_steps)
        full = cfg.optim.name in FULL_BATCH_OPTIMIZERS
        self.batches = Batches(len(self.X), len(self.X) if full else cfg.optim.batch_size, cfg.seed)
        self.step = 0
        self.train_seconds = 0.0
        self.metrics: list[dict] = []
        self.last_rows: list[dict] = []
        self.residuals: list[float] = []
        self.polish: dict | None = None
        self._saved_step: int | None = None  # step of the last checkpoint written (the good one)

    # -- one optimizer step --------------------------------------------------------------------
    def train_step(self) -> float:
        X, Y = self.batches.take(self.X, self.Y)
        loss = optimizer_step(self.model, self.optimizer, self.loss_fn, X, Y, self.lam)
        if not math.isfinite(loss):
            raise FactError(
                f"the loss became {loss} at step {self.step + 1}: training stopped, the last good "
                f"checkpoint ({CHECKPOINT}, step {self._saved_step}) is kept; lower optim.lr"
            )
        self.scheduler.step()
        self.step += 1
        return loss

    # -- convergence and metrics ---------------------------------------------------------------
    def stationarity(self) -> list[float]:
        """Every layer's residual ‖∇_W L + λW‖/‖λW‖ on the full training set (the fast path)."""
        _, grads = loss_gradient(self.model, self.X, self.Y, self.loss_fn, self.cfg.train.stats_batch_size)
        weights = [weight_matrix(m).detach() for _, m in weight_layers(self.model)]
        return [stationarity_residual(w, g, self.lam) for w, g in zip(weights, grads, strict=True)]

    def evaluate(self) -> list[dict]:
        """metrics.csv rows of this step: one per layer (FACT, NFA, eNFA correlations, residual)."""
        train = self.cfg.train
        stats = statistics(
            self.model, self.X, self.Y, self.cfg.loss, self.lam, dtype=train.stats_dtype,
            batch_size=train.stats_batch_size, per_sample=True, agop=True,
        )  # fmt: skip
        network = {
            "step": self.step,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": stats.loss,
            "train_acc": accuracy(self.model, self.X, self.data.y_train.to(self.device)),
            "test_acc": accuracy(self.model, self.X_test, self.data.y_test.to(self.device)),
        }
        rows = agreement_rows(stats.layers, train.nfa_power, (train.enfa_power,))
        return [{**network, **row} for row in rows]

    def fit(self, run, checkpoint) -> str:
        """Train until every layer is stationary or the step budget is spent; says which."""
        train = self.cfg.train
        logged = {int(float(row["step"])) for row in self.metrics}
        started = time.perf_counter() - self.train_seconds
        while True:
            converged = False
            if self.step % train.check_every == 0 or self.step >= train.max_steps:
                self.residuals = self.stationarity()
                converged = max(self.residuals) < train.tol
            done = converged or self.step >= train.max_steps
            if done and train.polish_quadratic and self.polish is None:
                self.polish = polish_quadratic_net(self.model, self.X, self.Y, self.lam)
                self.step += 1  # the polish counts as one more (exact) optimization step
                self.residuals = self.stationarity()
                converged = max(self.residuals) < train.tol
                log.info("polished the quadratic net to its critical point: %s", self.polish)
            if (self.step % train.log_every == 0 or done) and self.step not in logged:
                self.last_rows = self.evaluate()
                self.metrics += self.last_rows
                run.log_many(self.last_rows)
                logged.add(self.step)
                self._report(self.last_rows)
            if self.step % train.checkpoint_every == 0 or self.step in logged or done:
                self.train_seconds = time.perf_counter() - started
                self.save(checkpoint)
            if done:
                return "converged" if converged else "step_budget"
            self.train_step()

    def _report(self, rows: list[dict]) -> None:
        first = rows[0]
        log.info(
            "step %d  loss %.4g  train acc %s  max residual %.2e  FACT corr min %.3f  NFA min %.3f",
            self.step, first["train_loss"], _fmt(first["train_acc"]),
            max(r["residual"] for r in rows), min(r["fact"] for r in rows),
            min(r["nfa"] for r in rows),
        )  # fmt: skip

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self, path) -> None:
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise FactError(
                f"the weights became non-finite at step {self.step}: training stopped, the last "
                f"good checkpoint (step {self._saved_step}) is kept; lower optim.lr"
            )
        save_checkpoint(
            path,
            {
                "architecture": self.model.architecture,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "batches": self.batches.state_dict(),
                "step": self.step,
                "train_seconds": self.train_seconds,
                "dtype": self.cfg.dtype,
                "config": OmegaConf.to_container(self.cfg, resolve=True),
                "metrics": self.metrics,
            },
        )
        self._saved_step = self.step

    def resume(self, path) -> None:
        payload = load_checkpoint(path)
        check_architecture(self.model.architecture, payload["architecture"], path)
        current = OmegaConf.create(OmegaConf.to_container(self.cfg, resolve=True))
        saved = OmegaConf.create(payload.get("config", {}))
        for key in RESUME_MUST_MATCH:
            if OmegaConf.select(current, key) != OmegaConf.select(saved, key):
                raise FactError(
                    f"checkpoint {path} was trained with {key}={OmegaConf.select(saved, key)}, "
                    f"this run has {OmegaConf.select(current, key)}; use a new run directory"
                )
        try:
            self.model.load_state_dict(payload["model"])
            self.optimizer.load_state_dict(payload["optimizer"])
            self.scheduler.load_state_dict(payload["scheduler"])
            self.batches.load_state_dict(payload["batches"])
        except (KeyError, ValueError, RuntimeError) as error:
            raise FactError(f"checkpoint {path} does not fit this run ({type(error).__name__})") from None
        self.step = int(payload["step"])
        self.train_seconds = float(payload.get("train_seconds", 0.0))
        self.metrics = list(payload.get("metrics", []))
        self._saved_step = self.step

    # -- time estimate and summary -------------------------------------------------------------
    def estimate_time(self, steps: int = 3) -> dict:
        """Seconds per step and per metrics evaluation, timed on copies (training is untouched)."""
        import copy

        model = copy.deepcopy(self.model)
        optimizer = optimizer_of(model.parameters(), self.cfg.optim)
        size = self.batches.batch_size
        X, Y = self.X[:size], self.Y[:size]
        timings = []
        for _ in range(steps + 1):  # the first one warms up (allocations, lazy initialization)
            start = time.perf_counter()
            optimizer_step(model, optimizer, self.loss_fn, X, Y, self.lam)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            timings.append(time.perf_counter() - start)
        per_step = sum(timings[1:]) / steps
        rows = min(len(self.X), self.cfg.train.stats_batch_size)
        start = time.perf_counter()
        statistics(
            self.model, self.X[:rows], self.Y[:rows], self.cfg.loss, self.lam,
            dtype=self.cfg.train.stats_dtype, batch_size=rows, per_sample=True, agop=True,
        )  # fmt: skip
        per_evaluation = (time.perf_counter() - start) * len(self.X) / rows
        train = self.cfg.train
        remaining = max(0, train.max_steps - self.step)
        evaluations = remaining // train.log_every + 1
        checks = remaining // train.check_every + 1
        total = (
            remaining * per_step
            + evaluations * per_evaluation
            + checks * per_step * (len(self.X) / (self.batches.batch_size or 1))
        )
        return {
            "seconds_per_step": per_step,
            "seconds_per_evaluation": per_evaluation,
            "total_seconds": total,
            "steps": remaining,
        }

    def summary(self, stop_reason: str, estimate: dict, checkpoint, plots: bool) -> dict:
        final = self.last_rows or self.metrics[-len(weight_layers(self.model)) :]
        first_step = min(int(float(r["step"])) for r in self.metrics)
        early = [r for r in self.metrics if int(float(r["step"])) == first_step]
        table = [
            {k: r[k] for k in ("layer", "shape", "residual", "fact", "fact_sym", "fact_relerr",
                               "nfa", f"enfa_s{self.cfg.train.enfa_power:g}")}
            for r in final
        ]  # fmt: skip
        facts = [r["fact"] for r in table]
        beats = sum(
            r["fact"] > r["nfa"] and r["fact"] > r[f"enfa_s{self.cfg.train.enfa_power:g}"] for r in table
        )
        return {
            "stop_reason": stop_reason,
            "stop_detail": (
                f"every layer's stationarity residual < train.tol={self.cfg.train.tol:g}"
                if stop_reason == "converged"
                else f"train.max_steps={self.cfg.train.max_steps} reached; largest residual "
                f"{max(self.residuals):.3g} > train.tol={self.cfg.train.tol:g}"
            ),
            "steps": self.step,
            "train_seconds": round(self.train_seconds, 3),
            "device": self.device.type,
            "dataset": self.data.description,
            "architecture": self.model.architecture,
            "optimizer": self.cfg.optim.name,
            "fact_validity": FACT_VALIDITY[self.cfg.optim.name],
            "lambda": self.lam,
            "loss": self.cfg.loss,
            "loss_convention": CONVENTIONS[self.cfg.loss],
            "train_loss": final[0]["train_loss"],
            "train_acc": final[0]["train_acc"],
            "test_acc": final[0]["test_acc"],
            "max_residual": max(r["residual"] for r in table),
            "fact_corr_min": min(facts),
            "fact_corr_early_min": min(r["fact"] for r in early),
            "early_step": first_step,
            "layers_where_fact_beats_nfa_and_enfa": f"{beats}/{len(table)}",
            "layers": table,
            "early_layers": [{k: r[k] for k in ("layer", "fact", "nfa")} for r in early],
            "estimate": estimate,
            "polish": self.polish,
            "checkpoint": str(checkpoint),
            "plots": plots,
        }


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
