"""`dfu-tui report`: one self-contained HTML file from the committed fixture runs (completed,
cancelled) and from runs cut out of them (running, failed), opened in a real headless
Chromium that must render every figure without a single network request."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_dfu
from tests.tui.conftest import CANCELLED, COMPLETED, FIXTURES

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def fold_events(run: Path) -> list[dict[str, Any]]:
    lines = (run / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def cut(source: Path, target: Path, keep: int, ending: dict[str, Any] | None = None) -> Path:
    """A copy of a fixture run whose log stops after `keep` events (no summary): a run still
    going, or, with `ending`, one that ended there."""
    shutil.copytree(source, target)
    (target / "summary.json").unlink()
    lines = (source / "events.jsonl").read_text().splitlines()[:keep]
    if ending is not None:
        ts = json.loads(lines[-1])["ts"] + 1
        lines.append(json.dumps({"v": 1, "ts": ts, **ending}))
    (target / "events.jsonl").write_text("\n".join(lines) + "\n")
    return target


def second_fold_half_done(runs: Path, ending: dict[str, Any] | None = None) -> Path:
    """The completed fixture cut in the middle of fold 2's depth_rgb epochs."""
    events = fold_events(FIXTURES / COMPLETED)
    first = next(i for i, e in enumerate(events) if e["kind"] == "fold_finished")
    middle = next(
        i
        for i, e in enumerate(events)
        if i > first and e["kind"] == "epoch" and e["task"] == "fold2-depth_rgb"
    )
    name = "failed" if ending else "running"
    return cut(FIXTURES / COMPLETED, runs / f"20261128-000000-{name}", middle + 2, ending)


def report(
    run: Path, output: Path | None = None, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], Path]:
    target = output or run / "report.html"
    args = ["report", str(run), "--output", str(target)]
    return run_dfu(env or dict(os.environ), *args, timeout=120), target


def text_of(page: str) -> str:
    return re.sub(r"<[^>]+>", " ", page)


