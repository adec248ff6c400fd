"""The studio: a local web app to watch, compare and start runs (see README.md here)."""
