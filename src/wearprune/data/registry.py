"""Named datasets: where their files live, their license, and the loader that reads them."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..io import atomic_write_bytes
from .dataset import WearableDataset

DATA_ENV = "WEARPRUNE_DATA"
CACHE_ENV = "WEARPRUNE_CACHE"


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    task: str
    folder: str  # under the data root; "" for data shipped inside a package
    loader: str  # "module:function", imported on use so listing datasets stays fast
    license: str
    source: str
    description: str

    def load_fn(self) -> Callable[..., WearableDataset]:
        module, fn = self.loader.split(":")
        return getattr(importlib.import_module(module, __package__), fn)


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in [
        DatasetInfo(
            "basicmotions", "classification", "", ".loaders.basicmotions:load_basicmotions",
            "UEA archive (research use, cite Clements et al.)",
            "shipped inside the sktime package (sktime/datasets/data/BasicMotions)",
            "smartwatch accel+gyro, 4 activities, 10 Hz; the embedded default (always offline)",
        ),
        DatasetInfo(
            "hmp", "classification", "hmp_adl_wrist", ".loaders.hmp:load_hmp",
            "CC BY 4.0 (UCI; see SOURCE.txt)", "https://archive.ics.uci.edu/dataset/283",
            "wrist accelerometer, 14 daily activities, 16 subjects, 32 Hz",
        ),
        DatasetInfo(
            "mitdb", "classification", "mitdb", ".loaders.mitdb:load_mitdb",
            "ODC-By 1.0", "https://physionet.org/content/mitdb/1.0.0/",
            "ECG beats, AAMI classes N/S/V/F/Q, 2 leads at 360 Hz, inter-patient DS1/DS2",
        ),
        DatasetInfo(
            "troika", "regression", "troika", ".loaders.troika:load_troika",
            "research use only, with citation (IEEE SP Cup 2015)",
            "https://sites.google.com/site/researchbyzhang/ieeespcup2015",
            "wrist 2xPPG + 3-axis accel at 125 Hz, heart rate (BPM) per 8 s window",
        ),
        DatasetInfo(
            "sleep-walch", "classification", "sleep_accel_walch", ".loaders.sleep_walch:load_sleep_walch",
            "ODC-By 1.0 (derived features)", "https://physionet.org/content/sleep-accel/1.0.0/",
            "Apple Watch per-epoch features, 5 sleep stages, sequences of 30 s epochs",
        ),
        DatasetInfo(
            "wisdm-watch", "classification", "wisdm2019_watch", ".loaders.wisdm:load_wisdm_watch",
            "CC BY 4.0", "https://archive.ics.uci.edu/dataset/507",
            "smartwatch accel features (ARFF), 18 activities, 50 subjects",
        ),
    ]
}


def data_root(root: str | os.PathLike | None = None) -> Path | None:
    """The data root: the explicit argument, else $WEARPRUNE_DATA, else None."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else None


def dataset_path(name: str, root: str | os.PathLike | None = None) -> Path | None:
    info = get_info(name)
    base = data_root(root)
    if not info.folder or base is None:
        return None
    return base / info.folder


def is_present(name: str, root: str | os.PathLike | None = None) -> bool:
    info = get_info(name)
    if not info.folder:
        return _packaged_present()
    path = dataset_path(name, root)
    return path is not None and path.is_dir() and any(path.iterdir())


def _packaged_present() -> bool:
    from .loaders.basicmotions import packaged_files

    try:
        packaged_files()
    except DataError:
        return False
    return True


def get_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)} (or a .csv/.npz/.parquet file)")
    return DATASETS[name]


def require_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """The dataset's folder, or a one-line error naming where we looked and where to get it."""
    info = get_info(name)
    base = data_root(root)
    if base is None:
        raise DataError(
            f"{name}: no data root given; pass --data-root DIR or set {DATA_ENV} "
            f"(the folder holding {info.folder}/; get the data from {info.source})"
        )
    path = base / info.folder
    if not path.is_dir():
        raise DataError(f"{name}: no folder {path}; get the data from {info.source} and put it there")
    return path


def load_dataset(
    name: str, root: str | os.PathLike | None = None, *, cache: bool = True, **options
) -> WearableDataset:
    """Load a named dataset (or a user recording when ``name`` is a file path)."""
    if Path(name).suffix.lower() in (".csv", ".npz", ".parquet", ".pq"):
        from .loaders.user import load_recording

        ds = load_recording(name, **options)
        ds.origin = {"name": str(Path(name).expanduser().resolve()), "root": None, "options": options}
        return ds
    info = get_info(name)
    fn = info.load_fn()
    _check_options(name, fn, options)
    if not info.folder:
        ds = fn(**options)
        ds.origin = {"name": name, "root": None, "options": options}
        return ds
    path = require_path(name, root)
    ds = _load_cached(name, path, fn, options, cache)
    ds.origin = {"name": name, "root": str(path.parent.resolve()), "options": options}
    return ds


def _load_cached(name: str, path: Path, fn: Callable, options: dict, cache: bool) -> WearableDataset:
    key = _cache_key(name, path, options)
    cached = _cache_file(key) if cache else None
    if cached is not None and cached.exists():
        try:
            return _read_cache(cached)
        except Exception:  # a stale or damaged cache is rebuilt, never trusted
            cached.unlink(missing_ok=True)
    ds = fn(path, **options)
    if cached is not None:
        _write_cache(cached, ds)
    return ds


def _check_options(name: str, fn: Callable, options: dict) -> None:
    accepted = [p for p in inspect.signature(fn).parameters.values() if p.kind == p.KEYWORD_ONLY]
    unknown = sorted(set(options) - {p.name for p in accepted})
    if unknown:
        takes = ", ".join(p.name for p in accepted) or "no options"
        raise ConfigError(f"dataset {name} does not take {', '.join(unknown)}; it takes: {takes}")


# -- cache of decoded arrays (npz without pickle), keyed by the files' sizes and times -----------
def _cache_key(name: str, path: Path, options: dict) -> str:
    h = hashlib.sha256(f"{name}|{path.resolve()}|{json.dumps(options, sort_keys=True)}|v1".encode())
    # The loader's own source is part of the key: a changed loader never reads a stale cache.
    h.update(Path(inspect.getsourcefile(get_info(name).load_fn())).read_bytes())
    for f in sorted(path.rglob("*")):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.relative_to(path)}:{st.st_size}:{int(st.st_mtime)}".encode())
    return f"{name}-{h.hexdigest()[:16]}"


def _cache_file(key: str) -> Path | None:
    base = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "wearprune")
    if base.lower() in ("0", "off", "none"):
        return None
    return Path(base) / f"{key}.npz"


_META_FIELDS = ("name", "task", "layout", "rate_hz", "channel_names", "class_names", "test_subjects",
                "split_name", "license", "source")


def _write_cache(path: Path, ds: WearableDataset) -> None:
    import io

    meta = {k: getattr(ds, k) for k in _META_FIELDS}
    buf = io.BytesIO()
    extra = {} if ds.split_labels is None else {"split_labels": ds.split_labels}
    np.savez(buf, X=ds.X, y=ds.y, subjects=ds.subjects, meta=np.array(json.dumps(meta)), **extra)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError:
        pass  # a read-only home only costs speed


def _read_cache(path: Path) -> WearableDataset:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        sides = z["split_labels"] if "split_labels" in z.files else None
        return WearableDataset(X=z["X"], y=z["y"], subjects=z["subjects"], split_labels=sides, **meta)
