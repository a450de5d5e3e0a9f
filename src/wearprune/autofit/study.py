"""The budget-driven search: an Optuna study over per-group pruning ratios and the importance
criterion, with the device limits as constraints (TPE's constrained mode).

Each trial's sampled ratios give the proportions of the cut; one factor, bisected on the cost model,
scales them until the model just meets the memory, latency and energy limits (``fill_budget``). The
candidate is pruned, costed, and — only when it meets those limits — fine-tuned briefly (distilled
from the dense model) and scored on validation. The study lives in Optuna storage (SQLite in the
run by default, or PostgreSQL for several machines), so a killed search resumes where it stopped and
several processes, Ray tasks or machines can share one.

What a worker reads: the run directory (``Job.run``, an absolute path) and the data set
(``Job.data_root`` or the worker's ``$WEARPRUNE_DATA``), so on a cluster both must be at the same
path on every node. The device profile travels inside the job, so a user's own YAML need not.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import socket
import warnings
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from wearprune.errors import ConfigError

if TYPE_CHECKING:
    from wearprune.devices.profile import DeviceProfile

IMPORTANCES = ("l2", "taylor", "fpgm")
STEP = 0.0625  # ratio grid: fine enough that the least-pruned model within a budget uses most of it
MAX_RATIO = 0.875
TRIAL_MIN_STEPS = 100  # a candidate's fine-tune (and an inner fold's) gets at least this many optimizer steps
FINAL_MIN_STEPS = 300  # the winner's final fine-tune, per cut
# A worker killed mid-trial leaves its trial RUNNING. On this machine the search sees at once that its process is
# gone (``recover_orphans``); elsewhere, after the grace period without a heartbeat. Either way the trial is failed
# and its parameters queued again, once. Generous, because a busy worker's heartbeat thread can be late.
HEARTBEAT_S = 20
GRACE_S = 180
MAX_RETRY = 1  # a trial whose worker died twice is not queued a third time (its parameters may be what kills it)
OWNER = "wearprune:worker"  # trial system attribute: the machine and process that evaluates it
POSTGRES_DRIVERS = ("psycopg", "psycopg2")  # what a plain postgresql:// URL is given, first installed wins
CLUSTER_EXTRA = "pip install 'wearprune[cluster]'"


@dataclass(frozen=True)
class Job:
    """Everything a worker needs, as plain data (it crosses process and Ray boundaries).

    ``profile``: the loaded device profile (loaded from ``device`` when not given). Workers use it, never the
    name: a user's own profile file is known by its path, which another process or node may not share.
    """

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
    profile: DeviceProfile | None = None
    parts: dict[str, list[str]] | None = None  # part name -> module-name patterns (resolved; docs/parts.md)
    teacher: str | None = None  # the run trials distil from (fit --grow auto: the widest); None: ``run``
    reference: float | None = None  # the validation score drops are counted from (the user's dense run)
    robust: bool = False  # score on clean + corrupted validation (scoring.ValScore)
    importances: tuple[str, ...] | None = None  # the criteria trials draw from (None: IMPORTANCES; DP: data-free)

    def __post_init__(self):
        from wearprune.devices import load_device

        if self.profile is None:
            object.__setattr__(self, "profile", load_device(self.device))
        # absolute: a Ray worker or a spawned process need not share this process's working directory
        object.__setattr__(self, "run", str(Path(self.run).resolve()))
        if self.data_root is not None:
            object.__setattr__(self, "data_root", str(Path(self.data_root).expanduser().resolve()))
        if self.teacher is not None:
            object.__setattr__(self, "teacher", str(Path(self.teacher).resolve()))

    def to_json(self) -> str:
        """The job as JSON text, for a process started by hand (never a pickle)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Job:
        from ..devices.profile import DeviceProfile

        d = json.loads(text)
        return cls(**{**d, "profile": DeviceProfile(**d["profile"]) if d.get("profile") else None})


def study_name(run: Path, device: str, limits: dict, int8: bool, trial_epochs: int, seed: int,
               parts: dict | None = None, teacher: str | None = None, scoring: dict | None = None) -> str:
    """Same run (path and weights), device, limits and trial settings → the same study, so re-running
    the command resumes it; a retrained run starts a new one instead of reusing stale scores. Parts
    change the search space, so they name another study (none: the name searches had before parts);
    so do ``scoring`` settings (robust scores, the criteria allowed), when given."""
    weights = weights_digest(run)
    key = [str(run.resolve()), weights, device, limits, int8, trial_epochs, seed] + ([parts] if parts else []) + (
        [{"teacher": str(Path(teacher).resolve())}] if teacher else []) + (  # another teacher scores differently
        [scoring] if scoring else [])
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return f"fit-{Path(device).stem}-{digest[:10]}"


