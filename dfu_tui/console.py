"""Headless console output of a run: Rich progress on a terminal, plain lines otherwise."""

from __future__ import annotations

import math
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from dfu_tui.config import Config
from dfu_tui.data.schema import CLASSES
from dfu_tui.engine.caveats import holdout_text, selection_text
from dfu_tui.engine.paired import collapse_findings
from dfu_tui.engine.rules import (
    SCALE_NAMES,
    caveat_texts,
    criterion_mark,
    criterion_value,
    verdict_headline,
)
from dfu_tui.runs.describe import describe
from dfu_tui.runs.events import Event
from dfu_tui.runs.rundir import RunDir


def weights_line(weights: dict[str, float]) -> str:
    """`Fusion weights: metadata=0.70, thermal_map=0.30`, every modality named."""
    return "Fusion weights: " + ", ".join(f"{m}={w:.2f}" for m, w in weights.items())


class RunConsole:
    """Listens to a run's events and prints them: a progress display on a terminal, else one
    plain line per epoch and per fold (no carriage returns)."""

    def __init__(self, console: Console, cfg: Config, run: RunDir) -> None:
        self.console = console
        self.cfg = cfg
        self.run = run
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not self.live,
        )
        self._tasks: TaskID | None = None
        self._epochs: TaskID | None = None

    def __enter__(self) -> RunConsole:
        self.print(f"Run {self.run.run_id} in {self.run.path}")
        self.print(weights_line(self.cfg.fusion_weights()) + f" ({self.cfg.fusion.strategy})")
        if self.cfg.modalities.search:
            self.print(
                f"Searching {len(self.cfg.combinations)} combinations; weights are "
                "renormalised over each combination's modalities"
            )
        self.progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.stop()

    def print(self, text: str) -> None:
        target = self.progress.console if self.live else self.console
        target.print(text, markup=False, highlight=False, soft_wrap=True)

    def on_event(self, event: Event) -> None:
        """Progress bars follow tasks and epochs; every line an event says is printed
        (`runs.describe`), but epoch lines on a terminal, where the bar shows them."""
        kind = event["kind"]
        if kind == "run_started" and self.live:
            self._tasks = self.progress.add_task("tasks", total=len(event["tasks"]))
        elif kind == "task_started" and self.live:
            if self._epochs is not None:
                self.progress.remove_task(self._epochs)
                self._epochs = None
            if not event["branch"].startswith("metadata"):
                self._epochs = self.progress.add_task(
                    f"fold {event['fold']} {event['branch']}", total=self.cfg.image_model.epochs
                )
        elif kind == "epoch" and self._epochs is not None:
            self.progress.update(self._epochs, completed=event["epoch"])
        elif kind == "branch_finished" and self._tasks is not None:
            self.progress.advance(self._tasks)
        if kind == "epoch" and self.live:
            return
        for line in describe(event):
            self.print(line.plain())

    def final_table(self, summary: dict[str, Any]) -> None:
        """One row per combination and per branch alone, then each combination's verdict."""
        cv = self.cfg.cv
        repeats = f" x {cv.repeats} repeats" if cv.repeats > 1 else ""
        n_folds = len(summary["combinations"][0]["folds"])
        table = Table(
            title=f"Run {summary['run_id']}: {cv.folds}-fold patient-level CV{repeats}, "
            f"mean ± sample sd over {n_folds} folds, all samples (verdicts use the same-row "
            "scores below)",
            title_justify="left",
        )
        for col in (
            "modalities",
            "n",
            "kappa (unweighted)",
            "quadratic kappa",
            "accuracy",
            "macro F1",
            "predicted I/P/R",
            "flags",
        ):
            table.add_column(col)

        def row(
            name: str, mean: dict[str, float], std: dict[str, float], folds: list[dict[str, Any]]
        ) -> None:
            shares = [sum(f["predicted_share"][c] for f in folds) / len(folds) for c in CLASSES]
            flags = [f for fold in folds for f in fold["flags"]]
            collapse = sum(f["level"] == "collapse" for f in flags)
            table.add_row(
                name,
                str(sum(int(f.get("n") or 0) for f in folds)),
                plus_minus(mean["kappa"], std["kappa"]),
                plus_minus(mean["quadratic_kappa"], std["quadratic_kappa"]),
                f"{mean['accuracy']:.3f}",
                f"{mean['macro_f1']:.3f}",
                "/".join(f"{s:.2f}" for s in shares),
                f"{collapse} collapse / {len(flags) - collapse} warning" if flags else "-",
            )

        for c in summary["combinations"]:
            row("+".join(c["modalities"]), c["mean"], c["std"], c["folds"])
        if len(summary["combinations"]) > 1 or len(summary["combinations"][0]["modalities"]) > 1:
            for b in summary["branches"]:
                row(f"{b['branch']} alone", b["mean"], b["std"], b["folds"])
        self.console.print(table)
        for c in summary["combinations"]:
            for line in judgement_lines(c):
                self.print(line)
        self.print(
            "Tiers: minimum, expected and ideal success; what each tests and where its "
            "thresholds come from: docs/criteria.md"
        )
        for c in summary["combinations"]:
            if c.get("strategies"):
                self.console.print(strategy_table("+".join(c["modalities"]), c["strategies"]))
        selected = summary.get("selection")
        if selected:
            chosen = next(
                c for c in summary["combinations"] if c["modalities"] == selected["selected"]
            )
            findings = collapse_findings(chosen["folds"])
            self.print(
                selection_text(selected)
                + (f"; it collapsed in {len(findings)} fold(s)" if findings else "")
            )
        holdout = summary.get("holdout")
        if holdout:
            for r in holdout["combinations"]:
                self.print(f"Temporal hold-out: {holdout_text(holdout['metric'], holdout, r)}")
        self._features(summary)
        self.print(f"Results: {self.run.results}  Summary: {self.run.summary}")

    def _features(self, summary: dict[str, Any]) -> None:
        """The radar's top features over folds, its flags, and the paired group comparison."""
        radar = summary.get("radar")
        if radar:
            top = "; ".join(
                f"{r['feature']} {r['importance']:+.3f}"
                + (f" [{', '.join(r['groups'])}]" if r["groups"] else "")
                for r in radar["features"][:5]
            )
            self.print(
                f"Top metadata features (kappa drop when shuffled, mean of {radar['folds']} "
                f"validation folds): {top}"
            )
            for f in radar["flags"]:
                self.print(f"fold {f['fold']} {f['level'].upper()} {f['rule']}: {f['detail']}")
        comparison = summary.get("feature_comparison")
        if comparison:
            seeds = comparison.get("forest_seeds", 1)
            if seeds > 1:
                self.print(
                    f"Without {comparison['group']}: each side's forest averaged over {seeds} "
                    "seeds (radar.forest_seeds), so the difference measures the columns"
                )
            for row in comparison["rows"]:
                for scale in ("kappa", "quadratic_kappa"):
                    k = row[scale]
                    low, high = k["ci95"]
                    corrected = "corrected " if k.get("correction") == "nadeau-bengio" else ""
                    self.print(
                        f"Without {comparison['group']}: {'+'.join(row['modalities'])} {scale} "
                        f"{k['mean_with']:.3f} with, {k['mean_without']:.3f} without, "
                        f"difference {k['mean_difference']:+.3f} ± {k['sd_difference']:.3f} sd "
                        f"over {k['folds']} folds ({corrected}"
                        f"95% CI {low:+.3f} to {high:+.3f}"
                        f"{'' if k['distinguishable'] else ', not distinguishable from 0'}"
                        + (
                            f", detects >= {k['mdd']:.3f} at {k['power']:.0%} power"
                            if k.get("mdd") is not None and not math.isnan(k["mdd"])
                            else ""
                        )
                        + f"; {comparison['samples']} validation samples)"
                    )


