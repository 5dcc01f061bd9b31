#!/usr/bin/env python3
"""upstream_wrapper_port.py — upstream StreamDiffusion's examples/img2img/single.py, ported to
sdstream. Lines marked `# sdstream:` are the whole change; everything else is upstream's script.

  1. the import: `from utils.wrapper import StreamDiffusionWrapper` -> `from sdstream import ...`
  2. the models that upstream downloads from the Hub by default are paths here: `vae_id=` (TAESD,
     madebyollin/taesd) and `lcm_lora_id=` (latent-consistency/lcm-lora-sdv1-5's weights file).
  3. `acceleration="xformers"`/`"tensorrt"` and `device` may stay: they are accepted and ignored.

  python3 upstream_wrapper_port.py INPUT.png OUTPUT.png MODEL TAESD [LCM_LORA.safetensors]
(upstream used fire.Fire(main); plain sys.argv here, since python-fire is not a Debian package.)
"""
import sys
from typing import Dict, Literal, Optional

from sdstream import StreamDiffusionWrapper  # sdstream: was `from utils.wrapper import ...`


def main(
    input: str,
    output: str,
    model_id_or_path: str = "KBlueLeaf/kohaku-v2.1",
    vae_id: Optional[str] = None,  # sdstream: TAESD folder (upstream downloads madebyollin/taesd)
    lcm_lora_id: Optional[str] = None,  # sdstream: LCM-LoRA file (upstream downloads it)
    lora_dict: Optional[Dict[str, float]] = None,
    prompt: str = "1girl with brown dog hair, thick glasses, smiling",
    negative_prompt: str = "low quality, bad quality, blurry, low resolution",
    width: int = 512,
    height: int = 512,
    acceleration: Literal["none", "xformers", "tensorrt"] = "xformers",
    use_denoising_batch: bool = True,
    guidance_scale: float = 1.2,
    cfg_type: Literal["none", "full", "self", "initialize"] = "self",
    seed: int = 2,
    delta: float = 0.5,
):
    stream = StreamDiffusionWrapper(
        model_id_or_path=model_id_or_path,
        lora_dict=lora_dict,
        t_index_list=[22, 32, 45],
        frame_buffer_size=1,
        width=width,
        height=height,
        warmup=10,
        acceleration=acceleration,
        mode="img2img",
        use_denoising_batch=use_denoising_batch,
        cfg_type=cfg_type,
        seed=seed,
        vae_id=vae_id,  # sdstream
        lcm_lora_id=lcm_lora_id,  # sdstream
        use_lcm_lora=lcm_lora_id is not None,  # sdstream: upstream fuses LCM-LoRA by default
    )

    stream.prepare(
        prompt=prompt,
        negative_prompt=negative_prompt,
        num_inference_steps=50,
        guidance_scale=guidance_scale,
        delta=delta,
    )

    image_tensor = stream.preprocess_image(input)

    for _ in range(stream.batch_size - 1):
        stream(image=image_tensor)

    output_image = stream(image=image_tensor)
    output_image.save(output)


if __name__ == "__main__":
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], model_id_or_path=sys.argv[3], vae_id=sys.argv[4],
         lcm_lora_id=sys.argv[5] if len(sys.argv) == 6 else None)
