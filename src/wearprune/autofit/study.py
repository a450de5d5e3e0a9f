"""The budget-driven search: an Optuna study over per-group pruning ratios and the importance
criterion, with the device limits as constraints (TPE's constrained mode).

Each trial's sampled ratios give the proportions of the cut; one factor, bisected on the cost model,
scales them until the model just meets the memory, latency and energy limits (``fill_budget``). The
candidate is pruned, costed, and — only when it meets those limits — fine-tuned briefly (distilled
from the dense model) and scored on validation. The study lives in Optuna storage (SQLite in the
run by default), so a killed search resumes where it stopped and several processes, Ray tasks or
machines can share one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from wearprune.errors import ConfigError

IMPORTANCES = ("l2", "taylor", "fpgm")
STEP = 0.0625  # ratio grid: fine enough that the least-pruned model within a budget uses most of it
MAX_RATIO = 0.875
# A worker killed mid-trial leaves its trial RUNNING; after the grace period another worker fails it and
# retries its parameters. Generous, because a busy worker's heartbeat thread can be late.
HEARTBEAT_S = 20
GRACE_S = 180


@dataclass(frozen=True)
class Job:
    """Everything a worker needs, as plain data (it crosses process and Ray boundaries)."""

    run: str
    data_root: str | None
    device: str
    limits: dict
    int8: bool
    storage: str
    study: str
    trials: int
    trial_epochs: int
    seed: int


def study_name(run: Path, device: str, limits: dict, int8: bool, trial_epochs: int, seed: int) -> str:
    """Same run (path and weights), device, limits and trial settings → the same study, so re-running
    the command resumes it; a retrained run starts a new one instead of reusing stale scores."""
    weights = hashlib.sha1((run / "model.safetensors").read_bytes()).hexdigest()
    key = [str(run.resolve()), weights, device, limits, int8, trial_epochs, seed]
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return f"fit-{Path(device).stem}-{digest[:10]}"


def default_storage(run: Path) -> str:
    return f"sqlite:///{(run / 'fit.db').resolve()}"


def storage(url: str):
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    # SQLite serialises writers: several workers wait for the lock instead of failing at once.
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    try:
        return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
    except Exception as e:  # SQLAlchemy and the database drivers raise their own error types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"cannot open the search storage {url!r}: {first[:200]}; give a reachable "
                          "SQLAlchemy URL (sqlite:///path.db, postgresql://...)") from None


def sampler(seed: int):
    """TPE in its constrained mode: each trial's limit excesses are set with ``trial.set_constraint``."""
    import optuna

    # constant_liar: parallel workers treat each other's running trials as bad, so they spread out
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=6, constant_liar=True)


def open_study(job: Job, seed_offset: int = 0):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name=job.study, storage=storage(job.storage), direction="maximize",
                               sampler=sampler(job.seed + seed_offset), load_if_exists=True)


def completed(study) -> list:
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]


def run_trials(job: Job, worker: int = 0) -> int:
    """A worker: run trials of ``job.study`` until it holds ``job.trials`` completed ones."""
    import torch
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    torch.set_num_threads(1)  # one core per worker; the pool is the parallelism
    context = _Context(job)
    study = open_study(job, seed_offset=worker + 1)
    if len(completed(study)) >= job.trials:
        return 0
    while len(completed(study)) < job.trials:
        try:
            study.optimize(context.objective, gc_after_trial=True, catch=(ConfigError,),  # an unfit candidate fails
                           callbacks=[MaxTrialsCallback(job.trials, states=(TrialState.COMPLETE,))])
        except ValueError as e:
            # SQLite has no row locks: two workers can pop the same enqueued trial, and the second one's
            # result is refused ("Cannot tell a COMPLETE trial"). The first result stands; carry on.
            if "Cannot tell a" not in str(e):
                raise
    return len(completed(study))


class _Context:
    """The run, its data and the device, loaded once per worker."""

    def __init__(self, job: Job):
        from wearprune.autofit.limits import Limits
        from wearprune.autofit.sensitivity import groups_of, score
        from wearprune.devices import load_device
        from wearprune.pipeline import _calibration, prepare_from_config
        from wearprune.runs import load_run

        self.job = job
        self.run = load_run(job.run)
        self.prepared = prepare_from_config(self.run.config, job.data_root)
        self.device = load_device(job.device)
        self.limits = Limits(**job.limits)
        self.calib = _calibration(self.prepared, job.seed, 256)
        self.example = self.calib[0][:1]
        self.groups = list(groups_of(self.run.model, self.example))
        self.dense = score(self.run.model, self.prepared.val, self.prepared.target_scale)
        # a drop in macro-F1 points (x100) or in the regression target's units (BPM)
        self.drop_scale = 100.0 if self.prepared.dataset.task == "classification" else 1.0

    def objective(self, trial) -> float:
        importance = trial.suggest_categorical("importance", IMPORTANCES)
        ratios = {g: trial.suggest_float(f"ratio:{g}", 0.0, MAX_RATIO, step=STEP) for g in self.groups}
        record = evaluate_candidate(self, ratios, importance, self.job.trial_epochs)
        for key, value in record.items():
            trial.set_user_attr(key, value)
        for limit, excess in record["excess"].items():
            trial.set_constraint(limit, excess)  # ≤ 0 where the limit is met
        return record["val_score"]


