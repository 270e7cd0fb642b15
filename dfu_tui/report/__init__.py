"""`dfu-tui report RUN`: one self-contained HTML file of a run, for a co-author or a clinician.

Everything is inline: the figures are SVG drawn by matplotlib (Agg-family backends, text as
paths, so no font is fetched) embedded as `data:` images, the style is one `<style>` block,
and there is no script. It reads the run directory only (events, config, summary,
fingerprint, stored predictions); it never imports TensorFlow or scikit-learn (their versions
come from the installed package metadata). No per-patient value is written: the figures and
tables hold per-fold aggregates only.

A running, stale, failed or cancelled run gets a partial report, marked so at the top.
"""

from dfu_tui.report.build import build_report
from dfu_tui.report.sections import clinical_table

__all__ = ["build_report", "clinical_table"]