def with_bins(run: Path, bins: Callable[[int], list[list[float]]]) -> Path:
    """`run` with reliability bins `bins(fold)` in each finished fold's scores (the fixture
    runs were logged before the reliability diagram)."""
    lines = []
    for line in (run / "events.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["kind"] == "fold_finished":
            for m in [*e["combinations"], *e["branches"].values()]:
                m["reliability"], m["brier"] = bins(e["fold"]), 0.5
        lines.append(json.dumps(e))
    (run / "events.jsonl").write_text("\n".join(lines) + "\n")
    return run


def fold_bins(fold: int) -> list[list[float]]:
    """Fold 1: 10 predictions of confidence 0.6, 5 right; fold 2: 30 of 0.7, 27 right."""
    return [[0.5, 0.75, 10, 0.6, 0.5]] if fold == 1 else [[0.5, 0.75, 30, 0.7, 0.9]]


def damaged(run: Path) -> Path:
    """Two damaged lines in the log: a torn write and garbage."""
    lines = (run / "events.jsonl").read_text().splitlines()
    lines[5] = lines[5][: len(lines[5]) // 2]
    lines.insert(9, "\x00\x00garbage")
    (run / "events.jsonl").write_text("\n".join(lines) + "\n")
    return run


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Reports of the completed, cancelled, running and failed runs (written once). The
    running one has fold 1's reliability bins and the failed one two damaged log lines; the
    completed one's process is a new interpreter that lists what it imported (`imports`)."""
    runs = tmp_path_factory.mktemp("runs")
    shutil.copytree(FIXTURES / COMPLETED, runs / COMPLETED)
    shutil.copytree(FIXTURES / CANCELLED, runs / CANCELLED)
    sources = {
        "completed": runs / COMPLETED,
        "cancelled": runs / CANCELLED,
        "running": with_bins(second_fold_half_done(runs), fold_bins),
        "failed": damaged(
            second_fold_half_done(
                runs, {"kind": "run_failed", "reason": "fold2-depth_rgb: worker killed (signal 9)"}
            )
        ),
    }
    out = {}
    for name, run in sources.items():
        # the completed run's report in a new interpreter that prints every module it imports
        env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"} if name == "completed" else None
        result, path = report(run, env=env)
        assert result.returncode == 0, result.stderr
        assert f"wrote {path}" in result.stderr
        out[name] = path
        if env is not None:
            imports(path).write_text(result.stderr)
    return out


def imports(report: Path) -> Path:
    """Where the `reports` fixture keeps the import list of a report's process."""
    return report.with_name("imports.txt")


# one worker runs every test that reads the module's reports: they are written once
REPORTS = pytest.mark.xdist_group("reports")


@REPORTS
class TestReportContents:
    def test_completed_holds_every_fold_kappa_and_section(self, reports: dict[str, Path]) -> None:
        page = reports["completed"].read_text()
        text = text_of(page)
        summary = json.loads((FIXTURES / COMPLETED / "summary.json").read_text())
        for combination in summary["combinations"]:
            for fold in combination["folds"]:
                assert f"{fold['kappa']:.3f}" in text
                assert f"{fold['quadratic_kappa']:.3f}" in text
        for heading in (
            "Verdict",
            "Per fold",
            "Combinations",
            "Confusion and per-class F1",
            "Fusion weight",
            "Image branches by epoch",
            "Collapse flags",
            "Features: what carries the metadata branch",
            "Data and configuration",
            "Resources",
            "Software",
        ):
            assert f"<h2>{heading}</h2>" in page
        # each flag named with its rule and numbers, not only a dot on the timeline
        from dfu_tui.runs.state import load_state

        state = load_state(FIXTURES / COMPLETED)
        first = state.flags[0]
        assert f"<td>{first['rule']}</td>" in page and first["detail"].split()[0] in text
        assert "Partial report" not in text
        # a run logged before the clinical scores: said, not invented
        assert "Sensitivity, specificity, ROC AUC and calibration: not in this run" in text
        assert "fd16e4628f4545e8" in text  # the dataset fingerprint
        for package in ("Python", "tensorflow", "scikit-learn", "dfu-tui"):
            assert f"<td>{package}</td>" in page
        assert "unweighted kappa" in text and "quadratic" in text
        # every figure: fold points, confusion (pooled and per fold), F1, curve, 2 per image
        # branch, flag timeline
        assert len(re.findall(r'<img [^>]*src="data:image/svg\+xml;base64,', page)) == 10
        assert 'data-figure="fold-confusion"' in page

    def test_each_fold_confusion_is_drawn(self, reports: dict[str, Path]) -> None:
        """The fold detail's matrix for every validation fold: its title and exactly the
        counts of the fused combination's confusion on that fold, nothing else."""
        import base64
        import html

        from dfu_tui.runs.figures import cv_folds, fused_index
        from dfu_tui.runs.state import load_state

        page = reports["completed"].read_text()
        found = re.search(r'<figure data-figure="fold-confusion"><img [^>]*base64,([^"]+)"', page)
        assert found is not None
        svg = base64.b64decode(found[1]).decode("utf-8")
        texts = [html.unescape(t).strip() for t in re.findall(r"<text[^>]*>([^<]*)<", svg)]
        state = load_state(FIXTURES / COMPLETED)
        index = fused_index(state.combinations)
        folds = cv_folds(state)
        assert len(folds) == 2
        counts = []
        for f in folds:
            assert state.fold_name(int(f["fold"])) in texts
            counts += [int(v) for row in f["combinations"][index]["confusion"] for v in row]
        assert sorted(int(t) for t in texts if t.isdigit()) == sorted(counts)

    def test_self_contained_and_private(self, reports: dict[str, Path]) -> None:
        for path in reports.values():
            page = path.read_text()
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert "<script" not in page and "<link" not in page
            assert not re.search(r"""(src|href)=["'](?!data:)""", page)
            assert "http://" not in page and "https://" not in page
            assert "default-src 'none'" in page  # the page itself forbids fetching anything

    def test_partial_runs_are_marked(self, reports: dict[str, Path]) -> None:
        running = text_of(reports["running"].read_text())
        assert "Partial report" in running and "1 of 2 folds finished" in running
        assert "Verdict so far (1 of 2 folds)" in running
        failed = text_of(reports["failed"].read_text())
        assert "Partial report" in failed and "failed" in failed
        assert "worker killed (signal 9)" in failed
        cancelled = text_of(reports["cancelled"].read_text())
        assert "Partial report" in cancelled and "cancelled" in cancelled

    def test_no_training_stack_imported(self, reports: dict[str, Path]) -> None:
        """`-X importtime`'s list of the report's own process: no TensorFlow, Keras,
        scikit-learn or Textual."""
        rows = [r.split("|") for r in imports(reports["completed"]).read_text().splitlines()]
        modules = {r[2].strip() for r in rows if len(r) == 3 and r[0].startswith("import time")}
        assert "matplotlib" in modules and "dfu_tui.report.build" in modules  # it is the list
        assert not {"tensorflow", "keras", "sklearn", "textual"} & modules

    def test_damaged_lines_are_skipped_and_said(self, reports: dict[str, Path]) -> None:
        failed = text_of(reports["failed"].read_text())
        assert "2 damaged line(s) of the event log were skipped" in failed
        assert "damaged line" not in text_of(reports["running"].read_text())


class TestReportBadInput:
    @pytest.mark.parametrize(
        "case",
        ["unknown run", "output folder missing", "output is a folder", "not started", "damaged"],
    )
    def test_one_line_exit_2_nothing_written(self, tmp_path: Path, case: str) -> None:
        runs = tmp_path / "runs"
        runs.mkdir()
        run = runs / COMPLETED
        shutil.copytree(FIXTURES / COMPLETED, run)
        target = run / "report.html"
        args = ["report", COMPLETED, "--runs-dir", str(runs)]
        if case == "unknown run":
            args[1] = "20990101-nope"
        elif case == "output folder missing":
            target = tmp_path / "missing" / "r.html"
            args += ["--output", str(target)]
        elif case == "output is a folder":
            target = tmp_path
            args += ["--output", str(tmp_path)]
        elif case == "not started":  # an empty log
            (run / "events.jsonl").write_text("")
        else:  # every line damaged: no run_started to read
            (run / "events.jsonl").write_bytes(b"\x00\xff garbage\n{not json\n")
        result = run_dfu(dict(os.environ), *args, timeout=120)
        assert result.returncode == 2, result.stderr
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "Traceback" not in result.stderr
        assert COMPLETED[:8] in lines[0] or str(target) in lines[0] or "20990101" in lines[0]
        if target != tmp_path:
            assert not target.exists()
        assert not list(run.glob("*.tmp*"))


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("DFU_TUI_REQUIRE_BROWSER"),
    reason="no Chromium: install Debian's package (`apt-get install chromium`) to open the "
    "report in a headless browser",
)
@REPORTS
class TestReportInBrowser:
    def test_every_figure_renders_without_network(self, reports: dict[str, Path]) -> None:
        from playwright.sync_api import sync_playwright

        assert CHROMIUM is not None, "DFU_TUI_REQUIRE_BROWSER is set but Chromium is missing"
        summary = json.loads((FIXTURES / COMPLETED / "summary.json").read_text())
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--no-first-run",
                ],
            )
            try:
                for name, path in reports.items():
                    page = browser.new_page()
                    requests: list[str] = []

                    def record(request: Any, seen: list[str] = requests) -> None:
                        seen.append(request.url)

                    page.on("request", record)
                    page.goto(path.as_uri(), wait_until="load")
                    images = page.eval_on_selector_all(
                        "figure img",
                        "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])",
                    )
                    assert images, f"{name}: no figure"
                    for complete, width, height in images:
                        assert complete and width > 100 and height > 50, (name, images)
                    # data: images are no requests; the page's own file is the only one
                    assert [u for u in requests if not u.startswith("data:")] == [path.as_uri()]
                    if name == "completed":
                        text = page.inner_text("body")
                        for fold in summary["combinations"][-1]["folds"]:
                            assert f"{fold['kappa']:.3f}" in text
                        # it prints to A4: nothing wider than the page, A4 pages
                        page.emulate_media(media="print")
                        page.set_viewport_size({"width": 718, "height": 1000})  # A4 less margins
                        wide = page.evaluate("document.documentElement.scrollWidth")
                        assert wide <= 718, f"the printed page is {wide} px wide"
                        pdf = page.pdf(format="A4", print_background=True)
                        assert pdf.startswith(b"%PDF") and b"/MediaBox [0 0 595" in pdf
                    page.close()
            finally:
                browser.close()


