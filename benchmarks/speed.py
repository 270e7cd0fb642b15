"""Wall time of `dfu-tui run` for configs/quick.toml and configs/default.toml, side by side.

The demo dataset and crop caches are built first, so the figures are training time.

    python benchmarks/speed.py
"""

from __future__ import annotations

from _common import run_cli, scratch


def main() -> None:
    runs = scratch("dfu-speed-")
    for config in ("configs/quick.toml", "configs/default.toml"):
        run_cli("validate", config)  # demo data and crop cache ready before timing
    for config in ("configs/quick.toml", "configs/default.toml"):
        seconds, _ = run_cli("run", config, "--runs-dir", str(runs))
        print(f"{config:22} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
