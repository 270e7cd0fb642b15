"""dfu-tui: patient-level cross-validated fusion experiments on diabetic foot ulcer data."""

__version__ = "0.1.0"
