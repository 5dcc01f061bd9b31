"""_model.py — sdstream.Model: a loaded model (sd_model) and the module-level helpers around the
C API (version, backends, torch-exact noise, random benchmark models, LoRA specs, peak GFLOP/s).

A Model can be shared by several streams, but streams of one model must not run frames at the same
time (they share its backend); give each thread its own Model to run streams in parallel.
"""
import ctypes
import os

import numpy as np

from . import _lib
from ._lib import SD_TOKENS, Error, arg_error, encode, lib

_DTYPES = {None: _lib.SD_PRECISION_AUTO, "auto": _lib.SD_PRECISION_AUTO, "fp32": _lib.SD_PRECISION_FP32,
           "float32": _lib.SD_PRECISION_FP32, "bf16": _lib.SD_PRECISION_BF16,
           "bfloat16": _lib.SD_PRECISION_BF16, "fp16": _lib.SD_PRECISION_FP16,
           "float16": _lib.SD_PRECISION_FP16}
_BACKENDS = {None: _lib.SD_BACKEND_TYPE_AUTO, "auto": _lib.SD_BACKEND_TYPE_AUTO,
             "cpu": _lib.SD_BACKEND_TYPE_CPU, "cuda": _lib.SD_BACKEND_TYPE_CUDA}


def version():
    return lib.sd_version().decode()


def backends():
    """The compiled-in backends, e.g. ["cpu"] or ["cpu", "cuda"]."""
    return lib.sd_backends().decode().split()


def backend_available(name):
    """True when backend `name` ("cpu", "cuda") can run on this machine now; raises sdstream.Error
    with the reason (no GPU, no driver, not compiled in) otherwise."""
    if name not in ("cpu", "cuda"):
        raise arg_error(f"backend {name!r}: expected 'cpu' or 'cuda'", _lib.SD_ERR_ARG)
    lib.sd_backend_probe(_BACKENDS[name])
    return True


def parse_lora_spec(spec):
    """"PATH[:SCALE]" -> (path, scale), as the command line's --lora reads it."""
    path = ctypes.create_string_buffer(4096)
    scale = ctypes.c_float()
    lib.sd_lora_parse_spec(encode(spec, "lora"), path, len(path), ctypes.byref(scale))
    return path.value.decode(), scale.value


def randn(seed, shape):
    """torch.randn(shape, generator=torch.Generator().manual_seed(seed)) on the CPU, float32."""
    out = np.empty(shape, dtype=np.float32)
    lib.sd_randn(seed, out.size, out.ctypes.data)
    return out


def measure_peak_gflops(threads=0):
    """(fp32, bf16) peak GFLOP/s of this machine with `threads` threads (0: all cores)."""
    fp32, bf16 = ctypes.c_double(), ctypes.c_double()
    lib.sd_measure_peak_gflops(threads, ctypes.byref(fp32), ctypes.byref(bf16))
    return fp32.value, bf16.value


def device_info(backend="cuda"):
    """The GPU the cuda backend runs on, as a dict (name, driver and runtime versions, compute
    capability, multiprocessors, memory, clock, dense fp16 tensor peak in TFLOP/s). Raises
    sdstream.Error without the cuda backend or a usable GPU."""
    if backend not in ("cuda", "auto"):
        raise arg_error(f"device_info: backend {backend!r} has no device (use 'cuda')", _lib.SD_ERR_UNSUPPORTED)
    info = _lib.sd_device_info()
    lib.sd_device_info_get(_BACKENDS[backend], ctypes.byref(info))
    return {name: (getattr(info, name).decode() if name == "name" else getattr(info, name))
            for name, _ in info._fields_}


def make_random_model(arch, output_dir, tokenizer_dir=None, weights_dtype=None, seed=0):
    """A full-size diffusers folder of `arch` ("sd-turbo", "sd15") with random weights (benchmarks)."""
    lib.sd_make_random_model(encode(arch, "arch"), encode(output_dir, "output_dir"),
                             encode(tokenizer_dir, "tokenizer_dir"),
                             encode(weights_dtype, "weights_dtype"), seed)


def make_random_lcm_lora(arch, output_dir, seed=0):
    """A LoRA file with LCM-LoRA's real keys and shapes and random values (load/fuse benchmarks)."""
    lib.sd_make_random_lcm_lora(encode(arch, "arch"), encode(output_dir, "output_dir"), seed)


def _lora_list(lora):
    """[(path, scale)] from a list of (path, scale) / "PATH[:SCALE]" or upstream's {path: scale}."""
    if lora is None:
        return []
    items = lora.items() if isinstance(lora, dict) else lora
    if isinstance(items, (str, bytes, os.PathLike)):
        raise arg_error("lora: expected a list of (path, scale) or a {path: scale} dict, got one path")
    result = []
    for item in items:
        if isinstance(item, (str, os.PathLike)):
            result.append(parse_lora_spec(os.fspath(item)))
        elif isinstance(item, tuple) and len(item) == 2:
            result.append((os.fspath(item[0]), float(item[1])))
        else:
            raise arg_error(f"lora: entries are (path, scale) or 'PATH[:SCALE]', got {item!r}")
    if len(result) > _lib.SD_MAX_LORAS:
        raise arg_error(f"lora: at most {_lib.SD_MAX_LORAS} LoRAs, got {len(result)}", _lib.SD_ERR_ARG)
    return result