def weights_digest(run: Path) -> str:
    """SHA-1 of a run's weights: a retrained run is told apart from the one a cache was made for."""
    return hashlib.sha1((Path(run) / "model.safetensors").read_bytes()).hexdigest()


def default_storage(run: Path) -> str:
    return f"sqlite:///{(run / 'fit.db').resolve()}"


def shown(url: str) -> str:
    """``url`` as it may be printed: a password in it replaced by ***. The credentials end at the
    last '@' (a password may hold '/', ':' or '@' that the user did not percent-encode)."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or userinfo.startswith("/") or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


def engine_url(url: str) -> str:
    """The URL SQLAlchemy opens. A PostgreSQL URL that names no driver (``postgresql://`` or ``postgres://``) gets
    the installed one, psycopg 3 first, whatever SQLAlchemy's own default; no driver is one clear error."""
    scheme, sep, rest = url.partition("://")
    dialect, _, driver = scheme.partition("+")
    if not sep or dialect not in ("postgresql", "postgres"):
        return url
    if not driver:
        driver = next((d for d in POSTGRES_DRIVERS if importlib.util.find_spec(d) is not None), "")
    elif driver in POSTGRES_DRIVERS and importlib.util.find_spec(driver) is None:
        driver = ""
    if not driver:
        raise ConfigError(f"the search storage {shown(url)} needs a PostgreSQL driver: {CLUSTER_EXTRA}")
    return f"postgresql+{driver}://{rest}"


def storage(url: str):
    import optuna
    from optuna.storages import RDBStorage

    opened = engine_url(url)
    if opened.startswith("sqlite"):  # SQLite serialises writers: several workers wait for the lock, not fail at once
        engine = {"connect_args": {"timeout": 60}}
    elif opened.startswith("postgresql+psycopg"):
        # a dropped idle connection (long trials) is replaced; an unreachable server fails in 10 s, not minutes
        engine = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    else:
        engine = None
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna: say so once here, not per process
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            return RDBStorage(opened, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                              heartbeat_stale_trial_callback=retry_stale)
    except ImportError:  # Optuna's "Failed to import DB access module": the URL's driver is not installed
        if opened.startswith("postgresql"):
            raise ConfigError(f"the search storage {shown(url)} needs a PostgreSQL driver: {CLUSTER_EXTRA}") from None
        raise ConfigError(f"cannot open the search storage {shown(url)!r}: the database driver its URL names is "
                          "not installed") from None
    except Exception as e:  # SQLAlchemy and the database drivers raise their own error types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"cannot open the search storage {shown(url)!r}: {shown(first)[:200]}; give a reachable "
                          "SQLAlchemy URL (sqlite:///path.db, postgresql+psycopg://user:password@host/db)") from None


def sampler(seed: int):
    """TPE in its constrained mode: each trial's limit excesses are set with ``trial.set_constraint``."""
    import optuna

    # constant_liar: parallel workers treat each other's running trials as bad, so they spread out
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=6, constant_liar=True)


