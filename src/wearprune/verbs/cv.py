"""``cv``: subject-wise cross-validation over folds × seeds, with an optional variant (a pruning or
fitting step) applied to every fold's own dense run and compared with it pairwise.

    CVDIR/
      cv.json                 the protocol, every fold × seed's scores, the means and intervals
      fold1-seed0/dense/      an ordinary run directory (train, evaluate, prune, export all read it)
      fold1-seed0/pruned/     the variant of that very run (or fit/), same training subjects
      ...

``cv.json`` is rewritten (atomically) after every finished fold × seed; rerunning the same command
skips the fold runs already on disk, so a killed cross-validation resumes where it stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..data.dataset import WearableDataset
from ..data.folds import Fold, Protocol, check_folds, cv_protocol
from ..data.prepare import PreparedData, data_record, prepare_from_config
from ..data.registry import load_dataset
from ..errors import ConfigError, WearpruneError
from ..evaluate import headline, predict, task_metrics
from ..io import atomic_write_json
from ..progress import progress_bar
from ..runs import Run, load_run
from ..specs import FitSpec, PruneSpec
from ..stats import bootstrap_ci, mean_ci, paired_difference
from ..train import TrainConfig
from .outdir import check_out
from .prune import prune_run
from .train import train as train_run

CV_FILE = "cv.json"
FORMAT = "wearprune-cv"
VERSION = 1
INTERVAL = ("95 % Student-t interval over the fold × seed scores (n = folds × seeds, df = n - 1). The seeds of "
            "one fold share its test subjects, so the n scores are not fully independent: 'over_folds' (seed means "
            "per fold, df = folds - 1) is the conservative interval, 'subjects' a percentile bootstrap over the "
            "per-subject scores (each subject's mean over seeds).")
DIFFERENCE = ("variant - dense per fold × seed, both evaluated on the same test subjects, the variant made from "
              "that fold × seed's dense run; mean with a paired 95 % t-interval and the paired t-test p-value")


def parse_prune(text: str, **fields_: object) -> PruneSpec:
    """A :class:`PruneSpec` from ``"method[:ratio[:importance]]"`` (e.g. ``channel:0.5:taylor``);
    ``fields_`` set the spec's other fields (``finetune_epochs``, ``lr``, ...)."""
    usage = "--prune looks like channel:0.5:taylor (method[:ratio[:importance]])"
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{usage}, got {text!r}")
    parts = [p.strip() for p in text.split(":")]
    if len(parts) > 3 or not all(parts):
        raise ConfigError(f"{usage}, got {text!r}")
    method, ratio, importance = parts[0], parts[1] if len(parts) > 1 else "0.5", parts[2] if len(parts) > 2 else "l2"
    try:
        ratio_value = float(ratio)
    except ValueError:
        raise ConfigError(f"{usage}; the ratio {ratio!r} is not a number") from None
    spec = PruneSpec.resolve(None, {"method": method, "ratio": ratio_value, "importance": importance, **fields_})
    check_importance(spec)
    return spec


def check_importance(spec: PruneSpec) -> None:
    """Refuse a criterion the method cannot use now, not after the first fold has trained."""
    if spec.recipe:
        return
    if spec.method in ("channel", "neuron"):
        from ..prune.importance import get_criterion

        get_criterion(spec.importance)
    elif spec.method == "weight" and spec.importance not in ("l1", "l2", "magnitude"):
        raise ConfigError(f"weight pruning ranks by magnitude; importance {spec.importance!r} is for channels")
    elif spec.method == "layer" and spec.importance not in ("l2", "loss", "similarity"):
        raise ConfigError(f"layer pruning ranks blocks by loss or similarity, not {spec.importance!r}")


