"""steerage-ray: STEERAGE neural architecture search on Ray Tune."""

__version__ = "0.1.0"
