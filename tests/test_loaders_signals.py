"""Loaders for the raw-signal datasets (HMP, MIT-BIH, TROIKA): real files when present, small
fixtures written in the original formats always, and the errors damaged inputs must give."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import wfdb

from wearprune.data.loaders.hmp import load_hmp, subject_id
from wearprune.data.loaders.mitdb import DS1, DS2, load_mitdb, rr_features
from wearprune.data.loaders.troika import load_troika
from wearprune.data.registry import load_dataset
from wearprune.errors import DataError

HMP_TRIAL = "Accelerometer-2011-03-24-10-{:02d}-00-{}-{}.txt"


# -- real data (skipped with a reason when not on disk) ------------------------------------------
def real_folder(folder: str) -> Path:
    root = os.environ.get("WEARPRUNE_DATA")
    path = Path(root) / folder if root else None
    if path is None or not path.is_dir():
        pytest.skip(f"real data {folder}/ not found at {path or '$WEARPRUNE_DATA (unset)'} (set WEARPRUNE_DATA)")
    return path


def assert_subject_split(ds) -> None:
    test = np.isin(ds.subjects, ds.test_subjects)
    assert test.any() and (~test).any()
    assert not set(ds.subjects[test]) & set(ds.subjects[~test])


@pytest.fixture(scope="module")
def real_mitdb():
    return load_mitdb(real_folder("mitdb"))  # the slowest load (~10 s): done once


def test_real_hmp_through_registry():
    root = real_folder("hmp_adl_wrist").parent
    ds = load_dataset("hmp", root, cache=False)
    assert ds.name == "hmp" and ds.rate_hz == 32 and ds.X.shape[1:] == (3, 96)
    assert len(np.unique(ds.subjects)) == 16 and len(ds.class_names) == 14
    assert ds.class_names == sorted(ds.class_names) and "Walk" in ds.class_names
    assert 10_000 < len(ds) < 14_000
    assert ds.X.min() >= -1.5 and ds.X.max() <= 1.5
    assert set(ds.test_subjects) <= set(ds.subjects)
    assert_subject_split(ds)
    test = np.isin(ds.subjects, ds.test_subjects)
    assert len(np.unique(ds.y[~test])) == 14  # f1, the only subject of two activities, trains
    assert len(np.unique(ds.y[test])) >= 12
    assert 0.15 < test.mean() < 0.35


def test_real_mitdb(real_mitdb):
    ds = real_mitdb
    assert ds.class_names == ["N", "S", "V", "F", "Q"]
    assert ds.channel_names[:2] == ["MLII", "V1/other"] and ds.X.shape[1:] == (5, 128)
    assert sorted(np.unique(ds.subjects)) == sorted(DS1 + DS2)
    assert not set(DS1) & set(DS2) and ds.test_subjects == DS2
    assert_subject_split(ds)
    counts = np.bincount(ds.y, minlength=5)
    assert 95_000 < len(ds) < 105_000 and (counts > 0).all()
    # de Chazal's DS1 has 3,788 V beats; losing only edge beats keeps the count within a few
    ds1_v = int(((ds.y == 2) & np.isin(ds.subjects, DS1)).sum())
    assert abs(ds1_v - 3788) <= 10
    pre, ratio = ds.X[:, 2, 0], ds.X[:, 4, 0]
    assert 0.2 < np.median(pre) < 1.5 and 0.9 < np.median(ratio) < 1.1
    assert np.median(ratio[ds.y == 2]) < np.median(ratio[ds.y == 0])  # V beats come early


def test_real_mitdb_record_114_puts_mlii_first(real_mitdb):
    # MLII has the tall R waves: its per-beat range should dominate in 114 as in the others
    def lead_ratio(rec):
        x = real_mitdb.X[real_mitdb.subjects == rec]
        return np.median(np.ptp(x[:, 0], axis=1) / np.ptp(x[:, 1], axis=1))

    assert lead_ratio("114") > 1 and lead_ratio("101") > 1


def test_real_troika():
    ds = load_troika(real_folder("troika"))
    assert ds.task == "regression" and ds.X.shape[1:] == (5, 200) and ds.rate_hz == 25
    assert len(ds) == 1875  # sum of the 13 BPM0 traces (data/README says 1,925)
    assert len(np.unique(ds.subjects)) == 12 and (ds.subjects == "04").sum() == 107 + 146
    assert 40 < ds.y.min() and ds.y.max() < 200
    assert_subject_split(ds)


# -- HMP fixtures --------------------------------------------------------------------------------
def write_hmp_trial(folder: Path, activity: str, subject: str, n: int, minute: int = 0, rng=None) -> Path:
    rng = rng or np.random.default_rng(minute)
    folder.mkdir(parents=True, exist_ok=True)
    codes = rng.integers(0, 64, size=(n, 3))
    codes[0] = [0, 63, 21]
    f = folder / HMP_TRIAL.format(minute, activity.lower(), subject)
    f.write_text("\n".join(" ".join(str(v) for v in row) for row in codes))  # no final newline, as in HMP
    return f


@pytest.fixture()
def hmp_dir(tmp_path):
    root = tmp_path / "hmp_adl_wrist"
    write_hmp_trial(root / "Walk", "walk", "f1", 200, 1)  # (200-96)//32+1 = 4 windows
    write_hmp_trial(root / "Walk", "walk", "m1_2", 100, 2)  # 1 window, subject normalised to m1
    write_hmp_trial(root / "Brush_teeth", "brush_teeth", "m1", 128, 3)  # 2 windows
    write_hmp_trial(root / "Brush_teeth", "brush_teeth", "f2", 50, 4)  # too short: skipped
    write_hmp_trial(root / "Walk_MODEL", "walk", "f1", 500, 5)  # model folders are not trials
    (root / "README.txt").write_text("not a folder")
    return root


def test_hmp_fixture_windows(hmp_dir):
    ds = load_hmp(hmp_dir)
    assert ds.class_names == ["Brush_teeth", "Walk"]
    assert ds.X.shape == (7, 3, 96) and ds.channel_names == ["acc_x", "acc_y", "acc_z"]
    assert np.bincount(ds.y).tolist() == [2, 5]
    assert sorted(ds.subjects.tolist()) == ["f1"] * 4 + ["m1"] * 3
    assert ds.license and ds.source and "HMP test subjects" in ds.split_name
    first = ds.X[ds.y == 0][0][:, 0]  # first sample of the Brush_teeth trial: codes 0, 63, 21
    np.testing.assert_allclose(first, [-1.5, 1.5, -0.5], atol=1e-6)


def test_hmp_step_and_window_options(hmp_dir):
    ds = load_hmp(hmp_dir, window_s=2.0, step_s=2.0)  # 64-sample windows, no overlap
    assert ds.X.shape[2] == 64 and len(ds) == 3 + 1 + 2


def test_hmp_subject_ids():
    assert subject_id(Path(HMP_TRIAL.format(0, "walk", "F1_1"))) == "f1"
    assert subject_id(Path(HMP_TRIAL.format(0, "walk", "m11"))) == "m11"


def test_hmp_corrupt_line(hmp_dir):
    bad = hmp_dir / "Walk" / HMP_TRIAL.format(9, "walk", "m3")
    bad.write_text("1 2 3\n4 x 6\n7 8 9\n")
    with pytest.raises(DataError, match=r"line 2 is '4 x 6'"):
        load_hmp(hmp_dir)


@pytest.mark.parametrize("text", ["1 2 3\n4 5\n", "1 2 3 4 5 6\n", "", "1 2 64\n"])
def test_hmp_malformed_files(hmp_dir, text):
    (hmp_dir / "Walk" / HMP_TRIAL.format(9, "walk", "m3")).write_text(text)
    with pytest.raises(DataError, match="hmp: .*m3.txt"):
        load_hmp(hmp_dir)


def test_hmp_window_longer_than_every_trial(hmp_dir):
    with pytest.raises(DataError, match="shorter than one window"):
        load_hmp(hmp_dir, window_s=60.0)


# -- MIT-BIH fixtures (WFDB written by wfdb itself) -------------------------------------------
BEATS = np.array([300, 660, 1020, 1380, 1560, 2100, 2460, 2820, 3180, 3500])
SYMBOLS = ["N", "N", "A", "N", "V", "N", "F", "/", "N", "N"]


def write_record(folder: Path, name: str, leads=("MLII", "V1"), n: int = 3600) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(n) / 360
    wave = np.sin(2 * np.pi * 5 * t)
    amp = {"MLII": 2.0}
    signal = np.stack([amp.get(lead, 0.5) * wave for lead in leads], axis=1)
    wfdb.wrsamp(name, fs=360, units=["mV", "mV"], sig_name=list(leads), p_signal=signal,
                fmt=["212", "212"], write_dir=str(folder))
    # a rhythm change ('+') and noise ('~') are annotations, not beats
    samples = np.sort(np.concatenate([BEATS, [310, 2000]]))
    symbols = [dict(zip(BEATS.tolist(), SYMBOLS)).get(s, "+" if s == 310 else "~") for s in samples.tolist()]
    wfdb.wrann(name, "atr", samples, symbol=symbols, write_dir=str(folder))


@pytest.fixture()
def mitdb_dir(tmp_path):
    root = tmp_path / "mitdb"
    write_record(root, "101")  # DS1
    write_record(root, "114", leads=("V5", "MLII"))  # DS1, leads swapped as in the real 114
    write_record(root, "100")  # DS2
    write_record(root, "102", leads=("V5", "V2"))  # paced: ignored
    return root


def test_mitdb_fixture_windows(mitdb_dir):
    ds = load_mitdb(mitdb_dir, highpass_hz=0)
    # 10 beats, first and last dropped -> 8 per record; 3 records used
    assert ds.X.shape == (24, 5, 128) and ds.rate_hz == 180
    assert sorted(set(ds.subjects)) == ["100", "101", "114"]
    assert ds.test_subjects == DS2 and "DS1/DS2" in ds.split_name
    per_record = ds.y[ds.subjects == "101"].tolist()
    assert per_record == [0, 1, 0, 2, 0, 3, 4, 0]  # N A N V N F / N as N S N V N F Q N
    # MLII (amplitude 2) first even where the header lists it second
    for rec in ("100", "114"):
        x = ds.X[ds.subjects == rec]
        assert np.ptp(x[:, 0]) > 3 * np.ptp(x[:, 1])


def test_mitdb_rr_channels(mitdb_dir):
    ds = load_mitdb(mitdb_dir, rate_hz=360, window=100, highpass_hz=0)
    x = ds.X[ds.subjects == "101"]
    assert x.shape == (8, 5, 100)
    assert np.all(x[:, 2:] == x[:, 2:, :1])  # constant along the window
    np.testing.assert_allclose(x[:, 2, 0], np.diff(BEATS)[:-1] / 360, rtol=1e-5)  # pre-RR
    np.testing.assert_allclose(x[:, 3, 0], np.diff(BEATS)[1:] / 360, rtol=1e-5)  # post-RR
    v = SYMBOLS[1:-1].index("V")
    assert x[v, 4, 0] < 0.6  # the premature V beat: 180 samples after a run of 360
    np.testing.assert_allclose(x[0, 4, 0], 1.0)  # nothing precedes: ratio 1


def test_mitdb_without_rr_and_resampled(mitdb_dir):
    ds = load_mitdb(mitdb_dir, rate_hz=90, window=64, rr_channels=False)
    assert ds.X.shape == (24, 2, 64) and ds.channel_names == ["MLII", "V1/other"]


def test_rr_ratio_uses_up_to_ten_preceding_intervals():
    beats = np.cumsum([0] + [360] * 12 + [180, 360, 360])  # one premature beat after 12 regular ones
    rr = rr_features(beats)
    assert rr.shape == (len(beats) - 2, 3)
    np.testing.assert_allclose(rr[-2], [0.5, 1.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(rr[-1, 2], 1.0 / ((9 * 1.0 + 0.5) / 10), rtol=1e-6)


def test_mitdb_missing_record_file(mitdb_dir):
    (mitdb_dir / "100.dat").unlink()
    with pytest.raises(DataError, match=r"record 100 is incomplete in .*mitdb: missing 100.dat"):
        load_mitdb(mitdb_dir)


def test_mitdb_records_listed_but_absent(mitdb_dir):
    (mitdb_dir / "RECORDS").write_text("100\n101\n103\n114\n")
    with pytest.raises(DataError, match="record 103 is incomplete"):
        load_mitdb(mitdb_dir)


@pytest.mark.parametrize("victim", ["101.dat", "101.hea", "101.atr"])
def test_mitdb_corrupt_files(mitdb_dir, victim):
    f = mitdb_dir / victim
    if victim.endswith(".hea"):
        f.write_text("this is not a header\n")
    else:
        f.write_bytes(f.read_bytes()[:-1])  # a cut-off download: one byte short
    with pytest.raises(DataError, match="record 101 in .* is unreadable"):
        load_mitdb(mitdb_dir)


def test_mitdb_window_longer_than_every_record(mitdb_dir):
    with pytest.raises(DataError, match="leaves room"):
        load_mitdb(mitdb_dir, rate_hz=360, window=8000)


def test_mitdb_no_records(tmp_path):
    (tmp_path / "mitdb").mkdir()
    with pytest.raises(DataError, match="no DS1/DS2 records.*physionet"):
        load_mitdb(tmp_path / "mitdb")


# -- TROIKA fixtures ---------------------------------------------------------------------------
def write_troika(folder: Path, stem: str, seconds: float, n_bpm: int, sig=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(stem) + n_bpm)
    if sig is None:
        sig = rng.normal(size=(6, int(seconds * 125)))
    scipy.io.savemat(folder / f"DATA_{stem}.mat", {"sig": sig})
    scipy.io.savemat(folder / f"REF_{stem}.mat", {"BPM0": np.linspace(70, 150, n_bpm)[:, None]})


@pytest.fixture()
def troika_dir(tmp_path):
    root = tmp_path / "troika"
    write_troika(root / "training_data", "01_TYPE01", 20, 6)  # 7 windows fit, 6 references
    write_troika(root / "training_data", "01_TYPE02", 14, 10)  # 4 windows fit, 10 references
    write_troika(root / "test_data", "09_TYPE02", 12, 3)  # 3 and 3
    return root


def test_troika_fixture_windows(troika_dir):
    ds = load_troika(troika_dir)
    assert ds.X.shape == (13, 5, 200) and ds.task == "regression"
    assert ds.channel_names == ["ppg1", "ppg2", "acc_x", "acc_y", "acc_z"]
    assert (ds.subjects == "01").sum() == 10 and (ds.subjects == "09").sum() == 3
    assert ds.y[0] == pytest.approx(70) and ds.y.dtype == np.float32
    assert "leave-subjects-out" in ds.split_name and ds.license and ds.source


def test_troika_native_rate_keeps_the_samples(troika_dir):
    ds = load_troika(troika_dir, rate_hz=None)
    assert ds.X.shape == (13, 5, 1000) and ds.rate_hz == 125
    sig = scipy.io.loadmat(troika_dir / "training_data" / "DATA_01_TYPE01.mat")["sig"]
    np.testing.assert_allclose(ds.X[1], sig[1:, 250:1250], rtol=1e-6)  # window 1 starts at 2 s, no ECG


def test_troika_nan_in_signal(troika_dir):
    sig = np.ones((6, 1500))
    sig[2, 40] = np.nan
    write_troika(troika_dir / "training_data", "03_TYPE02", 12, 3, sig=sig)
    with pytest.raises(DataError, match="DATA_03_TYPE02.mat: 'sig' contains NaN"):
        load_troika(troika_dir)


def test_troika_truncated_mat(troika_dir):
    f = troika_dir / "training_data" / "DATA_01_TYPE02.mat"
    f.write_bytes(f.read_bytes()[:300])
    with pytest.raises(DataError, match="cannot read .*DATA_01_TYPE02.mat"):
        load_troika(troika_dir)


def test_troika_missing_ref(troika_dir):
    (troika_dir / "test_data" / "REF_09_TYPE02.mat").unlink()
    with pytest.raises(DataError, match="no reference file REF_09_TYPE02.mat"):
        load_troika(troika_dir)


def test_troika_missing_key_and_wrong_shape(troika_dir):
    f = troika_dir / "training_data" / "DATA_01_TYPE01.mat"
    scipy.io.savemat(f, {"signal": np.ones((6, 2000))})
    with pytest.raises(DataError, match="no variable 'sig'"):
        load_troika(troika_dir)
    scipy.io.savemat(f, {"sig": np.ones((5, 2000))})
    with pytest.raises(DataError, match=r"shape \(5, 2000\)"):
        load_troika(troika_dir)


def test_troika_recordings_shorter_than_a_window(tmp_path):
    write_troika(tmp_path / "troika" / "training_data", "01_TYPE01", 5, 3)
    with pytest.raises(DataError, match="long enough for one 8 s window"):
        load_troika(tmp_path / "troika")


# -- shared: a missing folder names the dataset, the path and the source -------------------------
@pytest.mark.parametrize(
    "loader, name, source",
    [(load_hmp, "hmp", "archive.ics.uci.edu"), (load_mitdb, "mitdb", "physionet.org"),
     (load_troika, "troika", "ieeespcup2015")],
)
def test_missing_folder(tmp_path, loader, name, source):
    where = tmp_path / "nowhere"
    with pytest.raises(DataError, match=rf"^{name}: no folder .*nowhere.*{source}"):
        loader(where)


@pytest.mark.parametrize("loader, name", [(load_hmp, "hmp"), (load_troika, "troika")])
def test_folder_without_data_files(tmp_path, loader, name):
    (tmp_path / "empty" / "Walk").mkdir(parents=True)
    with pytest.raises(DataError, match=rf"^{name}: no .*empty"):
        loader(tmp_path / "empty")
