"""``wearprune robustness RUN [RUN...]``: each run's test subjects under every applicable corruption
at five severities, in PyTorch (fp32) or, with ``tflm``, the exported int8 model in TensorFlow Lite Micro.

Per run: the clean metric, the metric per corruption and severity, the mean corruption metric (over
every corruption and severity), the worst corruption, and — against the first run (the reference,
usually the dense model) — ImageNet-C's corruption error: per corruption the summed error over the
severities divided by the reference's (CE), its mean over corruptions (mCE), and the same on the error
*added* by the corruption (relative mCE). Error is 1 - macro-F1, or the MAE.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .corruptions import CORRUPTIONS, SEVERITIES, applicable, corrupt, get


def engine_outputs(run, tflm: bool):
    """``x -> outputs`` of a run: PyTorch fp32, or its exported int8 model in TensorFlow Lite Micro."""
    if tflm:
        from ..export.tflm import run_exported

        return lambda x: run_exported(Path(run.path), x, "int8")
    from ..evaluate import predict

    return lambda x: predict(run.model, x)


def _error(metric: str, value: float) -> float:
    return value if metric == "mae" else 1.0 - value


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 1e-9 else None


def _mean(values) -> float | None:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def _parse(corruptions) -> list[str]:
    if corruptions is None:
        return list(CORRUPTIONS)
    names = [c.strip() for c in (corruptions.split(",") if isinstance(corruptions, str) else corruptions)
             if c.strip()]
    for n in names:
        get(n)  # an unknown name is one line
    if not names:
        raise ConfigError(f"no corruption named; choose from {', '.join(CORRUPTIONS)}")
    return names


def per_class_recall(clean: dict, corrupted: dict) -> dict:
    """Each class's recall (sensitivity) clean, under each corruption (mean over severities 1-5) and over all of
    them: macro-F1 can hold while a rare class (a ventricular beat, a fall) stops being caught."""
    def recalls(m) -> list[float]:
        return [c["recall"] for c in m["per_class"]]

    by = {n: np.mean([recalls(m) for (c, _), m in corrupted.items() if c == n], axis=0).tolist()
          for n in dict.fromkeys(n for n, _ in corrupted)}
    return {"classes": [c["class"] for c in clean["per_class"]], "support": [c["support"] for c in clean["per_class"]],
            "clean": recalls(clean),
            "mean_corruption": np.mean([recalls(m) for m in corrupted.values()], axis=0).tolist(),
            "by_corruption": by}


def corrupted_inputs(prepared, rows, names, severities, seed: int = 0) -> dict[tuple[str, int], np.ndarray]:
    """{(corruption, severity): model inputs}: the data set's raw windows ``rows`` corrupted, then normalised
    as the run's inputs are (corruptions act on the sensor's own units)."""
    ds = prepared.dataset
    raw = ds.X[rows]
    return {(n, s): prepared.normalizer.transform(corrupt(raw, n, s, rate_hz=ds.rate_hz or 1.0,
                                                         channel_names=ds.channel_names, seed=seed))
            for n in names for s in severities}


def corrupted_validation(prepared, severity: int, seed: int = 0) -> dict[str, object]:
    """{corruption: the validation set under it at ``severity``}, for every corruption that applies to the
    data's channels (what fit --robust-search scores candidates on)."""
    from dataclasses import replace

    ds = prepared.dataset
    if ds.layout != "window":
        raise ConfigError(f"corruptions act on raw signal windows; {ds.name} holds {ds.layout} data")
    names = [n for n in CORRUPTIONS if applicable(n, ds.channel_names, ds.X.shape[1])]
    inputs = corrupted_inputs(prepared, prepared.split.val, names, [severity], seed)
    return {n: replace(prepared.val, X=inputs[(n, severity)]) for n in names}


