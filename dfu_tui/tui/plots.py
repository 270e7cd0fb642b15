"""Plots in the terminal: a `Figure` (dfu_tui.runs.figures) drawn with plotext through
Textual's own wrapper (`textual-plotext`), in colour-blind-safe colours with a glyph per
series (nothing is told by colour alone), with its legend as a
line of text under the plot (readable at 80 columns, where plotext's legend would cover the
lines). A plot is drawn again only when its figure changed."""

from __future__ import annotations

import math
from collections.abc import Iterable

from rich.text import Text
from textual import on
from textual.app import ComposeResult, RenderResult
from textual.color import Color
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from dfu_tui.runs.figures import Figure, Heatmap, Series
from dfu_tui.tui.widgets import update_text

# Colour-blind-safe colours (Okabe-Ito) the series take, in order of first appearance; a
# collapse and a warning keep theirs. Each series group also gets its own glyph (points,
# bar fill), so no meaning is carried by colour alone (a 16-colour or monochrome terminal).
PALETTE = ("#56B4E9", "#E69F00", "#009E73", "#CC79A7", "#F0E442", "#0072B2")
LEVEL_COLOURS = {"collapse": "#D55E00", "warning": "#E69F00"}
GLYPHS = ("●", "▲", "■", "◆", "★", "✚")
# the same glyphs hollow: a reference line (a mean, a branch alone) is not a data point
HOLLOW = dict(zip(GLYPHS, ("○", "△", "□", "◇", "☆", "✛"), strict=True))
FILLS = ("█", "▓", "▒", "░", "▞", "▚")
DRAW_ORDER = ("bar", "band", "hline", "vline", "line", "scatter")
# the most points of one line that get their glyph drawn (more would hide the line)
MOST_MARKED = 12
# seconds between the frame that shows a plot's place and the build of its drawing
BUILD_DELAY = 0.02