def strategy_table(name: str, strategies: dict[str, Any]) -> Table:
    """Every fusion of one combination on the same branch predictions (`runs.strategies`)."""
    from dfu_tui.runs import strategies as st

    table = Table(title=st.title(name, strategies), title_justify="left")
    for col in st.columns(strategies):
        table.add_column(col)
    for r in strategies["rows"]:
        table.add_row(*st.cells(r, strategies["metric"]))
    return table


def plus_minus(mean: float | None, sd: float | None) -> str:
    """`0.231 ± 0.045`; one fold has no sd."""
    if mean is None:
        return "-"
    return f"{mean:.3f}" if sd is None else f"{mean:.3f} ± {sd:.3f}"


def judgement_lines(c: dict[str, Any]) -> list[str]:
    """A combination's verdict with its scale, its paired rows, and its per-repeat means."""
    v = c["verdict"]
    scale = SCALE_NAMES[v.get("metric", "kappa")]
    name = "+".join(c["modalities"])
    details = "; ".join(
        f"{criterion_mark(cr)} {cr['name']} ({criterion_value(cr)})" for cr in v["criteria"]
    )
    lines = [f"Verdict {name} on {scale}: {verdict_headline(v)} ({details})"]
    lines += [f"  caveat: {text}" for text in caveat_texts(v)]
    paired = c.get("paired")
    if paired:
        n = paired["n"]
        alone = ", ".join(
            f"{b} alone {plus_minus(m['mean'], m['sd'])}" for b, m in paired["branches"].items()
        )
        lines.append(
            f"  same rows ({sum(n)} samples with every modality over {len(n)} folds), {scale}: "
            f"{name} {plus_minus(paired['fused']['mean'], paired['fused']['sd'])}; {alone}"
        )
    repeats = c.get("repeats") or []
    if len(repeats) > 1:
        key = v.get("metric", "kappa")
        lines.append(
            f"  per repeat ({scale}, same rows): "
            + ", ".join(
                f"repeat {r['repeat']} {(r.get('paired') or r)[key]:.3f} ({r['folds']} folds)"
                for r in repeats
            )
        )
    return lines
