"""Put on PYTHONPATH by the tests (`tests.helpers.STANDIN_ENV`): every Python process they
start (CLI, supervisor, workers, Ray workers) registers the deterministic stand-in image
branch as backbone "standin". Never installed; users cannot reach it."""

from dfu_tui import config

config.EXTRA_BACKBONES["standin"] = "tests.standin.branch:train"
