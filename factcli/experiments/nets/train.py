"""fact train-net: train a network with weight decay until every layer is stationary (docs/SPEC.md §3).

Along training, every ``train.log_every`` steps, metrics.csv gets one row per layer: loss, accuracy,
stationarity residual and the Pearson correlation of WᵀW with F, (F Fᵀ)^{1/2}, AGOP^{1/2} (NFA) and
E^s (eNFA). The schedule has two phases. ``optim`` trains for up to ``train.max_steps`` steps; then,
with ``train.finish=lbfgs``, full-batch L-BFGS on L_λ in float64 (finish.py) runs until
every layer's residual ‖∇_W L + λW‖/‖λW‖ is at most ``train.tol``: the stopping rule is the
residual (checked on the full training set), not a step count. L-BFGS iterations count as steps.
checkpoint.pt (model, optimizer, schedule, sampler, config, step, phase, metrics so far) is rewritten
atomically along the way; rerunning in the same run directory resumes from it.
"""

from __future__ import annotations

import logging
import math
import time

import torch
from omegaconf import OmegaConf

from factcli.choices import FULL_BATCH_OPTIMIZERS
from factcli.core.fact import adam_preconditioners
from factcli.core.layer_table import layer_table, residuals
from factcli.core.losses import CONVENTIONS, make_targets, per_sample_loss
from factcli.core.nets import MLP, ConvNet, Transformer
from factcli.errors import FactError
from factcli.messages import say
from factcli.progress import format_duration
from factcli.runtime import resolve_device

from ..common.batches import Batches
from ..common.optim import FACT_VALIDITY, lr_factor, make_optimizer, make_scheduler, optimizer_step
from .checkpoint import CHECKPOINT, check_architecture, load_checkpoint, save_checkpoint
from .data import NetData, load_net_data
from .finish import LbfgsFinish
from .metrics import DTYPES, accuracy
from .plots import plot_training
from .polish import polish_quadratic_net
from .reading import convergence_reading
from .report import correlation_bars

log = logging.getLogger("fact")

# A resumed run continues the same experiment. These settings may differ from the checkpoint's and
# take effect from the resume on (each change is recorded in summary.json's "resumes"): optim.lr (so
# that a diverged run can be resumed with a smaller step), every train.* budget, tolerance and
# cadence, and what only concerns output or hardware. Every other setting (seed, data, loss,
# precision, network, the rest of the optimizer) shaped the steps already taken: it must match.
RESUME_MAY_CHANGE = ("optim.lr", "train.", "plots", "threads", "device", "verify.", "source", "network")


def run(cfg, run, announce: bool = True) -> dict:
    """Train; ``announce`` logs the convergence verdict (verify-fact gives its own instead)."""
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
        device.type, format_duration(estimate["total_seconds"]), estimate["steps"],
        estimate["seconds_per_step"], estimate["seconds_per_evaluation"],
    )  # fmt: skip
    if estimate["seconds_per_finish_iteration"] is not None:
        log.info(
            "then full-batch L-BFGS, about %.3g s per iteration, until every residual <= %g (how many "
            "iterations is not known in advance: a few thousand on the default and MNIST presets)",
            estimate["seconds_per_finish_iteration"], cfg.train.tol,
        )  # fmt: skip
    if cfg.train.estimate_only:
        return {"stop_reason": "estimate_only", "estimate": estimate, "device": device.type}
    stop_reason = training.fit(run, checkpoint)
    summary = training.summary(stop_reason, estimate, checkpoint, plots=False)
    reading = summary["convergence"]
    summary["plots"] = cfg.plots and _plot(run, cfg.train, training.finish_start, summary)
    if announce:
        (log.info if reading["at_critical_point"] else log.warning)("%s", reading["reading"])
    return summary