def evaluate_candidate(ctx, ratios: dict[str, float], importance: str, epochs: int) -> dict:
    """Prune, cost, and (when within the hardware limits) fine-tune and score one candidate."""
    from wearprune.autofit.sensitivity import score
    from wearprune.devices import estimate_cost
    from wearprune.prune import prune
    from wearprune.train import TrainConfig, fit

    prep = ctx.prepared
    ratios = fill_budget(ctx, ratios)
    pruned, summary = prune(ctx.run.model, ctx.example, ratio=0.0, ratios=ratios, importance=importance,
                            calib=ctx.calib, task=prep.dataset.task)
    cost = estimate_cost(pruned, ctx.example, ctx.device, int8=ctx.job.int8)
    hardware = ctx.limits.excess(cost)
    tuned = all(v <= 0 for v in hardware.values()) and epochs > 0
    if tuned:  # only candidates that fit the chip are worth training time
        train_cfg = ctx.run.config["train"]
        cfg = TrainConfig(epochs=epochs, batch_size=train_cfg["batch_size"], lr=1e-3, patience=epochs,
                          seed=ctx.job.seed, class_weighted=train_cfg.get("class_weighted", True))
        fit(pruned, prep.train, prep.val, cfg, teacher=ctx.run.model, target_scale=prep.target_scale)
    value = score(pruned, prep.val, prep.target_scale)
    drop = (ctx.dense - value) * ctx.drop_scale
    excess = ctx.limits.excess(cost, drop)
    # val_score: higher is better (MAE negated); costs are the cost model's estimates (est_*)
    return {"val_score": value, "drop": drop, "tuned": tuned, "ratios": ratios, "importance": importance,
            "macs": summary["macs_after"], "params": summary["params_after"], "est_arena_bytes": cost.arena_bytes,
            "est_flash_bytes": cost.flash_bytes, "est_latency_ms": cost.latency_ms, "est_energy_uj": cost.energy_uj,
            "excess": excess, "feasible": all(v <= 0 for v in excess.values())}


BISECTIONS = 8


def fill_budget(ctx, ratios: dict[str, float]) -> dict[str, float]:
    """Scale the sampled ratios by one factor, as little as the hardware limits allow.

    The sampled ratios say how to spread the cuts over the groups; the factor says how deep to cut.
    Bisecting it on the cost model puts every candidate just within the limits, so trials compare
    ways of spending the budget, not models far under it (which lose accuracy for nothing) or over it
    (which are never trained). Returns the sampled ratios unchanged when even the deepest cut in
    their proportions breaks a limit: that candidate is then reported infeasible.
    """
    from wearprune.devices import estimate_cost
    from wearprune.prune import prune

    weights = {g: r for g, r in ratios.items() if r > 0}
    if not weights:
        return ratios

    def scaled(t: float) -> dict[str, float]:
        return {g: min(MAX_RATIO, t * ratios[g]) for g in ratios}

    def fits(t: float) -> bool:
        pruned, _ = prune(ctx.run.model, ctx.example, ratio=0.0, ratios=scaled(t))  # shapes only: any criterion
        cost = estimate_cost(pruned, ctx.example, ctx.device, int8=ctx.job.int8)
        return all(v <= 0 for v in ctx.limits.excess(cost).values())

    low, high = 0.0, MAX_RATIO / min(weights.values())  # at `high` every sampled group is cut to MAX_RATIO
    if fits(low):
        return scaled(low)  # the dense model already fits: nothing to cut
    if not fits(high):
        return ratios
    for _ in range(BISECTIONS):
        mid = (low + high) / 2
        low, high = (low, mid) if fits(mid) else (mid, high)
    return {g: min(MAX_RATIO, math.ceil(r * 1e4) / 1e4) for g, r in scaled(high).items()}  # up: still fits


def run_pool(job: Job, workers: int, ray_address: str | None, on_poll=None) -> None:
    """Run the workers: a local process pool, or Ray tasks (``ray_address``: "auto", "local" or an address)."""
    if ray_address:
        return _run_ray(job, workers, ray_address, on_poll)
    if workers <= 1:
        run_trials(job)
        return None
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, wait

    # spawn: forked children would inherit torch's thread pools and the parent's open SQLite handle
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(run_trials, job, w) for w in range(workers)]
        while wait(futures, timeout=2).not_done:
            if on_poll:
                on_poll()
        for f in futures:
            f.result()  # a worker's error surfaces here
    return None


def _run_ray(job: Job, workers: int, address: str, on_poll) -> None:
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs the Ray extra: pip install 'wearprune[ray]'") from None
    if not ray.is_initialized():
        try:
            if address == "local":
                ray.init(num_cpus=max(workers, 1), include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ConfigError(f"cannot connect to Ray at {address!r}: {str(e).splitlines()[0][:200]}; start one "
                              "with `ray start --head` or use --ray local") from None
    if job.storage.startswith("sqlite") and len([n for n in ray.nodes() if n.get("Alive")]) > 1:
        raise ConfigError("a Ray cluster with several nodes needs storage they all reach: pass --storage "
                          "postgresql://... (the default SQLite file lives on this machine only)")
    task = ray.remote(num_cpus=1)(run_trials)
    pending = [task.remote(job, w) for w in range(max(workers, 1))]
    while pending:
        done, pending = ray.wait(pending, timeout=2)
        ray.get(done)  # a task's error surfaces here
        if on_poll:
            on_poll()
    return None


def cpu_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))