class FigurePlot(PlotextPlot):
    """A plotext plot of one `Figure`, held in `figure` (what tests read)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.figure: Figure | None = None
        self._key = ""
        self.colours: dict[str, tuple[int, int, int]] = {}
        self.glyphs: dict[str, str] = {}
        self.draws = 0  # how many times the figure was drawn (a new figure), for benchmarks
        self._rendered: tuple[object, RenderResult] | None = None
        self._title = ""
        self._building = False

    def render(self) -> RenderResult:
        """plotext's text of the figure, built again only when the figure, the size or
        the theme changed (a scroll or a repaint reuses it); nothing before the first figure
        (an empty canvas costs as much to build as a full one). A drawing not built yet is
        built just after this frame, and the plot repainted alone: building two plots took
        25-35 ms of the frame that lays out a whole screen (the monitor opening); until
        then the frame shows the last drawing, or nothing."""
        if self.figure is None:
            return Text("")
        if self._rendered is not None and self._drawn():
            return self._rendered[1]
        if not self._building:
            self._building = True
            # a moment later, each plot on its own: the frame is painted and other events
            # are handled between the builds
            self.set_timer(BUILD_DELAY, self._build, name="draw plot")
        return self._rendered[1] if self._rendered is not None else Text("")

    @property
    def pending(self) -> bool:
        """A drawing this plot showed a frame without is waiting to be built (a plot out of
        view is not drawn until it comes into view)."""
        return self._building

    def _drawn(self) -> bool:
        return self.figure is None or (
            self._rendered is not None and self._rendered[0] == self._drawing_key()
        )

    def drawing(self) -> RenderResult:
        """The figure's drawing at the plot's size, built now if it is not (what `render`
        shows once built)."""
        self._build()
        return self.render()

    def _drawing_key(self) -> object:
        return (self._key, self.size, self.app.theme)

    def _build(self) -> None:
        self._building = False
        if self.figure is None or self._drawn():
            return
        self._rendered = (self._drawing_key(), self._render_titled())
        self.refresh()

    def _render_titled(self) -> RenderResult:
        """plotext leaves out a title wider than the plot's frame: shortened to the frame
        (ending in "…"), it stays, so a narrow terminal still says what the plot shows."""
        title = self._title
        self.plt.title(title)
        text = super().render()
        plain = text.plain if isinstance(text, Text) else ""
        if not title or title in plain:
            return text
        frame = next((line for line in plain.splitlines() if "┌" in line), "")
        width = len(frame.strip())
        if width < 2:
            return text
        self.plt.title(title[: width - 1] + "…" if len(title) > width else title)
        return super().render()

    def on_mount(self) -> None:
        # (Textual runs PlotextPlot.on_mount too: handlers are dispatched along the MRO)
        self.app.theme_changed_signal.subscribe(self, lambda _: self._recolour())

    def _recolour(self) -> None:
        """A new theme: the series take its colours."""
        self.colours.clear()
        self.glyphs.clear()
        self._rendered = None
        if self.figure is not None:
            self._draw(self.figure)
            self.refresh()
            self.post_message(FigurePlot.Recoloured())

    class Recoloured(Message):
        """The plot took the new theme's colours (its legend follows)."""

    def show(self, figure: Figure) -> bool:
        """Draw `figure` unless it is the one already shown; True when it was drawn."""
        key = repr(figure)  # NaN-safe equality
        if key == self._key:
            return False
        self.figure, self._key = figure, key
        self.draws += 1
        self._draw(figure)
        self.refresh()
        return True

    def colour(self, s: Series) -> tuple[int, int, int]:
        """The series' colour: its group's (or its own label's), colour-blind safe."""
        name = s.group or s.label
        if name not in self.colours:
            index = len(self.colours)
            self.colours[name] = Color.parse(
                LEVEL_COLOURS.get(name) or PALETTE[index % len(PALETTE)]
            ).rgb
            self.glyphs[name] = GLYPHS[index % len(GLYPHS)]
        return self.colours[name]

    def glyph(self, s: Series) -> str:
        """The series' glyph (its group's): its points, and the fill of its bars."""
        self.colour(s)
        glyph = self.glyphs[s.group or s.label]
        if s.kind == "bar":
            return FILLS[GLYPHS.index(glyph) % len(FILLS)]
        if s.kind in ("hline", "vline"):
            return HOLLOW[glyph]
        return glyph

    def _draw(self, f: Figure) -> None:
        plt = self.plt
        plt.clear_figure()
        self._title = f.title if not f.empty else f"{f.title}: {f.empty}"
        plt.title(self._title)
        if f.empty:
            return
        for s in f.series:  # colours in the figure's order (the legend's), not drawing order
            self.colour(s)
        plt.xlabel(f.xlabel)
        plt.ylabel(f.ylabel, "left")  # the second argument is plotext's yside (its stub says xside)
        if f.ylabel_right:
            plt.ylabel(f.ylabel_right, "right")
        xs = [x for s in f.series for x in s.x if not math.isnan(x)]
        ys = [
            y for s in f.series if s.side == "left" for y in (*s.y, *s.upper) if not math.isnan(y)
        ]
        x_range = f.xlim or _span(xs + [t for t, _ in f.xticks])
        y_range = f.ylim or _span(ys)
        bars = [s for s in f.series if s.kind == "bar"]
        # grouped bars side by side around each x, with a gap (plotext's multiple_bar
        # overlaps them beyond two series)
        width = 0.8 / max(1, len(bars))
        for j, s in enumerate(bars):
            shift = (j - (len(bars) - 1) / 2) * width
            plt.bar(
                [x + shift for x in s.x],
                list(s.y),
                width=0.7 * width,
                color=self.colour(s),
                marker=self.glyph(s),
            )
        if bars:
            x_range = (x_range[0] - 0.5, x_range[1] + 0.5)
        # reference lines first, points last: nothing covers a fold's point or the best one
        for s in sorted(f.series, key=lambda s: DRAW_ORDER.index(s.kind)):
            self._series(s, x_range, y_range)
        if f.xticks:
            plt.xticks([t for t, _ in f.xticks], [label for _, label in f.xticks])
        if f.yticks:
            plt.yticks([t for t, _ in f.yticks], [label for _, label in f.yticks])
        if f.ylim:
            plt.ylim(*f.ylim)
        if x_range[0] < x_range[1]:
            plt.xlim(*x_range)

    def _series(
        self, s: Series, x_range: tuple[float, float], y_range: tuple[float, float]
    ) -> None:
        plt, colour = self.plt, self.colour(s)
        if s.kind in ("line", "band"):
            for ys in (s.y, s.upper) if s.kind == "band" else (s.y,):
                pts = [(x, y) for x, y in zip(s.x, ys, strict=True) if not math.isnan(y)]
                if pts:
                    marker = "braille" if s.kind == "line" else "dot"
                    plt.plot(*zip(*pts, strict=True), color=colour, marker=marker, yside=s.side)
            if s.kind == "line" and pts:  # its glyph on some of its points, evenly spaced
                step = max(1, math.ceil(len(pts) / MOST_MARKED))
                marked = pts[::step]
                plt.scatter(
                    *zip(*marked, strict=True), color=colour, marker=self.glyph(s), yside=s.side
                )
        elif s.kind == "scatter":
            pts = [(x, y) for x, y in zip(s.x, s.y, strict=True) if not math.isnan(y)]
            if pts:
                plt.scatter(
                    *zip(*pts, strict=True), color=colour, marker=self.glyph(s), yside=s.side
                )
        elif s.kind == "hline" and s.y and not math.isnan(s.y[0]):
            plt.plot(list(x_range), [s.y[0]] * 2, color=colour, marker="╌", yside=s.side)
            low, high = x_range  # its glyph at a quarter, half and three quarters
            xs = [low + (high - low) * k / 4 for k in (1, 2, 3)]
            plt.scatter(xs, [s.y[0]] * 3, color=colour, marker=self.glyph(s), yside=s.side)
        elif s.kind == "vline" and s.x:
            plt.plot([s.x[0]] * 2, list(y_range), color=colour, marker="┆")
            middle = (y_range[0] + y_range[1]) / 2
            plt.scatter([s.x[0]], [middle], color=colour, marker=self.glyph(s))

    def legend(self) -> Text:
        """One line: a coloured mark and the label of every series."""
        text = Text()
        f = self.figure
        if f is None or f.empty:
            return text
        for s in f.series:
            if text:
                text.append("  ")
            r, g, b = self.colour(s)
            glyph = self.glyph(s)
            mark = {
                "line": f"─{glyph}─",
                "hline": f"╌{glyph}╌",
                "vline": f"┆{glyph}",
                "band": f"░{glyph}",
            }.get(s.kind, glyph)
            text.append(mark, style=f"rgb({r},{g},{b})")
            text.append(f" {s.label}")
        return text


