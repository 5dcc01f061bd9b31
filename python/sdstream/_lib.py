"""_lib.py — the C API of libsdstream as ctypes sees it: finding the library, the public structs,
every bound function's prototype, and the exception raised on a failing status.

Kept in step with include/sdstream.h by tests/test_api_coverage.py: every function the header
declares is in FUNCTIONS or in SKIPPED (with the reason), and every struct mirrored here has the
C compiler's size and field offsets.

ctypes.CDLL (not PyDLL) releases the GIL for the duration of each foreign call, so frames of
different streams run in parallel from Python threads.
"""
import ctypes
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_double, c_float, c_int,
                    c_int32, c_int64, c_size_t, c_uint, c_uint8, c_uint64, c_void_p)
from pathlib import Path

SD_TOKENS = 77
SD_MAX_T_INDEX = 16
SD_MAX_LORAS = 16

SD_OK = 0
SD_ERR_ARG = 1
SD_ERR_UNSUPPORTED = 4
SD_ERR_NOT_FOUND = 7
SD_ERR_STATE = 8

SD_COMPONENT_ALL = 0xFF
SD_PRECISION_FP32 = 0
SD_PRECISION_BF16 = 1
SD_PRECISION_FP16 = 2
SD_PRECISION_AUTO = 3
SD_BACKEND_TYPE_AUTO = 0
SD_BACKEND_TYPE_CPU = 1
SD_BACKEND_TYPE_CUDA = 2
CFG_TYPES = {"none": 0, "full": 1, "self": 2, "initialize": 3}


class Error(Exception):
    """A failure reported by libsdstream (or caught before the call, with the status it would get).

    status: the sd_status code (int); status_name: "SD_ERR_FORMAT", ...; message: sd_last_error(),
    which names the file, tensor or field and what was expected."""

    def __init__(self, status, status_name, message):
        super().__init__(f"{status_name}: {message}")
        self.status = status
        self.status_name = status_name
        self.message = message


# ---- structs (field for field as in sdstream.h) ----------------------------------------------

class sd_lora(Structure):
    _fields_ = [("path", c_char_p), ("scale", c_float)]


# void (*progress)(void *user, const char *part, int index, int count)
PROGRESS_FN = CFUNCTYPE(None, c_void_p, c_char_p, c_int, c_int)


class sd_model_params(Structure):
    _fields_ = [("path", c_char_p), ("tokenizer_dir", c_char_p), ("config_dir", c_char_p),
                ("taesd_path", c_char_p), ("variant", c_char_p), ("components", c_uint),
                ("precision", c_int), ("n_threads", c_int), ("loras", POINTER(sd_lora)),
                ("n_loras", c_int), ("lora_allow_unused", c_int), ("progress", PROGRESS_FN),
                ("progress_user", c_void_p), ("backend", c_int)]


class sd_lora_report(Structure):
    _fields_ = [("unet_modules", c_int), ("text_encoder_modules", c_int),
                ("unloaded_modules", c_int), ("skipped_keys", c_int), ("fuse_ms", c_double)]


class sd_stream_params(Structure):
    _fields_ = [("width", c_int), ("height", c_int), ("t_index_list", c_int * SD_MAX_T_INDEX),
                ("n_t_index", c_int), ("strength", c_float), ("num_inference_steps", c_int),
                ("frame_buffer_size", c_int), ("use_denoising_batch", c_int),
                ("do_add_noise", c_int), ("cfg_type", c_int), ("guidance_scale", c_float),
                ("delta", c_float), ("seed", c_uint64), ("frame_seed", c_uint64),
                ("similar_filter_threshold", c_float), ("similar_filter_max_skip", c_int),
                ("filter_seed", c_uint64), ("use_taesd", c_int), ("turbo", c_int)]


class sd_stream_timings(Structure):
    _fields_ = [("preprocess_ms", c_double), ("encode_ms", c_double), ("unet_ms", c_double),
                ("decode_ms", c_double), ("postprocess_ms", c_double), ("total_ms", c_double),
                ("encode_gflop", c_double), ("unet_gflop", c_double), ("decode_gflop", c_double),
                ("unet_batch", c_int)]


READ_FN = CFUNCTYPE(c_int, c_void_p, POINTER(c_uint8))
WRITE_FN = CFUNCTYPE(c_int, c_void_p, POINTER(c_uint8))


class sd_frame_source(Structure):
    _fields_ = [("read", READ_FN), ("user", c_void_p), ("live", c_int)]


class sd_frame_sink(Structure):
    _fields_ = [("write", WRITE_FN), ("user", c_void_p), ("live", c_int)]


class sd_run_params(Structure):
    _fields_ = [("queue_depth", c_int), ("max_frames", c_int64), ("emit_warmup", c_int),
                ("decode_threads", c_int)]


class sd_run_stats(Structure):
    _fields_ = [("frames_in", c_int64), ("frames_out", c_int64), ("dropped_in", c_int64),
                ("dropped_out", c_int64), ("skipped", c_int64), ("seconds", c_double),
                ("fps", c_double), ("preprocess_ms", c_double), ("denoise_ms", c_double),
                ("decode_ms", c_double), ("postprocess_ms", c_double),
                ("max_input_queue", c_int), ("max_output_queue", c_int)]