def crossval(
    data: str | WearableDataset,
    model: str,
    out: str | Path,
    *,
    folds: int = 4,
    seeds: int | list[int] = 3,
    width: float = 1.0,
    config: TrainConfig | None = None,
    data_root: str | None = None,
    data_options: dict | None = None,
    prune: PruneSpec | str | None = None,
    fit: FitSpec | str | None = None,
    protocol: str = "auto",
    fold_seed: int = 0,
    progress: bool = False,
    log=print,
) -> dict:
    """Cross-validate zoo ``model`` on ``data`` by subject: ``folds`` folds × ``seeds`` training seeds
    (an int: ``config.seed``, ``config.seed + 1``, ...; or a list of seeds), each an ordinary run
    directory in ``out``; return (and write) ``out/cv.json``.

    ``prune`` (a :class:`PruneSpec` or ``"channel:0.5:taylor"``) or ``fit`` (a :class:`FitSpec` or a
    device name) is applied to every fold × seed's dense run, and ``cv.json`` then holds the paired
    difference (variant − dense) per fold × seed with its mean and 95 % interval, and both models'
    MACs. ``protocol``: "auto" (MIT-BIH: DS1→DS2 plus the swapped DS2→DS1; a dataset without subject
    ids: its predefined split as the single fold; otherwise subject K-fold), "kfold" or "predefined";
    ``fold_seed`` shuffles subjects into folds. Rerunning the same call resumes; a different one into
    the same ``out`` is refused.
    """
    check_folds(folds)  # bad arguments fail before any data are read
    config = config or TrainConfig()
    config.validate()
    seed_list = _seeds(seeds, config.seed)
    variant, variant_spec = _variant(prune, fit)
    check_out(out, overwrite=True)  # only that it is a folder we can write into; resuming is decided below
    out = Path(out)
    ds = data if isinstance(data, WearableDataset) else load_dataset(data, data_root, **(data_options or {}))
    if variant == "fit" and not ds.origin:
        raise ConfigError("cross-validating a fit needs data loaded by name or from a file (fit reloads it in its "
                          "worker processes), not an in-memory dataset")
    plan = cv_protocol(ds, folds, fold_seed, protocol)
    spec = _cv_spec(ds, model, width, config, folds, seed_list, plan, variant, variant_spec)
    done = _resume(out, spec)
    metric = "macro_f1" if ds.task == "classification" else "mae"  # what evaluate.headline leads with
    total = len(plan.folds) * len(seed_list)
    doc = {"format": FORMAT, "version": VERSION, "spec": spec, "metric": metric,
           "higher_is_better": metric != "mae", "protocol": {**plan.to_dict(), "seeds": seed_list}}
    if plan.note:
        log(f"note: {plan.note}")
    if done:
        log(f"resuming {out}: {len(done)} of {total} fold runs already done")
    records: dict[str, dict] = {}
    started = time.perf_counter()
    with progress_bar(progress, f"cv {model} on {ds.name}", total) as bar:
        for fold in plan.folds:
            for seed in seed_list:
                key = f"fold{fold.index}-seed{seed}"
                record = _fold_run(out, key, fold, seed, ds, model, width, config, data_root, variant, variant_spec,
                                   metric, done.get(key), log)
                records[key] = record
                _write(out, doc, records, total, time.perf_counter() - started)
                bar.epoch({k: v for k, v in (("dense", record["dense"][metric]),
                                             ("diff", record.get("difference"))) if v is not None})
                log(_line(record, len(plan.folds), metric))
    return json.loads((out / CV_FILE).read_text())


# -- the spec and resuming ------------------------------------------------------------------------
def _seeds(seeds, first: int) -> list[int]:
    if isinstance(seeds, bool):
        raise ConfigError(f"--seeds must be a whole number or a list of seeds, got {seeds!r}")
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ConfigError(f"--seeds must be at least 1, got {seeds}")
        return [int(first) + i for i in range(int(seeds))]
    try:
        chosen = [int(s) for s in seeds if not isinstance(s, bool) and int(s) == s]
    except (TypeError, ValueError):
        raise ConfigError(f"seeds must be a whole number or a list of whole numbers, got {seeds!r}") from None
    if not chosen or len(chosen) != len(list(seeds)) or len(set(chosen)) != len(chosen):
        raise ConfigError(f"seeds must be distinct whole numbers, at least one, got {seeds!r}")
    return chosen


