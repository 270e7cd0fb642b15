"""A stop (SIGTERM) that a library swallows is still a stop (`dfu_tui.runs.stopsignal`)."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT

# A process that is stopped while inside a library whose bare `except:` turns any exception
# into one of its own (TensorFlow's `DType.max` does, under every new Keras layer's seed),
# and one that is stopped in its own code: what each catches, and the exit code it reports.
STOPPED_INSIDE = """
import os, signal, sys, time
from dfu_tui.runs import stopsignal

print(stopsignal.stop_code())  # none yet
stopsignal.install()

def library():
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
    except:  # noqa: E722 - as TensorFlow's DType.max
        raise TypeError("Cannot find maximum value of <dtype: 'int32'>.")

try:
    if sys.argv[1] == "library":
        library()
    else:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
except SystemExit as stop:
    print("SystemExit", stop.code, stopsignal.stop_code())
except Exception as exc:
    print(type(exc).__name__, stopsignal.stop_code())
"""


def stopped_in(where: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", STOPPED_INSIDE, where],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_a_stop_swallowed_by_a_library_is_still_known_as_a_stop() -> None:
    assert stopped_in("library") == ["0", "TypeError", "143"]
    assert stopped_in("ours") == ["0", "SystemExit", "143", "143"]
