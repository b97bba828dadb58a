"""facefilter: trainable face filters (real to anime, cartoon, male to female, add a smile)."""

__version__ = "0.1.0"
