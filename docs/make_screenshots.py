"""SVG screenshots of every screen at 80x24, from the committed fixture runs:

.venv/bin/python docs/make_screenshots.py      # writes docs/screenshots/*.svg
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import open_form, until  # noqa: E402
from tests.tui.conftest import (  # noqa: E402
    CANCELLED,
    COMPLETED,
    FIXTURES,
    STRATEGIES,
    STRATEGY_FIXTURES,
    make_app,
)

OUT = ROOT / "docs" / "screenshots"


async def main() -> None:
    from dfu_tui.tui.plots import PlotPanel

    runs = Path(tempfile.mkdtemp()) / "runs"
    shutil.copytree(FIXTURES, runs)
    app = make_app(runs)
    async with app.run_test(size=(80, 24)) as pilot:

        async def shot(name: str) -> None:
            panels = list(app.screen.query(PlotPanel))
            await until(pilot, lambda: all(p.figure is not None or not p.display for p in panels))
            await pilot.pause(0.3)
            app.save_screenshot(f"{name}.svg", str(OUT))

        await until(pilot, lambda: app.loaded)
        await shot("runs")
        await open_form(pilot)
        await shot("launch")
        await pilot.press("escape")
        app.open_run(CANCELLED)
        await until(pilot, lambda: bool(app.screen.query(PlotPanel)))
        await shot("monitor")
        app.screen.query_one("#epoch-plot").scroll_visible(animate=False, top=True)
        await pilot.pause(0.5)
        await shot("monitor-epochs")
        app.screen.query_one("#share-plot").scroll_visible(animate=False, top=True)
        await pilot.pause(0.5)
        await shot("monitor-shares")
        app.open_fold_detail(COMPLETED, 1)
        await until(pilot, lambda: bool(app.screen.query("#f1-plot")))
        await shot("fold-detail")
        app.open_compare(COMPLETED)
        await until(pilot, lambda: bool(app.screen.query("#curve-plot")))
        plot = app.screen.query_one("#curve-plot", PlotPanel)
        await until(pilot, lambda: plot.figure is not None)
        await pilot.pause(0.3)
        app.screen.query_one("VerticalScroll").scroll_end(animate=False)
        await pilot.pause(0.5)
        await shot("compare")

    # every fusion strategy of one run, and two runs side by side (the strategy fixtures)
    runs = Path(tempfile.mkdtemp()) / "runs"
    shutil.copytree(STRATEGY_FIXTURES, runs)
    app = make_app(runs)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.loaded)
        app.open_run(STRATEGIES)
        await until(pilot, lambda: bool(app.screen.query("#strategies")))
        await until(pilot, lambda: app.screen.query_one("#strategies").row_count > 0)
        app.screen.query_one("#strategies-panel").scroll_visible(animate=False, immediate=True)
        await pilot.pause(0.5)
        app.save_screenshot("strategies.svg", str(OUT))
        await pilot.press("escape", "space", "space", "c")
        await until(pilot, lambda: bool(app.screen.query("#runs-compare")))
        await until(pilot, lambda: app.screen.query_one("#runs-compare").row_count == 2)
        app.clear_notifications()
        await pilot.pause(0.5)
        app.save_screenshot("runs-compare.svg", str(OUT))


if __name__ == "__main__":
    asyncio.run(main())
    print("\n".join(str(p) for p in sorted(OUT.glob("*.svg"))))