def resume_changes(current: dict, saved: dict, prefix: str = "") -> dict[str, tuple]:
    """Every setting (dotted key) whose value differs between the run's config and the checkpoint's,
    as (checkpoint's, this run's). A key only one side has is not compared: a checkpoint written
    before a setting existed ran with its default."""
    changes: dict[str, tuple] = {}
    for key in current.keys() & saved.keys():
        a, b = saved[key], current[key]
        if isinstance(a, dict) and isinstance(b, dict):
            changes.update(resume_changes(b, a, f"{prefix}{key}."))
        elif a != b:
            changes[f"{prefix}{key}"] = (a, b)
    return dict(sorted(changes.items()))


def fact_validity(optim_name: str, finished: bool) -> str:
    """Whether FACT is exact at the optimizer's fixed points: once the L-BFGS finish has run, the
    weights are judged by L_λ itself, whatever optimizer came first (AdamW included)."""
    if finished:
        return f"{FACT_VALIDITY['lbfgs']}; it ran after {optim_name}"
    return FACT_VALIDITY[optim_name]


def _plot(run, train, finish_start: int | None, summary: dict) -> bool:
    """The correlations along training, and per weight matrix at the end (the paper's Figures 3, 2)."""
    path = run.plot_file("fact_vs_nfa_along_training.png")
    drawn = plot_training(run.metrics, path, tol=train.tol, finish_start=finish_start) is not None
    last = max(int(float(r["step"])) for r in run.metrics)
    final = [r for r in run.metrics if int(float(r["step"])) == last]
    correlation_bars(
        run.plot_file("correlations_per_layer.png"), final, [train.enfa_power], summary["convergence"]
    )
    return drawn


