"""_frames.py — frames between Python and the C calls: PIL images, file paths and HxWx3 uint8 numpy
arrays in, the same kind out. A C-contiguous uint8 array goes to the library by its data pointer
(no copy); anything else is converted once, and a wrong shape or dtype is an SD_ERR_ARG naming
what was expected and what was found.
"""
import os

import numpy as np

from ._lib import arg_error

try:  # PIL is optional: arrays work without it
    from PIL import Image
except ImportError:  # pragma: no cover - exercised only where Pillow is absent
    Image = None


def frame_shape(width, height, frames):
    return (height, width, 3) if frames == 1 else (frames, height, width, 3)


def to_input_array(image, width, height, frames):
    """(array the C call reads, whether the caller gave PIL/paths). PIL images and paths are
    resized to width x height like upstream's wrapper; arrays must already have the stream's size."""
    if isinstance(image, (str, os.PathLike)):
        if Image is None:
            raise arg_error("image: a path needs Pillow (python3-pil) to be read")
        with Image.open(image) as opened:
            return _pil_to_array(opened, width, height), True
    if Image is not None and isinstance(image, Image.Image):
        return _pil_to_array(image, width, height), True
    if isinstance(image, (list, tuple)) and frames > 1:
        arrays = [to_input_array(im, width, height, 1) for im in image]
        return np.stack([a for a, _ in arrays]), arrays[0][1]
    if not isinstance(image, np.ndarray):
        raise arg_error(f"image: expected a PIL image, a path or a numpy array, got {type(image).__name__}")
    want = frame_shape(width, height, frames)
    if image.dtype != np.uint8:
        raise arg_error(f"image: expected dtype uint8 (RGB 0..255), got {image.dtype}")
    if image.shape != want:
        raise arg_error(f"image: expected shape {want} (the stream's height, width, RGB), got {image.shape}")
    return np.ascontiguousarray(image), False


def _pil_to_array(image, width, height):
    rgb = image.convert("RGB")
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height))
    return np.asarray(rgb, dtype=np.uint8).copy()


def output_array(out, width, height, frames):
    """A C-contiguous uint8 array for the C call to write: the caller's `out` (checked) or a new one."""
    want = frame_shape(width, height, frames)
    if out is None:
        return np.empty(want, dtype=np.uint8)
    if not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.shape != want:
        found = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise arg_error(f"out: expected a uint8 array of shape {want}, got {found}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise arg_error("out: must be a writeable C-contiguous array (the library writes into it directly)")
    return out


def to_output(array, as_pil):
    """The frame(s) as the caller gets them: PIL image(s) or the array itself."""
    if not as_pil:
        return array
    if Image is None:
        raise arg_error("output_type 'pil' needs Pillow (python3-pil)")
    if array.ndim == 3:
        return Image.fromarray(array, "RGB")
    return [Image.fromarray(frame, "RGB") for frame in array]


def float_array(values, shape, what):
    """A C-contiguous float32 array of exactly `shape` for the float-level calls."""
    array = np.ascontiguousarray(values, dtype=np.float32)
    if array.shape != tuple(shape):
        raise arg_error(f"{what}: expected float32 shape {tuple(shape)}, got {array.shape}")
    return array
