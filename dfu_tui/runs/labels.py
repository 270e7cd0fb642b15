"""A run's name, tags and the config file it was started from (`labels.json` in the run
directory): set at launch, editable later, never part of the config fingerprint."""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from dfu_tui.errors import InputError
from dfu_tui.paths import atomic_write_text, require_own_dir

MAX_NAME = 60
TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,31}")


@dataclass(frozen=True)
class Labels:
    """What a user calls a run and how they group it."""

    name: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    config_file: str = ""  # the config the run was started from (from fingerprint.json)


def check_name(name: str) -> str:
    """A run name: printable text of at most 60 characters (leading/trailing space dropped)."""
    name = name.strip()
    if len(name) > MAX_NAME or not name.isprintable():
        raise InputError(
            f"--name: expected printable text of at most {MAX_NAME} characters, got {name!r}"
        )
    return name


def check_tag(tag: str) -> str:
    """A tag: a letter or digit, then letters, digits and . _ : + - (at most 32)."""
    if not TAG.fullmatch(tag):
        raise InputError(
            f"--tag: expected a letter or digit, then letters, digits or . _ : + - (at most 32 "
            f"characters), got {tag!r}"
        )
    return tag


def labels_path(run: Path) -> Path:
    return run / "labels.json"


MAX_BYTES = 64 * 1024  # a labels or fingerprint file is a few hundred bytes


def _json(path: Path) -> dict[str, object]:
    """A small JSON object from a regular file of ours: a link, a FIFO (never waited on), a
    device, a folder, a huge or damaged file all give {}."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return {}
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
            return {}
        with os.fdopen(fd, "rb", closefd=False) as fh:
            doc = json.loads(fh.read(MAX_BYTES + 1).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    finally:
        os.close(fd)
    return doc if isinstance(doc, dict) else {}


def read_labels(run: Path) -> Labels:
    """A run's labels and the config file it was started from; a missing, damaged or oddly
    typed file gives none (it is untrusted: only well-formed values are kept)."""
    doc = _json(labels_path(run))
    name = doc.get("name")
    tags = doc.get("tags")
    config = _json(run / "fingerprint.json").get("config_file")
    return Labels(
        name[:MAX_NAME] if isinstance(name, str) and name.isprintable() else "",
        tuple(t for t in tags if isinstance(t, str) and TAG.fullmatch(t))
        if isinstance(tags, list)
        else (),
        config if isinstance(config, str) and config.isprintable() else "",
    )


def write_labels(run: Path, labels: Labels) -> None:
    """Save a run's labels (atomically, private like every run file)."""
    require_own_dir(run)
    doc = {"name": labels.name, "tags": list(labels.tags)}
    atomic_write_text(labels_path(run), json.dumps(doc, indent=2) + "\n")


def edited(labels: Labels, name: str | None, add: list[str], remove: list[str]) -> Labels:
    """The labels with a new name (when given), tags added and removed (each once)."""
    tags = [t for t in labels.tags if t not in remove]
    tags += [t for t in dict.fromkeys(check_tag(t) for t in add) if t not in tags]
    return Labels(
        labels.name if name is None else check_name(name), tuple(tags), labels.config_file
    )