def test_the_clinical_table_averages_each_class_over_the_folds() -> None:
    """Sensitivity, specificity, ROC AUC and Brier of the fused combination and each branch,
    the mean over the validation folds, with the samples they rest on."""
    import numpy as np

    from dfu_tui.engine.metrics import clinical_scores
    from dfu_tui.report import clinical_table
    from dfu_tui.runs.state import load_state

    state = load_state(FIXTURES / COMPLETED)
    rng = np.random.default_rng(0)
    briers: list[float] = []
    for fold in state.fold_results:
        for m in [*fold["combinations"], *fold["branches"].values()]:
            y = rng.integers(0, 3, 40)
            clinical = clinical_scores(y, rng.dirichlet([1, 1, 1], 40))
            m.update(clinical)
            if m is fold["combinations"][-1] and clinical["brier"] is not None:
                briers.append(clinical["brier"])
    html = clinical_table(state, len(state.combinations) - 1)
    assert "<h2>Sensitivity, specificity, discrimination and calibration</h2>" in html
    assert f"{sum(briers) / len(briers):.3f}" in html
    assert html.count("<tr>") >= 3 * (1 + len(state.fold_results[0]["branches"]))


@REPORTS
def test_the_reliability_diagram_pools_the_folds_bin_by_bin(
    tmp_path: Path, reports: dict[str, Path]
) -> None:
    """Each bin's point is the n-weighted mean confidence and accuracy over the folds, for
    the fused combination and each branch; the diagonal is drawn; the report embeds it."""
    from dfu_tui.report.plots import reliability_figure
    from dfu_tui.runs.state import load_state

    run = with_bins(shutil.copytree(FIXTURES / COMPLETED, tmp_path / COMPLETED), fold_bins)
    state = load_state(run)
    index = len(state.combinations) - 1
    figure = reliability_figure(state, index)
    assert figure is not None
    assert figure.series[0].label == "perfect calibration"
    fused = figure.series[1]
    assert fused.label == "+".join(state.combinations[index])
    (x,), (y,) = fused.x, fused.y
    assert abs(x - (10 * 0.6 + 30 * 0.7) / 40) < 1e-9 and abs(y - (10 * 0.5 + 30 * 0.9) / 40) < 1e-9
    assert any(s.label.endswith(" alone") for s in figure.series)
    # the report embeds it where the log has bins (the running run: fold 1's), not elsewhere
    assert 'data-figure="reliability"' in reports["running"].read_text()
    assert 'data-figure="reliability"' not in reports["completed"].read_text()
    assert reliability_figure(load_state(FIXTURES / COMPLETED), index) is None  # not logged
