"""_wrapper.py — sdstream.StreamDiffusionWrapper: upstream's utils/wrapper.py class by name and
arguments, so a script written for it runs after changing its import. Options that only mean
something to PyTorch/TensorRT (device, dtype objects, acceleration, engine_dir, warmup, device_ids)
are accepted and ignored; models come from paths (no hub download here), so the LCM-LoRA and TAESD
that upstream downloads by default are given as lcm_lora_id= and vae_id= paths.
"""
from . import _frames
from ._lib import SD_ERR_NOT_FOUND, arg_error
from ._stream import StreamDiffusion


class StreamDiffusionWrapper(StreamDiffusion):
    def __init__(self, model_id_or_path, t_index_list, lora_dict=None, mode="img2img",
                 output_type="pil", lcm_lora_id=None, vae_id=None, device="cpu", dtype=None,
                 frame_buffer_size=1, width=512, height=512, warmup=10, acceleration="none",
                 do_add_noise=True, device_ids=None, use_lcm_lora=True, use_tiny_vae=True,
                 enable_similar_image_filter=False, similar_image_filter_threshold=0.98,
                 similar_image_filter_max_skip_frame=10, use_denoising_batch=True,
                 cfg_type="self", seed=2, use_safety_checker=False, engine_dir="engines"):
        turbo = "turbo" in str(model_id_or_path)  # upstream's own test for sd-turbo models
        loras = dict(lora_dict or {})
        if use_lcm_lora and not turbo:
            if lcm_lora_id is None:
                raise arg_error("use_lcm_lora: pass lcm_lora_id= the LCM-LoRA file (e.g. "
                                "lcm-lora-sdv1-5/pytorch_lora_weights.safetensors), or "
                                "use_lcm_lora=False", SD_ERR_NOT_FOUND)
            loras = {lcm_lora_id: 1.0, **loras}  # fused first, as upstream does
        if use_tiny_vae and vae_id is None:
            raise arg_error("use_tiny_vae: pass vae_id= a TAESD folder (madebyollin/taesd), or "
                            "use_tiny_vae=False for the model's own VAE", SD_ERR_NOT_FOUND)
        if use_safety_checker:
            raise arg_error("use_safety_checker: no safety checker in sdstream")
        super().__init__(
            model=model_id_or_path, taesd=vae_id if use_tiny_vae else None,
            lora=list(loras.items()) or None, t_index_list=t_index_list, width=width,
            height=height, cfg_type=cfg_type, seed=seed, mode=mode,
            frame_buffer_size=frame_buffer_size, use_denoising_batch=use_denoising_batch,
            do_add_noise=do_add_noise, use_tiny_vae=use_tiny_vae, turbo=turbo,
            similar_image_filter_threshold=similar_image_filter_threshold if enable_similar_image_filter else 0.0,
            similar_image_filter_max_skip_frame=similar_image_filter_max_skip_frame,
            output_type="np" if output_type == "np" else "pil")
        self.batch_size = self.batch

    def preprocess_image(self, image):
        """A path or PIL image as the stream's input frame (resized to width x height)."""
        array, _ = _frames.to_input_array(image, self.width, self.height, 1)
        return array
