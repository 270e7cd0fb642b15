"""The dfu-tui dashboard application."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rich.markup import escape
from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from dfu_tui.errors import InputError
from dfu_tui.runs.catalog import FIRST_SIGHT_SECONDS, CatalogUpdate, RunCatalog
from dfu_tui.runs.describe import ALWAYS, AWAY, ERROR, describe
from dfu_tui.runs.events import Event
from dfu_tui.runs.fitbeat import fit_state
from dfu_tui.tui import cli_client
from dfu_tui.tui.format import breakable
from dfu_tui.tui.messages import (
    ArchiveRun,
    CompareRuns,
    Context,
    ExportRun,
    FitRun,
    LabelRun,
    LaunchEnded,
    LaunchRun,
    OpenCompare,
    OpenFoldDetail,
    OpenRun,
    ReportRun,
    ResumeRun,
    RunsChanged,
    RunsUpdated,
    StopRun,
)
from dfu_tui.tui.screens.base import DfuScreen
from dfu_tui.tui.screens.compare import CompareScreen
from dfu_tui.tui.screens.detail import FoldDetailScreen
from dfu_tui.tui.screens.launch import LaunchScreen
from dfu_tui.tui.screens.modals import (
    ConfirmScreen,
    HelpScreen,
    LabelsScreen,
    MessageScreen,
    PreparingScreen,
    keys_here,
)
from dfu_tui.tui.screens.monitor import MonitorScreen
from dfu_tui.tui.screens.runs import RunsScreen

# At most four readings (and so redraws) a second, so slow SSH links are not flooded.
REFRESH_SECONDS = 0.25
# A run turns stale with the clock alone: the states are looked at this often (and whether
# the terminal is still there).
TICK_SECONDS = 1.0
# Python's cyclic garbage collector, while the dashboard runs: a collection of its oldest
# generation walked every object of the process (Textual's, Rich's, the runs read) and froze
# the UI thread 70-90 ms, in the middle of opening a screen. What is alive once the first
# screen is drawn lives as long as the dashboard: it is frozen (`gc.freeze`: never walked
# again; freed objects are still freed by reference counting), and collections are fewer.
GC_THRESHOLD = (10_000, 20, 20)


class QuietHeap:
    """`settle` freezes the objects alive now and spaces collections out; `restore` puts
    the collector back as it was (the tests run many dashboards in one process)."""

    def __init__(self) -> None:
        self._threshold: tuple[int, int, int] | None = None

    def settle(self) -> None:
        if self._threshold is None:
            self._threshold = gc.get_threshold()
            gc.set_threshold(*GC_THRESHOLD)
        gc.freeze()

    def restore(self) -> None:
        if self._threshold is not None:
            gc.unfreeze()
            gc.set_threshold(*self._threshold)
            self._threshold = None


def terminal_fd() -> int | None:
    """The descriptor of the terminal the dashboard reads its keys from, if it is one."""
    stdin = sys.__stdin__
    try:
        fd = stdin.fileno() if stdin is not None else -1
    except (OSError, ValueError):
        return None
    return fd if fd >= 0 and os.isatty(fd) else None


def identical_runs(runs: list[Path], config: Path, overrides: list[str]) -> list[Path]:
    """The runs whose saved settings equal a launch's (on a worker thread: it reads files)."""
    from dfu_tui.config import load_config
    from dfu_tui.runs.fingerprint import same_config_runs

    try:
        cfg = load_config(config, overrides)
    except (InputError, OSError):
        return []  # the launch itself says what is wrong
    return same_config_runs(runs, cfg)


