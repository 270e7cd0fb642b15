"""`fit` and `predict`: a final model from a completed run, and its predictions for new
visits (`runs.model`)."""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
from pathlib import Path

from dfu_tui.cli import term
from dfu_tui.errors import InputError


def cmd_fit(args: argparse.Namespace) -> int:
    """Train the run's chosen combination on every patient into a model folder."""
    from dfu_tui.paths import check_own_dir
    from dfu_tui.runs.model import fit_model, plan_fit

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    run = term.own_run(term.resolve_run(args.run, args.runs_dir))
    plan = plan_fit(run, args.combination)
    output: Path = args.output if args.output is not None else run.path / "model"
    if args.detach:
        run.logs.mkdir(mode=0o700, exist_ok=True)
        check_own_dir(run.logs, follow=False)
        log = run.logs / "fit.log"
        command = [
            sys.executable,
            "-m",
            "dfu_tui.runs.fitjob",
            str(run.path.resolve()),
            str(output.resolve()),
            args.combination or "",
        ]
        from dfu_tui.paths import open_own

        # ours, private, never through a link or into a FIFO planted in the run's logs/
        fd = open_own(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, start_new_session=True
            )
        finally:
            os.close(fd)
        term.out.print(str(output), markup=False)
        term.err.print(
            f"fitting {'+'.join(plan.combination)} in the background (pid {proc.pid}); log "
            f"{log}; dfu-tui stop {run.run_id} stops it, the same command resumes it",
            markup=False,
        )
        return term.EXIT_OK
    fit_model(plan, output, lambda text: term.err.print(f"fit: {text}", markup=False))
    term.out.print(str(output), markup=False)
    term.err.print(
        f"wrote the model of {'+'.join(plan.combination)} to {output} (read MODEL_CARD.md; "
        f"dfu-tui predict {output} DATA applies it)",
        markup=False,
    )
    return term.EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict every visit of a folder in the clinic's format; labelled visits are scored."""
    from dfu_tui.paths import check_output, write_output
    from dfu_tui.runs.model import predict, predict_visits

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.json:
        if args.data is not None:
            raise InputError("predict --json reads visits from standard input; give no DATA")
        import json

        text = sys.stdin.read(16 * 2**20)
        sys.stdout.write(json.dumps(predict_visits(args.model, text), indent=1) + "\n")
        return term.EXIT_OK
    if args.data is None:
        raise InputError("predict: give DATA (a folder in the clinic's format), or --json")

    to_file = str(args.output) != "-"
    if to_file:
        check_output(args.output)  # before anything is loaded
    found = predict(args.model, args.data)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(found.header)
    writer.writerows(found.rows)
    if to_file:
        replaced = write_output(args.output, buf.getvalue(), "predictions")
        term.err.print(
            f"{'replaced' if replaced else 'wrote'} {args.output}: {found.n} visits", markup=False
        )
    else:
        sys.stdout.write(buf.getvalue())
    for line in found.evaluation:
        term.err.print(line, markup=False)
    return term.EXIT_OK
