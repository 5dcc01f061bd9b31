"""_stream.py — sdstream.StreamDiffusion: upstream's StreamDiffusionWrapper API over sd_stream.

    stream = sdstream.StreamDiffusion(model="models/sd-turbo", taesd="models/taesd",
                                      t_index_list=[32, 45], width=512, height=512)
    stream.prepare("a watercolor cat")
    out = stream(frame)          # PIL image in -> PIL image out; HxWx3 uint8 array in -> array out

The frame calls release the GIL (ctypes foreign calls), so two streams on two models run at once
from two Python threads. One stream must not be used by two threads at once.
"""
import ctypes

import numpy as np

from . import _frames, _lib
from ._lib import arg_error, encode, lib
from ._model import Model


class StreamDiffusion(_lib.Handle):
    """A StreamDiffusion stream (img2img on frames, or txt2img), its model loaded or borrowed.

    model: a path (diffusers folder or .safetensors) or an sdstream.Model (then taesd, lora, dtype,
    backend belong to that Model). Parameters after the first line mirror upstream's wrapper;
    similar_image_filter_threshold > 0 turns on the stochastic similarity filter."""
    _what = "stream"

    def __init__(self, model, taesd=None, t_index_list=(32, 45), width=512, height=512,
                 cfg_type="self", guidance_scale=1.2, delta=1.0, seed=2, lora=None, backend=None,
                 dtype=None, *, mode="img2img", frame_buffer_size=1, use_denoising_batch=True,
                 do_add_noise=True, num_inference_steps=50, strength=None,
                 similar_image_filter_threshold=0.0, similar_image_filter_max_skip_frame=10,
                 frame_seed=None, filter_seed=0, use_tiny_vae=True, turbo=False, tokenizer=None,
                 config=None, variant=None, threads=0, output_type=None):
        self.model, self._owns_model = None, False
        if mode not in ("img2img", "txt2img"):
            raise arg_error(f"mode: expected 'img2img' or 'txt2img', got {mode!r}")
        if cfg_type not in _lib.CFG_TYPES:
            raise arg_error(f"cfg_type: expected one of {', '.join(_lib.CFG_TYPES)}, got {cfg_type!r}")
        if output_type not in (None, "pil", "np"):
            raise arg_error(f"output_type: expected 'pil' or 'np', got {output_type!r}")
        if isinstance(model, Model):
            if taesd is not None or lora is not None or dtype is not None:
                raise arg_error("taesd, lora and dtype are the Model's: pass them to sdstream.Model")
            self.model, self._owns_model = model, False
        else:
            self.model = Model(model, taesd=taesd, lora=lora, dtype=dtype, backend=backend,
                               tokenizer=tokenizer, config=config, variant=variant, threads=threads)
            self._owns_model = True
        p = lib.sd_stream_params_default()
        p.width, p.height = width, height
        if strength is not None:
            p.n_t_index, p.strength = 0, strength
        else:
            steps = list(t_index_list)
            if not 1 <= len(steps) <= _lib.SD_MAX_T_INDEX:
                raise arg_error(f"t_index_list: 1..{_lib.SD_MAX_T_INDEX} steps, got {len(steps)}")
            p.n_t_index = len(steps)
            p.t_index_list[:len(steps)] = steps
        p.num_inference_steps = num_inference_steps
        p.frame_buffer_size = frame_buffer_size
        p.use_denoising_batch = int(bool(use_denoising_batch))
        p.do_add_noise = int(bool(do_add_noise))
        p.cfg_type = _lib.CFG_TYPES[cfg_type]
        p.guidance_scale, p.delta, p.seed = guidance_scale, delta, seed
        if frame_seed is not None:
            p.frame_seed = frame_seed
        p.similar_filter_threshold = similar_image_filter_threshold
        p.similar_filter_max_skip = similar_image_filter_max_skip_frame
        p.filter_seed = filter_seed
        p.use_taesd = int(bool(use_tiny_vae))
        p.turbo = int(bool(turbo))
        handle = ctypes.c_void_p()
        try:
            lib.sd_stream_create(ctypes.byref(handle), self.model.handle, ctypes.byref(p))
        except BaseException:
            self._close_model()
            raise
        self._handle = handle
        self.mode, self.width, self.height = mode, width, height
        self.frame_buffer_size, self.output_type = frame_buffer_size, output_type
        self.num_inference_steps = num_inference_steps
        self.n_steps = p.n_t_index if p.n_t_index else 1
        self.batch = self.n_steps * frame_buffer_size if use_denoising_batch else frame_buffer_size
        self.guidance_scale, self.delta = guidance_scale, delta
        self.last_skipped = False

    # ---- lifetime --------------------------------------------------------------------------

    def _close_model(self):
        if self._owns_model and self.model is not None:
            self.model.close()
        self.model = None

    def close(self):
        """Frees the stream, then its model if the stream loaded it."""
        if self._handle:
            lib.sd_stream_free(self._handle)
            self._handle = None
        self._close_model()

    # ---- prompt and live updates -----------------------------------------------------------

    def prepare(self, prompt, negative_prompt="", num_inference_steps=None, guidance_scale=None,
                delta=None):
        """Encodes the prompt (and negative prompt) once; guidance and delta as upstream's prepare.
        num_inference_steps sizes the stream: give it to the constructor (here it must agree)."""
        if num_inference_steps is not None and num_inference_steps != self.num_inference_steps:
            raise arg_error("num_inference_steps: fixed when the stream is created; pass it to "
                            "StreamDiffusion(...)")
        lib.sd_stream_set_prompt(self.handle, encode(prompt, "prompt"),
                                 encode(negative_prompt, "negative_prompt"))
        if guidance_scale is not None or delta is not None:
            self.set_guidance(guidance_scale, delta)

    def update_prompt(self, prompt, negative_prompt=None):
        """A new prompt from the next frame; negative_prompt None keeps the current one."""
        lib.sd_stream_set_prompt(self.handle, encode(prompt, "prompt"),
                                 encode(negative_prompt, "negative_prompt"))

    def set_guidance(self, guidance_scale=None, delta=None):
        g = self.guidance_scale if guidance_scale is None else guidance_scale
        d = self.delta if delta is None else delta
        lib.sd_stream_set_guidance(self.handle, g, d)
        self.guidance_scale, self.delta = g, d

    def set_seed(self, seed):
        lib.sd_stream_set_seed(self.handle, seed)

    def set_t_index_list(self, t_index_list):
        steps = list(t_index_list)
        array = (ctypes.c_int * max(1, len(steps)))(*steps)
        lib.sd_stream_set_t_index_list(self.handle, array, len(steps))

    def set_noise(self, noise):
        """Replaces the initial noise: float32 [batch, 4, height/8, width/8] (upstream's
        stream.init_noise), e.g. to reproduce frames of the Python original."""
        shape = (self.batch, 4, self.height // 8, self.width // 8)
        array = _frames.float_array(noise, shape, "noise")
        lib.sd_stream_set_noise(self.handle, array.ctypes.data, array.size)

    # ---- frames ----------------------------------------------------------------------------

    def __call__(self, image=None, prompt=None, out=None):
        """img2img on `image` (mode "img2img") or a new txt2img image; prompt updates it first."""
        if self.mode == "txt2img":
            return self.txt2img(prompt, out=out)
        if image is None:
            raise arg_error("image: img2img mode needs an input frame")
        return self.img2img(image, prompt, out=out)

    def img2img(self, image, prompt=None, out=None):
        """One frame through the stream. image: PIL image, path, or uint8 array (H, W, 3) (with
        frame_buffer_size > 1: (fb, H, W, 3) or a list). Returns the same kind, written into `out`
        when given. With n steps the output belongs to the frame given n - 1 calls earlier."""
        if prompt is not None:
            self.update_prompt(prompt)
        frames, from_pil = _frames.to_input_array(image, self.width, self.height,
                                                  self.frame_buffer_size)
        result = _frames.output_array(out, self.width, self.height, self.frame_buffer_size)
        skipped = ctypes.c_int()
        lib.sd_stream_img2img(self.handle, frames.ctypes.data, result.ctypes.data,
                              ctypes.byref(skipped))
        self.last_skipped = bool(skipped.value)
        return _frames.to_output(result, self._as_pil(from_pil))

    def txt2img(self, prompt=None, out=None):
        """A new image from the prompt: PIL by default, a uint8 array with output_type="np"."""
        if prompt is not None:
            self.update_prompt(prompt)
        result = _frames.output_array(out, self.width, self.height, self.frame_buffer_size)
        lib.sd_stream_txt2img(self.handle, result.ctypes.data)
        return _frames.to_output(result, self._as_pil(True))

    def _as_pil(self, default):
        return default if self.output_type is None else self.output_type == "pil"

    def img2img_f32(self, images):
        """Float-level img2img (as the goldens): float32 [fb, 3, H, W] in [-1, 1] -> the same,
        unclamped."""
        shape = (self.frame_buffer_size, 3, self.height, self.width)
        array = _frames.float_array(images, shape, "images")
        out = np.empty(shape, dtype=np.float32)
        skipped = ctypes.c_int()
        lib.sd_stream_img2img_f32(self.handle, array.ctypes.data, out.ctypes.data,
                                  ctypes.byref(skipped))
        self.last_skipped = bool(skipped.value)
        return out

    def txt2img_f32(self):
        """Float-level txt2img: float32 [fb, 3, H, W], unclamped."""
        out = np.empty((self.frame_buffer_size, 3, self.height, self.width), dtype=np.float32)
        lib.sd_stream_txt2img_f32(self.handle, out.ctypes.data)
        return out

    @property
    def timings(self):
        """Stage times of the last call (ms) and its work (GFLOP), as a dict."""
        t = _lib.sd_stream_timings()
        lib.sd_stream_get_timings(self.handle, ctypes.byref(t))
        return {name: getattr(t, name) for name, _ in t._fields_}

    # ---- the threaded runner ---------------------------------------------------------------

    def run(self, frames, sink, *, live_source=False, live_sink=False, queue_depth=2,
            max_frames=0, emit_warmup=False):
        """Runs the stream over an iterable of uint8 (H, W, 3) frames with the library's threaded
        pipeline (input conversion, denoiser, decoder on their own threads), calling sink(frame)
        for each output in order. Returns the run's statistics as a dict. An exception from the
        iterable or the sink stops the run and is raised here."""
        source_iter = iter(frames)
        failure = []
        frame_bytes = self.width * self.height * 3
        shape = (self.height, self.width, 3)

        def read(_user, rgb):
            try:
                frame = next(source_iter)
            except StopIteration:
                return 0
            except BaseException as e:  # noqa: B902 - re-raised after the run
                failure.append(e)
                return -1
            try:
                array, _ = _frames.to_input_array(frame, self.width, self.height, 1)
            except _lib.Error as e:
                failure.append(e)
                return -1
            ctypes.memmove(rgb, array.ctypes.data, frame_bytes)
            return 1

        def write(_user, rgb):
            try:
                sink(np.ctypeslib.as_array(rgb, shape=shape).copy())
                return 0
            except BaseException as e:  # noqa: B902 - re-raised after the run
                failure.append(e)
                return -1

        source = _lib.sd_frame_source(_lib.READ_FN(read), None, int(live_source))
        sink_struct = _lib.sd_frame_sink(_lib.WRITE_FN(write), None, int(live_sink))
        params = lib.sd_run_params_default()
        params.queue_depth, params.max_frames, params.emit_warmup = queue_depth, max_frames, int(emit_warmup)
        stats = _lib.sd_run_stats()
        try:
            lib.sd_stream_run(self.handle, ctypes.byref(source), ctypes.byref(sink_struct),
                              ctypes.byref(params), ctypes.byref(stats))
        except _lib.Error:
            if failure:
                raise failure[0] from None
            raise
        if failure:
            raise failure[0]
        return {name: getattr(stats, name) for name, _ in stats._fields_}

    def request_stop(self):
        """Asks a running run() (on another thread) to finish after the frames in flight."""
        lib.sd_stream_request_stop(self.handle)