def _variant(prune, fit) -> tuple[str | None, PruneSpec | FitSpec | None]:
    if prune is not None and fit is not None:
        raise ConfigError("cross-validate one variant at a time: --prune or --fit, not both")
    if prune is not None:
        spec = parse_prune(prune) if isinstance(prune, str) else PruneSpec.resolve(prune, {})
        check_importance(spec)
        return "prune", spec
    if fit is not None:
        spec = FitSpec(device=fit) if isinstance(fit, str) else FitSpec.resolve(fit, {})
        from ..devices import load_device

        load_device(spec.device)  # a bad device fails now, not after the first fold has trained
        return "fit", spec
    return None, None


def _cv_spec(ds, model, width, config, folds, seeds, plan: Protocol, variant, variant_spec) -> dict:
    """What makes this cross-validation this one: compared on every resume (JSON-normalised)."""
    record = data_record(ds)
    train = {k: v for k, v in config.to_dict().items() if k != "seed"}  # seeds are listed on their own
    spec = {"data": {"name": record["name"], "options": record.get("options") or {},
                     "windows": len(ds), "subjects": int(len(np.unique(ds.subjects)))},
            "model": model, "width": width, "folds": folds, "protocol": plan.kind, "fold_seed": plan.seed,
            "test_subjects": [list(f.test_subjects) for f in plan.folds], "seeds": seeds, "train": train,
            "variant": None if variant is None else {"kind": variant, "spec": variant_spec.to_dict()}}
    return json.loads(json.dumps(spec))


def _resume(out: Path, spec: dict) -> dict[str, dict]:
    """The finished records of an earlier call of the same cross-validation (none for a new ``out``)."""
    file = out / CV_FILE
    if not file.exists():
        if out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir()):
            raise ConfigError(f"{out} exists and is not a cross-validation directory (no {CV_FILE}); choose another "
                              "--out")
        return {}
    try:
        old = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{file} cannot be read ({type(e).__name__}); choose another --out") from None
    if not isinstance(old, dict) or old.get("format") != FORMAT:
        raise ConfigError(f"{file} is not a wearprune cross-validation file; choose another --out")
    if old.get("spec") != spec:
        before = old.get("spec") if isinstance(old.get("spec"), dict) else {}
        diff = sorted(k for k in set(spec) | set(before) if spec.get(k) != before.get(k))
        raise ConfigError(f"{out} holds a different cross-validation (it differs in: {', '.join(diff)}); rerun the "
                          "same command to resume it, or choose another --out")
    return {r["key"]: r for r in old.get("runs", []) if isinstance(r, dict) and "key" in r}


