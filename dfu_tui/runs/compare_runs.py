"""Runs side by side: one row per run (the config keys that differ, the fused combination's
mean on the criteria's scale with its n and interval, flags and verdict), and paired
differences from the first run only where two runs share their folds (the same data and
the same validation patients in every fold)."""

from __future__ import annotations

import hashlib
import math
from typing import Any

from dfu_tui.config import flatten
from dfu_tui.engine.rules import caveat_texts
from dfu_tui.runs.catalog import read_docs, read_json
from dfu_tui.runs.rundir import RunDir, load_predictions
from dfu_tui.runs.state import RunState, load_state, verdict_so_far

NOT_PAIRED = "different folds: not paired"


def folds_signature(run: RunDir, state: RunState) -> str | None:
    """A hash of every finished fold's validation rows, read from the run's predictions
    (None when a fold's file is missing or damaged: then nothing is paired with it)."""
    h = hashlib.sha256()
    for fold in sorted(state.fold_results, key=lambda f: f["fold"]):
        files = sorted(run.predictions.glob(f"fold{fold['fold']}_*.npz"))
        try:
            index = load_predictions(files[0])["val_index"] if files else None
        except (OSError, ValueError, KeyError):
            index = None
        if index is None:
            return None
        h.update(f"{fold['fold']}:".encode() + index.astype("int64").tobytes())
    return h.hexdigest()[:16]


def _fused(state: RunState, summary: dict[str, Any] | None) -> int:
    """The combination a run is judged by: the selected one of a search, else the one with
    the most modalities (as the monitor shows)."""
    from dfu_tui.runs.figures import fused_index

    selected = (summary or {}).get("selection", {}).get("selected")
    if selected in state.combinations:
        return state.combinations.index(selected)
    return fused_index(state.combinations)


def run_entry(run: RunDir) -> dict[str, Any]:
    """One run's row and what pairing needs."""
    from dfu_tui.engine.paired import mean_sd, paired_difference, test_train_ratio

    state = load_state(run.path, history=False)
    docs = read_docs(run)
    fingerprint = read_json(run.fingerprint) or {}
    folds = [f for f in state.fold_results if f.get("fold_kind", "cv") == "cv"]
    index = _fused(state, docs.summary) if state.combinations else 0
    metric = docs.config.criteria.metric if docs.config is not None else state.metric
    values: dict[int, float] = {}
    n: dict[int, int] = {}
    collapse = 0
    all_paired = True
    for f in folds:
        c: Any = f["combinations"][index]
        paired = c.get("paired")
        all_paired = all_paired and bool(paired)
        values[f["fold"]] = paired["fused"][metric] if paired else c[metric]
        n[f["fold"]] = paired["n"] if paired else c["n"]
        collapse += sum(fl.get("level") == "collapse" for fl in c["flags"])
    mean, sd = mean_sd(list(values.values()))
    ratio = test_train_ratio(folds)
    # the interval of the mean over folds, corrected as the paired differences are
    half = paired_difference(list(values.values()), [0.0] * len(values), ratio)["ci95"]
    verdict = None
    if docs.summary is not None and index < len(docs.summary.get("combinations", [])):
        verdict = docs.summary["combinations"][index].get("verdict")
    elif docs.config is not None and folds:
        verdict = verdict_so_far(docs.config, state, index)
    tiers = (
        " ".join(t for t in ("minimum", "expected", "ideal") if verdict[t]) or "none"
        if verdict
        else "-"
    )
    design = verdict.get("design") if verdict else None
    if design and design.get("exploratory"):
        tiers += " (exploratory)"
    return {
        "run_id": state.run_id,
        "name": docs.labels.name,
        "tags": list(docs.labels.tags),
        "status": state.effective_status(),
        "combination": "+".join(state.combinations[index]) if state.combinations else "",
        "fusion": state.fusion,
        "metric": metric,
        "folds": len(folds),
        "mean": mean,
        "sd": sd,
        "ci95": half,
        "n": sum(n.values()),
        "collapse_flags": collapse,
        "rows": "every modality" if all_paired else "all rows (a log without paired scores)",
        "verdict": tiers,
        "caveats": caveat_texts(verdict) if verdict else [],
        "config": flatten(docs.config.to_dict()) if docs.config is not None else {},
        "data": fingerprint.get("data"),
        "folds_signature": folds_signature(run, state),
        "per_fold": values,
        "per_fold_n": n,
        "ratio": ratio,
    }


