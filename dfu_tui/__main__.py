"""Allows `python -m dfu_tui`."""

from dfu_tui.cli import main

raise SystemExit(main())
