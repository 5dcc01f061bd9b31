"""test_errors.py — bad input through the binding raises sdstream.Error carrying the library's
status name and message (naming the file or field), and leaves the process and other streams
working. Python-side checks (array shape/dtype, option names) raise the same exception type."""
import numpy as np
import pytest

import sdstream
from conftest import ref


def raises(status_name, *fragments):
    """Context manager: the block must raise sdstream.Error with this status and message parts."""
    class Check:
        def __enter__(self):
            self.ctx = pytest.raises(sdstream.Error)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self.ctx.__exit__(*exc)
            err = self.info.value
            assert err.status_name == status_name, f"{err.status_name} != {status_name}: {err}"
            assert sdstream.status_name(err.status) == status_name
            assert str(err).startswith(status_name + ": ")
            for fragment in fragments:
                assert fragment in err.message, f"{fragment!r} not in {err.message!r}"
            return handled
    return Check()


@pytest.fixture(scope="module")
def stream():
    s = sdstream.StreamDiffusion(model=ref("models/tiny-sd15"), taesd=ref("models/taesd"),
                                 t_index_list=[32, 45], width=64, height=64)
    s.prepare("a watercolor cat")
    yield s
    s.close()


def test_missing_model_names_the_path(tmp_path):
    missing = tmp_path / "no-such-model"
    with raises("SD_ERR_NOT_FOUND", str(missing)):
        sdstream.StreamDiffusion(model=missing)


def test_corrupt_safetensors_names_the_file(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{nope")
    with raises("SD_ERR_FORMAT", str(bad)):
        sdstream.Model(bad)


def test_missing_lora_names_the_file(tmp_path):
    lora = tmp_path / "lcm.safetensors"
    with raises("SD_ERR_NOT_FOUND", str(lora)):
        sdstream.Model(ref("models/tiny-sd15"), lora=[(lora, 1.0)])


def test_lora_spec_parsing():
    assert sdstream.parse_lora_spec("a/b.safetensors:0.5") == ("a/b.safetensors", 0.5)
    assert sdstream.parse_lora_spec("c:d.safetensors") == ("c:d.safetensors", 1.0)
    with raises("SD_ERR_ARG", "no path"):
        sdstream.parse_lora_spec(":0.5")


def test_bad_stream_parameters_are_the_librarys_errors():
    model = sdstream.Model(ref("models/tiny-sd15"), taesd=ref("models/taesd"))
    with raises("SD_ERR_ARG", "size 100 x 64", "multiples of 8"):
        sdstream.StreamDiffusion(model, width=100, height=64)
    with raises("SD_ERR_ARG", "t_index_list[1] = 50", "0..49"):
        sdstream.StreamDiffusion(model, t_index_list=[32, 50], width=64, height=64)
    with raises("SD_ERR_ARG", "cfg_type"):
        sdstream.StreamDiffusion(model, cfg_type="max", width=64, height=64)
    model.close()


def test_frames_of_the_wrong_shape_or_dtype(stream):
    with raises("SD_ERR_ARG", "(64, 64, 3)", "(32, 32, 3)"):
        stream(np.zeros((32, 32, 3), np.uint8))
    with raises("SD_ERR_ARG", "uint8", "float32"):
        stream(np.zeros((64, 64, 3), np.float32))
    with raises("SD_ERR_ARG", "out"):
        stream(np.zeros((64, 64, 3), np.uint8), out=np.zeros((64, 64, 4), np.uint8))
    with raises("SD_ERR_ARG", "noise", "(2, 4, 8, 8)"):
        stream.set_noise(np.zeros((1, 4, 8, 8), np.float32))


def test_live_setter_errors(stream):
    with raises("SD_ERR_ARG", "3 steps given", "created with 2"):
        stream.set_t_index_list([10, 20, 30])  # the batch is sized by 2 steps
    with raises("SD_ERR_ARG", "guidance"):
        stream.set_guidance(float("nan"))


def test_prompt_before_first_frame(tiny_sd15):
    model, taesd = tiny_sd15
    with sdstream.StreamDiffusion(model, taesd=taesd, width=64, height=64) as s:
        with raises("SD_ERR_STATE", "prompt"):
            s(np.zeros((64, 64, 3), np.uint8))


def test_backend_and_dtype_are_checked(tiny_sd15):
    model, taesd = tiny_sd15
    with raises("SD_ERR_UNSUPPORTED", "tensorrt", "cpu"):
        sdstream.StreamDiffusion(model, taesd=taesd, backend="tensorrt")
    with raises("SD_ERR_UNSUPPORTED", "fp16"):
        sdstream.StreamDiffusion(model, taesd=taesd, dtype="fp16")


def test_closed_stream_is_an_error_not_a_crash(tiny_sd15):
    model, taesd = tiny_sd15
    s = sdstream.StreamDiffusion(model, taesd=taesd, width=64, height=64)
    s.close()
    s.close()
    with raises("SD_ERR_STATE", "closed"):
        s.prepare("a cat")


def test_the_stream_still_works_after_errors(stream):
    out = stream(np.full((64, 64, 3), 128, np.uint8))
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