def build_network(model_cfg, data: NetData) -> torch.nn.Module:
    if model_cfg.kind == "transformer":
        if data.tokens is None:
            raise FactError(
                f"model.kind=transformer reads token sequences (dataset=modular); dataset {data.name} "
                "has none: use model=mlp"
            )
        seq_len, vocab = data.tokens
        return Transformer(
            vocab, seq_len, data.outputs, model_cfg.d_model, model_cfg.heads, model_cfg.blocks,
            model_cfg.mlp_width, model_cfg.activation, model_cfg.tied,
        )  # fmt: skip
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
    """``kaiming``: He-normal weights (std √(2/fan_in)) of the Linear and Conv2d layers, zero biases;
    ``default`` keeps PyTorch's."""
    if scheme == "default":
        return
    with torch.no_grad():
        for layer in model.modules():
            if not isinstance(layer, torch.nn.Linear | torch.nn.Conv2d):
                continue
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
        self.finish: LbfgsFinish | None = None  # the full-batch L-BFGS phase, once it has begun
        self.finish_start: int | None = None  # the step it began at
        self._finish_restarts = 0
        self._saved_step: int | None = None  # step of the last checkpoint written (the good one)
        self.resumes: list[dict] = []  # each resume: its step and the settings changed there

    @property
    def phase(self) -> str:
        return "train" if self.finish is None else "finish"

    @property
    def budget(self) -> int:
        """The last step of the current phase."""
        if self.finish is None:
            return self.cfg.train.max_steps
        return self.finish_start + self.cfg.train.finish_max_iters

    def start_finish(self) -> None:
        """Move to float64 and full-batch L-BFGS on L_λ (the convergent phase)."""
        double = torch.float64
        self.model = self.model.to(double)
        self.X, self.X_test = self.X.to(double), self.X_test.to(double)
        self.Y, self.Y_test = (t.to(double) if t.is_floating_point() else t for t in (self.Y, self.Y_test))
        self.finish = LbfgsFinish(
            self.model, self.X, self.Y, self.loss_fn, self.lam, self.cfg.train.finish_history,
            self.cfg.train.stats_batch_size,
        )  # fmt: skip
        if self.finish_start is None:
            self.finish_start = self.step
            log.info(
                "step %d: full-batch L-BFGS on L_lambda in float64 until every residual <= %g",
                self.step, self.cfg.train.tol,
            )  # fmt: skip

    # -- one optimizer step --------------------------------------------------------------------
    def train_step(self) -> float:
        if self.finish is not None:
            return self.finish_chunk()
        X, Y = self.batches.take(self.X, self.Y)
        loss = optimizer_step(self.model, self.optimizer, self.loss_fn, X, Y, self.lam)
        if not math.isfinite(loss):
            raise FactError(
                f"the loss became {loss} at step {self.step + 1}: training stopped, the last good "
                f"checkpoint ({CHECKPOINT}, step {self._saved_step}) is kept; rerun in this directory "
                "with a smaller optim.lr (it takes effect from that checkpoint on)"
            )
        self.scheduler.step()
        self.step += 1
        return loss

    def finish_chunk(self) -> float:
        """L-BFGS iterations up to the next check (or log) step; a chunk that cannot decrease L_λ
        restarts the curvature history, and two in a row end the phase (float64 exhausted)."""
        train = self.cfg.train
        size = min(train.finish_check_every, train.log_every - self.step % train.log_every,
                   self.budget - self.step)  # fmt: skip
        before = self.finish.residuals()[0]
        done = self.finish.run(size)
        after = self.finish.residuals()[0]
        self.step += max(done, 1)
        if not math.isfinite(after):
            raise FactError(
                f"L-BFGS reached a non-finite objective at step {self.step}; the last good checkpoint "
                f"(step {self._saved_step}) is kept; rerun in a new run directory with a larger "
                "optim.weight_decay or a smaller network"
            )
        self._finish_restarts = 0 if after < before else self._finish_restarts + 1
        if self._finish_restarts:
            self.finish.restart()
        return after

    @property
    def finish_stalled(self) -> bool:
        return self._finish_restarts >= 2

    # -- convergence and metrics ---------------------------------------------------------------
    def stationarity(self) -> list[float]:
        """Every layer's residual ‖∇_W L + λW‖/‖λW‖ on the full training set (the fast path)."""
        if self.finish is not None:  # the same formula, from L-BFGS's own full-batch gradient
            return self.finish.residuals()[1]
        found = residuals(
            self.model, (self.X, self.Y), self.loss_fn, self.lam, batch_size=self.cfg.train.stats_batch_size,
            dtype=None,
        )  # fmt: skip
        return list(found.values())

    def table(self, X, Y, batch_size: int):
        """train-net's per-matrix table: ``layer_table`` with the train.* options; with AdamW (before
        any L-BFGS finish) also the preconditioned FACT of its fixed points."""
        train = self.cfg.train
        adamw = self.cfg.optim.name == "adamw" and self.finish is None
        return layer_table(
            self.model, (X, Y), self.loss_fn, self.lam, batch_size=batch_size,
            dtype=DTYPES[train.stats_dtype], per_sample=True, nfa=True, enfa=True, nfa_power=train.nfa_power,
            enfa_powers=(train.enfa_power,),
            preconditioners=adam_preconditioners(self.model, self.optimizer) if adamw else None,
        )  # fmt: skip

    def evaluate(self) -> list[dict]:
        """metrics.csv rows of this step: one per layer (FACT, NFA, eNFA correlations, residual)."""
        table = self.table(self.X, self.Y, self.cfg.train.stats_batch_size)
        network = {
            "step": self.step,
            "phase": self.phase,
            "lr": self.optimizer.param_groups[0]["lr"] if self.finish is None else None,
            "train_loss": table.loss,
            "train_acc": accuracy(self.model, self.X, self.data.y_train.to(self.device)),
            "test_acc": accuracy(self.model, self.X_test, self.data.y_test.to(self.device)),
        }
        return [{**network, **row} for row in table.rows]

    def fit(self, run, checkpoint) -> str:
        """Train until every layer is stationary (or a budget is spent, or L-BFGS stalls); says which."""
        train = self.cfg.train
        logged = {int(float(row["step"])) for row in self.metrics}
        started = time.perf_counter() - self.train_seconds
        while True:
            converged = False
            if self.finish is not None or self.step % train.check_every == 0 or self.step >= self.budget:
                self.residuals = self.stationarity()
                converged = max(self.residuals) <= train.tol
            done = converged or self.step >= self.budget or self.finish_stalled
            if done and train.polish_quadratic and self.polish is None:
                self.polish = polish_quadratic_net(self.model, self.X, self.Y, self.lam)
                self.step += 1  # the polish counts as one more (exact) optimization step
                self.residuals = self.stationarity()
                converged = max(self.residuals) <= train.tol
                words = {key.replace("_", " "): value for key, value in self.polish.items()}
                log.info("polished the quadratic net to its critical point: %s", say(words).replace("=", " "))
            if done and not converged and self.finish is None and train.finish == "lbfgs":
                self.start_finish()  # the phase that converges; it stops on the residual
                self.residuals = self.stationarity()
                done = False
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
                if converged:
                    return "converged"
                if self.finish is None:
                    return "step_budget"
                return "finish_stalled" if self.finish_stalled else "finish_budget"
            self.train_step()

    def _report(self, rows: list[dict]) -> None:
        first = rows[0]
        log.info(
            "step %d  loss %.4g  train acc %s  max residual %.2e  FACT corr min %.3f  NFA min %.3f",
            self.step, first["train_loss"], _fmt(first["train_acc"]),
            max(r["residual"] for r in rows), min(r["fact"] for r in rows), _least(rows, "nfa"),
        )  # fmt: skip

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self, path) -> None:
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise FactError(
                f"the weights became non-finite at step {self.step}: training stopped, the last "
                f"good checkpoint (step {self._saved_step}) is kept; rerun in this directory with a "
                "smaller optim.lr (it takes effect from that checkpoint on)"
            )
        save_checkpoint(
            path,
            {
                "architecture": self.model.architecture,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "finish": None if self.finish is None else self.finish.state_dict(),
                "finish_start": self.finish_start,
                "scheduler": self.scheduler.state_dict(),
                "batches": self.batches.state_dict(),
                "step": self.step,
                "train_seconds": self.train_seconds,
                "dtype": str(next(self.model.parameters()).dtype).removeprefix("torch."),
                "config": OmegaConf.to_container(self.cfg, resolve=True),
                "metrics": self.metrics,
                "resumes": self.resumes,
            },
        )
        self._saved_step = self.step

    def resume(self, path) -> None:
        payload = load_checkpoint(path)
        check_architecture(self.model.architecture, payload["architecture"], path)
        changed = resume_changes(OmegaConf.to_container(self.cfg, resolve=True), payload.get("config") or {})
        fixed = {key: pair for key, pair in changed.items() if not key.startswith(RESUME_MAY_CHANGE)}
        if fixed:
            listed = ", ".join(f"{key}={old} (checkpoint) vs {new}" for key, (old, new) in fixed.items())
            raise FactError(
                f"checkpoint {path} was trained with other settings that a resume cannot change: {listed}; "
                "rerun with the checkpoint's values, or use a new run directory"
            )
        try:
            if payload.get("finish") is not None:  # interrupted in the L-BFGS phase
                self.finish_start = int(payload["finish_start"])
                self.start_finish()
                self.finish.load_state_dict(payload["finish"])
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
        self.resumes = list(payload.get("resumes", []))
        self._apply_learning_rate()
        if changed:
            record = {key: list(pair) for key, pair in changed.items()}
            self.resumes.append({"step": self.step, "changed": record})
            log.info(
                "resuming with changed settings, in effect from step %d: %s", self.step,
                ", ".join(f"{key} {say(old)} -> {say(new)}" for key, (old, new) in changed.items()),
            )  # fmt: skip

    def _apply_learning_rate(self) -> None:
        """The configured optim.lr, not the checkpoint's: loading the optimizer and scheduler states
        restores their base rate, and a resume may change it (the schedule's factor stays)."""
        lr = float(self.cfg.optim.lr)
        self.scheduler.base_lrs = [lr for _ in self.optimizer.param_groups]
        factor = lr_factor(max(self.scheduler.last_epoch, 0), self.cfg.optim, self.cfg.train.max_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * factor
        if self.finish is not None:
            self.finish.optimizer.param_groups[0]["history_size"] = self.cfg.train.finish_history

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
        self.table(self.X[:rows], self.Y[:rows], rows)
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
            "seconds_per_finish_iteration": self._finish_iteration_seconds()
            if train.finish == "lbfgs"
            else None,
        }

    def _finish_iteration_seconds(self) -> float:
        """One L-BFGS iteration costs about 1.3 full-batch float64 evaluations of L_λ and its gradient
        (measured on digits and MNIST); timed here on a copy."""
        import copy

        double = torch.float64
        Y = self.Y.to(double) if self.Y.is_floating_point() else self.Y
        finish = LbfgsFinish(
            copy.deepcopy(self.model).to(double), self.X.to(double), Y, self.loss_fn, self.lam,
            self.cfg.train.finish_history, self.cfg.train.stats_batch_size,
        )  # fmt: skip
        finish.objective()  # warm-up
        start = time.perf_counter()
        finish.objective()
        return 1.3 * (time.perf_counter() - start)

    def summary(self, stop_reason: str, estimate: dict, checkpoint, plots: bool) -> dict:
        last_step = max(int(float(r["step"])) for r in self.metrics)
        final = self.last_rows or [r for r in self.metrics if int(float(r["step"])) == last_step]
        first_step = min(int(float(r["step"])) for r in self.metrics)
        early = [r for r in self.metrics if int(float(r["step"])) == first_step]
        enfa = f"enfa_s{self.cfg.train.enfa_power:g}"
        keys = ("layer", "module", "shape", "residual", "fact", "fact_sym", "fact_relerr", "nfa", enfa)
        keys += ("preconditioned_residual", "preconditioned_fact", "form")
        table = [{k: r[k] for k in keys if _number_or_text(r.get(k))} for r in final]
        facts = [r["fact"] for r in table]
        compared = [r for r in table if "nfa" in r and enfa in r]  # identity-only rows have neither
        beats = sum(r["fact"] > r["nfa"] and r["fact"] > r[enfa] for r in compared)
        validity = fact_validity(self.cfg.optim.name, self.finish_start is not None)
        return {
            "convergence": convergence_reading(final, self.cfg.train.tol, validity),
            "stop_reason": stop_reason,
            "stop_detail": self._stop_detail(stop_reason),
            "steps": self.step,
            "finish": None
            if self.finish_start is None
            else {
                "method": "full-batch L-BFGS on L_lambda (strong Wolfe), float64",
                "started_at_step": self.finish_start,
                "iterations": self.step - self.finish_start,
            },
            "train_seconds": round(self.train_seconds, 3),
            "device": self.device.type,
            "dataset": self.data.description,
            "architecture": self.model.architecture,
            "optimizer": self.cfg.optim.name,
            "fact_validity": validity,
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
            "layers_where_fact_beats_nfa_and_enfa": f"{beats}/{len(compared)}",
            "layers": table,
            "early_layers": [{k: r.get(k) for k in ("layer", "fact", "nfa")} for r in early],
            "estimate": estimate,
            "polish": self.polish,
            "resumes": self.resumes,
            "checkpoint": str(checkpoint),
            "plots": plots,
        }

    def _stop_detail(self, stop_reason: str) -> str:
        train = self.cfg.train
        largest = f"largest residual {max(self.residuals):.3g} > train.tol={train.tol:g}"
        return {
            "converged": f"every layer's stationarity residual <= train.tol={train.tol:g}",
            "step_budget": f"train.max_steps={train.max_steps} reached (train.finish=none); {largest}",
            "finish_budget": f"train.finish_max_iters={train.finish_max_iters} L-BFGS iterations "
            f"reached; {largest}",
            "finish_stalled": f"L-BFGS could not decrease L_lambda further in float64; {largest}",
        }[stop_reason]


def _fmt(value) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"


def _least(rows: list[dict], key: str) -> float:
    """The smallest ``key`` over the rows that have it (NaN if none: identity-only rows lack NFA)."""
    values = [r[key] for r in rows if _number_or_text(r.get(key))]
    return min(values) if values else math.nan


def _number_or_text(value) -> bool:
    """Present in a row: not None, NaN or the empty cell a resumed metrics.csv gives."""
    return value is not None and value == value and value != ""
