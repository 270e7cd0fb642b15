"""What a run's outputs depend on: code version, data, settings; compared before a resume."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import dfu_tui
from dfu_tui.config import Config, flatten
from dfu_tui.paths import atomic_write_text

_PACKAGE = Path(dfu_tui.__file__).parent


def code_version() -> str:
    """The package version and a hash of the code that produces predictions."""
    h = hashlib.sha256()
    for sub in ("data", "engine"):
        for path in sorted((_PACKAGE / sub).glob("*.py")):
            h.update(path.name.encode() + path.read_bytes())
    return f"{dfu_tui.__version__}+{h.hexdigest()[:10]}"


def run_fingerprint(cfg: Config) -> dict[str, Any]:
    """The fingerprint saved with a run and recomputed on resume."""
    from dfu_tui.data.dataset import data_fingerprint

    return {
        "code_version": code_version(),
        "data": data_fingerprint(cfg.dataset),
        "config": cfg.results_settings(),
    }


def save_fingerprint(path: Path, fingerprint: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(fingerprint, indent=2, sort_keys=True) + "\n")


def differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """One line per key that differs between two fingerprints."""
    lines = []
    for key in ("code_version", "data"):
        if saved.get(key) != current.get(key):
            lines.append(f"{key} changed ({saved.get(key)} -> {current.get(key)})")
    changed = config_changes(saved.get("config", {}), current.get("config", {}))
    lines += [f"config key {key} changed ({old!r} -> {new!r})" for key, old, new in changed]
    return lines


def config_changes(saved: Any, current: Any) -> list[tuple[str, Any, Any]]:
    """(key, saved value, current value) of every setting that differs between two config
    documents; a key one side lacks (a run from before it existed) has its default value."""
    old = flatten(saved) if isinstance(saved, dict) else {}
    new = flatten(current) if isinstance(current, dict) else {}
    defaults = flatten(Config().to_dict())
    return [
        (key, old.get(key), new.get(key))
        for key in sorted(set(old) | set(new))
        if old.get(key, defaults.get(key)) != new.get(key, defaults.get(key))
    ]


def same_config_runs(runs: list[Path], cfg: Config) -> list[Path]:
    """The runs (folders) whose saved settings equal `cfg`'s (where tasks run aside): a
    launch identical to one of them repeats it. A run without a readable fingerprint is
    not one of them."""
    from dfu_tui.runs.catalog import read_json

    current = cfg.results_settings()
    out = []
    for run in runs:
        saved = read_json(run / "fingerprint.json")
        if isinstance(saved, dict) and not config_changes(saved.get("config"), current):
            out.append(run)
    return out
