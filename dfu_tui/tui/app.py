"""The dfu-tui dashboard application."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rich.markup import escape
from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from dfu_tui.config import Config, load_config
from dfu_tui.errors import InputError
from dfu_tui.runs.catalog import RunCatalog
from dfu_tui.tui import commands
from dfu_tui.tui.screens.compare import CompareScreen
from dfu_tui.tui.screens.detail import FoldDetailScreen
from dfu_tui.tui.screens.launch import LaunchScreen
from dfu_tui.tui.screens.modals import ConfirmScreen, HelpScreen, MessageScreen, PreparingScreen
from dfu_tui.tui.screens.monitor import MonitorScreen
from dfu_tui.tui.screens.runs import RunsScreen

# At most four refreshes a second, so slow SSH links are not flooded.
REFRESH_SECONDS = 0.25


class DfuApp(App[None]):
    """Runs list, launch form, run monitor, fold detail and compare over a runs directory."""

    CSS_PATH = "app.tcss"
    TITLE = "dfu-tui"
    BINDINGS = [Binding("question_mark", "help", "Help", show=False, key_display="?")]

    def __init__(
        self,
        runs_dir: Path,
        config: Path,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.clock = clock  # the wall clock; tests fix it for stable screenshots
        self.runs_dir = runs_dir
        self.config_path = config
        self.catalog = RunCatalog(runs_dir)
        self.refresh_seconds = refresh_seconds
        self._configs: dict[str, Config | None] = {}
        self._notified_ready = False
        self.launching = False  # one launch at a time: a second press starts nothing
        self.launched: dict[tuple[str, tuple[str, ...]], str] = {}  # form state -> run id

    def on_mount(self) -> None:
        self.catalog.refresh()  # history: shown, not notified
        self.push_screen(RunsScreen())
        self.set_interval(self.refresh_seconds, self.poll_runs)

    # -- live updates

    def poll_runs(self) -> None:
        """Read new events of every run; notify flags and endings; update the visible screen."""
        changed = self.catalog.refresh()
        if not changed:
            return
        for run_id, events in self.catalog.new_events.items():
            watching = isinstance(self.screen, MonitorScreen) and self.screen.run_id == run_id
            for e in events:
                if (
                    e["kind"] == "flag"
                    and e.get("scope") == "fold"
                    and e["level"] == "collapse"
                    and not watching
                ):
                    self.notify(
                        f"{run_id} fold {e['fold']}: COLLAPSE {e['rule']}: {e['detail']}",
                        severity="error",
                        timeout=8,
                    )
                elif e["kind"] == "run_failed":
                    self.notify(f"{run_id} failed: {e.get('reason', '')}", severity="error")
                elif e["kind"] == "run_finished" and not watching:
                    self.notify(f"{run_id} completed")
        tick = getattr(self.screen, "tick", None)
        if tick is not None:
            tick(changed)

    def config_for(self, run_id: str) -> Config | None:
        """The resolved config saved in a run directory (cached)."""
        if run_id not in self._configs:
            try:
                self._configs[run_id] = load_config(self.catalog.path(run_id) / "config.toml")
            except InputError:
                self._configs[run_id] = None
        return self._configs[run_id]

    def mean_task_seconds(self) -> float | None:
        """Mean duration of the tasks of earlier runs, for the launch preview."""
        durations = [s for r in self.catalog.ids() for s in self.catalog.state(r).done.values()]
        return sum(durations) / len(durations) if durations else None

    # -- navigation

    def action_help(self) -> None:
        if not self._showing(HelpScreen):
            self.push_screen(HelpScreen())

    def action_launch(self) -> None:
        if not self._showing(LaunchScreen):
            self.push_screen(LaunchScreen(self.config_path))

    def _showing(self, kind: type, **attrs: object) -> bool:
        """Whether the top screen already is this one (a burst of keys opens it once)."""
        screen = self.screen
        return isinstance(screen, kind) and all(
            getattr(screen, k, None) == v for k, v in attrs.items()
        )

    def open_run(self, run_id: str) -> None:
        if not self._showing(MonitorScreen, run_id=run_id):
            self.push_screen(MonitorScreen(run_id))

    def open_fold_detail(self, run_id: str, fold: int) -> None:
        if not self._showing(FoldDetailScreen, run_id=run_id, fold=fold):
            self.push_screen(FoldDetailScreen(run_id, fold))

    def open_compare(self, run_id: str) -> None:
        if not self._showing(CompareScreen, run_id=run_id):
            self.push_screen(CompareScreen(run_id))

    def _selected_run(self) -> str | None:
        screen = self.screen
        if isinstance(screen, MonitorScreen | CompareScreen | FoldDetailScreen):
            return screen.run_id
        if isinstance(screen, RunsScreen):
            return screen.selected_run()
        return None

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Launch", "Open the launch form for a new run", self.action_launch)
        run_id = self._selected_run()
        if run_id:
            yield SystemCommand(
                "Open run", f"Open the monitor of {run_id}", lambda: self.open_run(run_id)
            )
            yield SystemCommand("Stop run", f"Stop {run_id}", lambda: self.confirm_stop(run_id))
            yield SystemCommand(
                "Export run", f"Export {run_id} to CSV", lambda: self.export_run(run_id)
            )
        yield SystemCommand(
            "Screenshot",
            "Save an SVG screenshot in the current directory",
            lambda: self.notify(f"saved {self.save_screenshot()}"),
        )

    # -- actions through the command line (never training in this process)

    def start_run(self, config: Path, overrides: list[str], jobs: int) -> bool:
        """Launch one run for a form state; False when nothing was started: a launch is
        already under way, or this very form state was launched before (its run opens)."""
        key = (str(config), tuple(overrides))
        if self.launching:
            self.notify("A run is being prepared; wait for it", severity="warning")
            return False
        earlier = self.launched.get(key)
        if earlier is not None and earlier in self.catalog.ids():
            self.notify(f"This form was launched as {escape(earlier)}; opening it")
            if isinstance(self.screen, LaunchScreen):
                self.pop_screen()
            self.open_run(earlier)
            return False
        self.launching = True
        self.push_screen(PreparingScreen())
        self._launch(config, overrides, jobs, key)
        return True

    @work(group="launch", description="launch a run", exit_on_error=False)
    async def _launch(
        self, config: Path, overrides: list[str], jobs: int, key: tuple[str, tuple[str, ...]]
    ) -> None:
        def progress(line: str) -> None:
            if isinstance(self.screen, PreparingScreen):
                self.screen.add(line)

        try:
            result = await commands.launch(config, overrides, self.runs_dir, jobs, progress)
        finally:
            self.launching = False
            if isinstance(self.screen, PreparingScreen):
                self.pop_screen()
            if isinstance(self.screen, LaunchScreen):
                self.screen.launch_finished()
        if result.code != 0:
            raise RuntimeError(result.stderr.strip() or result.message)
        run_id = result.stdout.strip().splitlines()[-1]
        self.launched[key] = run_id
        self.catalog.refresh()
        if isinstance(self.screen, LaunchScreen):
            self.pop_screen()
        self.open_run(run_id)

    def confirm_stop(self, run_id: str) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self._stop(run_id)

        self.push_screen(ConfirmScreen(f"Stop run {run_id}?"), answered)

    @work(group="control", description="stop a run", exit_on_error=False)
    async def _stop(self, run_id: str) -> None:
        result = await commands.stop(self.catalog.path(run_id))
        if result.code != 0:
            raise RuntimeError(result.message)
        self.notify(result.message)

    def resume_run(self, run_id: str) -> None:
        self._resume(run_id)

    @work(group="control", description="resume a run", exit_on_error=False)
    async def _resume(self, run_id: str) -> None:
        result = await commands.resume(self.catalog.path(run_id))
        if result.code != 0:
            raise RuntimeError(result.stderr.strip() or result.message)
        self.notify(f"resumed {run_id}")

    def export_run(self, run_id: str) -> None:
        self._export(run_id)

    @work(group="control", description="export a run", exit_on_error=False)
    async def _export(self, run_id: str) -> None:
        target = self.catalog.path(run_id) / "export.csv"
        result = await commands.export(self.catalog.path(run_id), target)
        if result.code != 0:
            raise RuntimeError(result.message)
        self.notify(f"exported to {target}")

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        """Every background action's error ends up in one modal."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.push_screen(
                MessageScreen(f"Could not {event.worker.description}", str(event.worker.error))
            )


def run_dashboard(runs_dir: Path, config: Path, headless: bool = False) -> int:
    """Open the dashboard; returns when the user quits: 0, or 1 when the dashboard crashed
    (its runs are separate processes and are left untouched)."""
    app = DfuApp(runs_dir, config)
    app.run(headless=headless)
    return 0 if app.return_code in (None, 0) else 1
