"""Built-in synthetic faces: the project's embedded data and the ground truth of its
quality benchmarks.

Each face is a parameter vector (`FaceParams`: identity, CelebA-named attributes,
pose, light, backdrop) drawn in one of `STYLES`. The same row in two styles is the
same person in the same pose, so photo/anime/cartoon pairs are true pairs; forcing an
attribute (`SynthFaces(force=...)`, `synth:photo?set=Male:-1`, `data synth --set`)
keeps the person and changes the attribute, so edits have ground truth too.

Modules: `params` (sampling), `styles` (one `Look` record per style), `shapes`,
`head` and `features` (drawing), `render`, `edits` (set / where), `dataset`
(`SynthFaces`, files), `preview` (contact sheet), `source` (the `synth:` data spec),
`masks` (eye, chin, face and mouth regions of each face, for shape-specific metrics).
"""

from facefilter.synth.dataset import SynthFaces, write_dataset
from facefilter.synth.params import SYNTH_ATTRIBUTES, FaceParams, sample_params
from facefilter.synth.preview import write_preview
from facefilter.synth.regions import MASK_REGIONS, masked_l1, region_masks, synth_region_masks
from facefilter.synth.render import render
from facefilter.synth.styles import LOOKS, STYLES, Look, geometry

__all__ = [
    "LOOKS",
    "MASK_REGIONS",
    "STYLES",
    "SYNTH_ATTRIBUTES",
    "FaceParams",
    "Look",
    "SynthFaces",
    "geometry",
    "masked_l1",
    "region_masks",
    "render",
    "sample_params",
    "synth_region_masks",
    "write_dataset",
    "write_preview",
]
