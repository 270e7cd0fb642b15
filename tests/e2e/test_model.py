"""`dfu-tui fit` and `dfu-tui predict`: a final model from a real run (a forest and a real
CNN), saved, verified, loaded in a fresh process and applied to later visits."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dfu_tui.cli import main
from tests.helpers import SharedRun, run_dfu, wait_for

# one worker runs every test here: the module's run and models are made once
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("model")]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    cache = tmp_path_factory.mktemp("cache")
    return {**os.environ, "DFU_TUI_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}


FIT: dict[str, Any] = {}  # how the module's default model was made


def logged(run: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]


def fit_here(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`dfu-tui fit ARGS` in this test process, with `env`'s cache: the module's tests load
    TensorFlow here anyway, and a process of its own would import it again (3 s of CPU). A
    fit in a process of its own is the detached fit's test, and `predict` in a fresh one the
    default model's."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DFU_TUI_CACHE_DIR", env["DFU_TUI_CACHE_DIR"])
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["fit", *args])
    return subprocess.CompletedProcess(["fit", *args], code, out.getvalue(), err.getvalue())


def fit_says(run: Path, text: str, since: int = 0) -> bool:
    """Whether a fit of `run` has logged a message starting with `text` (after the first
    `since` events)."""
    log = logged(run)[since:]
    return any(e["kind"] == "message" and e["text"].startswith(f"fit: {text}") for e in log)


@pytest.fixture(scope="module")
def fitted(
    tmp_path_factory: pytest.TempPathFactory,
    env: dict[str, str],
    shared_cnn_run: SharedRun,
    small_demo_master: Path,
) -> dict[str, Path]:
    """The shared real run (forest + CNN on thermal_map) of the 30-patient demo, copied: its
    default model (metadata+thermal_map) and a metadata-only model, and a later cohort (other
    patients)."""
    from dfu_tui.data.demo import write_demo

    base = tmp_path_factory.mktemp("model")
    demo, later = small_demo_master, base / "later"
    write_demo(later, patients=20, seed=11)
    run = Path(shutil.copytree(shared_cnn_run.run, base / "runs" / shared_cnn_run.run.name))
    # the default model, fitted in the foreground (a fit stopped and resumed in the
    # background: the learned fusion's test)
    FIT["fitted"] = fit_here(env, str(run))
    assert FIT["fitted"].returncode == 0, FIT["fitted"].stderr[-2000:]
    alone = run_dfu(env, "fit", str(run), "--combination", "metadata", "--output", str(base / "m"))
    assert alone.returncode == 0, alone.stderr[-2000:]
    return {
        "run": run,
        "model": run / "model",
        "metadata": base / "m",
        "demo": demo,
        "later": later,
    }


@pytest.fixture(scope="module")
def predicted(fitted: dict[str, Path], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`dfu-tui predict` of the default model on the later cohort, in its own process (once:
    each such process loads TensorFlow)."""
    return run_dfu(env, "predict", str(fitted["model"]), str(fitted["later"]))


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_model_folder_is_verifiable_and_readable(fitted: dict[str, Path]) -> None:
    from dfu_tui.runs.model import sha256

    model = fitted["model"]
    manifest = json.loads((model / "model.json").read_text())
    assert manifest["combination"] == ["metadata", "thermal_map"]
    assert set(manifest["files"]) == {
        "metadata.skops",
        "thermal_map.keras",
        "fusion.json",
        "MODEL_CARD.md",
    }
    for name, digest in manifest["files"].items():
        assert sha256(model / name) == digest
        assert (model / name).stat().st_mode & 0o777 == 0o600
    assert manifest["classes"] == ["I", "P", "R"] and manifest["data"]["patients"] == 30
    assert manifest["image"]["epochs"]["thermal_map"] >= 1
    assert "scikit-learn" in manifest["packages"] and "tensorflow" in manifest["packages"]
    card = (model / "MODEL_CARD.md").read_text()
    for part in ("Not a diagnostic device", "30 patients", "quadratic kappa", "cannot tell"):
        assert part in card
    assert not list(model.glob("*.pkl")) and not list(model.glob("*.joblib"))


