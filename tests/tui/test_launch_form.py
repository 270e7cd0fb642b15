"""The launch form at 80x24 (issue 10, items 3, 4 and 5): five modalities with weights and
image counts on screen at once, strategy and folds within one scroll, the command line's
jobs default, a folder picker and coverage as soon as a folder is chosen."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from textual.widgets import Checkbox, Input, Select, Static

from dfu_tui.config import FUSION_STRATEGIES
from dfu_tui.data.schema import MODALITIES
from dfu_tui.runs.resources import default_jobs
from dfu_tui.tui.screens.launch import LaunchScreen
from dfu_tui.tui.screens.modals import FolderScreen
from tests.helpers import REFRESH, open_form, until
from tests.tui.conftest import make_app


async def test_every_modality_fits_at_80x24_with_counts(runs_dir: Path, tiny_demo: Path) -> None:
    app = make_app(runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(pilot)
        assert isinstance(form, LaunchScreen)
        screen_rows = range(1, 23)  # under the header, above the footer
        for m in MODALITIES:
            for widget in (form.query_one(f"#use-{m}", Checkbox), form.query_one(f"#weight-{m}")):
                region = widget.region
                assert region.height == 1 and region.y in screen_rows, (m, region)
                assert region.right <= 80
        rows = {form.query_one(f"#use-{m}", Checkbox).region.y for m in MODALITIES}
        assert len(rows) == 5  # one row each
        # strategy and folds: at most one page down
        scroller = form.query_one("#launch-form")
        for selector in ("#strategy", "#folds"):
            assert form.query_one(selector).virtual_region.y < 2 * scroller.size.height
        assert form.query_one("#jobs", Input).value == str(default_jobs())
        # coverage of a chosen folder, beside each modality
        form.query_one("#root", Input).value = str(tiny_demo)
        await until(
            pilot,
            lambda: "with images" in str(form.query_one("#images-thermal_map", Static).render()),
        )
        text = str(form.query_one("#images-thermal_map", Static).render())
        with_images, total = text.split(" with")[0].split(" / ")
        assert 0 < int(with_images) <= int(total)
        assert "samples" in str(form.query_one("#images-metadata", Static).render())
        # a folder that is not a dataset says why, in one line
        form.query_one("#root", Input).value = str(tiny_demo / "Thermal_Map_IMG")
        await until(pilot, lambda: str(form.query_one("#data-note", Static).render()) != "")
        assert "not found" in str(form.query_one("#data-note", Static).render())
        assert isinstance(form.query_one("#strategy", Select), Select)


async def test_the_form_does_not_generate_the_demo(
    runs_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """Before the demo's first launch the form says it will be generated then; it does not
    generate it itself (a few hundred images, in the dashboard's process)."""
    cache = tmp_path / "fresh-cache"
    monkeypatch.setenv("DFU_TUI_CACHE_DIR", str(cache))
    app = make_app(runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(pilot)
        assert form.query_one("#root", Input).value == "demo"
        note = form.query_one("#data-note", Static)
        await until(pilot, lambda: "generated at the first launch" in str(note.render()))
        assert not note.has_class("-problem")  # news, not an error
        assert all(str(form.query_one(f"#images-{m}", Static).render()) == "" for m in MODALITIES)
        assert not (cache / "demo").exists()
        # a folder that is not a dataset is a problem
        form.query_one("#root", Input).value = str(tmp_path)
        await until(pilot, lambda: "not found" in str(note.render()))
        assert note.has_class("-problem")


async def test_folder_picker_fills_the_data_source(runs_dir: Path, tiny_demo: Path) -> None:
    app = make_app(runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(pilot)
        form.query_one("#root", Input).value = str(tiny_demo.parent)
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, FolderScreen)
        picker = app.screen

        def chosen() -> None:
            picker.dismiss(tiny_demo)

        chosen()
        await pilot.pause()
        assert isinstance(app.screen, LaunchScreen)
        assert form.query_one("#root", Input).value == str(tiny_demo)
        await pilot.press("ctrl+o", "escape")
        await pilot.pause()
        assert form.query_one("#root", Input).value == str(tiny_demo)  # cancel keeps it


async def test_estimate_follows_runs_read_after_the_form_opened(tmp_path: Path) -> None:
    """The runs are read on a thread, and runs finish while the form is open: the estimate
    from earlier runs appears when they are read, not only on the next keystroke."""
    import shutil

    from tests.tui.conftest import COMPLETED, FIXTURES

    runs = tmp_path / "runs"
    runs.mkdir()
    app = make_app(runs)
    async with app.run_test(size=(100, 32)) as pilot:
        form = await open_form(pilot)
        preview = form.query_one("#preview", Static)
        assert "earlier runs" not in str(preview.render())  # no run read yet
        shutil.copytree(FIXTURES / COMPLETED, runs / COMPLETED)
        await until(pilot, lambda: "from earlier runs" in str(preview.render()))
        assert "6 tasks" in str(preview.render())  # the form's own numbers stay


async def test_ray_address_is_asked_for_ray_only_and_checked(runs_dir: Path) -> None:
    from textual.widgets import Button

    app = make_app(runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(pilot)
        # the form opens with its first field focused (a visible place to start typing)
        assert app.focused is form.query_one("#config", Select)
        row = form.query_one("#ray-row")
        address = form.query_one("#ray-address", Input)
        assert not row.display  # the default config runs on this machine
        form.query_one("#executor", Select).value = "ray"
        await until(pilot, lambda: row.display)
        errors = form.query_one("#errors", Static)
        for bad in ("head", "http://head:10001", "ray://", "a b:6379"):
            address.value = bad
            await until(pilot, lambda: "executor.address" in str(errors.render()))
            assert form.query_one("#launch", Button).disabled and form.valid is None

        def holds(good: str) -> bool:
            return form.valid is not None and form.valid.executor.address == good

        for good in ("ray://head:10001", "10.0.0.5:6379", "[::1]:6379", "auto", ""):
            address.value = good
            await until(pilot, partial(holds, good))
            assert str(errors.render()) == "" and form.valid.executor.kind == "ray"
        address.value = "ray://head:10001"
        form.query_one("#executor", Select).value = "local"
        await until(pilot, lambda: not row.display)
        await until(pilot, lambda: form.valid is not None and form.valid.executor.kind == "local")
        assert form.valid.executor.address == ""  # not carried into a local run


async def test_the_form_offers_every_strategy_in_one_run(runs_dir: Path) -> None:
    """The switch scores every other fusion on the same branch predictions; the preview says
    how many and that tuned / stacked make the branches train on inner folds."""
    from textual.widgets import Switch

    app = make_app(runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(pilot)
        assert isinstance(form, LaunchScreen)
        assert form.valid is not None and len(form.valid.fusion_variants()) == 1
        form.query_one("#compare-strategies", Switch).value = True
        every = len(FUSION_STRATEGIES)
        await until(
            pilot, lambda: form.valid is not None and len(form.valid.fusion_variants()) == every
        )
        assert form.valid is not None
        # every registered strategy, the configured one first
        assert [v.name for v in form.valid.fusion_variants()] == list(FUSION_STRATEGIES)
        preview = str(form.query_one("#preview", Static).render())
        assert f"{every} fusions scored on the same predictions" in preview
        assert "inner folds, for stacked / tuned" in preview
        form.query_one("#compare-strategies", Switch).value = False
        await until(
            pilot, lambda: form.valid is not None and len(form.valid.fusion_variants()) == 1
        )


async def test_the_preview_counts_with_the_engines_plan(runs_dir: Path, tmp_path: Path) -> None:
    """The preview's folds and tasks are the engine's plan of the config the form makes: a
    temporal run's hold-out and case-mix folds are counted (and said)."""
    from dfu_tui.config import load_config
    from dfu_tui.engine.plan import plan_tasks, total_folds
    from dfu_tui.tui.app import DfuApp
    from tests.tui.conftest import FIXED_NOW, ROOT

    text = (ROOT / "configs" / "default.toml").read_text(encoding="utf-8")
    temporal = tmp_path / "temporal.toml"
    temporal.write_text(text.replace("[cv]\n", "[cv]\nstrategy = 'temporal'\n", 1), "utf-8")
    cfg = load_config(temporal)
    assert cfg.cv.strategy == "temporal"
    app = DfuApp(runs_dir, temporal, REFRESH, lambda: FIXED_NOW)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_form(pilot)
        await until(pilot, lambda: form.valid is not None)
        assert form.valid is not None and form.valid.cv.strategy == "temporal"
        folds, tasks = total_folds(form.valid), len(plan_tasks(form.valid))
        assert folds == form.valid.cv.folds * form.valid.cv.repeats + 3  # hold-out, 2 case-mix
        preview = str(form.query_one("#preview", Static).render())
        assert f"x {folds} folds, with the temporal hold-out and its 2 case-mix folds" in preview
        assert f"= {tasks} tasks" in preview


async def test_ticked_and_unticked_boxes_differ_without_colour(runs_dir: Path) -> None:
    """With every colour stripped, a ticked box still reads apart from an unticked one (a
    low-colour SSH terminal, a colour-blind reader)."""
    from dfu_tui.tui.widgets import Tick

    app = make_app(runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(pilot)
        boxes = list(form.query(Tick))
        assert len(boxes) >= len(MODALITIES)
        on = [b for b in boxes if b.value]
        off = [b for b in boxes if not b.value]
        assert on and off  # the default config uses some modalities, not all
        for box in boxes:
            plain = box.render().plain
            assert ("✔" in plain) == box.value, plain
        off[0].value = True
        await pilot.pause()
        assert "✔" in off[0].render().plain
