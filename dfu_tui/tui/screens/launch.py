"""The launch form: data, modalities, search, fusion and weights with live validation, CV and
model settings, a task preview, and Launch (a detached run, then its monitor)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, Header, Input, Label, Select, Static, Switch

from dfu_tui.config import (
    BACKBONES,
    FUSION_STRATEGIES,
    FUSIONS,
    Config,
    load_config,
    read_toml,
)
from dfu_tui.data.schema import GROUP_HELP, MODALITIES
from dfu_tui.engine.plan import branches_of, plan_tasks, total_folds
from dfu_tui.engine.records import CASEMIX_FOLDS
from dfu_tui.errors import InputError
from dfu_tui.runs.resources import default_jobs
from dfu_tui.text import plural
from dfu_tui.tui.messages import Context, LaunchEnded, LaunchRun, RunsUpdated
from dfu_tui.tui.screens.base import DfuScreen
from dfu_tui.tui.widgets import Footer, Tick

# Feature groups offered as "leave out" switches, and as the paired comparison.
FORM_GROUPS = ("treatment", "timing", "identity")
COMPARE_GROUPS = ("treatment", "timing", "identity", "history")


def form_overrides(values: dict[str, object]) -> list[str]:
    """`section.key=value` overrides for the form's values."""
    use = [m for m in MODALITIES if values.get(f"use-{m}")]
    weights = ", ".join(f"{m} = {values.get(f'weight-{m}')}" for m in use)
    root = str(values["root"]).replace("'", "")
    return [
        f"data.root='{root}'",
        "modalities.use=[" + ", ".join(f"'{m}'" for m in use) + "]",
        f"modalities.search={'true' if values['search'] else 'false'}",
        f"fusion.strategy='{values['strategy']}'",
        "fusion.weights={" + weights + "}",
        f"cv.folds={values['folds']}",
        f"cv.repeats={values.get('repeats') or 1}",
        f"cv.seed={values['seed']}",
        f"image_model.epochs={values['epochs']}",
        f"data.image_size={values['size']}",
        f"image_model.backbone='{values['backbone']}'",
        f"executor.kind='{values.get('executor') or 'local'}'",
        *(
            [f"executor.address={json.dumps(values.get('ray-address') or '')}"]
            if values.get("executor") == "ray"
            else []
        ),
        "features.exclude=" + toml_list(_excluded(values)),
        f"features.history={'true' if values.get('history') else 'false'}",
        f"features.compare='{values.get('compare') or ''}'",
        "fusion.compare=" + compare_list(values),
    ]


def compare_list(values: dict[str, object]) -> str:
    """`fusion.compare` as TOML: the config's own list when the switch is on and the config
    has one, else every strategy; nothing when the switch is off."""
    if not values.get("compare-strategies"):
        return "[]"
    items = values.get("compare-other") or list(FUSION_STRATEGIES)
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            out.append("{" + ", ".join(f"{k} = {float(v)!r}" for k, v in item.items()) + "}")
        else:
            out.append(json.dumps(str(item)))
    return "[" + ", ".join(out) + "]"


def label_arguments(values: dict[str, object]) -> list[str]:
    """`--name` and `--tag` arguments for the form's name and tags (tags split on spaces and
    commas, a leading # dropped)."""
    out = []
    name = str(values.get("run-name") or "").strip()
    if name:
        out += ["--name", name]
    for tag in str(values.get("run-tags") or "").replace(",", " ").split():
        out += ["--tag", tag.lstrip("#")]
    return out


def label_problems(values: dict[str, object]) -> list[str]:
    """What is wrong with the form's name and tags, as the command line would say it."""
    from dfu_tui.runs.labels import check_name, check_tag

    problems = []
    args = label_arguments(values)
    for flag, value in zip(args[::2], args[1::2], strict=True):
        try:
            (check_name if flag == "--name" else check_tag)(value)
        except InputError as exc:
            problems += exc.problems
    return problems


