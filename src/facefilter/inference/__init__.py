"""Applying trained filters: `Filter` (a model, loaded once, on torch or onnxruntime) and
`PhotoFilter` (detect, align, translate, paste back), used by files, video, webcam, the
demo and eval alike. Knows nothing of training."""

from facefilter.inference.filter import Filter
from facefilter.inference.photo import FaceOptions, NoFaceError, PhotoFilter, Request, Translated

__all__ = ["FaceOptions", "Filter", "NoFaceError", "PhotoFilter", "Request", "Translated"]
