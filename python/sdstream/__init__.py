"""sdstream — StreamDiffusion (real-time Stable Diffusion) in C, from Python, without PyTorch.

A thin ctypes binding over libsdstream (include/sdstream.h). The library is found through
$SDSTREAM_LIBRARY, next to this package, or on the system's loader path (libsdstream.so.0).

    import sdstream
    stream = sdstream.StreamDiffusion(model="models/sd-turbo", taesd="models/taesd",
                                      t_index_list=[32, 45], width=512, height=512)
    stream.prepare("a watercolor cat")
    image = stream(image=frame)    # PIL in -> PIL out; (H, W, 3) uint8 array in -> array out

Failures raise sdstream.Error carrying the library's message and status name.
"""
from ._lib import SD_TOKENS, Error, status_name
from ._model import (Model, backend_available, backends, device_info, make_random_lcm_lora,
                     make_random_model, measure_peak_gflops, parse_lora_spec, randn, version)
from ._stream import StreamDiffusion
from ._wrapper import StreamDiffusionWrapper

__version__ = version()
__all__ = ["StreamDiffusion", "StreamDiffusionWrapper", "Model", "Error", "SD_TOKENS", "status_name", "version", "backends",
           "backend_available", "device_info", "randn", "parse_lora_spec", "measure_peak_gflops", "make_random_model",
           "make_random_lcm_lora"]