# -- one fold × seed ------------------------------------------------------------------------------
def _fold_run(out: Path, key: str, fold: Fold, seed: int, ds: WearableDataset, model: str, width: float,
              config: TrainConfig, data_root, variant, variant_spec, metric: str, previous: dict | None,
              log) -> dict:
    """Train (or find on disk) this fold × seed's dense run and its variant; their scores."""
    dense_dir = out / key / "dense"
    variant_dir = out / key / ("pruned" if variant == "prune" else "fit") if variant else None
    dense = _existing(dense_dir, model, seed, fold)
    made = ""
    if dense is None:
        fold_ds = replace(ds, test_subjects=list(fold.test_subjects) or ds.test_subjects, split_name=fold.name)
        cfg = TrainConfig(**{**config.to_dict(), "seed": seed})
        dense = train_run(fold_ds, model, dense_dir, width=width, config=cfg, data_root=data_root,
                          test_subjects=list(fold.test_subjects) or None, split=fold.split)
        made = "trained"
    other = _existing(variant_dir, None, seed, fold) if variant else None
    if previous is not None and not made and (variant is None or other is not None):
        return previous  # both runs on disk and already scored: nothing to recompute
    prepared = prepare_from_config(dense.config, data_root, ds)
    record = {"key": key, "fold": fold.index, "seed": seed, "test_subjects": list(prepared.split.test_subjects),
              "val_subjects": list(prepared.split.val_subjects), "split": prepared.split.name,
              "dense": _scores(dense, prepared, dense_dir, out, metric)}
    if variant:
        if other is None:
            started = time.perf_counter()
            other = _make_variant(dense, dense_dir, variant_dir, variant, variant_spec, prepared, data_root, log)
            record["variant_seconds"] = time.perf_counter() - started
        elif previous is not None and "variant_seconds" in previous:
            record["variant_seconds"] = previous["variant_seconds"]
        record["variant"] = _scores(other, prepared, variant_dir, out, metric)
        record["difference"] = record["variant"][metric] - record["dense"][metric]
        if "deployed" in record["variant"]:
            record["deployed_difference"] = record["variant"]["deployed"][metric] - record["dense"][metric]
    return record


def _existing(path: Path | None, model: str | None, seed: int, fold: Fold) -> Run | None:
    """A complete run already at ``path`` (atomic writes leave no half-written one), checked to be
    this fold × seed's; None when there is none."""
    if path is None or not path.exists():
        return None
    try:
        run = load_run(path)
    except WearpruneError as e:
        raise ConfigError(f"{path} cannot be resumed ({e}); delete it and rerun") from None
    same = (run.config["train"]["seed"] == seed and (model is None or run.config["model"]["name"] == model)
            and (not fold.test_subjects or sorted(run.config["split"].get("test_subjects") or [])
                 == sorted(fold.test_subjects)))
    if not same:
        raise ConfigError(f"{path} holds another run (model, seed or test subjects differ); delete it and rerun")
    return run


def _make_variant(dense: Run, dense_dir: Path, out: Path, variant: str, spec, prepared: PreparedData, data_root,
                  log) -> Run:
    if variant == "prune":
        return prune_run(dense, out, spec, data_root=data_root, prepared=prepared)
    from ..autofit.run import fit as fit_run

    # the search seeded like the run it prunes, as prune_run does: seeds then vary the whole variant
    fit_run(dense_dir, replace(spec, seed=dense.config["train"]["seed"]), out, data_root=data_root, log=log)
    return load_run(out)


def _scores(run: Run, prepared: PreparedData, path: Path, root: Path, metric: str) -> dict:
    """The run's test scores (as evaluated when it was made), its cost, and its metric per test subject."""
    test = run.metrics["test"]
    scores = {"dir": str(path.relative_to(root)), metric: test[metric],
              **{k: test[k] for k in ("accuracy", "kappa", "rmse") if k in test},
              "macs": run.metrics["cost"]["macs"], "params": run.metrics["cost"]["params"],
              "per_subject": per_subject_scores(run.model, prepared)}
    history = run.metrics.get("history") or {}
    if "seconds" in history:
        scores["train_seconds"] = history["seconds"]
    tflm = run.metrics.get("tflm") or {}
    dtype = "int8" if "int8" in tflm else "fp32" if "fp32" in tflm else None
    if dtype and metric in tflm[dtype]:  # a fitted run: what the device runs, measured in TFLite Micro
        scores["deployed"] = {"dtype": dtype, metric: tflm[dtype][metric], "measured": "TensorFlow Lite Micro"}
    return scores


def per_subject_scores(model, prepared: PreparedData) -> dict[str, float]:
    """The task's headline metric on each test subject's windows alone."""
    test = prepared.test
    outputs = predict(model, test.X)
    scores = {}
    for subject in np.unique(test.subjects):
        idx = np.flatnonzero(test.subjects == subject)
        scores[str(subject)] = headline(task_metrics(test.subset(idx), outputs[idx], prepared.target_scale))[1]
    return scores