def compare_runs(runs: list[RunDir]) -> dict[str, Any]:
    """The comparison of two or more runs; the first is the reference of the paired
    differences."""
    from dfu_tui.engine.paired import outcome, paired_difference

    entries = [run_entry(r) for r in runs]
    keys = sorted({k for e in entries for k in e["config"]})
    differ = [
        k
        for k in keys
        if len({repr(e["config"].get(k)) for e in entries}) > 1 and not k.startswith("executor.")
    ]
    ref = entries[0]
    for e in entries:
        e["differs"] = {k: e["config"].get(k) for k in differ}
        if e is ref:
            e["versus"] = {"paired": True, "note": "reference"}
            continue
        same = (
            e["data"] is not None
            and e["data"] == ref["data"]
            and e["folds_signature"] is not None
            and e["folds_signature"] == ref["folds_signature"]
            and e["metric"] == ref["metric"]
        )
        common = sorted(set(e["per_fold"]) & set(ref["per_fold"]))
        if not same or not common:
            e["versus"] = {"paired": False, "note": NOT_PAIRED}
            continue
        diff = paired_difference(
            [e["per_fold"][k] for k in common],
            [ref["per_fold"][k] for k in common],
            (e["ratio"] + ref["ratio"]) / 2,
        )
        rows_same = all(e["per_fold_n"][k] == ref["per_fold_n"][k] for k in common)
        e["versus"] = {
            "paired": True,
            **diff,
            "outcome": outcome(diff),
            "folds": len(common),
            "note": "same folds, same rows"
            if rows_same
            else "same folds (validation patients); rows differ by modality coverage",
        }
    for e in entries:
        for k in ("config", "per_fold", "per_fold_n", "ratio"):
            e.pop(k)
    return {"reference": ref["run_id"], "differing_keys": differ, "runs": entries}


def caveat_lines(doc: dict[str, Any]) -> list[str]:
    """Each run's verdict caveats, `run: caveat`, for under the comparison table."""
    return [f"{e['run_id']}: {text}" for e in doc["runs"] for text in e.get("caveats", [])]


def versus_text(v: dict[str, Any]) -> str:
    """The paired difference from the reference run, or why there is none."""
    if not v.get("paired") or "mean_difference" not in v:
        return str(v.get("note", ""))
    low, high = v["ci95"]
    if low is None or math.isnan(low):
        return f"{v['mean_difference']:+.3f} ({v['folds']} fold: no interval)"
    mark = {"beats": "beats", "worse": "worse"}.get(v["outcome"], "≈ not distinguishable")
    return f"{v['mean_difference']:+.3f} [{low:+.3f},{high:+.3f}] {mark}"


def mean_text(e: dict[str, Any]) -> str:
    """`0.412 [0.30,0.52] n=488`: the mean over folds with its corrected interval and n."""
    mean = e["mean"]
    if mean is None or math.isnan(mean):
        return "-"
    low, high = e["ci95"]
    text = f"{mean:.3f}"
    if low is not None and not math.isnan(low):
        text += f" [{low:.2f},{high:.2f}]"
    text += f" n={e['n']}"
    return text if e.get("rows", "every modality") == "every modality" else text + " all rows"


def sd_text(e: dict[str, Any]) -> str:
    sd = e["sd"]
    return "-" if sd is None or math.isnan(sd) else f"{sd:.3f}"


def value_text(value: Any) -> str:
    if isinstance(value, dict):
        return "/".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items()
        )
    if isinstance(value, list):
        return ",".join(value_text(v) for v in value)
    return str(value)


def table_rows(doc: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Headings and cells of the comparison table (console, CSV, the dashboard)."""
    from dfu_tui.engine.rules import SCALE_NAMES

    metric = doc["runs"][0]["metric"]
    short = "QWK" if metric == "quadratic_kappa" else "κ"
    head = [
        "run",
        f"{short} mean [95% CI] n",
        "vs first (paired)",
        "collapse",
        "verdict",
        f"{SCALE_NAMES[metric]} sd",
        "name",
        "status",
        "combination",
        *doc["differing_keys"],
    ]
    rows = [
        [
            e["run_id"],
            mean_text(e),
            versus_text(e["versus"]),
            str(e["collapse_flags"]),
            e["verdict"],
            sd_text(e),
            e["name"] or "-",
            e["status"],
            e["combination"],
            *(value_text(e["differs"][k]) for k in doc["differing_keys"]),
        ]
        for e in doc["runs"]
    ]
    return head, rows
