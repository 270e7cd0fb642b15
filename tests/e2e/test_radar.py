"""End-to-end: the leakage radar and the paired feature comparison in real runs, and the
ImageNet-weights check (offline error) and local weights files."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from dfu_tui.config import ImageModelConfig
from tests.helpers import run_dfu, set_args

pytestmark = pytest.mark.slow  # trains real models


@pytest.fixture
def leak_run(shared_leak_run: Path) -> Path:
    return shared_leak_run


def events(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]


@pytest.mark.xdist_group("leak")  # one worker: the module's leak run is made once
class TestLeakRadar:
    def test_planted_leak_is_flagged_in_the_first_fold(self, leak_run: Path) -> None:
        flags = [e for e in events(leak_run) if e["kind"] == "flag" and e["fold"] == 1]
        dominant = [f for f in flags if f["rule"] == "dominant_feature"]
        assert dominant and all("Dressing Grouped" in f["detail"] for f in dominant)
        treatment = [f for f in flags if f["rule"] == "treatment_feature"]
        assert any(f["detail"].startswith("Dressing Grouped: decided after") for f in treatment)
        fold1 = next(e for e in events(leak_run) if e["kind"] == "fold_finished" and e["fold"] == 1)
        top = fold1["radar"]["features"][0]
        assert top["feature"] == "Dressing Grouped" and top["importance_rank"] == 1
        assert top["single_rank"] == 1 and top["single_kappa"] > 0.5

    def test_paired_comparison_shows_the_drop(self, leak_run: Path) -> None:
        summary = json.loads((leak_run / "summary.json").read_text())
        comparison = summary["feature_comparison"]
        assert comparison["group"] == "treatment"
        (row,) = comparison["rows"]
        k = row["kappa"]
        assert k["folds"] == 3 and len(k["differences"]) == 3
        assert k["mean_with"] - k["mean_without"] > 0.2 and k["distinguishable"]
        assert row["quadratic_kappa"]["mean_difference"] > 0  # both scales, named
        out = (leak_run / "stdout.txt").read_text()
        assert "Without treatment: metadata kappa" in out
        assert "Without treatment: metadata quadratic_kappa" in out

    def test_features_listed_and_exported(self, leak_run: Path) -> None:
        doc = json.loads((leak_run / "features.json").read_text())
        assert "Dressing Grouped" in doc["used"] and "Healing Phase" not in doc["used"]
        assert doc["compare"] == "treatment"
        assert "Dressing Grouped" in doc["compare_drops"]
        env = {**os.environ}
        proc = run_dfu(env, "export", str(leak_run), "--output", "-")
        rows = list(csv.DictReader(io.StringIO(proc.stdout)))
        features = [r for r in rows if r["row"] == "feature"]
        assert len(features) == 3 * len(doc["used"])
        assert {r["feature"] for r in features} == set(doc["used"])
        compared = [r for r in rows if r["row"] == "feature_comparison"]
        assert len(compared) == 3 and all(r["without_group"] == "treatment" for r in compared)

    def test_radar_never_sees_the_removed_group(self, leak_run: Path) -> None:
        import numpy as np

        pred = np.load(leak_run / "predictions" / "fold1_metadata_without_treatment.npz")
        assert "radar_features" not in pred.files  # the radar runs on the full branch only
        full = np.load(leak_run / "predictions" / "fold1_metadata.npz")
        assert "Dressing Grouped" in set(full["radar_features"].tolist())


def test_validate_features_prints_the_single_feature_table(tmp_path: Path) -> None:
    env = {**os.environ, "DFU_TUI_CACHE_DIR": str(tmp_path / "cache")}
    sets = ["demo.patients=60", "demo.planted_leak=true", "modalities.use=['metadata']"]
    args = set_args(sets)
    proc = run_dfu(env, "validate", "configs/default.toml", "--features", *args)
    assert proc.returncode == 0, proc.stderr
    lines = [x for x in proc.stdout.splitlines() if x.startswith("│")]
    first = [c.strip() for c in lines[0].strip("│").split("│")]
    assert first[:2] == ["1", "Dressing Grouped"] and "treatment" in first[3]
    assert "may encode the label" in first[4]
    assert "Single-feature kappa (unweighted" in proc.stdout


def test_imagenet_offline_is_one_line(tmp_path: Path, tiny_demo_master: Path) -> None:
    """No network (a closed local proxy, so the test is the same on an online machine): with
    nothing in Keras's cache, the host out of reach is said at once, before TensorFlow
    starts; with a file there (which might have been the backbone's), Keras itself tries and
    its failure is the same one line."""
    env = {
        **os.environ,
        "DFU_TUI_CACHE_DIR": str(tmp_path / "cache"),
        "KERAS_HOME": str(tmp_path / "keras"),
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
    }
    sets = [
        f"data.root='{tiny_demo_master}'",
        "image_model.backbone='MobileNetV3Small'",
        "image_model.weights='imagenet'",
        "cv.folds=2",
        "data.image_size=32",
    ]
    args = set_args(sets)
    runs = tmp_path / "runs"
    for cached in ([], ["other.weights.h5"]):
        for name in cached:
            (tmp_path / "keras" / "models").mkdir(parents=True, exist_ok=True)
            (tmp_path / "keras" / "models" / name).write_bytes(b"not these weights")
        proc = run_dfu(env, "run", "configs/default.toml", "--runs-dir", str(runs), *args)
        assert proc.returncode == 2
        errors = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
        assert len(errors) == 1 and "Traceback" not in proc.stderr
        assert "cannot download the MobileNetV3Small ImageNet weights" in errors[0]
        assert "image_model.weights to its local path" in errors[0]
        # which of the two said it: our check names the host, Keras the file's address
        ours = "https://storage.googleapis.com/ cannot be reached: " in errors[0]
        assert ours == (not cached), errors[0]
        assert "Connection refused" in errors[0]
        assert not runs.exists()  # nothing started, nothing half-written


def test_the_download_host_check_honours_the_proxy_settings(monkeypatch) -> None:
    """As Keras's download would: a refused proxy is out of reach, and so is an unknown
    host; a host that answers, with whatever status, is reachable."""
    import http.server
    import threading

    from dfu_tui.engine.pretrained import unreachable

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:  # noqa: N802 (the standard library's name)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for key in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
            monkeypatch.delenv(key, raising=False)
        port = server.server_address[1]
        assert unreachable(f"http://127.0.0.1:{port}/", timeout=5) is None
        monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
        refused = unreachable(f"http://127.0.0.1:{port}/", timeout=5)
        assert refused is not None and "Connection refused" in refused
        monkeypatch.delenv("http_proxy")
        unknown = unreachable("http://no-such-host.invalid/", timeout=5)
        assert unknown is not None and "no-such-host.invalid" in unknown
    finally:
        server.shutdown()
        server.server_close()


def test_local_weights_file_is_loaded(tmp_path: Path) -> None:
    from dfu_tui.engine.image_branch import build_image_branch, configure_tensorflow

    configure_tensorflow(1)
    import keras
    import numpy as np

    source = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg"
    )
    rng = np.random.default_rng(0)
    source.set_weights([rng.normal(size=w.shape).astype("float32") for w in source.get_weights()])
    path = tmp_path / "mobilenet.weights.h5"
    source.save_weights(path)
    model = build_image_branch(
        "thermal_map", 32, ImageModelConfig(backbone="MobileNetV3Small", weights=str(path))
    )
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    for a, b in zip(backbone.get_weights(), source.get_weights(), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.xdist_group("leak")
class TestLeakCaveat:
    """The whole chain on the planted leak: the radar flags the dressing, the paired
    comparison shows the drop, and the verdict carries both as a caveat, in summary.json and
    on the console, beside the tiers."""

    def test_verdict_carries_the_treatment_caveat(self, leak_run: Path) -> None:
        summary = json.loads((leak_run / "summary.json").read_text())
        verdict = summary["combinations"][0]["verdict"]
        (caveat,) = [c for c in verdict["caveats"] if c.get("feature") == "Dressing Grouped"]
        assert caveat["kind"] == "treatment_feature"  # one caveat, both rules named
        assert caveat["rules"] == ["dominant_feature", "treatment_feature"]
        assert caveat["group"] == "treatment" and caveat["folds"] >= 2
        diff = caveat["difference"]
        assert diff["mean"] > 0.1 and diff["ci95"][0] > 0 and diff["folds"] == 3
        # the same number the comparison reports, on the criteria's scale
        row = summary["feature_comparison"]["rows"][0][summary["metric"]]
        assert diff["mean"] == pytest.approx(row["mean_difference"])
        assert "carried by treatment" in caveat["text"]
        # metadata alone: no fusion to judge, and 3 folds is exploratory
        assert verdict["ideal"] is None and verdict["design"]["exploratory"]
        assert any(
            c["kind"] == "power" and "cv.repeats = 4" in c["text"] for c in verdict["caveats"]
        )
        out = (leak_run / "stdout.txt").read_text()
        assert "caveat: treatment and dominant feature Dressing Grouped among the top" in out
        assert "ideal n/a" in out and "exploratory (3 folds < 10)" in out

    def test_show_prints_the_same_caveats(self, leak_run: Path) -> None:
        proc = run_dfu({**os.environ}, "show", str(leak_run))
        assert proc.returncode == 0, proc.stderr
        assert "Dressing Grouped" in proc.stdout and "carried by treatment" in proc.stdout
        assert "underpowered: 3 folds in all" in proc.stdout