# -- cv.json --------------------------------------------------------------------------------------
def _write(out: Path, doc: dict, records: dict[str, dict], total: int, seconds: float) -> None:
    runs = list(records.values())
    doc = {**doc, "complete": len(runs) == total, "done": len(runs), "total": total,
           "seconds": {"this_call": seconds,
                       "training": sum(r["dense"].get("train_seconds", 0.0) for r in runs),
                       "variant": sum(r.get("variant_seconds", 0.0) for r in runs)},
           "interval": INTERVAL, "runs": runs, "summary": summarize(runs, doc["metric"])}
    atomic_write_json(out / CV_FILE, doc)


def summarize(runs: list[dict], metric: str) -> dict:
    """Means and intervals of the dense (and variant) scores and of their paired differences."""
    summary = {"dense": _block([r["dense"][metric] for r in runs], runs, "dense", metric)}
    summary["per_subject"] = {"dense": _subject_means(runs, "dense")}
    summary["macs"] = {"dense": float(np.mean([r["dense"]["macs"] for r in runs]))}
    paired = [r for r in runs if "variant" in r]
    if paired:
        v = [r["variant"][metric] for r in paired]
        d = [r["dense"][metric] for r in paired]
        summary["variant"] = _block(v, paired, "variant", metric)
        summary["per_subject"]["variant"] = _subject_means(paired, "variant")
        summary["macs"]["variant"] = float(np.mean([r["variant"]["macs"] for r in paired]))
        summary["macs"]["ratio"] = summary["macs"]["dense"] / max(summary["macs"]["variant"], 1.0)
        diffs, est = paired_difference(v, d)
        summary["difference"] = {"definition": DIFFERENCE, "per_run": diffs, **est.to_dict(),
                                 "over_folds": _paired_over_folds(paired, metric),
                                 "subjects": _paired_subjects(paired)}
        deployed = [r for r in paired if "deployed" in r["variant"]]
        if deployed and len(deployed) == len(paired):
            dv = [r["variant"]["deployed"][metric] for r in deployed]
            _, dest = paired_difference(dv, d)
            summary["deployed_difference"] = {"definition": "the fitted model as measured in TensorFlow Lite Micro "
                                                            f"({deployed[0]['variant']['deployed']['dtype']}) - dense "
                                                            "(PyTorch fp32)", **dest.to_dict()}
    return summary


def _block(values: list[float], runs: list[dict], side: str, metric: str) -> dict:
    return {**mean_ci(values).to_dict(), "over_folds": mean_ci(_fold_means(runs, side, metric)).to_dict(),
            "subjects": _bootstrap(_subject_means(runs, side))}


def _fold_means(runs: list[dict], side: str, metric: str) -> list[float]:
    by_fold: dict[int, list[float]] = {}
    for r in runs:
        by_fold.setdefault(r["fold"], []).append(r[side][metric])
    return [float(np.mean(v)) for _, v in sorted(by_fold.items())]


def _subject_means(runs: list[dict], side: str) -> dict[str, float]:
    """Each test subject's score, averaged over the seeds (a subject is in one fold only)."""
    by_subject: dict[str, list[float]] = {}
    for r in runs:
        for subject, score in r[side]["per_subject"].items():
            by_subject.setdefault(subject, []).append(score)
    return {s: float(np.mean(v)) for s, v in sorted(by_subject.items())}


def _bootstrap(scores: dict[str, float]) -> dict:
    d = bootstrap_ci(list(scores.values())).to_dict() if scores else {}
    return {**d, "over": "per-subject scores (each subject's mean over seeds)"}


def _paired_over_folds(runs: list[dict], metric: str) -> dict:
    _, est = paired_difference(_fold_means(runs, "variant", metric), _fold_means(runs, "dense", metric))
    return est.to_dict()


