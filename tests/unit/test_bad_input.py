"""Every malformed input gets one named line, exit 2 (or a counted skip), never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dfu_tui.cli import main

META = "DataMaster_Processed_V12_WithMissing.csv"


def validate(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f"[data]\nroot = '{root}'\nimage_size = 32\ncache_dir = '{tmp_path / 'cache'}'\n"
        "[modalities]\nuse = ['metadata', 'thermal_map', 'depth_rgb']\n"
        "[cv]\nfolds = 2\n",
        encoding="utf-8",
    )
    rc = main(["validate", str(cfg), *extra])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return rc, [ln for ln in captured.err.splitlines() if ln.strip()], captured.out


def rewrite_csv(path: Path, edit) -> None:
    text = path.read_text(encoding="utf-8-sig")
    path.write_text(edit(text), encoding="utf-8-sig")


class TestMetadataErrors:
    def test_missing_label_column(self, tiny_demo, tmp_path, capsys) -> None:
        rewrite_csv(tiny_demo / META, lambda t: t.replace("Healing Phase Abs", "Phase Abs", 1))
        rc, err, _ = validate(tiny_demo, tmp_path, capsys)
        assert rc == 2
        (line,) = err
        assert META in line and "missing column 'Healing Phase Abs'" in line

    def test_renamed_patient_column(self, tiny_demo, tmp_path, capsys) -> None:
        rewrite_csv(tiny_demo / META, lambda t: t.replace("ID,Patient#,", "ID,Patient,", 1))
        rc, err, _ = validate(tiny_demo, tmp_path, capsys)
        assert rc == 2 and len(err) == 1 and "missing column 'Patient#'" in err[0]

    def test_unknown_labels_named_with_rows(self, tiny_demo, tmp_path, capsys) -> None:
        def edit(text: str) -> str:
            lines = text.splitlines()
            lines[3] = lines[3].rsplit(",", 1)[0] + ",X"
            lines[5] = lines[5].rsplit(",", 1)[0] + ",X"
            return "\n".join(lines) + "\n"

        rewrite_csv(tiny_demo / META, edit)
        rc, err, _ = validate(tiny_demo, tmp_path, capsys)
        assert rc == 2
        (line,) = err
        assert "unknown label values 'X' (rows 4, 6)" in line and "expected one of I, P, R" in line

    def test_empty_csv(self, tiny_demo, tmp_path, capsys) -> None:
        (tiny_demo / META).write_bytes(b"")
        rc, err, _ = validate(tiny_demo, tmp_path, capsys)
        assert rc == 2 and len(err) == 1 and "empty file" in err[0] and META in err[0]

    def test_header_only_csv(self, tiny_demo, tmp_path, capsys) -> None:
        rewrite_csv(tiny_demo / META, lambda t: t.splitlines()[0] + "\n")
        rc, err, _ = validate(tiny_demo, tmp_path, capsys)
        assert rc == 2 and len(err) == 1 and "no data rows" in err[0]

    def test_not_utf8(self, tiny_demo, tmp_path, capsys) -> None:
        path = tiny_demo / META
        path.write_bytes(path.read_bytes()[3:].decode("utf-8").encode("latin-1"))
        rc, err, _ = validate(tiny_demo, tmp_path, capsys)
        assert rc == 2 and len(err) == 1 and "not UTF-8" in err[0] and "offset" in err[0]

    def test_missing_metadata_file(self, tiny_demo, tmp_path, capsys) -> None:
        (tiny_demo / META).unlink()
        rc, err, _ = validate(tiny_demo, tmp_path, capsys)
        assert rc == 2 and len(err) == 1 and "metadata CSV not found" in err[0]

    def test_missing_dataset_folder(self, tmp_path, capsys) -> None:
        rc, err, _ = validate(tmp_path / "nowhere", tmp_path, capsys)
        assert rc == 2 and len(err) == 1 and "data.root" in err[0] and "nowhere" in err[0]


class TestImageErrors:
    def test_missing_image_folder(self, tiny_demo, tmp_path, capsys) -> None:
        for p in (tiny_demo / "Thermal_Map_IMG").iterdir():
            p.unlink()
        (tiny_demo / "Thermal_Map_IMG").rmdir()
        rc, err, _ = validate(tiny_demo, tmp_path, capsys)
        assert rc == 2 and len(err) == 1
        assert "Thermal_Map_IMG" in err[0] and "'thermal_map' not found" in err[0]

    @pytest.mark.parametrize("twin", ["Age", " Age ", "Healing Phase Abs"])
    def test_a_column_name_twice(self, tiny_demo, tmp_path, capsys, twin: str) -> None:
        """pandas would call the second one 'Age.1' and it became a feature; which of the
        two is the real one is the clinic's to say."""
        rewrite_csv(tiny_demo / META, lambda t: t.replace(",Weight (Kg),", f",{twin},", 1))
        rc, err, _ = validate(tiny_demo, tmp_path, capsys)
        assert rc == 2
        (line,) = err
        assert f"a column name appears twice in the header: '{twin.strip()}' (columns" in line

    def test_a_box_file_column_twice(self, tiny_demo, tmp_path, capsys) -> None:
        rewrite_csv(
            tiny_demo / "bounding_box_depth.csv", lambda t: t.replace(",Ymin,", ",Xmin,", 1)
        )
        rc, err, _ = validate(tiny_demo, tmp_path, capsys)
        assert rc == 2
        assert any("bounding_box_depth.csv: a column name appears twice" in ln for ln in err)

    @pytest.mark.parametrize("line", [1, 4])
    def test_a_nul_byte(self, tiny_demo, tmp_path, capsys, line: int) -> None:
        def edit(text: str) -> str:
            lines = text.split("\n")
            lines[line - 1] = lines[line - 1][:5] + "\x00" + lines[line - 1][5:]
            return "\n".join(lines)

        rewrite_csv(tiny_demo / META, edit)
        rc, err, _ = validate(tiny_demo, tmp_path, capsys)
        assert rc == 2
        (only,) = err
        assert only.endswith(
            f"{META}: line {line}: a NUL byte; the metadata CSV is damaged (not text)"
        )

    def test_box_file_missing_columns(self, tiny_demo, tmp_path, capsys) -> None:
        rewrite_csv(tiny_demo / "bounding_box_depth.csv", lambda t: t.replace(",Ymax", ",Ymx", 1))
        rc, err, _ = validate(tiny_demo, tmp_path, capsys)
        assert rc == 2 and len(err) == 1
        assert "bounding_box_depth.csv" in err[0] and "'Ymax'" in err[0]

    def test_corrupt_and_truncated_png_skipped(self, tiny_demo, tmp_path, capsys) -> None:
        files = sorted((tiny_demo / "Thermal_Map_IMG").iterdir())
        files[0].write_bytes(b"garbage")
        files[1].write_bytes(files[1].read_bytes()[:200])
        rc, err, out = validate(tiny_demo, tmp_path, capsys)
        assert rc == 0
        assert sum("corrupt or truncated PNG" in ln for ln in err) == 2
        assert any(files[0].name in ln for ln in err) and any(files[1].name in ln for ln in err)
        assert "corrupt image 2" in out
        rc, _, _ = validate(tiny_demo, tmp_path, capsys, "--strict")
        assert rc == 2

    def test_unconventional_name_skipped(self, tiny_demo, tmp_path, capsys) -> None:
        (tiny_demo / "Depth_RGB" / "holiday photo.png").write_bytes(b"x")
        rc, err, out = validate(tiny_demo, tmp_path, capsys)
        assert rc == 0
        (line,) = [x for x in err if "repeated on" not in x]  # the demo's repeated keys
        assert "holiday photo.png" in line and "convention" in line
        assert "name not in convention 1" in out

    def test_bad_boxes_skipped_and_named(self, tiny_demo, tmp_path, capsys) -> None:
        def edit(text: str) -> str:
            lines = text.splitlines()
            cells = lines[1].split(",")
            cells[8], cells[10] = "5000", "5100"  # outside a 180-pixel-wide frame
            lines[1] = ",".join(cells)
            cells = lines[2].split(",")
            cells[8], cells[10] = cells[10], cells[8]  # xmin >= xmax
            lines[2] = ",".join(cells)
            return "\n".join(lines) + "\n"

        rewrite_csv(tiny_demo / "bounding_box_thermal.csv", edit)
        rc, err, out = validate(tiny_demo, tmp_path, capsys)
        assert rc == 0
        assert any("row 2" in ln and "outside" in ln for ln in err)
        assert any("row 3" in ln and "inverted" in ln for ln in err)
        assert "box outside image 1" in out and "bad box row 1" in out


