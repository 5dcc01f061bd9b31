"""test_model.py — sdstream.Model's prompt encoding against the upstream goldens: SDXL's joined
penultimate states and pooled embedding (golden/sdxl/tiny-sdxl_text.safetensors, README §2.8), and
the int-returning queries (sizes), which must return numbers, not raise."""

import numpy as np
import sdstream
from conftest import ref
from safetensors_file import SafetensorsFile


def rel_error(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_sdxl_prompt_and_pooled_embeddings_match_upstream():
    golden = SafetensorsFile(ref("golden/sdxl/tiny-sdxl_text.safetensors"))
    prompts = golden.meta("prompts")
    with sdstream.Model(ref("models/tiny-sdxl")) as model:
        assert model.text_hidden_size == 80  # 32 (CLIP-L) + 48 (OpenCLIP-bigG), joined
        assert model.text_pooled_size == 40
        for i in (0, 2):
            joined = np.concatenate([golden.tensor("te1.penultimate_hidden_state")[i],
                                     golden.tensor("te2.penultimate_hidden_state")[i]], axis=-1)
            assert rel_error(model.encode_prompt(prompts[i]), joined) < 1e-4
            assert rel_error(model.encode_prompt_pooled(prompts[i]), golden.tensor("te2.text_embeds")[i]) < 1e-4


def test_sd15_sizes_and_no_pooled_embedding():
    with sdstream.Model(ref("models/tiny-sd15")) as model:
        assert model.text_hidden_size == 32
        assert model.text_pooled_size == 0
        assert model.encode_prompt("a cat").shape == (77, 32)
        try:
            model.encode_prompt_pooled("a cat")
        except sdstream.Error as e:
            assert e.status_name == "SD_ERR_STATE"
        else:
            raise AssertionError("an SD 1.5 model has no pooled embedding: must raise")