def _span(values: Iterable[float]) -> tuple[float, float]:
    vals = list(values)
    if not vals:
        return 0.0, 1.0
    low, high = min(vals), max(vals)
    return (low, high) if low < high else (low - 0.5, high + 0.5)


class PlotPanel(Vertical):
    """A `FigurePlot` with its legend underneath."""

    DEFAULT_CSS = """
    PlotPanel { height: auto; }
    PlotPanel FigurePlot { height: 12; }
    PlotPanel .legend { height: auto; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)

    def compose(self) -> ComposeResult:
        yield FigurePlot()
        yield Static(classes="legend")

    @property
    def plot(self) -> FigurePlot:
        return self.query_one(FigurePlot)

    @property
    def figure(self) -> Figure | None:
        return self.plot.figure

    def show(self, figure: Figure) -> None:
        if self.plot.show(figure):
            update_text(self.query_one(".legend", Static), self.plot.legend())

    @on(FigurePlot.Recoloured)
    def _recoloured(self) -> None:
        self.query_one(".legend", Static).update(self.plot.legend())


def fill_heatmap(table: DataTable[Text], heatmap: Heatmap, theme: dict[str, str]) -> None:
    """A confusion matrix in a DataTable: each cell's count and row share, its background
    shaded by the row share (surface to primary in the app theme)."""
    table.clear(columns=True)
    table.add_columns(f"{heatmap.row_label} \\ {heatmap.column_label}", *heatmap.columns)
    low = Color.parse(theme.get("surface", "black"))
    high = Color.parse(theme.get("primary", "blue"))
    for name, counts, shares in zip(heatmap.rows, heatmap.counts, heatmap.shares, strict=True):
        cells = []
        for count, share in zip(counts, shares, strict=True):
            back = low.blend(high, share)
            fore = back.get_contrast_text(1.0)
            cells.append(Text(f" {count:>4} {share:4.0%} ", style=f"{fore.hex} on {back.hex}"))
        table.add_row(Text(name), *cells)
