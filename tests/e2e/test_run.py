"""End-to-end: real TensorFlow training and real `dfu-tui run` processes on a tiny demo."""

from __future__ import annotations

import csv
import functools
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dfu_tui.config import ImageModelConfig, load_config
from dfu_tui.runs.rundir import RESULTS_COLUMNS
from tests.helpers import STANDIN, SharedRun, run_dfu, set_args, standin_env, tiny

pytestmark = pytest.mark.slow  # trains real models

TINY = tiny("image_model.patience=2", "radar.enabled=true")


def dfu(*args: str, env_cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DFU_TUI_CACHE_DIR": str(env_cache), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return run_dfu(standin_env(env), *args)


def sets(*items: str) -> list[str]:
    return set_args(items)


# TensorFlow in the test process itself: in the test process of the final-model tests, which
# load it too (one TensorFlow import per test process instead of one in each: 5-7 s of a core)
@pytest.mark.xdist_group("model")
class TestImageBranch:
    @pytest.mark.parametrize(
        "backbone", ["small_cnn", "EfficientNetB0", "MobileNetV3Small", "DenseNet121"]
    )
    def test_named_model_from_factory(self, backbone: str) -> None:
        from dfu_tui.engine.image_branch import build_image_branch, configure_tensorflow

        configure_tensorflow(1)
        model = build_image_branch("thermal_map", 32, ImageModelConfig(backbone=backbone))
        assert model.name == "thermal_map_branch"
        assert model.inputs[0].name == "thermal_map_input"
        assert tuple(model.outputs[0].shape) == (None, 3)

    def test_trains_and_reports_every_epoch(self, small_demo_master: Path) -> None:
        from dfu_tui.data.dataset import load_dataset
        from dfu_tui.engine.folds import make_folds
        from dfu_tui.engine.image_branch import configure_tensorflow, train_image_branch

        configure_tensorflow(1)
        small = "collapse.epoch_min_samples=5"  # the tiny inner split is checked too
        cfg = load_config(None, [f"data.root='{small_demo_master}'", *TINY, small])
        ds = load_dataset(cfg.dataset)
        t, crops = ds.table, ds.crops["thermal_map"]
        fold = make_folds(t.labels, t.patients, 2, 0)[0]
        epochs: list[dict] = []
        train = functools.partial(
            train_image_branch,
            "thermal_map",
            crops.crops,
            crops.sample_index,
            t.labels,
            t.patients,
            fold.train,
            fold.val,
            cfg.image_model,
            cfg.collapse,
            seed=0,
            inner=2,
        )
        out = train(on_epoch=epochs.append)
        assert [e["epoch"] for e in epochs] == list(range(1, len(epochs) + 1))
        for e in epochs:
            assert {"loss", "train_kappa", "val_kappa", "val_predicted_share", "flags"} <= set(e)
        # each epoch streams the rules that held on its inner split, recomputable from its
        # shares, size and kappa; below epoch_min_samples no share rule is checked
        from dfu_tui.engine.rules import Counts, overfit_gap, share_rules

        for e in epochs:
            n = e["val_n"]
            counts = Counts(
                np.array([round(e["val_true_share"][c] * n) for c in "IPR"]),
                np.array([round(e["val_predicted_share"][c] * n) for c in "IPR"]),
                e["val_kappa"],
            )
            checked = n >= cfg.collapse.epoch_min_samples
            expected = share_rules(counts, cfg.collapse, cfg.collapse.confidence) if checked else []
            expected += overfit_gap(e["train_kappa"], e["val_kappa"], cfg.collapse)
            assert e["rules_holding"] == sorted({f.rule for f in expected})
            assert e["collapse_streak"] <= e["epoch"]
        assert any(e["val_n"] >= 5 for e in epochs)
        assert out.val_proba.shape == (len(fold.val), 3)
        has = np.isin(fold.val, crops.sample_index)
        assert not np.isnan(out.val_proba[has]).any()
        assert np.isnan(out.val_proba[~has]).all()  # no image: no prediction
        assert np.allclose(out.val_proba[has].sum(axis=1), 1, atol=1e-5)
        assert out.oof_proba is not None and out.oof_proba.shape == (len(fold.train), 3)
        assert 1 <= out.info["best_epoch"] <= 3
        # trained again in this process, the traced model of the first training (and of its
        # inner folds) is reused, from the same fresh state: the very same probabilities
        from dfu_tui.engine import image_branch

        traced = image_branch._WARM[("thermal_map", crops.crops.shape[1], cfg.image_model)][0]
        step = traced.train_function
        again = train()
        assert traced.train_function is step  # not traced again
        for key in ("val_proba", "train_proba", "oof_proba"):
            assert np.array_equal(getattr(out, key), getattr(again, key), equal_nan=True), key
        assert again.info["best_epoch"] == out.info["best_epoch"]


class TestRunCommand:
    @pytest.mark.xdist_group("model")  # the run is the final-model tests' too
    def test_run_writes_every_file(self, shared_cnn_run: SharedRun) -> None:
        run, stdout = shared_cnn_run
        assert "Fusion weights: metadata=0.70, thermal_map=0.30" in stdout
        assert "\r" not in stdout
        epoch_lines = [ln for ln in stdout.splitlines() if " epoch " in ln]
        assert len(epoch_lines) >= 2 and all(ln.startswith("fold ") for ln in epoch_lines)
        assert oct(run.stat().st_mode & 0o777) == "0o700"
        assert load_config(run / "config.toml").cv.folds == 2
        events = [json.loads(ln) for ln in (run / "events.jsonl").read_text().splitlines()]
        kinds = [e["kind"] for e in events]
        assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
        assert all(e["v"] == 1 for e in events)
        for kind in ("fold_started", "task_started", "epoch", "branch_finished", "fold_finished"):
            assert kind in kinds
        # what each task used, measured in its own process: a real CNN and forest took CPU
        # and memory (a TensorFlow process holds hundreds of MB)
        for e in (e for e in events if e["kind"] == "branch_finished"):
            assert e["cpu_percent"] > 5 and e["peak_rss_mb"] > 50, e
            assert "gpu_peak_mb" not in e  # no GPU here
        assert all(e["cpu_percent"] >= 0 for e in events if e["kind"] == "epoch")
        assert all("peak_rss_mb" in e for e in events if e["kind"] == "epoch")
        # a clinician's scores of the fused CNN + forest: per class, and calibration
        fold = next(e for e in events if e["kind"] == "fold_finished")
        fused = fold["combinations"][0]
        assert set(fused["sensitivity"]) == set(fused["roc_auc"]) == {"I", "P", "R"}
        assert 0 <= fused["brier"] <= 2 and fused["reliability"]
        assert sum(b[2] for b in fused["reliability"]) == fused["n"]
        names = sorted(p.name for p in (run / "predictions").iterdir())
        assert names == [f"fold{k}_{b}.npz" for k in (1, 2) for b in ("metadata", "thermal_map")]
        with np.load(run / "predictions" / names[0], allow_pickle=False) as npz:
            assert npz["val_proba"].shape == (len(npz["val_index"]), 3)
        with open(run / "results.csv", newline="") as fh:
            rows = list(csv.reader(fh))
        assert tuple(rows[0]) == RESULTS_COLUMNS and rows[1][0] == "metadata+thermal_map"
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["run_id"] == run.name
        (combo,) = summary["combinations"]
        assert combo["fusion"] == {
            "strategy": "fixed",
            "weights": {"metadata": 0.7, "thermal_map": 0.3},
        }
        fold = combo["folds"][0]
        for key in (
            "kappa",
            "quadratic_kappa",
            "accuracy",
            "macro_f1",
            "train_kappa",
            "predicted_share",
            "true_share",
            "confusion",
            "flags",
        ):
            assert key in fold
        assert set(combo["mean"]) >= {"kappa", "quadratic_kappa", "accuracy", "macro_f1"}
        assert {"minimum", "expected", "ideal", "criteria"} <= set(combo["verdict"])
        assert [b["branch"] for b in summary["branches"]] == ["metadata", "thermal_map"]
        self.check_worker_reuse(events)

    @staticmethod
    def check_worker_reuse(events: list[dict]) -> None:
        """One worker trained every task (`--jobs 1`: imports and data loaded once), each
        fold's CNN first. That the CNN it trained after another CNN and a forest is the one a
        fresh process trains: `test_ray.py` compares this run's predictions with a run whose
        every task was a new process."""
        started = [e for e in events if e["kind"] == "task_started"]
        assert len(started) == 4 and len({e["pid"] for e in started}) == 1
        order = [e["task"] for e in started]  # each fold's CNN first, folds in order
        assert order == [
            "fold1-thermal_map",
            "fold1-metadata",
            "fold2-thermal_map",
            "fold2-metadata",
        ]

    def test_search_reuses_branches_and_same_seed_same_rf(
        self, small_demo_master: Path, tmp_path: Path
    ) -> None:
        args = [
            "run",
            "configs/default.toml",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--jobs",
            "1",
            *sets(
                f"data.root='{small_demo_master}'",
                *TINY,
                # the subject is branch reuse and the fusions of their outputs: the stand-in
                # image branch (TensorFlow's inner folds: TestImageBranch; fusion of CNN
                # outputs: test_run_writes_every_file)
                STANDIN,
                "radar.enabled=false",
                "modalities.search=true",
                "modalities.use=['metadata','depth_rgb']",
                # stacked fusion trains each image branch once more per inner fold
                "fusion.strategy=stacked",
                "cv.inner_folds=2",
                # every other fusion of the same branch predictions, in the same run
                "fusion.compare=['fixed','learned_alpha','tuned',{metadata=0.5,image=0.5}]",
            ),
        ]
        assert dfu(*args, env_cache=tmp_path / "c").returncode == 0
        (run,) = (tmp_path / "runs").iterdir()
        events = [json.loads(ln) for ln in (run / "events.jsonl").read_text().splitlines()]
        started = [e["task"] for e in events if e["kind"] == "task_started"]
        assert len(started) == 2 * 2 == len(set(started))  # each (fold, branch) once
        summary = json.loads((run / "summary.json").read_text())
        assert len(summary["combinations"]) == 3
        # the fused combination has every fusion side by side; each alone has nothing to fuse
        assert [("strategies" in c) for c in summary["combinations"]] == [False, False, True]
        table = summary["combinations"][2]["strategies"]
        names = [r["name"] for r in table["rows"]]
        assert names == [
            "stacked",
            "fixed",
            "learned_alpha",
            "tuned",
            "fixed 0.50/0.50",
            "metadata alone",
            "depth_rgb alone",
        ]
        assert all(len(r["folds"]) == 2 and r["n"] > 0 for r in table["rows"])
        assert all("versus_reference" in r for r in table["rows"][1:])
        reference = table["rows"][0]["folds"]
        assert [f["kappa"] for f in reference] == [
            f["kappa"] for f in summary["combinations"][2]["folds"]
        ]
        shown = dfu("show", str(run), env_cache=tmp_path / "c")
        assert shown.returncode == 0 and "Fusion strategies of metadata+depth_rgb" in shown.stdout
        exported = dfu(
            "export", str(run), "--output", "-", env_cache=tmp_path / "c"
        ).stdout.splitlines()
        strategy_rows = [r.split(",") for r in exported if r.startswith("strategy,")]
        assert len(strategy_rows) == 5 * 2  # every fusion on every fold
        assert dfu("report", str(run), env_cache=tmp_path / "c").returncode == 0
        html = (run / "report.html").read_text()
        assert "<h2>Fusion strategies</h2>" in html and "learned_alpha" in html

        # the same seed, the same forest: a metadata-only run's folds are the search's
        # metadata combination's, figure for figure (but the name of the run's fusion)
        meta_only = sets(  # the subject is the forest's seed: no radar
            f"data.root='{small_demo_master}'",
            *TINY,
            "modalities.use=['metadata']",
            "radar.enabled=false",
            "cv.inner_folds=2",
        )
        runs = tmp_path / "metadata-only"
        proc = dfu(
            "run",
            "configs/default.toml",
            "--runs-dir",
            str(runs),
            *meta_only,
            env_cache=tmp_path / "c",
        )
        assert proc.returncode == 0, proc.stderr
        (alone,) = runs.iterdir()
        one = {"weights": {"metadata": 1.0}}
        folds = json.loads((alone / "summary.json").read_text())["combinations"][0]["folds"]
        assert summary["combinations"][0]["modalities"] == ["metadata"]
        searched = summary["combinations"][0]["folds"]
        assert [f.pop("fusion") for f in searched] == [{"strategy": "stacked", **one}] * 2
        assert [f.pop("fusion") for f in folds] == [{"strategy": "fixed", **one}] * 2
        assert folds == searched
