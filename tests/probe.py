"""A command line for the fork server's own test (`tests/unit/test_zygote.py`)."""

import os
import sys
import time

what = sys.argv[1]
if what == "who":
    mask = os.umask(0)
    print(os.getpid(), os.getcwd(), os.environ.get("PROBE", "-"), oct(mask), sys.argv[0])
    print("to stderr", file=sys.stderr)
    import gc

    frozen = gc.get_freeze_count() > 0  # the server's preloaded objects
    print("pandas" in sys.modules, "dfu_tui.runs.supervisor" in sys.modules, frozen)
elif what == "path":  # where imports come from, and what `site` ran
    custom = sys.modules.get("sitecustomize")
    print(sys.path)
    print(getattr(custom, "__file__", None), "dfu_tui.config" in sys.modules)
    if "dfu_tui.config" in sys.modules:
        print(sorted(sys.modules["dfu_tui.config"].EXTRA_BACKBONES))
elif what == "raise":
    raise RuntimeError("the probe raised")
elif what == "exit":
    sys.exit("said, and exit 1")
elif what == "kill":
    os.kill(os.getpid(), 9)
elif what == "sleep":
    time.sleep(60)
