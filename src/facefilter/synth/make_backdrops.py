"""Cut the photo style's backdrop crops from scikit-image's sample photographs.

Run once, by hand, when the crops should change (scikit-image is a dev extra; the
renderer only reads the saved asset, so rendering never depends on it):

    python -m facefilter.synth.make_backdrops            # writes synth/backdrops.npz

Only photographs that hold no human face and are free of copyright are used, as their
docstrings in `skimage.data` state:

- coffee: CC0, by the photographer (Rachel Michetti), courtesy of Pikolo Espresso Bar;
- rocket: SpaceX launch photo of DSCOVR, released into the public domain by SpaceX;
- hubble_deep_field: NASA, public domain;
- grass, gravel, brick: CC0Textures, Creative Commons CC0;
- clock: a motion-blurred wall clock, public domain (Stefan van der Walt).

Never astronaut, camera or lfw_subset: they hold the faces the tests use as real faces.
chelsea (CC0) is left out too: a cat's face in the backdrop would teach a filter faces.
The crops mix scales (a window of 1 to 4 crop sides, area-resampled), flips, and
greys (grey photos, and a fifth of the colour crops made grey); `sources` in the file
names each crop's photograph.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ASSET = Path(__file__).with_name("backdrops.npz")
# photograph -> crops cut from it: mostly indoor and outdoor scenes, a few textures.
SOURCES: dict[str, int] = {
    "coffee": 10,
    "rocket": 10,
    "hubble_deep_field": 3,
    "grass": 3,
    "gravel": 3,
    "brick": 5,
    "clock": 4,
}
LICENCES: dict[str, str] = {
    "coffee": "CC0 (Rachel Michetti)",
    "rocket": "public domain (SpaceX)",
    "hubble_deep_field": "public domain (NASA)",
    "grass": "CC0 (CC0Textures)",
    "gravel": "CC0 (CC0Textures)",
    "brick": "CC0 (CC0Textures)",
    "clock": "public domain (Stefan van der Walt)",
}
FORBIDDEN = ("astronaut", "camera", "lfw_subset", "chelsea", "cat")  # faces: never backdrops


def _photo(name: str) -> np.ndarray:
    """A scikit-image sample as (H, W, 3) uint8 (grey photos repeated over channels)."""
    if name in FORBIDDEN:
        raise ValueError(f"{name} holds a face; it must not become a backdrop")
    import skimage.data  # dev extra: only this script needs it

    image = np.asarray(getattr(skimage.data, name)())
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]


def _area_resize(window: np.ndarray, side: int) -> np.ndarray:
    """Shrink a square (S, S, 3) window to (side, side, 3) by box averaging."""
    from PIL import Image

    resized = Image.fromarray(window).resize((side, side), Image.Resampling.BOX)
    return np.asarray(resized)


def cut_crops(side: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(K, side, side, 3) uint8 crops and (K,) source names, K = sum(SOURCES)."""
    rng = np.random.default_rng(seed)
    crops, names = [], []
    for name, count in SOURCES.items():
        photo = _photo(name)
        height, width = photo.shape[:2]
        for _ in range(count):
            window = int(min(height, width, side * rng.uniform(1.0, 4.0)))
            top = int(rng.integers(0, height - window + 1))
            left = int(rng.integers(0, width - window + 1))
            crop = _area_resize(photo[top : top + window, left : left + window], side)
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            if rng.random() < 0.2:  # some colour photos in grey, as black-and-white prints
                crop = np.repeat(crop.mean(2, keepdims=True), 3, axis=2).astype(np.uint8)
            crops.append(crop)
            names.append(name)
    return np.stack(crops), np.array(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSET)
    parser.add_argument("--side", type=int, default=96, help="crop side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    crops, names = cut_crops(args.side, args.seed)
    licences = np.array([LICENCES[name] for name in names])
    np.savez_compressed(args.out, crops=crops, sources=names, licences=licences)
    print(f"wrote {len(crops)} crops of {args.side} px to {args.out} "
          f"({args.out.stat().st_size / 1024:.0f} KiB)")  # fmt: skip


if __name__ == "__main__":
    main()