def test_loaded_in_a_fresh_process_it_scores_a_later_cohort_with_the_same_probabilities(
    fitted: dict[str, Path], predicted: subprocess.CompletedProcess[str]
) -> None:
    """A fresh process predicts later patients (labelled): the forest's probabilities are
    exactly those of a forest fitted here on the same rows and seed, the CNN's those of the
    saved network here (to 1e-6, the CSV's six places); both kappas, the confusion, the
    shares and the collapse rules are said."""
    from dfu_tui.config import load_config
    from dfu_tui.data.dataset import load_dataset
    from dfu_tui.engine import final
    from dfu_tui.runs.model import load_model

    proc = predicted
    assert proc.returncode == 0, proc.stderr[-2000:]
    said = proc.stderr
    assert "kappa (unweighted)" in said and "quadratic kappa" in said and "confusion" in said
    assert "shares predicted vs true" in said
    table = rows(proc.stdout)
    cfg = load_config(fitted["run"] / "config.toml")
    trained = load_dataset(cfg.dataset, modalities=[]).table
    model = load_model(fitted["model"])
    used = model.manifest["features"]["used"]
    seed = cfg.cv.seed * 1000
    forest = final.fit_metadata(trained.frame[used], trained.labels, cfg.metadata_model, seed)
    later = load_config(
        None, raw={**cfg.to_dict(), "data": {**cfg.to_dict()["data"], "root": str(fitted["later"])}}
    )
    data = load_dataset(later.dataset, modalities=["thermal_map"])
    mine = final.metadata_proba(forest, data.table.frame[used])
    assert np.array_equal(mine, final.metadata_proba(model.metadata, data.table.frame[used]))
    crops = data.crops["thermal_map"]
    cnn = final.image_proba(model.images["thermal_map"], crops.crops, crops.sample_index, len(mine))
    assert len(table) == len(mine) > 20
    for i, row in enumerate(table):
        got = [float(row[f"metadata_{c}"]) for c in "IPR"]
        assert np.allclose(got, mine[i], atol=5e-7)
        if row["thermal_map_I"]:
            assert np.allclose([float(row[f"thermal_map_{c}"]) for c in "IPR"], cnn[i], atol=1e-6)
        else:  # no thermal image: predicted from what it has, fused weights renormalised
            assert np.isnan(cnn[i]).all() and row["modalities"] == "metadata"
            assert np.allclose([float(row[f"fused_{c}"]) for c in "IPR"], got, atol=1e-6)


