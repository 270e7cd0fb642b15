"""Starting and stopping runs from the dashboard: the `dfu-tui` CLI in a child process.

The dashboard never trains and never imports the training stack: it launches detached
supervisors through the command line and reads run directories.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CommandResult:
    """Exit code and output of one `dfu-tui` call."""

    code: int
    stdout: str
    stderr: str

    @property
    def message(self) -> str:
        """The last meaningful line, for a notification."""
        lines = [ln for ln in (self.stderr or self.stdout).splitlines() if ln.strip()]
        return lines[-1] if lines else f"exit code {self.code}"


async def dfu(*args: str) -> CommandResult:
    """Run `python -m dfu_tui ARGS` without blocking the event loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dfu_tui",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return CommandResult(
        proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
    )


async def launch(
    config: Path,
    overrides: list[str],
    runs_dir: Path,
    jobs: int,
    on_line: Callable[[str], None] | None = None,
    labels: list[str] | None = None,
) -> CommandResult:
    """Start a detached run; stdout holds the run id on success. Preparation progress
    (demo generation, crops per modality) comes to `on_line` as it happens."""
    sets = [a for item in overrides for a in ("--set", item)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dfu_tui",
        "run",
        str(config),
        *sets,
        "--detach",
        "--runs-dir",
        str(runs_dir),
        "--jobs",
        str(jobs),
        *(labels or []),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "DFU_TUI_PROGRESS_LINES": "1"},
    )
    assert proc.stdout is not None and proc.stderr is not None
    err_lines: list[str] = []

    async def follow() -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            text = raw.decode(errors="replace").rstrip("\n")
            if text.startswith("preparing: ") and on_line is not None:
                on_line(text.removeprefix("preparing: "))
            else:
                err_lines.append(text)

    out, _ = await asyncio.gather(proc.stdout.read(), follow())
    code = await proc.wait()
    return CommandResult(code or 0, out.decode(errors="replace"), "\n".join(err_lines))


async def tag(run_dir: Path, name: str, add: list[str], remove: list[str]) -> CommandResult:
    args = ["tag", str(run_dir), "--name", name]
    args += [a for t in add for a in ("--add", t)]
    args += [a for t in remove for a in ("--remove", t)]
    return await dfu(*args)


async def archive(run_dir: Path) -> CommandResult:
    return await dfu("archive", str(run_dir))


async def stop(run_dir: Path) -> CommandResult:
    return await dfu("stop", str(run_dir))


async def resume(run_dir: Path, jobs: int = 1) -> CommandResult:
    return await dfu("resume", str(run_dir), "--detach", "--jobs", str(jobs))


async def export(run_dir: Path, output: Path, fmt: str = "csv") -> CommandResult:
    return await dfu("export", str(run_dir), "--format", fmt, "--output", str(output))


async def report(run_dir: Path, output: Path) -> CommandResult:
    return await dfu("report", str(run_dir), "--output", str(output))


async def fit(run_dir: Path) -> CommandResult:
    """`dfu-tui fit RUN --detach`: the final model into RUN/model, in the background."""
    return await dfu("fit", str(run_dir), "--detach")
