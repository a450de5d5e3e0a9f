"""The search's storage, without training: a trial whose worker was killed is evaluated again on resume
(SQLite and PostgreSQL), a real PostgreSQL server holds and resumes a study across processes, a missing
driver is one clear line, and opening a study prints no Optuna ExperimentalWarning.

The PostgreSQL tests need a server: $WEARPRUNE_TEST_POSTGRES (``postgresql://user:password@127.0.0.1:PORT/db``),
which .ci/run sets after starting a throwaway one on loopback."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
import warnings

import pytest
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

from wearprune.autofit.study import OWNER, Job, engine_url, open_study, recover_orphans, search, storage
from wearprune.errors import ConfigError

POSTGRES = os.environ.get("WEARPRUNE_TEST_POSTGRES")
needs_postgres = pytest.mark.skipif(not POSTGRES, reason="WEARPRUNE_TEST_POSTGRES is not set: no PostgreSQL server "
                                    "to test against (.ci/run starts one)")


def _job(tmp_path, url: str, trials: int) -> Job:
    """A job whose study is private to this test (a PostgreSQL database outlives it)."""
    return Job(run=str(tmp_path), data_root=None, device="nrf52840", limits={}, int8=True, storage=url,
               study=f"test-{uuid.uuid4().hex[:12]}", trials=trials, trial_epochs=0, seed=0)


def quick(trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    return -((x - 0.3) ** 2)


# A worker's process in miniature: the study code's driver step, then its worker loop on an objective that
# announces its trial and hangs, to be killed there as `kill -9` kills a running `wearprune fit`.
HANGING_WORKER = textwrap.dedent("""
    import sys, time
    from wearprune.autofit.study import Job, open_study, search
    job = Job.from_json(sys.argv[1])
    open_study(job)

    def hang(trial):
        trial.suggest_float("x", 0.0, 1.0)
        print("running", trial.number, flush=True)
        time.sleep(600)

    search(job, hang)
""")


def _kill_mid_trial(job: Job) -> dict:
    """Start a worker, SIGKILL it while its trial runs; the trial's parameters as the storage holds them."""
    proc = subprocess.Popen([sys.executable, "-c", HANGING_WORKER, job.to_json()], stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("running"), f"the worker did not start a trial: {line!r}"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    study = open_study(job, recover=False)  # as the kill left it
    running = study.get_trials(states=(TrialState.RUNNING,))
    assert len(running) == 1 and "x" in running[0].params
    return running[0].params


def _resume_and_check(job: Job, params: dict) -> None:
    started = time.time()
    open_study(job)  # the driver of the resumed call: it finds the dead worker's trial at once, not after the grace
    assert search(job, quick) >= job.trials
    study = open_study(job, recover=False)
    trials = study.get_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING], [(t.number, t.state) for t in trials]
    killed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(killed) == 1 and killed[0].params == params
    redone = [t for t in trials if t.state == TrialState.COMPLETE and t.params == params]
    assert len(redone) == 1 and redone[0].system_attrs["failed_trial"] == killed[0].number  # evaluated again, once
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == job.trials
    assert time.time() - started < 60  # no wait for the 180 s heartbeat grace


def test_a_killed_workers_trial_is_evaluated_again_on_resume_sqlite(tmp_path):
    job = _job(tmp_path, f"sqlite:///{tmp_path / 'fit.db'}", trials=3)
    _resume_and_check(job, _kill_mid_trial(job))


@needs_postgres
def test_a_killed_workers_trial_is_evaluated_again_on_resume_postgres(tmp_path):
    job = _job(tmp_path, POSTGRES, trials=3)
    _resume_and_check(job, _kill_mid_trial(job))