class DfuApp(App[None]):
    """Runs list, launch form, run monitor, fold detail and compare over a runs directory.

    A watcher thread reads the runs directory; the UI thread applies what it read and tells
    the visible screen. Screens ask for actions with messages (`dfu_tui.tui.messages`).
    """

    CSS_PATH = "app.tcss"
    TITLE = "dfu-tui"
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("ctrl+s", "save_screenshot", "Screenshot", show=False),
    ]

    def __init__(
        self,
        runs_dir: Path,
        config: Path,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.config_path = config
        self.catalog = RunCatalog(runs_dir)
        self.context = Context(self.catalog, clock)  # the wall clock; tests fix it
        self.refresh_seconds = refresh_seconds
        self.loaded = False  # the runs found at start have been read
        self.launching = False  # one launch at a time: a second press starts nothing
        self._pending = CatalogUpdate()
        self._pending_lock = threading.Lock()
        self._stop_watching = threading.Event()
        self._watch_done = threading.Event()
        self._shown: dict[str, str] = {}  # run -> the status its rows last showed (`_tick`)
        # screens waiting for their runs' whole logs (`_when_whole`): runs, then what opens
        self._waiting: list[tuple[set[str], Callable[[], None]]] = []
        self.heap = QuietHeap()

    async def on_mount(self) -> None:
        # The runs as they are now, read on a thread (the UI thread never reads files), then
        # the first screen, then the watcher.
        self.catalog.apply(await asyncio.to_thread(self.catalog.read, FIRST_SIGHT_SECONDS))
        self.loaded = True
        self.push_screen(RunsScreen(self.context))
        self.call_after_refresh(self.heap.settle)  # once the first screen is drawn
        self._watch()
        self._terminal = None if self.is_headless else terminal_fd()
        self.set_interval(TICK_SECONDS, self._tick)

    def on_unmount(self) -> None:
        self._stop_watching.set()
        self.heap.restore()

    # -- live updates

    @work(thread=True, group="watch", description="watch the runs", exit_on_error=False)
    def _watch(self) -> None:
        """Read the runs directory every `refresh_seconds` (at most four times a second, so
        slow SSH links are not flooded) and poke the UI thread when something is new."""
        try:
            while not self._stop_watching.wait(self.refresh_seconds):
                update = self.catalog.read(FIRST_SIGHT_SECONDS)
                if update:
                    with self._pending_lock:
                        self._pending.merge(update)
                    self.post_message(RunsChanged())
        finally:
            self._watch_done.set()

    def _hung_up(self) -> None:
        """End as a SIGHUP would have ended us (Textual cannot put a terminal that is gone
        back as it was: its shutdown waits on writes that never finish), once the watcher
        thread has finished what it was reading or writing."""
        self._stop_watching.set()
        self._watch_done.wait(2.0)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGHUP)

    def on_runs_changed(self, message: RunsChanged) -> None:
        """Apply what the watcher read; notify flags and endings; tell the visible screen."""
        with self._pending_lock:
            update, self._pending = self._pending, CatalogUpdate()
        changed = self.catalog.apply(update)
        self._notify(self.catalog.new_events)  # runs found at start were shown, not notified
        self._tell(changed)
        ready = [w for w in self._waiting if all(self.catalog.whole(r) for r in w[0])]
        self._waiting = [w for w in self._waiting if w not in ready]
        # of screens asked for meanwhile, the last (a burst of keys opens one screen); none
        # over a question or the palette that came up meanwhile
        if ready and not isinstance(self.screen, ModalScreen):
            ready[-1][1]()

    def _when_whole(self, run_ids: set[str], then: Callable[[], None]) -> None:
        """Do `then` (open a screen) once these runs' whole logs are read: at once when they
        are, else after the watcher thread has read them (a finished run is listed from its
        digest; its screens need its folds and epochs)."""
        missing = {r for r in run_ids if not self.catalog.whole(r)}
        if not missing:
            then()
            return
        self.catalog.want(missing)
        self._waiting.append((set(run_ids), then))

    def _tell(self, changed: set[str]) -> None:
        """Tell the visible screen what changed; the screens under it catch up when shown."""
        if not changed:
            return
        for screen in self.screen_stack:
            if isinstance(screen, DfuScreen) and screen is not self.screen:
                screen.missed |= changed
        if self.screen.is_mounted:  # a screen being mounted reads every run then
            self.screen.post_message(RunsUpdated(changed))

    _terminal: int | None = None

    def _tick(self) -> None:
        """What changes with time alone: a run whose heartbeats stopped turns stale, though
        no event comes to say so (a running run's elapsed time moves with its heartbeats).
        And whether the terminal is still there."""
        if self._terminal is not None and not os.isatty(self._terminal):
            # Hung up (an SSH connection dropped, a tmux session killed) without a SIGHUP
            # reaching us (under `make run`, or a parent ignoring it): Textual would read its
            # end of file forever, half a core spinning on a shared server. Runs go on (they
            # are processes of their own).
            self._hung_up()
            return
        now = self.context.clock()
        changed = set()
        fitting = [r for r, d in self.catalog.docs.items() if d.fitting is not None]
        for run_id in dict.fromkeys([*self.catalog.live(), *fitting]):
            if run_id not in self.catalog.states:
                continue
            status = self.catalog.states[run_id].effective_status(now)
            fit = self.catalog.docs[run_id].fitting if run_id in fitting else None
            if fit is not None:  # a fit that stopped beating turns stale on screen too
                status += " " + fit_state(fit, now)["state"]
            if self._shown.get(run_id) != status:  # the first tick too: it may have changed
                changed.add(run_id)  # since the rows were drawn
            self._shown[run_id] = status
        self._tell(changed)

    def _notify(self, new_events: dict[str, list[Event]]) -> None:
        """A toast for each line of an event that asks for one (`Line.notice`): a collapse
        and a run's end for a user not watching the run, a failure for everyone."""
        for run_id, events in new_events.items():
            watching = isinstance(self.screen, MonitorScreen) and self.screen.run_id == run_id
            for e in events:
                for line in describe(e):
                    if line.notice == ALWAYS or (line.notice == AWAY and not watching):
                        self.notify(
                            f"{run_id} {line.plain()}",
                            severity="error" if line.tone == ERROR else "information",
                            timeout=8,
                        )

    # -- navigation

    def action_help(self) -> None:
        if not self._showing(HelpScreen):
            screen = self.screen
            title = screen.title or type(screen).__name__.removesuffix("Screen").lower()
            self.push_screen(HelpScreen(keys_here(str(title), dict(screen.active_bindings))))

    def action_launch(self) -> None:
        if not self._showing(LaunchScreen):
            self.push_screen(LaunchScreen(self.context, self.config_path))

    def _showing(self, kind: type, **attrs: object) -> bool:
        """Whether this screen is open already: the top one (a burst of keys opens it once),
        or one below (then the screens above it are closed, so it is on top again and the
        stack never holds two copies of a screen)."""

        def same(screen: object) -> bool:
            return isinstance(screen, kind) and all(
                getattr(screen, k, None) == v for k, v in attrs.items()
            )

        if same(self.screen):
            return True
        stack = self.screen_stack
        below = [i for i, screen in enumerate(stack) if same(screen)]
        if not below or any(isinstance(s, ModalScreen) for s in stack[below[-1] + 1 :]):
            return False
        for _ in range(len(stack) - 1 - below[-1]):
            self.pop_screen()
        return True

    def open_run(self, run_id: str) -> None:
        def then() -> None:
            if not self._showing(MonitorScreen, run_id=run_id):
                self.push_screen(MonitorScreen(self.context, run_id))

        if run_id in self.catalog.states:
            self._when_whole({run_id}, then)

    def open_fold_detail(self, run_id: str, fold: int) -> None:
        def then() -> None:
            if not self._showing(FoldDetailScreen, run_id=run_id, fold=fold):
                self.push_screen(FoldDetailScreen(self.context, run_id, fold))

        self._when_whole({run_id}, then)

    def open_compare(self, run_id: str) -> None:
        def then() -> None:
            if not self._showing(CompareScreen, run_id=run_id):
                self.push_screen(CompareScreen(self.context, run_id))

        if run_id in self.catalog.states:
            self._when_whole({run_id}, then)

    # -- what screens ask for

    def on_open_run(self, message: OpenRun) -> None:
        self.open_run(message.run_id)

    def on_open_fold_detail(self, message: OpenFoldDetail) -> None:
        self.open_fold_detail(message.run_id, message.fold)

    def on_open_compare(self, message: OpenCompare) -> None:
        self.open_compare(message.run_id)

    def on_compare_runs(self, message: CompareRuns) -> None:
        from dfu_tui.tui.screens.runs_compare import RunsCompareScreen

        known = [r for r in message.run_ids if r in self.catalog.states]
        if len(known) >= 2 and not self._showing(RunsCompareScreen, run_ids=known):
            self.push_screen(RunsCompareScreen(self.context, known))

    def on_label_run(self, message: LabelRun) -> None:
        run_id = message.run_id
        labels = self.catalog.documents(run_id).labels

        def answered(result: tuple[str, str] | None) -> None:
            if result is not None:
                name, text = result
                tags = [t.lstrip("#") for t in text.replace(",", " ").split()]
                add = [t for t in tags if t not in labels.tags]
                remove = [t for t in labels.tags if t not in tags]
                self._label(run_id, name, add, remove)

        if isinstance(self.screen, ModalScreen):
            return
        self.push_screen(LabelsScreen(run_id, labels.name, " ".join(labels.tags)), answered)

    @work(group="control", description="name and tag a run", exit_on_error=False)
    async def _label(self, run_id: str, name: str, add: list[str], remove: list[str]) -> None:
        result = await cli_client.tag(self.catalog.path(run_id), name, add, remove)
        if result.code != 0:
            raise RuntimeError(result.stderr.strip() or result.message)
        self.catalog.look([run_id])  # a finished run's labels are otherwise read every 2 s
        self.notify(result.stdout.strip() or f"labelled {run_id}")

    def on_archive_run(self, message: ArchiveRun) -> None:
        run_id = message.run_id
        state = self.catalog.states.get(run_id)
        if state is None:
            return
        if state.effective_status(self.context.clock()) == "running":
            self.notify(f"{run_id} is running: stop it before archiving", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._archive(run_id)

        if isinstance(self.screen, ModalScreen):
            return  # a question is open: answer it first
        self.push_screen(
            ConfirmScreen(
                f"Archive run {run_id}? It moves to {self.runs_dir / '.trash'}; "
                f"dfu-tui restore {run_id} brings it back."
            ),
            answered,
        )

    @work(group="control", description="archive a run", exit_on_error=False)
    async def _archive(self, run_id: str) -> None:
        result = await cli_client.archive(self.catalog.path(run_id))
        if result.code != 0:
            raise RuntimeError(result.stderr.strip() or result.message)
        self.notify(f"archived {run_id} (dfu-tui restore {run_id} brings it back)")

    def on_stop_run(self, message: StopRun) -> None:
        self.confirm_stop(message.run_id)

    def on_resume_run(self, message: ResumeRun) -> None:
        self._resume(message.run_id)

    def on_export_run(self, message: ExportRun) -> None:
        self._export(message.run_id)

    def on_report_run(self, message: ReportRun) -> None:
        self._report(message.run_id)

    def on_fit_run(self, message: FitRun) -> None:
        state = self.catalog.states.get(message.run_id)
        if state is None or state.effective_status(self.context.clock()) != "completed":
            self.notify("A final model is fitted from a completed run", severity="warning")
            return
        self._fit(message.run_id)

    def on_launch_run(self, message: LaunchRun) -> None:
        if not self.start_run(message.config, message.overrides, message.jobs, message.labels):
            self._launch_ended()

    def _selected_run(self, screen: Screen | None = None) -> str | None:
        """The run a screen is about (the highlighted one in the runs list); `screen`: the
        one the command palette was opened from (while it is open, `self.screen` is the
        palette itself)."""
        screen = self.screen if screen is None else screen
        return screen.target_run() if isinstance(screen, DfuScreen) else None

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        # Textual's own "Screenshot" saves into the working directory: ours replaces it
        yield from (c for c in super().get_system_commands(screen) if c.title != "Screenshot")
        yield SystemCommand("Launch", "Open the launch form for a new run", self.action_launch)
        run_id = self._selected_run(screen)
        if run_id:
            yield SystemCommand(
                "Open run", f"Open the monitor of {run_id}", lambda: self.open_run(run_id)
            )
            yield SystemCommand("Stop run", f"Stop {run_id}", lambda: self.confirm_stop(run_id))
            yield SystemCommand(
                "Export run", f"Export {run_id} to CSV", lambda: self._export(run_id)
            )
            yield SystemCommand(
                "Report", f"Write the HTML report of {run_id}", lambda: self._report(run_id)
            )
            yield SystemCommand(
                "Fit model",
                f"Train {run_id}'s combination on every patient: a model with its card (M)",
                lambda: self.on_fit_run(FitRun(run_id)),
            )
        yield SystemCommand(
            "Screenshot",
            "Save an SVG screenshot of this screen into its run's directory (ctrl+s)",
            self.action_save_screenshot,
        )

    def screenshot_folder(self) -> Path:
        """Where a screenshot of the current screen goes: its run's directory, else the
        runs directory (runs list, launch form)."""
        run_id = getattr(self.screen, "run_id", None)
        if isinstance(run_id, str) and run_id in self.catalog.states:
            return self.catalog.path(run_id)
        return self.runs_dir

    def action_save_screenshot(self) -> None:
        """An SVG of the current screen, private like every run file, named in a notification."""
        from dfu_tui.paths import atomic_write_text

        folder = self.screenshot_folder()
        name = type(self.screen).__name__.removesuffix("Screen").lower() or "screen"
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.context.clock()))
        path = folder / f"screenshot-{name}-{stamp}.svg"
        n = 1
        while path.exists():
            n += 1
            path = folder / f"screenshot-{name}-{stamp}-{n}.svg"
        try:
            atomic_write_text(path, self.export_screenshot())
        except OSError as exc:
            self.notify(
                f"{breakable(path)}: cannot save the screenshot ({exc.strerror})", severity="error"
            )
            return
        self.notify(f"Screenshot saved: {breakable(path)}")

    # -- actions through the command line (never training in this process)

    def start_run(
        self, config: Path, overrides: list[str], jobs: int, labels: list[str] | None = None
    ) -> bool:
        """Launch one run for a form state; False when nothing was started (a launch is
        already under way). A form identical to an earlier run asks first (`_launch`)."""
        if self.launching:
            self.notify("A run is being prepared; wait for it", severity="warning")
            return False
        self.launching = True
        self._launch(config, overrides, jobs, labels or [])
        return True

    async def _ask_identical(self, config: Path, overrides: list[str]) -> bool:
        """True to go on: no earlier run has these settings, or the user wants another."""
        paths = {self.catalog.path(r): r for r in self.catalog.ids()}  # newest first
        found = await asyncio.to_thread(identical_runs, list(paths), config, overrides)
        same = [paths[p] for p in found]
        if not same:
            return True
        latest = same[0]
        state = self.catalog.states.get(latest)
        facts = [self.catalog.documents(latest).labels.name]
        facts.append(state.effective_status(self.context.clock()) if state is not None else "")
        named = ", ".join(f for f in facts if f)
        named = f" ({escape(named)})" if named else ""
        more = f" and {len(same) - 1} more" if len(same) > 1 else ""
        question = (
            f"Run {latest}{named}{more} already has exactly these settings (data as it was "
            "then). Launch another run of them anyway?"
        )
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.push_screen(ConfirmScreen(question), lambda yes: answer.set_result(bool(yes)))
        return await answer

    @work(group="launch", description="launch a run", exit_on_error=False)
    async def _launch(
        self, config: Path, overrides: list[str], jobs: int, labels: list[str]
    ) -> None:
        try:
            go_on = await self._ask_identical(config, overrides)
        except BaseException:
            self.launching = False
            self._launch_ended()
            raise
        if not go_on:
            self.launching = False
            self._launch_ended()
            return
        self.push_screen(PreparingScreen())

        def progress(line: str) -> None:
            if isinstance(self.screen, PreparingScreen):
                self.screen.add(line)

        try:
            result = await cli_client.launch(
                config, overrides, self.runs_dir, jobs, progress, labels
            )
            if result.code == 0:  # the run is open once the watcher has read it
                run_id = result.stdout.strip().splitlines()[-1]
                for _ in range(200):
                    if run_id in self.catalog.states:
                        break
                    await asyncio.sleep(self.refresh_seconds / 4)
        finally:
            self.launching = False
            if isinstance(self.screen, PreparingScreen):
                self.pop_screen()
            self._launch_ended()
        if result.code != 0:
            raise RuntimeError(result.stderr.strip() or result.message)
        if isinstance(self.screen, LaunchScreen):
            self.pop_screen()
        self.open_run(run_id)

    def _launch_ended(self) -> None:
        if isinstance(self.screen, LaunchScreen):
            self.screen.post_message(LaunchEnded())

    def confirm_stop(self, run_id: str) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self._stop(run_id)

        if isinstance(self.screen, ModalScreen):
            return  # a question is open: answer it first
        self.push_screen(ConfirmScreen(f"Stop run {run_id}?"), answered)

    @work(group="control", description="stop a run", exit_on_error=False)
    async def _stop(self, run_id: str) -> None:
        result = await cli_client.stop(self.catalog.path(run_id))
        if result.code != 0:
            raise RuntimeError(result.message)
        self.notify(result.message)

    @work(group="control", description="resume a run", exit_on_error=False)
    async def _resume(self, run_id: str) -> None:
        result = await cli_client.resume(self.catalog.path(run_id))
        if result.code != 0:
            raise RuntimeError(result.stderr.strip() or result.message)
        self.notify(f"resumed {run_id}")

    @work(group="control", description="export a run", exit_on_error=False)
    async def _export(self, run_id: str) -> None:
        target = self.catalog.run(run_id).export
        result = await cli_client.export(self.catalog.path(run_id), target)
        if result.code != 0:
            raise RuntimeError(result.message)
        self.notify(f"exported to {breakable(target)}")

    @work(group="control", description="fit the final model", exit_on_error=False)
    async def _fit(self, run_id: str) -> None:
        result = await cli_client.fit(self.catalog.path(run_id))
        if result.code != 0:
            raise RuntimeError(result.message)
        self.notify(
            f"Fitting the final model of {run_id} in the background into "
            f"{breakable(self.catalog.path(run_id) / 'model')} (its card: MODEL_CARD.md)"
        )

    @work(group="control", description="write the report", exit_on_error=False)
    async def _report(self, run_id: str) -> None:
        target = self.catalog.run(run_id).report
        self.notify(f"Writing the report of {run_id}…")
        result = await cli_client.report(self.catalog.path(run_id), target)
        if result.code != 0:
            raise RuntimeError(result.message)
        self.notify(f"Report written: {breakable(target)}")

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
