"""The experiment engine: folds, branches, fusion, metrics, collapse rules (no Textual here)."""