def _paired_subjects(runs: list[dict]) -> dict:
    dense, variant = _subject_means(runs, "dense"), _subject_means(runs, "variant")
    diffs = {s: variant[s] - dense[s] for s in dense if s in variant}
    return {**_bootstrap(diffs), "per_subject": diffs}


def _line(record: dict, n_folds: int, metric: str) -> str:
    text = f"fold {record['fold']}/{n_folds} seed {record['seed']}: dense {metric} {record['dense'][metric]:.4f}"
    if "variant" in record:
        text += f", variant {record['variant'][metric]:.4f} (difference {record['difference']:+.4f})"
    return text


# -- two cross-validations on the same folds --------------------------------------------------------
COMPARISON = ("B - A per fold × seed present in both (same test subjects, same seed): mean with a paired 95 % "
              "t-interval and the paired t-test p-value; 'over_folds' pairs the seed means of each fold")


def compare_cv(a: str | Path, b: str | Path, side: str = "dense") -> dict:
    """Pair two cross-validations run on the same folds and seeds (e.g. two training recipes, two
    models, or two widths) and return B − A per fold × seed with its mean and 95 % interval.

    ``side``: "dense" compares the dense runs, "variant" the pruned/fitted ones. Folds are matched by
    their test subjects, so both must come from the same data, protocol and ``fold_seed``.
    """
    if side not in ("dense", "variant"):
        raise ConfigError(f"side must be dense or variant, got {side!r}")
    docs = [_read_cv(Path(p)) for p in (a, b)]
    metrics = {d["metric"] for d in docs}
    if len(metrics) != 1:
        raise ConfigError(f"{a} and {b} score different metrics ({', '.join(sorted(metrics))}); compare runs of one "
                          "task")
    if docs[0]["spec"]["data"]["name"] != docs[1]["spec"]["data"]["name"]:
        raise ConfigError(f"{a} and {b} cross-validate different data; compare runs on the same data set")
    metric = metrics.pop()
    runs = [{(tuple(sorted(r["test_subjects"])), r["seed"]): r for r in d["runs"] if side in r} for d in docs]
    keys = sorted(set(runs[0]) & set(runs[1]), key=lambda k: (runs[0][k]["fold"], k[1]))
    if not keys:
        raise ConfigError(f"{a} and {b} share no fold × seed (same test subjects and seed); run both with the same "
                          f"--folds, --fold-seed, --protocol and seeds{' and a variant' if side == 'variant' else ''}")
    pairs = [{"fold": runs[0][k]["fold"], "seed": k[1], "test_subjects": list(k[0]),
              "a": runs[0][k][side][metric], "b": runs[1][k][side][metric]} for k in keys]
    diffs, est = paired_difference([p["b"] for p in pairs], [p["a"] for p in pairs])
    fold_a, fold_b = (_fold_means([r[k] for k in keys], side, metric) for r in runs)
    _, over_folds = paired_difference(fold_b, fold_a)
    unpaired = {"a": len(runs[0]) - len(keys), "b": len(runs[1]) - len(keys)}
    return {"a": str(a), "b": str(b), "side": side, "metric": metric,
            "higher_is_better": docs[0].get("higher_is_better"), "definition": COMPARISON, "pairs": pairs,
            "unpaired": unpaired,
            "a_mean": mean_ci([p["a"] for p in pairs]).to_dict(), "b_mean": mean_ci([p["b"] for p in pairs]).to_dict(),
            "difference": {"per_run": diffs, **est.to_dict(), "over_folds": over_folds.to_dict()}}


def _read_cv(path: Path) -> dict:
    file = path / CV_FILE if path.is_dir() else path
    try:
        doc = json.loads(file.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} holds no {CV_FILE}; give a folder written by wearprune cv") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{file} cannot be read ({type(e).__name__}); give a folder written by wearprune "
                          "cv") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("runs"), list):
        raise ConfigError(f"{file} is not a wearprune cross-validation file; give a folder written by wearprune cv")
    return doc
