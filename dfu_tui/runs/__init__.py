"""Run directories: events, predictions, results (no Textual here)."""