def _check_backend(backend, dtype):
    if backend not in (None, "auto") and backend not in backends():
        raise arg_error(f"backend '{backend}' is not compiled into this libsdstream "
                        f"(available: {', '.join(backends())})", _lib.SD_ERR_UNSUPPORTED)
    key = dtype.lower() if isinstance(dtype, str) else dtype
    if key not in _DTYPES:
        raise arg_error(f"dtype {dtype!r}: expected 'fp32' (float32 arithmetic, exact), 'bf16' "
                        "(bfloat16 weights), 'fp16' (the cuda backend's tensor cores) or 'auto'",
                        _lib.SD_ERR_UNSUPPORTED)
    return _DTYPES[key], _BACKENDS[backend]


class Model(_lib.Handle):
    """A loaded model: a diffusers folder or single .safetensors checkpoint, optionally a TAESD
    and LoRAs fused at load. Raises sdstream.Error with the library's message on failure."""

    _what = "Model"

    def __init__(self, path, taesd=None, lora=None, dtype=None, backend=None, *, tokenizer=None,
                 config=None, variant=None, threads=0, lora_allow_unused=False):
        precision, backend_type = _check_backend(backend, dtype)
        loras = _lora_list(lora)
        params = lib.sd_model_params_default()
        # the C strings must outlive the call: keep them in locals
        keep = [encode(path, "model"), encode(tokenizer, "tokenizer"), encode(config, "config"),
                encode(taesd, "taesd"), encode(variant, "variant")]
        params.path, params.tokenizer_dir, params.config_dir, params.taesd_path, params.variant = keep
        params.precision = precision
        params.backend = backend_type
        params.n_threads = threads
        params.lora_allow_unused = int(bool(lora_allow_unused))
        lora_array = (_lib.sd_lora * max(1, len(loras)))()
        for i, (lora_path, scale) in enumerate(loras):
            keep.append(encode(lora_path, "lora"))
            lora_array[i].path, lora_array[i].scale = keep[-1], scale
        if loras:
            params.loras, params.n_loras = lora_array, len(loras)
        handle = ctypes.c_void_p()
        lib.sd_model_load(ctypes.byref(handle), ctypes.byref(params))
        self._handle = handle

    def close(self):
        if self._handle:
            lib.sd_model_free(self._handle)
            self._handle = None

    def describe(self):
        return lib.sd_model_describe(self.handle).decode()

    def tokenize(self, prompt):
        """The SD_TOKENS (77) CLIP token ids of a prompt, as diffusers' encode_prompt makes them."""
        ids = (ctypes.c_int32 * SD_TOKENS)()
        lib.sd_model_tokenize(self.handle, encode(prompt, "prompt"), ids)
        return list(ids)

    @property
    def text_hidden_size(self):
        return lib.sd_model_text_hidden_size(self.handle)

    def encode_prompt(self, prompt):
        """The text encoder's last hidden state, float32 (77, text_hidden_size)."""
        return self._encode(lib.sd_model_encode_prompt, prompt, (SD_TOKENS, self.text_hidden_size))

    @property
    def text_pooled_size(self):
        """SDXL's pooled embedding width (1280); 0 for SD 1.x/2.x."""
        return lib.sd_model_text_pooled_size(self.handle)

    def encode_prompt_pooled(self, prompt):
        """SDXL: the pooled prompt embedding (text_encoder_2's text_embeds), float32 (pooled_size,)."""
        return self._encode(lib.sd_model_encode_prompt_pooled, prompt, (self.text_pooled_size,))

    def _encode(self, fn, prompt, shape):
        # a model without that encoder (size 0) gets the library's own SD_ERR_STATE and message
        out = np.empty(shape, dtype=np.float32)
        fn(self.handle, encode(prompt, "prompt"), out.ctypes.data, out.size)
        return out

    def eval_file(self, component, input_path, output_path):
        """Runs one component on the tensors of a safetensors file (see `sdstream eval`)."""
        lib.sd_model_eval_file(self.handle, encode(component, "component"),
                               encode(input_path, "input_path"), encode(output_path, "output_path"))

    def set_threads(self, threads):
        lib.sd_model_set_threads(self.handle, threads)

    @property
    def backend(self):
        """The backend this model runs on: "cpu" or "cuda"."""
        return lib.sd_model_backend_name(self.handle).decode()

    @property
    def compute_dtype(self):
        """The precision of its activations: "fp32", "fp16" or "bf16"."""
        return lib.sd_model_compute_dtype(self.handle).decode()

    @property
    def gflop(self):
        """GFLOP executed by this model's backend so far."""
        return lib.sd_model_gflop(self.handle)

    @property
    def lora_reports(self):
        """What each LoRA fused at load changed: a dict per LoRA, in the order given."""
        reports = []
        for i in range(lib.sd_model_lora_count(self.handle)):
            r = _lib.sd_lora_report()
            lib.sd_model_lora_report(self.handle, i, ctypes.byref(r))
            reports.append({name: getattr(r, name) for name, _ in r._fields_})
        return reports


__all__ = ["Error", "Model", "version", "backends", "parse_lora_spec", "randn",
           "measure_peak_gflops", "make_random_model", "make_random_lcm_lora"]
