"""Export of a run: all folds x combinations x branches, plus per-epoch history."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from dfu_tui.runs.rundir import RunDir
from dfu_tui.runs.state import load_state

METRICS = ("kappa", "quadratic_kappa", "accuracy", "macro_f1", "weighted_f1", "train_kappa")
COLUMNS = (
    "row",
    "fold",
    "modalities",
    "epoch",
    *METRICS,
    "f1_I",
    "f1_P",
    "f1_R",
    "predicted_I",
    "predicted_P",
    "predicted_R",
    "loss",
    "val_kappa",
    "feature",
    "feature_groups",
    "importance",
    "importance_sd",
    "single_feature_kappa",
    "without_group",
    "kappa_without",
    "quadratic_kappa_without",
    "flags",
    # added with repeated CV: after the older columns, whose positions stay
    "repeat",
    "fold_kind",
    "paired_n",
    "paired_kappa",
    "paired_quadratic_kappa",
    # added with fusion.compare: a `strategy` row per fusion of a combination and fold, with
    # its scores and the reference fusion's on their common rows
    "strategy",
    "reference_paired_kappa",
    "reference_paired_quadratic_kappa",
    # added with the clinical scores (one-vs-rest per class, and the Brier score)
    *(f"sensitivity_{c}" for c in "IPR"),
    *(f"specificity_{c}" for c in "IPR"),
    *(f"roc_auc_{c}" for c in "IPR"),
    "brier",
)


def _clinical_cells(m: Mapping[str, Any]) -> dict[str, Any]:
    """Per class sensitivity, specificity and ROC AUC, and the Brier score ("" for a run
    logged before them, or where undefined)."""
    out: dict[str, Any] = {}
    for key in ("sensitivity", "specificity", "roc_auc"):
        values = m.get(key) or {}
        out.update({f"{key}_{c}": "" if values.get(c) is None else values[c] for c in "IPR"})
    out["brier"] = "" if m.get("brier") is None else m["brier"]
    return out


def export_rows(run: RunDir) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run's state and one row per fold x (combination | branch) and per epoch."""
    state = load_state(run.path)
    rows: list[dict[str, Any]] = []
    for fold in sorted(state.fold_results, key=lambda f: f["fold"]):
        items: list[tuple[str, str, Mapping[str, Any]]]
        items = [("combination", "+".join(c["modalities"]), c) for c in fold["combinations"]]
        items += [("branch", b, m) for b, m in fold["branches"].items()]
        for kind, name, m in items:
            rows.append(
                {
                    "row": kind,
                    "fold": fold["fold"],
                    "repeat": fold.get("repeat", 1),
                    "fold_kind": fold.get("fold_kind", "cv"),
                    "modalities": name,
                    "epoch": "",
                    **{k: m.get(k) for k in METRICS},
                    **{f"f1_{c}": m["f1"][c] for c in "IPR"},
                    **{f"predicted_{c}": m["predicted_share"][c] for c in "IPR"},
                    "loss": "",
                    "val_kappa": "",
                    **_paired_cells(m),
                    **_clinical_cells(m),
                    "flags": "; ".join(
                        f"{f['level']} {f['rule']}: {f['detail']}" for f in m["flags"]
                    ),
                }
            )
            if kind == "combination":
                rows += _strategy_rows(fold, name, m)
        rows += _feature_rows(fold)
    for e in state.epochs:
        share = e.get("val_predicted_share") or {}
        rows.append(
            {
                "row": "epoch",
                "fold": e["fold"],
                "modalities": e["branch"],
                "epoch": e["epoch"],
                **dict.fromkeys(METRICS, ""),
                "train_kappa": e.get("train_kappa"),
                **{f"f1_{c}": "" for c in "IPR"},
                **{f"predicted_{c}": share.get(c, "") for c in "IPR"},
                "loss": e.get("loss"),
                "val_kappa": e.get("val_kappa"),
                "flags": "; ".join(
                    f"{f.get('level')} {f.get('rule')}: {f.get('detail')}"
                    for f in e.get("flags", [])
                ),
            }
        )
    return state.to_dict(), rows


def _paired_cells(m: Mapping[str, Any]) -> dict[str, Any]:
    """A combination's scores on the rows that have every one of its modalities."""
    paired = m.get("paired")
    if not paired:
        return {}
    return {
        "paired_n": paired["n"],
        "paired_kappa": paired["fused"]["kappa"],
        "paired_quadratic_kappa": paired["fused"]["quadratic_kappa"],
    }


def _strategy_rows(
    fold: Mapping[str, Any], name: str, m: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Each fusion of `fusion.compare` for one combination on one fold (the first is the
    configured one): its scores on its own rows, and it and the configured fusion on their
    common rows (`paired_*`, `reference_paired_*`)."""
    rows = []
    for r in m.get("strategies", []):
        paired = r["paired"]
        rows.append(
            {
                "row": "strategy",
                "fold": fold["fold"],
                "repeat": fold.get("repeat", 1),
                "fold_kind": fold.get("fold_kind", "cv"),
                "modalities": name,
                "strategy": r["name"],
                **{k: r.get(k) for k in METRICS},
                **{f"predicted_{c}": r["predicted_share"][c] for c in "IPR"},
                "paired_n": paired["n"],
                "paired_kappa": paired["strategy"]["kappa"],
                "paired_quadratic_kappa": paired["strategy"]["quadratic_kappa"],
                "reference_paired_kappa": paired["reference"]["kappa"],
                "reference_paired_quadratic_kappa": paired["reference"]["quadratic_kappa"],
                "flags": "; ".join(f"{f['level']} {f['rule']}: {f['detail']}" for f in r["flags"]),
            }
        )
    return rows


def _feature_rows(fold: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The fold's leakage radar (one row per feature) and its with/without-group rows."""
    rows = []
    for r in (fold.get("radar") or {}).get("features", []):
        rows.append(
            {
                "row": "feature",
                "fold": fold["fold"],
                "modalities": "metadata",
                "feature": r["feature"],
                "feature_groups": " ".join(r["groups"]),
                "importance": r["importance"],
                "importance_sd": r["importance_sd"],
                "single_feature_kappa": r["single_kappa"],
            }
        )
    comparison = fold.get("feature_comparison")
    for r in (comparison or {}).get("rows", []):
        rows.append(
            {
                "row": "feature_comparison",
                "fold": fold["fold"],
                "modalities": "+".join(r["modalities"]),
                "kappa": r["with"]["kappa"],
                "quadratic_kappa": r["with"]["quadratic_kappa"],
                "without_group": comparison["group"],  # type: ignore[index]
                "kappa_without": r["without"]["kappa"],
                "quadratic_kappa_without": r["without"]["quadratic_kappa"],
            }
        )
    return rows


def export_run(run: RunDir, fmt: str) -> str:
    """The export as CSV or JSON text."""
    status, rows = export_rows(run)
    if fmt == "json":
        state = load_state(run.path)
        doc = {
            "run": status,
            "folds": sorted(state.fold_results, key=lambda f: f["fold"]),
            "epochs": state.epochs,
            "rows": rows,
        }
        # the verdicts, paired comparisons, repeats and hold-out of a finished run
        with contextlib.suppress(OSError, ValueError):
            doc["summary"] = json.loads(run.summary.read_text(encoding="utf-8"))
        return json.dumps(doc, indent=2) + "\n"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
