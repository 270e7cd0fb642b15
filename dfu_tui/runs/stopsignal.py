"""SIGTERM as a stop, in a worker or a detached fit: raised as `SystemExit` wherever the
process is (so the `finally`s of atomic writes remove their temporary files on the way
out), and remembered, because a library may swallow that exception: TensorFlow's
`DType.max` (which Keras reads to seed each new layer) catches everything with a bare
`except:` and raises a `TypeError` of its own, and a fit stopped there said "failed".
Whoever catches an error after a stop asks `stop_code()` and reports the stop instead.
"""

from __future__ import annotations

import signal
from types import FrameType

_received: list[int] = []


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise SystemExit(128 + signum)


def install() -> None:
    """Make SIGTERM a stop in this process (from its main thread)."""
    signal.signal(signal.SIGTERM, _on_signal)


def stop_code() -> int:
    """The exit code of the first stop this process received (128 + the signal), or 0 where
    none came."""
    return 128 + _received[0] if _received else 0