def test_a_trial_another_live_process_runs_is_left_alone(tmp_path):
    """Recovery fails only what is dead: a RUNNING trial whose process lives (another worker, another
    `wearprune fit` on the same study) keeps running."""
    job = _job(tmp_path, f"sqlite:///{tmp_path / 'fit.db'}", trials=1)
    proc = subprocess.Popen([sys.executable, "-c", HANGING_WORKER, job.to_json()], stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        assert proc.stdout.readline().startswith("running")
        study = open_study(job, recover=False)
        assert recover_orphans(study) == []
        assert [t.state for t in study.get_trials()] == [TrialState.RUNNING]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert recover_orphans(open_study(job, recover=False)) == [0]  # now it is dead


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_trial_from_another_machine_is_failed_once_its_heartbeat_is_stale(tmp_path):
    """Another machine's worker cannot be looked up: its trial is dead only when its heartbeat is older than
    the grace period (as a trial left by a killed Ray task on another node)."""
    db = tmp_path / "fit.db"
    job = _job(tmp_path, f"sqlite:///{db}", trials=1)
    study = open_study(job, recover=False)
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    store = study._storage
    store.set_trial_system_attr(trial._trial_id, OWNER, {"host": "another-machine", "pid": 1, "started": "1"})
    store.record_heartbeat(trial._trial_id)
    assert recover_orphans(study) == []  # alive as far as anyone here can tell
    with sqlite3.connect(db) as con:  # its last heartbeat 10 minutes ago
        con.execute("update trial_heartbeats set heartbeat = datetime('now', '-600 seconds')")
    assert recover_orphans(study) == [trial.number]
    [retry] = study.get_trials(states=(TrialState.WAITING,))
    assert retry.params == {"x": trial.params["x"]} and OWNER not in retry.system_attrs


@needs_postgres
def test_postgres_holds_the_study_and_a_new_process_resumes_it(tmp_path):
    assert POSTGRES.startswith("postgresql://")  # no driver named: wearprune picks the installed one
    assert storage(POSTGRES).engine.url.drivername == "postgresql+psycopg"
    job = _job(tmp_path, POSTGRES, trials=2)
    started = time.perf_counter()
    assert search(job, quick) == 2
    first = [(t.number, t.params, t.value) for t in open_study(job).get_trials() if t.state == TrialState.COMPLETE]
    resume = textwrap.dedent("""
        import json, sys
        from dataclasses import replace
        from wearprune.autofit.study import Job, completed, open_study, search

        def quick(trial):
            return -((trial.suggest_float("x", 0.0, 1.0) - 0.3) ** 2)

        job = replace(Job.from_json(sys.argv[1]), trials=4)
        open_study(job)
        search(job, quick)
        print(json.dumps([[t.number, t.params, t.value] for t in completed(open_study(job))]))
    """)
    res = subprocess.run([sys.executable, "-c", resume, job.to_json()], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    after = [tuple(t) for t in json.loads(res.stdout.strip().splitlines()[-1])]
    assert len(after) == 4 and [list(t) for t in first] == [list(t) for t in after[:2]]  # kept, not redone
    print(f"PostgreSQL: 2 trials, then 2 more in a new process: {time.perf_counter() - started:.1f} s")


def test_a_plain_postgresql_url_gets_the_installed_driver():
    assert engine_url("postgresql://u:pw@127.0.0.1:5432/db") == "postgresql+psycopg://u:pw@127.0.0.1:5432/db"
    assert engine_url("postgres://u@127.0.0.1/db") == "postgresql+psycopg://u@127.0.0.1/db"
    assert engine_url("postgresql+psycopg://u@127.0.0.1/db") == "postgresql+psycopg://u@127.0.0.1/db"
    assert engine_url("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.parametrize("url", ["postgresql://u:secret@127.0.0.1:5432/db", "postgresql+psycopg://u:secret@h/db",
                                 "postgres://u:secret@127.0.0.1/db"])
def test_a_missing_postgresql_driver_is_one_line_naming_the_extra(monkeypatch, url):
    for module in ("psycopg", "psycopg2"):  # as on a machine without them: importing them fails
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigError) as exc:
        storage(url)
    msg = str(exc.value)
    assert "pip install 'wearprune[cluster]'" in msg and "\n" not in msg and "secret" not in msg, msg


def test_an_unreachable_server_is_one_line_without_the_password():
    with pytest.raises(ConfigError) as exc:
        storage("postgresql://wearprune:secret@127.0.0.1:1/nothing")  # port 1 on loopback: refused
    msg = str(exc.value)
    assert "cannot open the search storage" in msg and "wearprune:***@" in msg and "secret" not in msg
    assert "\n" not in msg


def test_opening_and_running_a_study_prints_no_experimental_warning(tmp_path):
    job = _job(tmp_path, f"sqlite:///{tmp_path / 'fit.db'}", trials=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study = open_study(job)
        search(job, quick)
        recover_orphans(study)
    experimental = [str(w.message) for w in caught if issubclass(w.category, ExperimentalWarning)]
    assert not experimental, experimental


def test_a_printed_storage_url_hides_its_password():
    from wearprune.autofit.study import shown

    assert shown("postgresql://bob:s3cret@db.lab:5432/fits") == "postgresql://bob:***@db.lab:5432/fits"
    assert shown("postgresql+psycopg://bob:pa/ss:w@rd@db/fits") == "postgresql+psycopg://bob:***@db/fits"
    for plain in ("sqlite:///runs/a/fit.db", "postgresql://bob@db/fits", "postgresql://db/fits", "not a url"):
        assert shown(plain) == plain