def test_a_metadata_model_predicts_its_training_rows_as_its_pipeline_and_loads_no_tensorflow(
    fitted: dict[str, Path], env: dict[str, str]
) -> None:
    code = (
        "import sys\n"
        "from dfu_tui.cli import main\n"
        f"code = main(['predict', {str(fitted['metadata'])!r}, {str(fitted['demo'])!r}, "
        f"'--output', {str(fitted['metadata'].parent / 'p.csv')!r}])\n"
        "print(code, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.stdout.split() == ["0", "False", "False"], proc.stderr[-2000:]
    from dfu_tui.config import load_config
    from dfu_tui.data.dataset import load_dataset
    from dfu_tui.engine import final
    from dfu_tui.runs.model import load_model

    model = load_model(fitted["metadata"])
    table = rows((fitted["metadata"].parent / "p.csv").read_text())
    assert "kappa" in proc.stderr  # the demo has labels: scored
    frame = load_dataset(
        load_config(fitted["run"] / "config.toml").dataset, modalities=[]
    ).table.frame
    own = final.metadata_proba(model.metadata, frame[model.manifest["features"]["used"]])
    assert len(table) == len(own)
    for r, p in zip(table, own, strict=True):
        assert r["modalities"] == "metadata" and r["predicted"] == "IPR"[int(np.argmax(p))]
        assert np.allclose([float(r[f"fused_{c}"]) for c in "IPR"], p, atol=5e-7)


def _one_line(capsys: pytest.CaptureFixture[str], code: int, *words: str) -> None:
    out = capsys.readouterr()
    assert code == 2, out.err
    lines = [x for x in out.err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.err
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize(
    "damage",
    [
        "metadata.skops",
        "thermal_map.keras",
        "fusion.json",
        "MODEL_CARD.md",
        "missing",
        "link",
        "fifo",
        "fifo manifest",
        "manifest fusion",
        "manifest combination",
    ],
)
def test_a_changed_or_missing_file_is_refused(
    fitted: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    model = tmp_path / "model"
    shutil.copytree(fitted["model"], model)
    if damage == "missing":
        (model / "fusion.json").unlink()
        words = ("fusion.json", "missing")
    elif damage == "link":  # the same bytes, behind a link: not read
        (model / "fusion.json").rename(tmp_path / "elsewhere.json")
        (model / "fusion.json").symlink_to(tmp_path / "elsewhere.json")
        words = ("fusion.json", "symbolic link")
    elif damage == "fifo":  # never waited on
        (model / "metadata.skops").unlink()
        os.mkfifo(model / "metadata.skops")
        words = ("metadata.skops", "missing")
    elif damage == "fifo manifest":
        (model / "model.json").unlink()
        os.mkfifo(model / "model.json")
        words = ("model.json", "unreadable")
    elif damage.startswith("manifest"):  # the manifest holds the hashes: its other parts
        doc = json.loads((model / "model.json").read_text())  # are checked by shape
        if damage == "manifest fusion":  # other weights than the checked fusion.json's
            doc["fusion"]["weights"] = {"metadata": 0.0, "thermal_map": 1.0}
            words = ("model.json", "differs from fusion.json")
        else:
            doc["combination"] = "metadata"
            words = ("model.json", "combination")
        (model / "model.json").write_text(json.dumps(doc))
    else:
        data = bytearray((model / damage).read_bytes())
        data[len(data) // 2] ^= 0x01
        (model / damage).write_bytes(bytes(data))
        words = (damage, "sha256")
    out = tmp_path / "p.csv"
    _one_line(
        capsys, main(["predict", str(model), str(fitted["demo"]), "--output", str(out)]), *words
    )
    assert not out.exists()


def test_an_untrusted_type_or_another_version_is_refused(
    fitted: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A skops file holding a type outside the trusted set (here a function that runs a
    shell command) is refused even when the manifest's digest was forged to match; a model
    of another dfu-tui version too."""
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    from dfu_tui.runs.model import sha256

    model = tmp_path / "model"
    shutil.copytree(fitted["metadata"], model)
    sio.dump(FunctionTransformer(func=os.system), model / "metadata.skops")
    manifest = json.loads((model / "model.json").read_text())
    manifest["files"]["metadata.skops"] = sha256(model / "metadata.skops")
    (model / "model.json").write_text(json.dumps(manifest))
    _one_line(capsys, main(["predict", str(model), str(fitted["demo"])]), "does not trust")
    manifest["dfu_tui"] = "9.9.0"
    (model / "model.json").write_text(json.dumps(manifest))
    _one_line(capsys, main(["predict", str(model), str(fitted["demo"])]), "dfu-tui 9.9.0")


@pytest.mark.parametrize("change", ["missing", "extra", "renamed", "no images", "no csv"])
def test_data_that_does_not_match_is_one_line(
    fitted: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], change: str
) -> None:
    import pandas as pd

    data = tmp_path / "data"
    shutil.copytree(fitted["later"], data)
    csv_path = data / "DataMaster_Processed_V12_WithMissing.csv"
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    model = fitted["model"]
    if change == "missing":
        frame = frame.drop(columns=["Age"])
        words: tuple[str, ...] = ("missing Age",)
    elif change == "extra":
        frame["Shoe Size"] = "44"
        words = ("not in the model Shoe Size",)
    elif change == "renamed":
        frame = frame.rename(columns={"Age": "Patient Age"})
        words = ("missing Age", "Patient Age")
    elif change == "no images":
        for folder in [p for p in data.iterdir() if p.is_dir()]:
            shutil.rmtree(folder)
        words = ("no image folder", "thermal_map")
    else:
        csv_path.unlink()
        words = (csv_path.name,)
    if change != "no csv":
        frame.to_csv(csv_path, index=False)
    out = tmp_path / "p.csv"
    _one_line(capsys, main(["predict", str(model), str(data), "--output", str(out)]), *words)
    assert not out.exists()


def test_fit_refuses_what_it_cannot_do_in_one_line(
    fitted: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run = str(fitted["run"])
    _one_line(capsys, main(["fit", run, "--combination", "depth_rgb"]), "not one of the run's")
    _one_line(capsys, main(["fit", run]), "already holds a model")
    # a link planted where the detached fit's log goes: not written through, nothing started
    log = fitted["run"] / "logs" / "fit.log"
    saved = log.read_bytes() if log.exists() else None
    log.unlink(missing_ok=True)
    victim = fitted["run"].parent / "victim.txt"
    victim.write_text("theirs")
    log.symlink_to(victim)
    try:
        target = fitted["run"].parent / "never"
        code = main(["fit", run, "--detach", "--output", str(target)])
        _one_line(capsys, code, "fit.log", "symbolic link")
        assert victim.read_text() == "theirs" and not target.exists()
    finally:
        log.unlink()
        if saved is not None:
            log.write_bytes(saved)


def test_the_run_shows_its_model_in_the_runs_list_monitor_and_report(
    fitted: dict[str, Path],
) -> None:
    from dfu_tui.report import build_report
    from dfu_tui.runs.catalog import MODEL_WRITTEN, RunCatalog
    from dfu_tui.runs.rundir import RunDir
    from dfu_tui.tui.screens.runs import COLUMNS, run_row

    run = fitted["run"]
    log = logged(run)
    assert any(MODEL_WRITTEN in e.get("text", "") for e in log if e["kind"] == "message")
    catalog = RunCatalog(run.parent)
    catalog.refresh()
    docs = catalog.documents(run.name)
    assert docs.model == run / "model"
    state = catalog.state(run.name)
    assert state.status == "completed"  # the message after the end changes nothing
    row = run_row(state, 0.0, docs.labels, model=docs.model is not None)
    assert row[COLUMNS.index("model")] == "fitted"
    page = build_report(RunDir(run))
    assert "<h2>Final model</h2>" in page and "Not a diagnostic device" in page


def test_a_fit_says_what_it_trains_and_leaves_no_progress_file(fitted: dict[str, Path]) -> None:
    """The module's default model, fitted in the foreground: it says what it trains, and an
    ended fit leaves no progress record and no heartbeat."""
    said = FIT["fitted"].stderr
    assert "metadata: a forest on" in said and "thermal_map: " in said
    assert "kept from the unfinished fit" not in said
    assert (fitted["model"] / "model.json").is_file()
    assert not (fitted["model"] / "fit-progress.json").exists()
    assert not (fitted["run"] / "fit-heartbeat.json").exists()


def test_predict_json_takes_visits_on_standard_input(
    fitted: dict[str, Path], env: dict[str, str], predicted: subprocess.CompletedProcess[str]
) -> None:
    """Visits as JSON on stdin (no images): each predicted from its metadata as the same
    visit in a folder is, an image branch's weight going to the metadata; not JSON is one
    line, exit 2."""
    import sys

    later = fitted["later"] / "DataMaster_Processed_V12_WithMissing.csv"
    visits = list(csv.DictReader(io.StringIO(later.read_text(encoding="utf-8-sig"))))[:3]
    for v in visits:
        v.pop("Healing Phase Abs")
    command = [sys.executable, "-m", "dfu_tui", "predict", str(fitted["model"]), "--json"]
    proc = subprocess.run(
        command, input=json.dumps(visits), capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    said = json.loads(proc.stdout)
    assert [v["visit"] for v in said] == [1, 2, 3]
    folder = rows(predicted.stdout)
    for v, row in zip(said, folder[:3], strict=True):
        assert v["key"] == [int(row["patient"]), int(row["appt"]), int(row["dfu"])]
        meta = [v["probabilities"]["metadata"][c] for c in "IPR"]
        assert np.allclose(meta, [float(row[f"metadata_{c}"]) for c in "IPR"], atol=1e-6)
        assert (
            v["modalities"] == ["metadata"]
            and v["probabilities"]["fused"] == v["probabilities"]["metadata"]
        )
    bad = subprocess.run(command, input="not json", capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: standard input: not JSON")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the model another owner")
def test_a_co_authors_model_is_verified_and_applied(
    fitted: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model folder owned by someone else (a co-author's, shared read-only) is read,
    checked and applied; nothing is written into it."""
    model = tmp_path / "theirs"
    shutil.copytree(fitted["metadata"], model)
    for path in [model, *model.iterdir()]:
        os.chown(path, 65534, 65534)
        path.chmod(0o755 if path.is_dir() else 0o644)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in model.iterdir())
    out = tmp_path / "p.csv"
    assert main(["predict", str(model), str(fitted["later"]), "--output", str(out)]) == 0
    assert len(rows(out.read_text())) > 20
    assert sorted((p.name, p.stat().st_mtime_ns) for p in model.iterdir()) == before


def test_a_learned_fusion_is_fitted_on_every_patient_and_applied_as_saved(
    fitted: dict[str, Path], env: dict[str, str], tmp_path: Path
) -> None:
    """A run whose fusion learns (stacked: a logistic regression on the branches'
    probabilities): fit trains each branch again on the inner folds of every patient, saves
    what the fusion learned as JSON (no pickle) and says so in the card; `predict` fuses
    later visits with it exactly as the saved parameters do, visits without a thermal image
    included. A fit detached, then stopped in its inner folds (its heartbeat saying so
    meanwhile), keeps the branches and inner folds it finished. (The run is
    the module's, its config changed to stacked with 2 inner
    folds: what is tested is the fit and the model, not the run's cross-validation.)"""
    from dfu_tui.config import load_config
    from dfu_tui.data.dataset import load_dataset
    from dfu_tui.engine import final
    from dfu_tui.engine.fusion import fusion_from_params
    from dfu_tui.runs.model import load_model

    run = tmp_path / fitted["run"].name
    shutil.copytree(fitted["run"], run, ignore=shutil.ignore_patterns("model", "logs"))
    config = (run / "config.toml").read_text()
    assert 'strategy = "fixed"' in config and "inner_folds = 3" in config
    config = config.replace('strategy = "fixed"', 'strategy = "stacked"', 1)
    (run / "config.toml").write_text(config.replace("inner_folds = 3", "inner_folds = 2", 1))
    # fitted in the background and stopped while the CNN of the second inner fold trains:
    # the inner folds done are kept, and the resumed fit trains only the rest
    before = len(logged(run))  # the default model's fit logged there too
    detached = run_dfu(env, "fit", str(run), "--detach")
    assert detached.returncode == 0, detached.stderr[-2000:]

    wait_for(
        lambda: fit_says(run, "fusion: thermal_map on inner fold 2", before),
        timeout=240,
        every=0.02,
    )
    # held there (that CNN trains in under a second: the fit used to end before the stop
    # came); the stop's SIGTERM comes with a SIGCONT
    (pid,) = re.findall(r"\(pid (\d+)\)", detached.stderr)
    os.kill(int(pid), signal.SIGSTOP)
    # its heartbeat: `status` says it is fitting, and what it does
    status = json.loads(run_dfu(env, "status", str(run), "--json").stdout)
    assert status["fit"]["state"] == "fitting", status
    assert status["fit"]["doing"].startswith("fusion: thermal_map"), status
    assert "completed, fitting" in run_dfu(env, "status", str(run)).stdout
    stop = run_dfu(env, "stop", str(run))
    assert stop.returncode == 0, stop.stderr
    from dfu_tui.runs.procs import run_processes

    assert run_processes(run) == []  # the fit was ours to stop, and it is gone
    wait_for(lambda: fit_says(run, "stopped", before), timeout=30)
    wait_for(lambda: not (run / "fit-heartbeat.json").exists(), timeout=30)  # it ended
    progress = json.loads((run / "model" / "fit-progress.json").read_text())
    assert {"metadata.skops", "thermal_map.keras"} <= set(progress["files"])
    assert sorted(progress["inner"]) == ["metadata-1", "metadata-2", "thermal_map-1"]
    assert not (run / "model" / "model.json").exists()
    done = fit_here(env, str(run))
    assert done.returncode == 0, done.stderr[-2000:]
    for kept in (
        "metadata",  # the final branches saved before the stop
        "thermal_map",
        "fusion: metadata on inner fold 1",  # and the inner folds finished
        "fusion: metadata on inner fold 2",
        "fusion: thermal_map on inner fold 1",
    ):
        assert f"{kept}: kept from the unfinished fit" in done.stderr
    assert not (run / "model" / "fit-progress.json").exists()
    assert "thermal_map on inner fold 2 of 2" in done.stderr
    assert "thermal_map on inner fold 1 of 2" not in done.stderr  # not trained again
    assert not list((run / "model").glob(".inner-*"))  # removed once the fusion is written
    fusion = json.loads((run / "model" / "fusion.json").read_text())
    assert fusion["strategy"] == "stacked" and "inner out-of-fold" in fusion["fitted_on"]
    assert fusion["params"]["branches"] == ["metadata", "thermal_map"]
    assert np.array(fusion["params"]["coef"]).shape == (3, 8)
    card = (run / "model" / "MODEL_CARD.md").read_text()
    assert "The fusion learned a logistic model" in card
    # applied here (loading in a fresh process is the default model's test: each such
    # process imports TensorFlow again)
    out = tmp_path / "later.csv"
    assert main(["predict", str(run / "model"), str(fitted["later"]), "--output", str(out)]) == 0
    table = rows(out.read_text())
    model = load_model(run / "model")
    used = model.manifest["features"]["used"]
    cfg = load_config(run / "config.toml")
    later = load_config(
        None, raw={**cfg.to_dict(), "data": {**cfg.to_dict()["data"], "root": str(fitted["later"])}}
    )
    data = load_dataset(later.dataset, modalities=["thermal_map"])
    n = len(data.table.labels)
    crops = data.crops["thermal_map"]
    probs = {
        "metadata": final.metadata_proba(model.metadata, data.table.frame[used]),
        "thermal_map": final.image_proba(
            model.images["thermal_map"], crops.crops, crops.sample_index, n
        ),
    }
    saved = fusion_from_params("stacked", fusion["params"], ["metadata", "thermal_map"])
    expected = saved.predict_proba(probs)
    got = np.array([[float(r[f"fused_{c}"]) for c in "IPR"] for r in table])
    assert got.shape == expected.shape and np.allclose(got, expected, atol=2e-6)
    without = [i for i, r in enumerate(table) if r["modalities"] == "metadata"]
    assert without  # later visits without a thermal image: fused all the same
