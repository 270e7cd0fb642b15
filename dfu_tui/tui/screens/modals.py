"""Small modal screens: confirmation, error message, help."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Markdown, Static

HELP = """\
# dfu-tui keys

## Everywhere
| key | action |
|---|---|
| `?` | this help |
| `ctrl+p` | command palette: launch, open run, stop, export, report, screenshot, theme |
| `ctrl+s` | save an SVG screenshot of this screen into its run's directory |
| `escape` | back / close |
| `q` | quit, in the runs list (training goes on in the background); `ctrl+q` quits anywhere |

## Runs
| key | action |
|---|---|
| `n` | new run (launch form) |
| `enter` | open the selected run's monitor |
| `s` | stop the selected run (asks first) |
| `r` | resume the selected run |
| `e` | export the selected run to CSV in its directory |
| `p` | write the selected run's HTML report (report.html in its directory) |
| `c` | compare combinations and the fusion-weight curve (runs marked: side by side) |
| `space` | mark / unmark the selected run (`✓`) for a side-by-side comparison |
| `delete` | archive the selected run into `.trash` (asks first; never while it runs) |
| `t` | name and tag the selected run |
| `/` | filter runs (id, name, `#tag`, status, modality) |

Columns: `best` is the best combination's mean so far over finished folds on the
criteria's scale (`QWK` quadratic or `κ` unweighted, as the verdict), on the rows with
every modality of the combination, with its `n` (samples), `best of N` when picked from
N combinations, and its collapse flags (`C`) beside it; `flags` counts the configured
fusion's fold-level collapse (`C`) and warning (`W`) flags; `name`, `tags` and `config`
come from the launch (`dfu-tui tag` changes them).

## Launch
| key | action |
|---|---|
| `tab` / `shift+tab` | move between fields |
| `ctrl+l` | launch (when the form is valid) |

## Monitor
| key | action |
|---|---|
| `[` / `]` | previous / next fold in the prediction-distribution panel |
| `,` / `.` | previous / next epoch (shares on the early-stopping split and the plots of its task) |
| `l` | latest: follow the newest fold or epoch |
| `d` | fold detail of the shown fold |
| `f` | the metadata features the run uses, and what was left out and why |
| `c` | compare |
| `s` / `r` / `e` | stop / resume / export |
| `p` | write the run's HTML report (report.html in its directory) |

The plots: each fold's kappa on both scales with their means; the task's train and
early-stopping split kappa and loss (right axis) by epoch, early stopping's best epoch marked;
its predicted share of each class by epoch against the true shares (flat lines).

## Compare
| key | action |
|---|---|
| `enter` | show the fusion-weight curve of the selected combination |

With `fusion.compare`, the highlighted combination's fusion strategies are listed side by
side: each on its own rows (mean ± sd, n) and paired with the configured fusion on their
common rows (corrected 95% CI; `≈` not distinguishable), with its flags; each branch alone
follows, paired on the rows the verdict uses.

## Runs side by side
Each marked run's fused (or selected) combination on the criteria's scale with its n and
corrected CI, its collapse flags and verdict, and the config keys that differ. Paired
differences from the oldest run only where the folds are the same (same data, same
validation patients); otherwise "different folds: not paired".
"""


class ConfirmScreen(ModalScreen[bool]):
    """Yes / no."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question)
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class LabelsScreen(ModalScreen[tuple[str, str] | None]):
    """A run's name and tags (space-separated), edited; enter saves, escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, run_id: str, name: str, tags: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.name_text = name
        self.tags_text = tags

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"[b]Name and tags of {self.run_id}[/b] (enter saves, escape cancels)")
            yield Input(self.name_text, placeholder="name", id="labels-name")
            yield Input(self.tags_text, placeholder="tags, space-separated", id="labels-tags")

    def on_input_submitted(self) -> None:
        self.dismiss(
            (
                self.query_one("#labels-name", Input).value,
                self.query_one("#labels-tags", Input).value,
            )
        )

    def action_cancel(self) -> None:
        self.dismiss(None)


class MessageScreen(ModalScreen[None]):
    """An error or information message."""

    BINDINGS = [Binding("escape,enter", "close", "Close")]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"[b]{self.title_text}[/b]")
            with VerticalScroll(classes="message"):  # long messages scroll
                yield Static(self.message, markup=False, id="message")
            yield Button("Close", id="close")

    def on_button_pressed(self) -> None:
        self.dismiss()

    def action_close(self) -> None:
        self.dismiss()


def keys_here(title: str, bindings: dict[str, Any]) -> str:
    """A Markdown table of the keys that work on the screen under the help, built from its
    active bindings (Textual's `Screen.active_bindings`): what is listed is what works."""
    rows = []
    seen: set[tuple[str, str]] = set()
    for key, active in bindings.items():
        binding = active.binding
        if not binding.description:
            continue
        shown = binding.key_display or key
        if (binding.action, shown) in seen:
            continue
        seen.add((binding.action, shown))
        rows.append(f"| `{shown}` | {binding.description} |")
    table = "\n".join(["| key | action |", "|---|---|", *rows])
    return f"# Keys here: {title}\n\n{table}\n\n`ctrl+q` quits from any screen.\n\n"


class HelpScreen(ModalScreen[None]):
    """The keys of the screen under it (built from its bindings), then every screen's."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, here: str = "") -> None:
        super().__init__()
        self.here = here

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Markdown(self.here + HELP.replace("# dfu-tui keys", "# Every screen", 1))

    def action_close(self) -> None:
        self.dismiss()


class PreparingScreen(ModalScreen[None]):
    """What a launch is doing before its run exists: the demo dataset, the crops per
    modality with counts. Closed by the launch itself."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("[b]Preparing the run[/b] (one launch at a time)")
            yield Static("checking the config and the data…", id="preparing")

    def add(self, line: str) -> None:
        """One progress line; a newer count of the same step replaces the older one."""
        step = line.rsplit(" ", 1)[0] if "/" in line.rsplit(" ", 1)[-1] else line
        self.lines = [ln for ln in self.lines if not ln.startswith(step + " ")] + [line]
        self.query_one("#preparing", Static).update(escape("\n".join(self.lines[-8:])))


class FoldersOnly(DirectoryTree):
    """A DirectoryTree listing folders only (a dataset is a folder)."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        out = []
        for p in paths:
            with contextlib.suppress(OSError):
                if p.is_dir() and not p.name.startswith("."):
                    out.append(p)
        return out


class FolderScreen(ModalScreen[Path | None]):
    """Pick a dataset folder: arrows to move, enter to open or choose, escape to cancel."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("backspace", "up", "Parent folder"),
    ]

    def __init__(self, start: Path) -> None:
        super().__init__()
        self.start = start

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog folders"):
            yield Static(
                "[b]Dataset folder[/b]: space opens a folder, enter chooses it, "
                "backspace goes up, escape cancels"
            )
            yield FoldersOnly(self.start, id="folders")

    def on_mount(self) -> None:
        self.query_one("#folders", FoldersOnly).focus()

    @on(DirectoryTree.DirectorySelected)
    def _chosen(self, event: DirectoryTree.DirectorySelected) -> None:
        event.stop()
        self.dismiss(event.path)

    def action_up(self) -> None:
        tree = self.query_one("#folders", FoldersOnly)
        tree.path = Path(tree.path).resolve().parent

    def action_cancel(self) -> None:
        self.dismiss(None)