# void (*sd_pull_progress)(void *user, const char *file, uint64_t done, uint64_t total, int cached)
PULL_PROGRESS_FN = CFUNCTYPE(None, c_void_p, c_char_p, c_uint64, c_uint64, c_int)


class sd_pull_params(Structure):
    _fields_ = [("id", c_char_p), ("revision", c_char_p), ("variant", c_char_p), ("endpoint", c_char_p),
                ("token", c_char_p), ("progress", PULL_PROGRESS_FN), ("user", c_void_p)]


class sd_pull_result(Structure):
    _fields_ = [("snapshot", c_char * 4096), ("commit", c_char * 48), ("files", c_int), ("downloaded", c_int),
                ("bytes_downloaded", c_uint64)]


class sd_device_info(Structure):
    _fields_ = [("name", c_char * 256), ("driver_version", c_int), ("runtime_version", c_int),
                ("compute_capability", c_int), ("multiprocessors", c_int), ("memory_gb", c_double),
                ("memory_used_gb", c_double), ("clock_ghz", c_double), ("fp16_dense_tflops", c_double)]


STRUCTS = [sd_pull_params, sd_pull_result, sd_device_info, sd_lora, sd_model_params, sd_lora_report, sd_stream_params, sd_stream_timings,
           sd_frame_source, sd_frame_sink, sd_run_params, sd_run_stats]
SKIPPED_STRUCTS = {
    "sd_image": "images cross the binding as numpy arrays / PIL images",
    "sd_y4m_info": "y4m video files are read with OpenCV or imageio in Python",
}

# ---- functions --------------------------------------------------------------------------------

class STATUS(c_int):
    """sd_status: its own type (not plain c_int, which int-returning functions such as
    sd_model_text_hidden_size use), so only status returns are checked by errcheck and raise."""
model_p = c_void_p
stream_p = c_void_p

# name: (restype, argtypes). Pointers to pixel/float buffers are c_void_p: numpy passes its data
# address directly (no copy).
FUNCTIONS = {
    "sd_last_error": (c_char_p, []),
    "sd_status_name": (c_char_p, [c_int]),
    "sd_version": (c_char_p, []),
    "sd_backends": (c_char_p, []),
    "sd_model_params_default": (sd_model_params, []),
    "sd_model_load": (STATUS, [POINTER(model_p), POINTER(sd_model_params)]),
    "sd_model_free": (None, [model_p]),
    "sd_model_lora_count": (c_int, [model_p]),
    "sd_model_lora_report": (STATUS, [model_p, c_int, POINTER(sd_lora_report)]),
    "sd_lora_parse_spec": (STATUS, [c_char_p, c_void_p, c_size_t, POINTER(c_float)]),
    "sd_model_set_threads": (STATUS, [model_p, c_int]),
    "sd_model_gflop": (c_double, [model_p]),
    "sd_model_describe": (c_char_p, [model_p]),
    "sd_model_backend_name": (c_char_p, [model_p]),
    "sd_model_compute_dtype": (c_char_p, [model_p]),
    "sd_backend_resolve": (c_int, [c_int]),
    "sd_backend_probe": (STATUS, [c_int]),
    "sd_model_tokenize": (STATUS, [model_p, c_char_p, POINTER(c_int32)]),
    "sd_model_text_hidden_size": (c_int, [model_p]),
    "sd_model_encode_prompt": (STATUS, [model_p, c_char_p, c_void_p, c_size_t]),
    "sd_model_eval_file": (STATUS, [model_p, c_char_p, c_char_p, c_char_p]),
    "sd_model_text_pooled_size": (c_int, [model_p]),
    "sd_model_encode_prompt_pooled": (STATUS, [model_p, c_char_p, c_void_p, c_size_t]),
    "sd_model_count_tokens": (STATUS, [model_p, c_char_p, POINTER(c_int)]),
    "sd_model_token_text": (c_char_p, [model_p, c_int32]),
    "sd_stream_params_check": (STATUS, [POINTER(sd_stream_params)]),
    "sd_hub_resolve": (STATUS, [c_char_p, c_void_p, c_size_t]),
    "sd_hub_pull": (STATUS, [POINTER(sd_pull_params), POINTER(sd_pull_result)]),
    "sd_stream_params_default": (sd_stream_params, []),
    "sd_stream_create": (STATUS, [POINTER(stream_p), model_p, POINTER(sd_stream_params)]),
    "sd_stream_free": (None, [stream_p]),
    "sd_stream_set_prompt": (STATUS, [stream_p, c_char_p, c_char_p]),
    "sd_stream_img2img": (STATUS, [stream_p, c_void_p, c_void_p, POINTER(c_int)]),
    "sd_stream_txt2img": (STATUS, [stream_p, c_void_p]),
    "sd_stream_img2img_f32": (STATUS, [stream_p, c_void_p, c_void_p, POINTER(c_int)]),
    "sd_stream_txt2img_f32": (STATUS, [stream_p, c_void_p]),
    "sd_stream_set_guidance": (STATUS, [stream_p, c_float, c_float]),
    "sd_stream_set_seed": (STATUS, [stream_p, c_uint64]),
    "sd_stream_set_t_index_list": (STATUS, [stream_p, POINTER(c_int), c_int]),
    "sd_stream_set_noise": (STATUS, [stream_p, c_void_p, c_size_t]),
    "sd_stream_get_timings": (STATUS, [stream_p, POINTER(sd_stream_timings)]),
    "sd_run_params_default": (sd_run_params, []),
    "sd_stream_run": (STATUS, [stream_p, POINTER(sd_frame_source), POINTER(sd_frame_sink),
                               POINTER(sd_run_params), POINTER(sd_run_stats)]),
    "sd_stream_request_stop": (None, [stream_p]),
    "sd_make_random_model": (STATUS, [c_char_p, c_char_p, c_char_p, c_char_p, c_uint64]),
    "sd_make_random_lcm_lora": (STATUS, [c_char_p, c_char_p, c_uint64]),
    "sd_measure_peak_gflops": (STATUS, [c_int, POINTER(c_double), POINTER(c_double)]),
    "sd_device_info_get": (STATUS, [c_int, POINTER(sd_device_info)]),
    "sd_randn": (STATUS, [c_uint64, c_int64, c_void_p]),
}