def open_study(job: Job, seed_offset: int = 0, recover: bool = True):
    """Create or load the study. ``recover`` (the search's driver, before it starts workers): fail and queue
    again the trials that dead workers left RUNNING (``recover_orphans``)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=job.study, storage=storage(job.storage), direction="maximize",
                                sampler=sampler(job.seed + seed_offset), load_if_exists=True)
    if recover:
        recover_orphans(study)
    return study


def completed(study) -> list:
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]


def recover_orphans(study) -> list[int]:
    """Fail the trials that dead workers left RUNNING and queue their parameters again (``retry_stale``), so a
    resumed search evaluates them; returns their numbers.

    Optuna alone fails a trial only when its heartbeat is older than the grace period, and only when a worker is
    about to start another trial: a search resumed within the grace period after a ``kill -9`` ran its remaining
    trials beside the dead one, which stayed RUNNING and was never evaluated (nor one killed before its first
    heartbeat, which no heartbeat check sees). Here a RUNNING trial is dead when its worker ran on this machine
    and that process is gone (checked now, no waiting); when its heartbeat is older than the grace period (a
    worker elsewhere); or when it carries no worker mark and started more than the grace period ago.
    """
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.storages._heartbeat import is_heartbeat_enabled
    from optuna.trial import TrialState

    store = study._storage
    stale = set(store._get_stale_trial_ids(study._study_id)) if is_heartbeat_enabled(store) else set()
    now = datetime.now()
    dead = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.system_attrs.get(OWNER)
        if (t._trial_id in stale or (owner is not None and _process_gone(owner)) or (
                owner is None and t.datetime_start is not None and (now - t.datetime_start).total_seconds() > GRACE_S)):
            dead.append(t)
    failed = []
    for t in dead:
        try:
            if not store.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:  # it finished, or another process failed it first
            continue
        retry_stale(study, store.get_trial(t._trial_id))
        failed.append(t.number)
    return failed


def retry_stale(study, trial) -> None:
    """Queue a dead trial's parameters again, at most ``MAX_RETRY`` times: Optuna's
    RetryHeartbeatStaleTrialCallback, less the dead worker's own marks (its owner, any constraint it had set)."""
    import optuna
    from optuna.trial import TrialState

    attrs = {k: v for k, v in trial.system_attrs.items()
             if k != OWNER and k != "constraints" and not k.startswith("constraints:")}
    history = [*attrs.get("retry_history", []), trial.number]
    if len(history) > MAX_RETRY:
        return
    attrs.update(failed_trial=attrs.get("failed_trial", trial.number), retry_history=history)
    study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, params=trial.params,
                                              distributions=trial.distributions, system_attrs=attrs))


_PROCFS = Path("/proc/self/stat").exists()


