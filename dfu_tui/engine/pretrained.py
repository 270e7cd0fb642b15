"""ImageNet weights for Keras application backbones, fetched by Keras on an online machine.

    python -m dfu_tui.engine.pretrained BACKBONE SIZE

`ensure_pretrained_weights` runs that in a child process before a run starts, so TensorFlow
stays out of the command's own process and its log lines out of the terminal; Keras keeps
the file in its cache (~/.keras/models, or under KERAS_HOME) for the workers to load. With
nothing in that cache and the download host out of reach (an offline lab server), it says so
at once, without starting TensorFlow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

from dfu_tui.errors import InputError

TIMEOUT_SECONDS = 30.0  # per socket operation: a dropped connection must not hang a launch

#: The host Keras downloads every application backbone's weights from.
WEIGHTS_HOST = "https://storage.googleapis.com/"


def pretrained_error(backbone: str, reason: str) -> str:
    """The one line shown when the ImageNet weights of a backbone cannot be had."""
    text = " ".join(reason.split()) or "unknown error"
    text = text if len(text) <= 240 else text[:237] + "..."
    return (
        f"image_model.weights = 'imagenet': cannot download the {backbone} ImageNet weights "
        f"({text}); on an offline machine, fetch the file where there is a network and set "
        "image_model.weights to its local path"
    )


def fetch(backbone: str, size: int) -> None:
    """Build the backbone with ImageNet weights, which makes Keras download and cache them."""
    import socket

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    socket.setdefaulttimeout(TIMEOUT_SECONDS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "weights for input shape (224, 224) will be loaded"
        getattr(keras.applications, backbone)(
            include_top=False, weights="imagenet", input_shape=(size, size, 3), pooling="avg"
        )


def keras_models_dirs() -> list[Path]:
    """Where Keras keeps downloaded weights: `$KERAS_HOME/models` (else `~/.keras/models`),
    or `/tmp/.keras/models` where that is not writable."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return [Path(home) / "models", Path("/tmp/.keras/models")]


def anything_cached() -> bool:
    """Whether Keras's weights cache holds any file (which may be the backbone's)."""
    for folder in keras_models_dirs():
        try:
            with os.scandir(folder) as entries:
                if any(True for _ in entries):
                    return True
        except OSError:
            continue
    return False


def unreachable(url: str = WEIGHTS_HOST, timeout: float = TIMEOUT_SECONDS) -> str | None:
    """Why `url` cannot be reached the way Keras reaches it (the same proxy settings), or
    None when it answers (with any HTTP status)."""
    import http.client
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener()  # reads the proxy variables now
    try:
        with opener.open(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # the host answered
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        # refused, unknown host, timeout, a bad proxy setting, or not HTTP at all
        reason = getattr(exc, "reason", None) or exc
        return f"{url} cannot be reached: {reason}"


def ensure_pretrained_weights(backbone: str, size: int) -> None:
    """Find or download the weights in a child process; InputError with one line on failure.
    With nothing cached, a host out of reach is that line at once (no TensorFlow started)."""
    if not anything_cached():
        reason = unreachable()
        if reason is not None:
            raise InputError(pretrained_error(backbone, reason))
    proc = subprocess.run(
        [sys.executable, "-m", "dfu_tui.engine.pretrained", backbone, str(size)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if proc.returncode != 0:
        lines = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
        reason = lines[-1][len("error: ") :] if lines else f"exit code {proc.returncode}"
        raise InputError(pretrained_error(backbone, reason))


def main(argv: list[str]) -> int:
    backbone, size = argv[0], int(argv[1])
    try:
        fetch(backbone, size)
    except Exception as exc:  # Keras wraps network errors in a bare Exception
        print(f"error: {' '.join(str(exc).split()) or type(exc).__name__}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