_IMAGES = "images are numpy arrays / PIL images in Python (PIL loads, saves and resizes them)"
_VIDEO = "video IO is OpenCV's or imageio's job in Python (examples/python/webcam.py)"
SKIPPED = {
    "sd_image_load": _IMAGES, "sd_image_save": _IMAGES, "sd_image_check_path": _IMAGES,
    "sd_image_alloc": _IMAGES, "sd_image_free": _IMAGES, "sd_image_fit": _IMAGES,
    "sd_y4m_reader_open": _VIDEO, "sd_y4m_reader_open_memory": _VIDEO,
    "sd_y4m_reader_info": _VIDEO, "sd_y4m_reader_read_rgb": _VIDEO,
    "sd_y4m_reader_close": _VIDEO, "sd_y4m_reader_open_file": _VIDEO, "sd_y4m_writer_open": _VIDEO,
    "sd_y4m_writer_write_rgb": _VIDEO, "sd_y4m_writer_close": _VIDEO,
    "sd_yuyv_to_rgb": "OpenCV delivers camera frames as BGR/RGB already",
    "sd_rgb_to_yuyv": "OpenCV delivers camera frames as BGR/RGB already",
}


def _library_candidates():
    """SDSTREAM_LIBRARY if set (and only it); else a library bundled next to this file; else the
    system's (an installed libsdstream.so.0 on the loader path, e.g. after `cmake --install`)."""
    explicit = os.environ.get("SDSTREAM_LIBRARY")
    if explicit:
        return [explicit]
    here = Path(__file__).resolve().parent
    return [str(p) for p in sorted(here.glob("libsdstream.so*"))] + ["libsdstream.so.0"]


def _load():
    errors = []
    for candidate in _library_candidates():
        try:
            return ctypes.CDLL(candidate)
        except OSError as e:
            errors.append(f"{candidate}: {e}")
    raise ImportError("sdstream: cannot load libsdstream (set SDSTREAM_LIBRARY to the path of "
                      "libsdstream.so, or install the library): " + "; ".join(errors))


def _errcheck(status, func, args):
    code = status.value  # a STATUS instance: ctypes does not convert subclasses of c_int
    if code != SD_OK:
        raise Error(code, status_name(code), lib.sd_last_error().decode("utf-8", "replace"))
    return code


def _bind(dll):
    for name, (restype, argtypes) in FUNCTIONS.items():
        try:
            fn = getattr(dll, name)
        except AttributeError:
            raise ImportError(f"sdstream: {dll._name} has no {name}: the library is older than "
                              "this binding") from None
        fn.restype, fn.argtypes = restype, argtypes
        if restype is STATUS:
            fn.errcheck = _errcheck
    return dll


lib = _bind(_load())


def status_name(status):
    """"SD_OK", "SD_ERR_FORMAT", ... for an sd_status code."""
    return lib.sd_status_name(status).decode()


def arg_error(message, status=SD_ERR_ARG):
    """The exception for a bad argument caught on the Python side, as the library would report it."""
    return Error(status, status_name(status), message)


def encode(text, what):
    """A str/PathLike argument as the C string the library takes (None stays NULL)."""
    if text is None:
        return None
    if isinstance(text, os.PathLike):
        text = os.fspath(text)
    if isinstance(text, bytes):
        return text
    if not isinstance(text, str):
        raise arg_error(f"{what}: expected a string or path, got {type(text).__name__}")
    return text.encode("utf-8")


class Handle:
    """Base of the objects owning a C handle: `handle` raises once closed; `with` and garbage
    collection close it. Subclasses set _handle and _what and define close()."""
    _handle = None
    _what = "object"

    @property
    def handle(self):
        if not self._handle:
            raise arg_error(f"this {self._what} is closed", SD_ERR_STATE)
        return self._handle

    def close(self):
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
