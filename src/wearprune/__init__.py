"""wearprune: prune, quantize and fit deep-learning models onto wearables.

Public API (everything else may change)::

    import wearprune as wp
    ds = wp.load_dataset("hmp")                       # real data, subject ids included
    run = wp.train(ds, "resnet1d", "runs/hmp")        # subject-wise split, run directory
    metrics = wp.evaluate("runs/hmp")                 # test metrics, size, MACs, latency
    cost = wp.estimate_cost(model, x[:1], "nrf52840")  # flash, peak RAM, latency, energy, battery
    wp.write_report(wp.build_report(["runs/hmp", "runs/hmp-pruned"], "nrf52840"), "report/")
    result = wp.fit("runs/hmp", "nrf52840", "runs/hmp-fit", max_latency_ms=8)  # best model within the limits
    wp.robustness(["runs/hmp", "runs/hmp-pruned"], out="rob/")  # wearable corruptions, 5 severities each
    wp.audit(["runs/hmp"])                             # membership inference: training vs unseen subjects
    band = wp.band_plan("examples/band.yaml", "band/")  # several tasks on one chip: flash, RAM, battery days
    cv = wp.crossval("hmp", "resnet1d", "cv/hmp", folds=4, seeds=3, prune="channel:0.5:taylor")  # paired CV
"""

__version__ = "0.1.0"

from .autofit import fit  # noqa: E402
from .band import BandSpec, load_band_spec  # noqa: E402
from .band import bundle as band_export  # noqa: E402
from .band import plan as band_plan  # noqa: E402
from .band import replay as band_replay  # noqa: E402
from .data import DATASETS, WearableDataset, load_dataset  # noqa: E402
from .data.split import subject_split  # noqa: E402
from .devices import estimate_cost, list_devices, load_device  # noqa: E402
from .errors import ConfigError, DataError, WearpruneError  # noqa: E402
from .models import MODELS, build_model  # noqa: E402
from .profile import count_macs, count_params, profile_model  # noqa: E402
from .prune import prune  # noqa: E402
from .report import build_report, write_report  # noqa: E402
from .robust import audit, robustness  # noqa: E402
from .runs import Run, load_run  # noqa: E402
from .specs import ExportSpec, FitSpec, PruneSpec  # noqa: E402
from .train import TrainConfig  # noqa: E402
from .verbs import evaluate_run as evaluate  # noqa: E402
from .verbs import export_run, prune_run, train  # noqa: E402
from .verbs.cv import compare_cv, crossval  # noqa: E402

__all__ = [
    "DATASETS", "MODELS", "BandSpec", "band_export", "band_plan", "band_replay", "load_band_spec",
    "ConfigError", "DataError", "ExportSpec", "FitSpec", "PruneSpec", "Run", "TrainConfig",
    "WearableDataset", "WearpruneError", "build_model", "build_report", "compare_cv", "count_macs", "count_params",
    "crossval", "estimate_cost", "evaluate", "export_run", "fit", "list_devices", "load_dataset", "load_device",
    "load_run", "profile_model", "prune", "prune_run", "subject_split", "train", "write_report", "audit",
    "robustness",
]