def _machine() -> str:
    """This machine (host name and boot) and PID namespace: process ids compare only within it."""
    parts = [socket.gethostname()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        parts.append(os.readlink("/proc/self/ns/pid"))
    except OSError:
        pass
    return "/".join(parts)


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot); None when it is gone or a zombie; "" unknown."""
    if not _PROCFS:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except OSError:
            pass
        return ""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    except (OSError, IndexError):
        return ""
    return None if fields[0] in ("Z", "X") else fields[19]


def worker_mark() -> dict:
    """What ``OWNER`` records for a trial this process evaluates."""
    return {"host": _machine(), "pid": os.getpid(), "started": _start_time(os.getpid()) or ""}


def _process_gone(owner) -> bool:
    """True when ``owner`` ran on this machine and that process no longer runs (a pid reused since is told apart
    by its start time); False when it runs or ran elsewhere (there, the heartbeat decides)."""
    if not isinstance(owner, dict) or owner.get("host") != _machine() or not isinstance(owner.get("pid"), int):
        return False
    started = _start_time(owner["pid"])
    return started is None or bool(started and owner.get("started") and started != owner["started"])


def search(job: Job, objective, worker: int = 0) -> int:
    """A worker's loop: run ``objective`` on trials of ``job.study`` until it holds ``job.trials`` completed ones.
    Each trial is marked with this process (``OWNER``) before its objective runs."""
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    study = open_study(job, seed_offset=worker + 1, recover=False)  # the driver recovered before starting workers
    if len(completed(study)) >= job.trials:
        return 0
    # Reproducible, but not the seed this worker had before a kill: a resumed worker would draw the same random
    # start-up points again, and evaluate candidates the study already holds.
    study.sampler = sampler(job.seed + worker + 1 + 1009 * len(study.get_trials(deepcopy=False)))
    mark = worker_mark()

    def marked(trial):
        trial.storage.set_trial_system_attr(trial._trial_id, OWNER, mark)
        return objective(trial)

    while len(completed(study)) < job.trials:
        try:
            study.optimize(marked, gc_after_trial=True, catch=(ConfigError,),  # an unfit candidate fails
                           callbacks=[MaxTrialsCallback(job.trials, states=(TrialState.COMPLETE,))])
        except ValueError as e:
            # SQLite has no row locks: two workers can pop the same enqueued trial, and the second one's
            # result is refused ("Cannot tell a COMPLETE trial"). The first result stands; carry on.
            if "Cannot tell a" not in str(e):
                raise
    return len(completed(study))


def run_trials(job: Job, worker: int = 0) -> int:
    """A worker: run trials of ``job.study`` until it holds ``job.trials`` completed ones."""
    import torch

    torch.set_num_threads(1)  # one core per worker; the pool is the parallelism
    return search(job, _Context(job).objective, worker)


class _Context:
    """The run, its data and the device, loaded once per worker."""

    def __init__(self, job: Job):
        from wearprune.autofit.parts import plan_parts
        from wearprune.autofit.scoring import ValScore
        from wearprune.autofit.sensitivity import groups_of
        from wearprune.data.prepare import calibration_sample, prepare_from_config
        from wearprune.devices.budget import Budget
        from wearprune.runs import load_run

        self.job = job
        self.run = load_run(job.run)
        self.prepared = prepare_from_config(self.run.config, job.data_root)
        self.device = job.profile  # the loaded profile, never looked up again by name (a user's file has none)
        self.limits = Budget(**job.limits)
        self.calib = calibration_sample(self.prepared, job.seed, 256)
        self.example = self.calib[0][:1]
        self.groups = list(groups_of(self.run.model, self.example))
        self.parts = plan_parts(job.parts, self.run.model, self.example) if job.parts else None
        self.teacher = load_run(job.teacher).model if job.teacher else self.run.model
        self.scorer = ValScore(self.prepared, job.robust, job.seed)
        self.dense = job.reference if job.reference is not None else self.scorer(self.run.model)
        # a drop in macro-F1 points (x100) or in the regression target's units (BPM)
        self.drop_scale = 100.0 if self.prepared.dataset.task == "classification" else 1.0

    def objective(self, trial) -> float:
        allowed = tuple(self.job.importances or IMPORTANCES)
        importance = trial.suggest_categorical("importance", allowed)
        ratios = {g: trial.suggest_float(f"ratio:{g}", 0.0, MAX_RATIO, step=STEP) for g in self.groups}
        # with parts, each part draws its own criterion; `importance` stays the default for the other groups
        criteria = {p: trial.suggest_categorical(f"importance:{p}", allowed) for p in self.parts.groups} \
            if self.parts else None
        record = evaluate_candidate(self, ratios, importance, self.job.trial_epochs, criteria)
        for key, value in record.items():
            trial.set_user_attr(key, value)
        for limit, excess in record["excess"].items():
            trial.set_constraint(limit, excess)  # ≤ 0 where the limit is met
        return record["val_score"]


def evaluate_candidate(ctx, ratios: dict[str, float], importance: str, epochs: int,
                       criteria: dict[str, str] | None = None) -> dict:
    """Prune, cost, and (when within the hardware limits) fine-tune and score one candidate.

    ``criteria`` ({part: importance}, with ``ctx.parts``): the candidate is pruned as a recipe of one channel
    step per part (``part_recipe``); the groups outside every part use ``importance``."""
    from wearprune.autofit.parts import part_recipe
    from wearprune.devices import estimate_cost
    from wearprune.prune import prune
    from wearprune.prune.recipe import Recipe, apply_recipe
    from wearprune.train import TrainConfig, epochs_for_steps, fit

    prep = ctx.prepared
    ratios = fill_budget(ctx, ratios)
    recipe = None
    if criteria is not None:
        recipe = part_recipe(ctx.parts, ratios, importance, criteria)
        pruned, steps = apply_recipe(ctx.run.model, ctx.example, Recipe.from_dict(recipe), calib=ctx.calib,
                                     task=prep.dataset.task)
        summary = steps[-1]
    else:
        pruned, summary = prune(ctx.run.model, ctx.example, ratio=0.0, ratios=ratios, importance=importance,
                                calib=ctx.calib, task=prep.dataset.task)
    cost = estimate_cost(pruned, ctx.example, ctx.device, int8=ctx.job.int8)
    hardware = ctx.limits.excess(cost)
    tuned = all(v <= 0 for v in hardware.values()) and epochs > 0
    if tuned:  # only candidates that fit the chip are worth training time
        train_cfg = ctx.run.config["train"]
        epochs = epochs_for_steps(epochs, len(prep.train), train_cfg["batch_size"], TRIAL_MIN_STEPS)
        cfg = TrainConfig(epochs=epochs, batch_size=train_cfg["batch_size"], lr=1e-3, patience=epochs,
                          seed=ctx.job.seed, class_weighted=train_cfg.get("class_weighted", True),
                          augment=list(train_cfg.get("augment", [])))
        fit(pruned, prep.train, prep.val, cfg, teacher=ctx.teacher, target_scale=prep.target_scale)
    value = ctx.scorer(pruned)
    drop = (ctx.dense - value) * ctx.drop_scale
    excess = ctx.limits.excess(cost, drop)
    # val_score: higher is better (MAE negated); costs are the cost model's estimates (est_*)
    parted = {"criteria": criteria, "recipe": recipe} if criteria is not None else {}
    return {"val_score": value, "drop": drop, "tuned": tuned, "ratios": ratios, "importance": importance, **parted,
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
