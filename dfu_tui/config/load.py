"""Reading a config: TOML (or the defaults) and `--set` overrides built into the typed
`Config`, collecting every problem, one line each, naming the file and key; then checked
(`config.checks`)."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
import tomllib
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from dfu_tui.config.checks import check_config
from dfu_tui.config.model import RENAMED, Config, _hints
from dfu_tui.errors import InputError


def load_config(
    path: str | Path | None, overrides: Sequence[str] = (), raw: dict[str, Any] | None = None
) -> Config:
    """Load a TOML file (or the defaults when `path` is None) with `section.key=value` overrides.

    `raw` is the file's content as `read_toml` returned it, when the caller read it already
    (the dashboard reads files on a worker thread, then validates the form from memory).
    Raises InputError listing every problem, one line each, naming the file and key.
    """
    source = str(path) if path is not None else "<defaults>"
    if raw is not None:
        raw = copy.deepcopy(raw)
    elif path is not None:
        raw = read_toml(Path(path))
    else:
        raw = {}
    if path is not None and not raw and not overrides:
        raise InputError(
            f"{path}: the config is empty; give at least one setting "
            "(configs/default.toml shows them all), or leave the file out for the defaults"
        )
    problems: list[str] = []
    if overrides:
        raw = _with_defaults(raw)
    for item in overrides:
        _apply_override(raw, item, problems)
    cfg = dataclasses.replace(_build(Config, raw, source, "", problems), source=source)
    problems.extend(check_config(cfg, source))
    if problems:
        raise InputError(problems)
    assert isinstance(cfg, Config)
    return cfg


def read_toml(path: Path) -> dict[str, Any]:
    """A config file's TOML as a dict; InputError naming the file when it cannot be read."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text; expected a TOML file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read config ({exc.strerror})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise InputError(f"{path}: TOML nested too deeply; a config is a few tables") from None
    if _depth(raw) > MAX_TOML_DEPTH:
        raise InputError(f"{path}: TOML nested deeper than {MAX_TOML_DEPTH} levels")
    return raw


#: A config is sections of keys, some a table or list deep: deeper is not a config.
MAX_TOML_DEPTH = 8


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_TOML_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _with_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """Fill each section with its defaults, so an override changes one key of a table. A
    setting given under its old name (`RENAMED`) is not filled in again under the new one."""
    merged = dict(raw)
    for section, values in Config().to_dict().items():
        given = raw.get(section)
        if isinstance(given, dict):
            renamed = {
                new.partition(".")[2]
                for old, new in RENAMED.items()
                if old.partition(".")[0] == section and old.partition(".")[2] in given
            }
            values = {k: v for k, v in values.items() if k not in renamed}
        merged[section] = {**values, **given} if isinstance(given, dict) else given or values
    return merged


def _apply_override(raw: dict[str, Any], item: str, problems: list[str]) -> None:
    key, sep, text = item.partition("=")
    parts = RENAMED.get(key.strip(), key.strip()).split(".")
    if not sep or len(parts) < 2 or not all(parts):
        problems.append(f"--set {item}: expected section.key=value")
        return
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text  # a bare word is taken as a string
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            problems.append(f"--set {item}: {part} is not a section")
            return
        node = child
    node[parts[-1]] = value
    for old, new in RENAMED.items():  # the file's old name for this setting gives way
        if new == ".".join(parts) and old.rpartition(".")[0] == new.rpartition(".")[0]:
            node.pop(old.rpartition(".")[2], None)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(t) for t in typing.get_args(tp))
    if origin is list:
        (inner,) = typing.get_args(tp)
        if typing.get_origin(inner) in (typing.Union, types.UnionType):
            kinds = " or ".join(
                _type_name(t).replace("a table", "tables")
                if typing.get_origin(t) is dict
                else _type_name(t) + "s"
                for t in typing.get_args(inner)
            )
            return f"a list of {kinds}"
        return f"a list of {_type_name(inner)}s"
    if origin is dict:
        return f"a table of {_type_name(typing.get_args(tp)[1])}s"
    names = {int: "integer", float: "number", str: "string", bool: "boolean"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """Check `value` against a field type; ints are accepted where numbers are expected.
    An option (a `Literal` of strings) takes any string here: which ones it allows is
    checked with the ranges (`_check_limits`), naming them."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return isinstance(value, str), value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            ok, coerced = _coerce(value, option)
            if ok:
                return True, coerced
        return False, None
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, list):
            return False, None
        items = [_coerce(v, inner) for v in value]
        return all(ok for ok, _ in items), [v for _, v in items]
    if origin is dict:
        _, inner = typing.get_args(tp)
        if not isinstance(value, dict):
            return False, None
        entries = {k: _coerce(v, inner) for k, v in value.items()}
        return all(ok for ok, _ in entries.values()), {k: v for k, (_, v) in entries.items()}
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else None
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    return isinstance(value, tp), value


def _build(cls: type, raw: Any, source: str, prefix: str, problems: list[str]) -> Any:
    """Build dataclass `cls` from a TOML table, collecting problems instead of stopping."""
    where = prefix.rstrip(".") or "top level"
    if not isinstance(raw, dict):
        problems.append(f"{source}: {where}: expected a table")
        return cls()
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if f"{prefix}{key}" in RENAMED:  # a config (or a run's) from before the rename
            new = RENAMED[f"{prefix}{key}"].removeprefix(prefix)
            if new in raw:
                problems.append(
                    f"{source}: {prefix}{key}: renamed {prefix}{new}, which is also given; keep one"
                )
                continue
            key = new
        if key not in fields:
            near = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"; did you mean '{prefix}{near[0]}'?" if near else ""
            problems.append(f"{source}: {prefix}{key}: unknown key{hint}")
            continue
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(typing.cast(type, tp), value, source, f"{prefix}{key}.", problems)
            continue
        odd = _not_finite(value, f"{prefix}{key}")
        if odd:
            problems += [f"{source}: {k}: must be a finite number, got {v}" for k, v in odd]
            continue
        ok, coerced = _coerce(value, tp)
        if not ok:
            problems.append(
                f"{source}: {prefix}{key}: expected {_type_name(tp)}, got {_describe(value)}"
            )
            continue
        kwargs[key] = coerced
    return cls(**kwargs)


def _not_finite(value: Any, key: str) -> list[tuple[str, str]]:
    """(key, value) of every nan or inf in a value (TOML allows them; no setting does)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [(key, str(value))]
    if isinstance(value, dict):
        return [o for k, v in value.items() for o in _not_finite(v, f"{key}.{k}")]
    if isinstance(value, list):
        return [o for i, v in enumerate(value) for o in _not_finite(v, f"{key}[{i}]")]
    return []


def _describe(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list"}
    name = "table" if isinstance(value, dict) else kind.get(type(value), type(value).__name__)
    return f"{name} {json.dumps(value, default=str)}" if not isinstance(value, dict) else name