def set_cells(path: Path, cells: dict[tuple[int, str], str]) -> None:
    """Set cells of a CSV by (file line, column name); the header is line 1."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    for (line, column), value in cells.items():
        rows[line - 1][rows[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8-sig")


class TestNotFiniteNumbers:
    """ "inf", "-Infinity", 1e400 parse as numbers; no clinical value or box corner is one."""

    @pytest.mark.parametrize("value", ["inf", "-Infinity", "1e400", "+INF", "-1e999"])
    def test_metadata_names_column_and_rows_never_the_value(
        self, tiny_demo, tmp_path, capsys, value: str
    ) -> None:
        set_cells(
            tiny_demo / META, {(3, "Age"): value, (6, "Age"): value, (4, "Weight (Kg)"): value}
        )
        rc, err, _ = validate(tiny_demo, tmp_path, capsys)
        assert rc == 2
        assert len(err) == 2
        age, weight = sorted(err)
        assert META in age and "column 'Age': 2 value(s) that are not finite" in age
        assert age.endswith("rows 3, 6")
        assert "column 'Weight (Kg)'" in weight and weight.endswith("rows 4")

    def test_a_run_refuses_before_a_run_directory_exists(self, tiny_demo, tmp_path, capsys):
        set_cells(tiny_demo / META, {(2, "Clinical Score"): "inf"})
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f"[data]\nroot = '{tiny_demo}'\n[modalities]\nuse = ['metadata']\n"
            "[fusion.weights]\nmetadata = 1.0\n[cv]\nfolds = 2\n",
            encoding="utf-8",
        )
        runs = tmp_path / "runs"
        rc = main(["run", str(cfg), "--runs-dir", str(runs)])
        err = capsys.readouterr().err
        assert rc == 2 and "column 'Clinical Score'" in err and "rows 2" in err
        assert not runs.exists() or not any(runs.iterdir())

    @pytest.mark.parametrize("column", ["Patient#", "Appt#", "DFU#"])
    def test_a_key_column_with_inf(self, tiny_demo, tmp_path, capsys, column: str) -> None:
        set_cells(tiny_demo / META, {(5, column): "inf"})
        rc, err, _ = validate(tiny_demo, tmp_path, capsys)
        assert rc == 2
        (line,) = err
        assert f"column '{column}': expected integers, rows 5" in line

    @pytest.mark.parametrize(
        "column, value",
        [("Xmin", "inf"), ("Ymax", "1e400"), ("DFU#", "-inf"), ("Xmax", "Infinity")],
    )
    def test_a_box_corner_is_skipped_and_named(
        self, tiny_demo, tmp_path, capsys, column: str, value: str
    ) -> None:
        set_cells(tiny_demo / "bounding_box_thermal.csv", {(2, column): value})
        rc, err, out = validate(tiny_demo, tmp_path, capsys)
        assert rc == 0
        assert any("bounding_box_thermal.csv: row 2: box skipped, infinite" in ln for ln in err)
        assert "bad box row 1" in out

    def test_an_infinite_box_number_means_box_one(self, tiny_demo, tmp_path, capsys) -> None:
        from dfu_tui.data.images import read_boxes

        path = tiny_demo / "bounding_box_depth.csv"
        set_cells(path, {(2, "Bounding Box Number"): "inf"})
        (box,) = [b for boxes in read_boxes(path).by_name.values() for b in boxes if b.row == 2]
        assert box.number == 1
        rc, _, _ = validate(tiny_demo, tmp_path, capsys)
        assert rc == 0


def test_console_script_has_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dfu_tui", "validate", str(tmp_path / "missing.toml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'missing.toml'}: config file not found"
    ]


def test_config_errors_exit_2(tmp_path, capsys) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[cv]\nfolds = 1\n[fusion]\nweights = { metadata = -1.0, image = 2.0 }\n")
    rc = main(["validate", str(cfg)])
    err = capsys.readouterr().err.splitlines()
    assert rc == 2 and len(err) == 2 and all(str(cfg) in ln for ln in err)


def test_demo_data_refuses_non_empty_dir(tmp_path, capsys) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("x")
    assert main(["demo-data", str(tmp_path / "d")]) == 2
    assert "not empty" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["status"],
        ["status", "x"],
        ["stop", "x"],
        ["resume", "x"],
        ["export", "x"],
        ["report", "x"],
        ["run", "configs/default.toml"],
    ],
    ids=lambda a: " ".join(a) or "dashboard",
)
def test_a_runs_dir_that_is_a_file(tmp_path, capsys, args: list[str]) -> None:
    """Every command with --runs-dir: a file there is named, exit 2, and left as it was
    (the dashboard used to open on it, empty; `run` got as far as the dataset)."""
    from tests.helpers import ROOT

    target = tmp_path / "runs"
    target.write_text("mine\n")
    args = [str(ROOT / a) if a.endswith(".toml") else a for a in args]
    assert main([*args, "--runs-dir", str(target)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == f"error: {target}: not a folder; expected the runs folder (--runs-dir)"
    assert target.read_text() == "mine\n"


@pytest.mark.parametrize("patients", ["5", "2001", "10000000", "-1"])
def test_demo_data_refuses_a_size_that_is_a_typo(tmp_path, capsys, patients: str) -> None:
    assert main(["demo-data", str(tmp_path / "d"), "--patients", patients]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == f"error: --patients: must be between 6 and 2000, got {patients}"
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("address", ["head", "http://head:10001", "ray://", "head:port", "a b:1"])
def test_a_ray_address_that_is_not_one_is_named_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], address: str
) -> None:
    runs = tmp_path / "runs"
    argv = ["run", "configs/default.toml", "--runs-dir", str(runs), "--executor", "ray"]
    rc = main([*argv, "--ray-address", address])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "executor.address" in err[0] and repr(address) in err[0]
    assert not runs.exists() or not any(runs.iterdir())  # no run directory half-made


def closed_port() -> int:
    """A localhost port where nothing listens (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("form", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}", "localhost:{port}"])
def test_a_ray_address_where_nothing_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], form: str
) -> None:
    """`ray.init` retries such an address for minutes (measured: still retrying after 180 s,
    its run directory showing "running"); it is named in seconds, before anything is made."""
    address = form.format(port=closed_port())
    runs = tmp_path / "runs"
    argv = ["run", "configs/default.toml", "--runs-dir", str(runs), "--executor", "ray"]
    rc = main([*argv, "--ray-address", address])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert line.startswith(f"error: executor.address: no Ray cluster answers at {address} (")
    assert not runs.exists() or not any(runs.iterdir())


def test_address_problem_says_nothing_where_something_listens() -> None:
    import socket

    from dfu_tui.runs.ray_executor import address_problem

    for address in ("", "local", "auto"):  # a new local instance; Ray refuses `auto` itself
        assert address_problem(address) == ""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert address_problem(f"127.0.0.1:{port}") == ""
        assert address_problem(f"ray://127.0.0.1:{port}") == ""
    assert "Connection refused" in address_problem(f"127.0.0.1:{closed_port()}")


def test_every_command_and_argument_has_help_and_an_example() -> None:
    """`--help` of dfu-tui and of each command: every argument explained (positionals,
    --set, --runs-dir and --json included), and an example to copy."""
    import argparse

    from dfu_tui.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) >= {"run", "status", "export", "report", "compare", "resume"}
    for name, command in [("", parser), *commands.choices.items()]:
        for action in command._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)
        assert "example" in (command.epilog or ""), name
        assert f"dfu-tui {name}".strip() in command.format_help(), name
