"""The Textual dashboard: the only package importing Textual (never TensorFlow or sklearn)."""