def toml_list(items: list[str]) -> str:
    """A TOML array of strings."""
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def _excluded(values: dict[str, object]) -> list[str]:
    """The config's own exclusions the form has no switch for, then the switched-on groups."""
    other = values.get("exclude-other")
    kept = [str(x) for x in other] if isinstance(other, list) else []
    return kept + [g for g in FORM_GROUPS if values.get(f"exclude-{g}")]


class LaunchScreen(DfuScreen):
    """New run. The config files are read on a worker thread when the form opens; the form
    is filled (`ready`) once they are, and validated from memory on every change."""

    AUTO_FOCUS = "#config"  # the form opens with its first field focused, visibly
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("ctrl+l", "launch", "Launch"),
        Binding("ctrl+o", "pick_folder", "Pick folder"),
    ]

    def __init__(self, context: Context, config: Path) -> None:
        super().__init__(context)
        self.config_path = config
        self.valid: Config | None = None
        self.exclude_other: list[str] = []
        self.compare_other: list[str | dict[str, float]] = []  # the config's fusion.compare
        self.counted_root = ""
        self.image_counts: dict[str, int] | None = None
        self.raw: dict[str, dict[str, Any] | InputError] = {}  # config file -> its TOML
        self.ready = False

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="launch-form"):
            yield Label("Start from")
            yield Select(
                [(self.config_path.name, str(self.config_path))],
                value=str(self.config_path),
                allow_blank=False,
                id="config",
            )
            yield Label("Data source (demo, or a dataset folder; ctrl+o to pick one)")
            yield Input(id="root")
            yield Static("", id="data-note")
            yield Label("Modalities and fusion weights")
            for m in MODALITIES:
                with Horizontal(classes="modality"):
                    yield Tick(m, id=f"use-{m}", compact=True)
                    yield Input(
                        id=f"weight-{m}", classes="weight", placeholder="weight", compact=True
                    )
                    yield Static("", id=f"images-{m}", classes="images")
            with Horizontal(classes="row"):
                yield Switch(id="search")
                yield Static("search every combination of the chosen modalities", id="search-label")
            with Horizontal(classes="row"):
                yield Switch(id="compare-strategies")
                yield Static(
                    "also score every other fusion strategy on the same branch predictions",
                    id="compare-strategies-label",
                )
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Fusion strategy")
                    yield Select(
                        [(s, s) for s in FUSION_STRATEGIES], allow_blank=False, id="strategy"
                    )
                with Vertical():
                    yield Label("Backbone")
                    yield Select([(b, b) for b in BACKBONES], allow_blank=False, id="backbone")
                with Vertical():
                    yield Label("Runs on")
                    yield Select(
                        [("this machine", "local"), ("Ray cluster", "ray")],
                        allow_blank=False,
                        id="executor",
                    )
            with Vertical(id="ray-row"):  # shown for Ray only
                yield Label("Ray address (empty: a new local instance)")
                yield Input(id="ray-address", placeholder="auto, host:port or ray://host:10001")
            yield Label("Metadata features: leave out")
            with Horizontal(classes="row features"):
                for g in FORM_GROUPS:
                    yield Tick(g, id=f"exclude-{g}", tooltip=GROUP_HELP[g])
                yield Tick("add visit history", id="history", tooltip=GROUP_HELP["history"])
            with Horizontal(classes="row"), Vertical():
                yield Label("Compare with and without (paired, same folds)")
                yield Select(
                    [("no comparison", ""), *((g, g) for g in COMPARE_GROUPS)],
                    allow_blank=False,
                    id="compare",
                )
            with Horizontal(classes="row numbers"):
                for key, label in (
                    ("folds", "Folds"),
                    ("repeats", "Repeats"),
                    ("epochs", "Epochs"),
                    ("size", "Image px"),
                    ("seed", "Seed"),
                    ("jobs", "Jobs"),
                ):
                    with Vertical():
                        yield Label(label)
                        yield Input(id=key, type="integer")
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Run name (optional)")
                    yield Input(id="run-name", placeholder="e.g. fixed vs learned alpha")
                with Vertical():
                    yield Label("Tags (space-separated)")
                    yield Input(id="run-tags", placeholder="e.g. ablation v2")
            yield Static(id="preview")
            yield Static(id="errors")
            yield Button("Launch (ctrl+l)", id="launch", variant="primary", disabled=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "new run"
        self._read_configs()

    @work(thread=True, exit_on_error=False)
    def _read_configs(self) -> None:
        """Every config beside the starting one, read as TOML (a file that cannot be read
        keeps its one-line error, shown when it is chosen)."""
        paths = sorted(self.config_path.parent.glob("*.toml")) or [self.config_path]
        raw: dict[str, dict[str, Any] | InputError] = {}
        for path in paths:
            try:
                raw[str(path)] = read_toml(path)
            except InputError as exc:
                raw[str(path)] = exc
        self.app.call_from_thread(self._configs_read, raw)

    def _configs_read(self, raw: dict[str, dict[str, Any] | InputError]) -> None:
        self.raw, self.ready = raw, True
        select = self.query_one("#config", Select)
        with select.prevent(Select.Changed):
            select.set_options([(Path(p).name, p) for p in raw])
            select.value = str(self.config_path)
        self.load_from(self.config_path)

    def _config(self, path: Path, overrides: list[str] | None = None) -> Config:
        """A config file (as read when the form opened) with the form's overrides."""
        raw = self.raw.get(str(path))
        if isinstance(raw, InputError):
            raise raw
        if raw is None:
            raise InputError(f"{path}: config not read")
        return load_config(path, overrides or [], raw=raw)

    # -- filling and reading the form

    def load_from(self, path: Path) -> None:
        try:
            cfg = self._config(path)
        except InputError as exc:
            self.query_one("#errors", Static).update("\n".join(exc.problems))
            return
        self.query_one("#root", Input).value = cfg.data.root
        weights = cfg.fusion_weights()
        for m in MODALITIES:
            self.query_one(f"#use-{m}", Checkbox).value = m in cfg.modalities.use
            self.query_one(f"#weight-{m}", Input).value = f"{weights.get(m, 0.0):.2f}"
        self.query_one("#search", Switch).value = cfg.modalities.search
        self.query_one("#strategy", Select).value = cfg.fusion.strategy
        self.compare_other = list(cfg.fusion.compare)
        self.query_one("#compare-strategies", Switch).value = bool(cfg.fusion.compare)
        backbone = self.query_one("#backbone", Select)
        if cfg.image_model.backbone not in BACKBONES:  # registered by code (the tests' stand-in)
            backbone.set_options([(b, b) for b in (*BACKBONES, cfg.image_model.backbone)])
        backbone.value = cfg.image_model.backbone
        self.query_one("#executor", Select).value = cfg.executor.kind
        self.query_one("#ray-address", Input).value = cfg.executor.address
        self._show_ray(cfg.executor.kind)
        for g in FORM_GROUPS:
            self.query_one(f"#exclude-{g}", Checkbox).value = g in cfg.features.exclude
        self.exclude_other = [x for x in cfg.features.exclude if x not in FORM_GROUPS]
        self.query_one("#history", Checkbox).value = cfg.features.history
        compare = cfg.features.compare if cfg.features.compare in COMPARE_GROUPS else ""
        self.query_one("#compare", Select).value = compare
        numbers = {
            "folds": cfg.cv.folds,
            "repeats": cfg.cv.repeats,
            "epochs": cfg.image_model.epochs,
            "size": cfg.data.image_size,
            "seed": cfg.cv.seed,
            "jobs": default_jobs(),  # the command line's default
        }
        for key, value in numbers.items():
            self.query_one(f"#{key}", Input).value = str(value)
        self.validate_form()

    def values(self) -> dict[str, object]:
        out: dict[str, object] = {"root": self.query_one("#root", Input).value.strip() or "demo"}
        for m in MODALITIES:
            out[f"use-{m}"] = self.query_one(f"#use-{m}", Checkbox).value
            out[f"weight-{m}"] = self.query_one(f"#weight-{m}", Input).value.strip() or "0"
        out["search"] = self.query_one("#search", Switch).value
        out["strategy"] = self.query_one("#strategy", Select).value
        out["compare-strategies"] = self.query_one("#compare-strategies", Switch).value
        out["compare-other"] = self.compare_other
        out["backbone"] = self.query_one("#backbone", Select).value
        out["executor"] = self.query_one("#executor", Select).value
        out["ray-address"] = self.query_one("#ray-address", Input).value.strip()
        for g in FORM_GROUPS:
            out[f"exclude-{g}"] = self.query_one(f"#exclude-{g}", Checkbox).value
        out["exclude-other"] = self.exclude_other
        out["history"] = self.query_one("#history", Checkbox).value
        out["compare"] = self.query_one("#compare", Select).value
        for key in ("folds", "repeats", "epochs", "size", "seed", "jobs"):
            out[key] = self.query_one(f"#{key}", Input).value.strip() or "0"
        out["run-name"] = self.query_one("#run-name", Input).value
        out["run-tags"] = self.query_one("#run-tags", Input).value
        return out

    def validate_form(self) -> None:
        """Check the form through the config loader; show problems inline; gate Launch."""
        if not self.ready:
            return
        values = self.values()
        problems: list[str] = []
        for m in MODALITIES:
            self.query_one(f"#weight-{m}", Input).disabled = not values[f"use-{m}"]
            if values[f"use-{m}"]:
                try:
                    float(str(values[f"weight-{m}"]))
                except ValueError:
                    problems.append(f"weight of {m}: not a number")
        self.valid = None
        if not problems:
            try:
                self.valid = self._config(
                    Path(str(self.query_one("#config", Select).value)), form_overrides(values)
                )
            except InputError as exc:
                problems = [p.split(": ", 1)[1] if ": " in p else p for p in exc.problems]
        if str(values["jobs"]) in ("", "0") or not str(values["jobs"]).isdigit():
            problems.append("jobs: must be >= 1")
        problems += label_problems(values)
        errors = self.query_one("#errors", Static)
        errors.update("\n".join(f"[$error]✘ {p}[/]" for p in problems))
        self.query_one("#launch", Button).disabled = bool(problems)
        self._preview(values)

    def _preview(self, values: dict[str, object]) -> None:
        chosen = [m for m in MODALITIES if values[f"use-{m}"]]
        n = len(chosen)
        held = ""
        if self.valid is not None:  # the engine's own plan: what the supervisor will run
            cfg = self.valid
            combos, folds = len(cfg.combinations), total_folds(cfg)
            branches = branches_of(cfg)
            extra = len(branches) - n
            tasks = len(plan_tasks(cfg))
            if cfg.cv.strategy == "temporal":
                held = f", with the temporal hold-out and its {CASEMIX_FOLDS} case-mix folds"
        else:  # an estimate from the form while it does not make a valid config
            combos = (2**n - 1) if values["search"] else (1 if n else 0)
            folds = int(str(values["folds"])) if str(values["folds"]).isdigit() else 0
            repeats = str(values.get("repeats", "1"))
            folds *= int(repeats) if repeats.isdigit() else 1
            extra = 1 if values.get("compare") and values.get("use-metadata") else 0
            tasks = (n + extra) * folds
        self.query_one("#search-label", Static).update(
            f"search every combination of the chosen modalities ({2**n - 1 if n else 0})"
        )
        text = (
            f"{plural(combos, 'combination')} x {plural(folds, 'fold')}{held} = {tasks} tasks "
            f"({n + extra} branches per fold"
            + (f", one of them metadata without {values['compare']}" if extra else "")
            + ")"
        )
        if self.valid is not None and len(self.valid.fusion_variants()) > 1:
            variants = self.valid.fusion_variants()
            text += f"; {len(variants)} fusions scored on the same predictions"
            oof = sorted({v.strategy for v in variants if FUSIONS[v.strategy].needs_oof})
            if oof:
                text += f" (each branch also trains on inner folds, for {' / '.join(oof)})"
        per_task = self.context.catalog.mean_task_seconds()
        jobs = int(str(values["jobs"])) if str(values["jobs"]).isdigit() else 1
        if per_task is not None and tasks:
            from dfu_tui.tui.format import duration

            text += f"; about {duration(per_task * tasks / max(1, jobs))} from earlier runs"
        self.query_one("#preview", Static).update(text)

    @on(Input.Changed)
    @on(Checkbox.Changed)
    @on(Switch.Changed)
    def _changed(self) -> None:
        self.validate_form()

    def on_runs_updated(self, message: RunsUpdated) -> None:
        """The estimate from earlier runs follows the runs as they are read (at start, the
        form may open before the runs directory has been read) and as they finish tasks."""
        if self.ready:
            self._preview(self.values())

    def action_pick_folder(self) -> None:
        from dfu_tui.tui.screens.modals import FolderScreen

        current = self.query_one("#root", Input).value.strip()
        start = Path(current).expanduser() if current and current != "demo" else Path.cwd()
        if not start.is_dir():
            start = Path.cwd()

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.query_one("#root", Input).value = str(path)

        self.app.push_screen(FolderScreen(start), chosen)

    @on(Input.Changed, "#root")
    def _root_changed(self) -> None:
        root = self.query_one("#root", Input).value.strip() or "demo"
        if root != self.counted_root:
            self.counted_root = root
            self.set_timer(0.4, lambda: self._count_images(root))  # after typing settles

    @work(thread=True, exclusive=True, group="image-counts", exit_on_error=False)
    def _count_images(self, root: str) -> None:
        """Samples with images per modality for the chosen data, beside each modality."""
        from dfu_tui.data.dataset import image_counts

        if root != self.counted_root:
            return  # typing went on
        try:
            cfg = load_config(self.config_path, [f"data.root={json.dumps(root)}"])
            found = image_counts(cfg.dataset)
        except (InputError, OSError, ValueError) as exc:
            message = exc.problems[0] if isinstance(exc, InputError) else str(exc)
            # the folder came from the form, not from the config file: no file name before it
            message = message.removeprefix(f"{self.config_path}: ")
            self.app.call_from_thread(self._show_counts, root, None, 0, message)
            return
        if found is None:  # the demo before its first launch: counted once it exists
            message = (
                f"the demo dataset ({cfg.demo.patients} patients) is generated at the first "
                "launch; its image counts show here after that"
            )
            self.app.call_from_thread(self._show_counts, root, None, 0, message, False)
            return
        total, counts = found
        self.app.call_from_thread(self._show_counts, root, counts, total, "")

    def _show_counts(
        self,
        root: str,
        counts: dict[str, int] | None,
        total: int,
        message: str,
        problem: bool = True,
    ) -> None:
        if root != self.counted_root:
            return
        self.image_counts = counts
        for m in MODALITIES:
            box = self.query_one(f"#images-{m}", Static)
            if counts is None:
                box.update("")
            elif m == "metadata":
                box.update(f"{total} samples")
            else:
                box.update(f"{counts.get(m, 0)} / {total} with images")
        note = self.query_one("#data-note", Static)
        note.update(escape(message))
        note.set_class(problem, "-problem")

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "config":
            self.load_from(Path(str(event.value)))
            return
        if event.select.id == "executor":
            self._show_ray(str(event.value))
        self.validate_form()

    def _show_ray(self, kind: str) -> None:
        self.query_one("#ray-row").display = kind == "ray"

    @on(Button.Pressed, "#launch")
    def _pressed(self) -> None:
        self.action_launch()

    def action_launch(self) -> None:
        self.validate_form()
        if self.valid is None:
            self.notify("Fix the form first", severity="warning")
            return
        values = self.values()
        button = self.query_one("#launch", Button)
        if button.disabled:
            return
        button.disabled = True
        button.label = "Launching…"
        self.post_message(
            LaunchRun(
                Path(str(self.query_one("#config", Select).value)),
                form_overrides(values),
                int(str(values["jobs"])),
                label_arguments(values),
            )
        )

    def on_launch_ended(self, message: LaunchEnded) -> None:
        """The launch ended (started, refused or failed): the button is usable again."""
        button = self.query_one("#launch", Button)
        button.label = "Launch (ctrl+l)"
        self.validate_form()