def robustness(runs: list, *, corruptions=None, tflm: bool = False, seed: int = 0, data_root: str | None = None,
               out: str | Path | None = None, data=None, attack_eps: tuple[float, ...] = (), log=print) -> dict:
    """Evaluate every run on the same corrupted test windows; the first run is the reference.
    Writes ``robustness.json`` and ``robustness.png`` into ``out`` when given. ``data``: the dataset
    object, for runs trained on in-memory data. ``attack_eps``: also FGSM and PGD (10 steps) on the fp32
    models at each eps (L-inf, in channel standard deviations)."""
    eps_list = tuple(float(e) for e in attack_eps)
    if any(not e > 0 for e in eps_list):
        raise ConfigError(f"--attack-eps must be positive (channel standard deviations), got {list(eps_list)}")
    from ..data.prepare import prepare_from_config
    from ..evaluate import headline, task_metrics
    from ..runs import Run, load_run

    if not runs:
        raise ConfigError("robustness needs at least one run directory")
    names = _parse(corruptions)
    loaded = [r if isinstance(r, Run) else load_run(r) for r in runs]
    prepared = prepare_from_config(loaded[0].config, data_root, data=data)
    ds = prepared.dataset
    if ds.layout != "window":
        raise ConfigError(f"corruptions act on raw signal windows; {ds.name} holds {ds.layout} data")
    for r in loaded[1:]:
        if r.config["data"].get("name") != loaded[0].config["data"].get("name") or \
                r.config["split"] != loaded[0].config["split"]:
            raise ConfigError(f"{r.path} was trained on other data or another split than {loaded[0].path}; "
                              "compare runs of one data set and split")
    test = prepared.test
    kept = [n for n in names if applicable(n, ds.channel_names, ds.X.shape[1])]
    skipped = [n for n in names if n not in kept]
    if not kept:
        raise ConfigError(f"none of {', '.join(names)} applies to {ds.name}'s channels ({', '.join(ds.channel_names)})")
    inputs = corrupted_inputs(prepared, prepared.split.test, kept, range(1, SEVERITIES + 1), seed)
    results, started = [], time.time()
    for run in loaded:
        outputs = engine_outputs(run, tflm)

        def measured(x, outputs=outputs) -> dict:
            return task_metrics(test, outputs(x), prepared.target_scale)

        clean_metrics = measured(test.X)
        metric, clean = headline(clean_metrics)
        clean = float(clean)
        corrupted = {(n, s): measured(inputs[(n, s)]) for n in kept for s in range(1, SEVERITIES + 1)}
        curves = {n: [clean] + [float(headline(corrupted[(n, s)])[1]) for s in range(1, SEVERITIES + 1)]
                  for n in kept}
        log(f"{run.path}: clean {metric} {clean:.3f}; " + ", ".join(
            f"{n} {np.mean(v[1:]):.3f}" for n, v in curves.items()))
        attacks = {}
        if eps_list:
            from .attacks import attacked_outputs

            for method in ("fgsm", "pgd"):
                attacks[method] = {f"{e:g}": float(headline(task_metrics(test, attacked_outputs(
                    run.model, test.X, test.y, e, method=method, task=ds.task, target_scale=prepared.target_scale),
                    prepared.target_scale))[1]) for e in eps_list}
        results.append({"run": str(run.path), "metric": metric, "clean": clean, "curves": curves,
                        **({"attacks": attacks} if attacks else {}),
                        **({"per_class_recall": per_class_recall(clean_metrics, corrupted)}
                           if "per_class" in clean_metrics else {})})
    ref = results[0]
    for r in results:
        per = {n: [_error(r["metric"], v) for v in r["curves"][n]] for n in kept}
        base = {n: [_error(ref["metric"], v) for v in ref["curves"][n]] for n in kept}
        r["mean_corruption"] = float(np.mean([v for n in kept for v in r["curves"][n][1:]]))
        means = {n: float(np.mean(r["curves"][n][1:])) for n in kept}
        r["worst"] = (max if r["metric"] == "mae" else min)(means, key=means.get)
        r["per_corruption_mean"] = means
        # a corruption the reference makes no error on (or loses nothing to) has no defined ratio: left out
        r["ce"] = {n: _ratio(sum(per[n][1:]), sum(base[n][1:])) for n in kept}
        r["mce"] = _mean(r["ce"].values())
        added = {n: _ratio(sum(e - per[n][0] for e in per[n][1:]), sum(e - base[n][0] for e in base[n][1:]))
                 for n in kept}
        r["relative_ce"] = added
        r["relative_mce"] = _mean(added.values())
    doc = {"data": ds.name, "split": prepared.split.name, "test_windows": len(test.X),
           "engine": "int8 in TensorFlow Lite Micro (the exported .tflite)" if tflm else "PyTorch fp32",
           "corruptions": {n: {"parameter": get(n).parameter, "levels": list(get(n).levels)} for n in kept},
           **({"attacks": {"eps_unit": "L-inf, in channel standard deviations (the models' standardised inputs)",
                           "fgsm": "one signed-gradient step", "pgd": "10 steps of 2.5 eps / 10 from a random "
                           "start, projected", "engine": "PyTorch fp32"}} if eps_list else {}),
           "not_applicable": skipped, "seed": seed, "runs": results, "reference": ref["run"],
           "seconds": round(time.time() - started, 1),
           "note": "corruptions act on the raw test windows before the run's normaliser; mean corruption metric "
                   "= mean over corruptions and severities 1-5; CE = summed error / the reference's; mCE its mean; "
                   "relative mCE on the error added by the corruption; per_class_recall (classification): each class's "
                   "recall clean, per corruption (mean over severities 1-5) and over every corruption"}
    if out is not None:
        from ..io import atomic_write_bytes, atomic_write_json

        out = Path(out)
        atomic_write_json(out / "robustness.json", doc)
        atomic_write_bytes(out / "robustness.png", curves_png(doc))
    return doc


def curves_png(doc: dict) -> bytes:
    from ..report.render import png_bytes, pyplot

    names = list(doc["corruptions"])
    cols = 3
    rows = -(-len(names) // cols)
    fig, axes = pyplot().subplots(rows, cols, figsize=(12, 2.8 * rows), squeeze=False)
    for ax, n in zip(axes.flat, names):
        for r in doc["runs"]:
            ax.plot(range(SEVERITIES + 1), r["curves"][n], marker="o", ms=3, label=Path(r["run"]).name)
        ax.set_title(f"{n} ({doc['corruptions'][n]['parameter']})", fontsize=8)
        ax.set_xlabel("severity (0 = clean)", fontsize=7)
        ax.set_ylabel(doc["runs"][0]["metric"], fontsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(f"{doc['data']}: {doc['engine']}, test subjects", fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)
