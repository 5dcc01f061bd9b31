"""test_backend.py — choosing the backend from Python: the model reports where it runs, an explicit
cpu always works, and cuda without a GPU (or without the CUDA build) is a clear error, not a crash."""
import pytest

import sdstream
from test_errors import raises


def test_cpu_model_reports_its_backend(tiny_sd15):
    model, taesd = tiny_sd15
    m = sdstream.Model(model, taesd=taesd, backend="cpu")
    assert m.backend == "cpu"
    assert m.compute_dtype == "fp32"
    assert sdstream.backend_available("cpu")


def test_cuda_without_a_gpu_is_a_clear_error(tiny_sd15):
    model, taesd = tiny_sd15
    try:
        gpu = sdstream.backend_available("cuda")
    except sdstream.Error as e:
        gpu = False
        # not compiled in, or compiled without a device: either way the reason is named
        assert e.status_name in ("SD_ERR_UNSUPPORTED", "SD_ERR_BACKEND"), e.status_name
        assert "cuda" in str(e).lower() or "CUDA" in str(e)
    if gpu:
        info = sdstream.device_info()
        assert info["name"] and info["multiprocessors"] > 0
        return
    with pytest.raises(sdstream.Error):
        sdstream.device_info()
    with pytest.raises(sdstream.Error):
        sdstream.Model(model, taesd=taesd, backend="cuda")
    # the CPU still works after the failed attempt
    assert sdstream.Model(model, taesd=taesd, backend="cpu").backend == "cpu"


def test_unknown_backend_name():
    with raises("SD_ERR_ARG", "tensorrt"):
        sdstream.backend_available("tensorrt")
