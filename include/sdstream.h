/* sdstream.h — the public API of libsdstream, StreamDiffusion in C.
 *
 * MANUAL
 *
 *   sd_model_params mp = sd_model_params_default();
 *   mp.path = "models/sd-turbo";                 // diffusers folder or single .safetensors
 *   sd_lora lcm = {"lcm-lora-sdv1-5/pytorch_lora_weights.safetensors", 1.0f};
 *   mp.loras = &lcm, mp.n_loras = 1;              // optional: fused into the weights at load
 *   sd_model *model = NULL;
 *   if (sd_model_load(&model, &mp) != SD_OK) {
 *       fprintf(stderr, "%s\n", sd_last_error());  // names file, tensor, expected vs found
 *       return 1;
 *   }
 *   int32_t ids[SD_TOKENS];
 *   sd_model_tokenize(model, "a photo of a cat", ids);
 *   sd_model_free(model);
 *
 * Ownership: every `*_create`/`*_load` has a matching `*_free`; free(NULL) is a no-op. Strings
 * passed in are copied; nothing returned by the library needs to be freed by the caller unless its
 * comment says so.
 *
 * Errors: every function that can fail returns sd_status. On failure `*out` parameters are left
 * untouched and sd_last_error() returns a message for the calling thread (a fixed per-thread buffer:
 * the error path never allocates). The library never aborts or exits on bad input.
 *
 * Threads: distinct handles may be used from distinct threads at the same time. One handle must not
 * be used by two threads at once. sd_last_error() is per thread.
 */
#ifndef SDSTREAM_H
#define SDSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libsdstream.so is compiled with -fvisibility=hidden: only what this header declares is exported
 * (internal sd_* helpers stay out of the ABI). For a program including it this changes nothing. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#define SDSTREAM_VERSION "0.1.0"

/* Status codes, sqlite-style: SD_OK is 0, everything else is a failure class. */
typedef enum sd_status {
    SD_OK = 0,
    SD_ERR_ARG = 1,         /* invalid argument from the caller (NULL handle, bad size, bad option) */
    SD_ERR_IO = 2,          /* a file could not be opened, read, mapped or written */
    SD_ERR_FORMAT = 3,      /* a file is malformed: safetensors header, JSON, image, y4m */
    SD_ERR_UNSUPPORTED = 4, /* well-formed but not supported: architecture, dtype, config value */
    SD_ERR_NOMEM = 5,       /* an allocation failed */
    SD_ERR_LIMIT = 6,       /* input exceeds a documented limit (header size, prompt, image size) */
    SD_ERR_NOT_FOUND = 7,   /* a required file, tensor or key is missing */
    SD_ERR_STATE = 8,       /* call made in the wrong order (e.g. no prompt set) */
    SD_ERR_BACKEND = 9,     /* the compute backend failed */
} sd_status;

/* The message of the last failure on this thread ("" if none). Valid until the next failing call
 * on this thread. */
const char *sd_last_error(void);
/* "SD_OK", "SD_ERR_FORMAT", ... */
const char *sd_status_name(sd_status status);

const char *sd_version(void);
/* Space-separated list of the compiled-in backends, e.g. "cpu" or "cpu cuda". */
const char *sd_backends(void);

/* Number of token ids a prompt is encoded to (CLIP context length). */
#define SD_TOKENS 77

/* ---- Models -------------------------------------------------------------------------------- */

typedef struct sd_model sd_model;

/* Which parts of a model to load; the rest is validated (configs) but not read. */
enum {
    SD_COMPONENT_TEXT_ENCODER = 1u << 0, /* text encoder (implies the tokenizer) */
    SD_COMPONENT_UNET = 1u << 1,
    SD_COMPONENT_VAE = 1u << 2,
    SD_COMPONENT_TAESD = 1u << 3,
    SD_COMPONENT_TOKENIZER = 1u << 4, /* the tokenizer alone */
    SD_COMPONENT_ALL = 0xffu,
};

/* Numeric precision of a loaded model. */
typedef enum sd_precision {
    /* float32 arithmetic: exact, what the golden tests check. The default. Weight matrices of
     * float16/bfloat16 files stay 16-bit in memory and are widened exactly as they are used. */
    SD_PRECISION_FP32 = 0,
    /* bfloat16 weight matrices (linear and conv weights, embedding tables: half the memory),
     * float32 activations and accumulation. Outputs stay within 1e-2 relative of float32.
     * SDSTREAM_BF16_MATH=1 also rounds the activations to bf16 in the matrix products on CPUs with
     * AVX512_BF16 (experimental: not faster yet, see bench/RESULTS.md). */
    SD_PRECISION_BF16 = 1,
    /* float16 activations and weights with float32 accumulation (tensor cores): the CUDA
     * backend's default. Not on the CPU backend. */
    SD_PRECISION_FP16 = 2,
    /* The backend's own default: FP16 on CUDA, FP32 on the CPU (sd_model_params_default's choice). */
    SD_PRECISION_AUTO = 3,
} sd_precision;

/* Which backend runs a model's ops (sd_model_params.backend). */
typedef enum sd_backend_type {
    /* $SDSTREAM_BACKEND ("cpu" or "cuda") when set; else CUDA when it is compiled in and a GPU with
     * its driver is present; else the CPU. The default. */
    SD_BACKEND_TYPE_AUTO = 0,
    SD_BACKEND_TYPE_CPU = 1,
    /* NVIDIA GPUs (cmake -DSD_CUDA=ON builds; sd_backends() lists "cuda"). Fails the load with
     * SD_ERR_BACKEND naming the reason when this machine has no usable GPU or driver. */
    SD_BACKEND_TYPE_CUDA = 2,
} sd_backend_type;

/* What SD_BACKEND_TYPE_AUTO means on this machine now (CPU or CUDA); other values come back as
 * they are. An invalid $SDSTREAM_BACKEND resolves to the CPU (the load then reports it). */
sd_backend_type sd_backend_resolve(sd_backend_type requested);
/* SD_OK when the backend can run here; else SD_ERR_UNSUPPORTED (not compiled in) or
 * SD_ERR_BACKEND (no GPU, no driver), with the reason in sd_last_error(). */
sd_status sd_backend_probe(sd_backend_type type);

/* A LoRA to fuse into the model's weights at load (sd_model_params.loras). */
typedef struct sd_lora {
    /* .safetensors file in kohya/A1111 (lora_unet_*, lora_te_*: .lora_down/.lora_up/.alpha, 3x3
     * conv LoRAs included, e.g. LCM-LoRA), diffusers (unet.<module>.lora.down/.lora.up,
     * ...lora_linear_layer.down/.up) or PEFT (...lora_A/.lora_B, base_model.model. prefix) keys;
     * F32, F16 or BF16. */
    const char *path;
    /* Strength: W <- W + scale * (alpha / rank) * up * down (alpha = rank when the file has
     * none). 1.0 is the file's own strength; diffusers' fuse_lora(lora_scale=s) is scale s. */
    float scale;
} sd_lora;

#define SD_MAX_LORAS 16

typedef struct sd_model_params {
    /* A diffusers folder (model_index.json), a single-file SD 1.x/2.x checkpoint (.safetensors),
     * or, for TAESD-only use, a TAESD folder or file. Required. */
    const char *path;
    /* Folder with vocab.json + merges.txt (+ tokenizer_config.json) for single-file checkpoints,
     * which carry no tokenizer. Default NULL: the model's own tokenizer/ folder, else the Hugging
     * Face cache. */
    const char *tokenizer_dir;
    /* Folder whose <component>/config.json files describe a single-file checkpoint (a diffusers
     * folder of the same architecture). Default NULL: inferred from the tensor shapes and the
     * known SD 1.x / SD 2.x architectures. */
    const char *config_dir;
    /* TAESD folder or file. Default NULL: none. */
    const char *taesd_path;
    /* "fp16" prefers diffusers' *.fp16.safetensors files. Default NULL: the plain files. */
    const char *variant;
    /* SD_COMPONENT_* bits to load. Default SD_COMPONENT_ALL. */
    unsigned components;
    /* SD_PRECISION_AUTO in sd_model_params_default() (FP16 on CUDA, FP32 on the CPU); FP32, BF16 or
     * FP16 (CUDA only). A zeroed struct means FP32. */
    sd_precision precision;
    /* CPU threads. Default 0: $SDSTREAM_THREADS when set (a bad value fails the load), else all
     * online cores. */
    int n_threads;
    /* LoRAs fused into the UNet and text encoder weights once, at load, in float32, each weight
     * then stored in the model's storage type (so backends see plain weights and pay nothing per
     * frame). Applied in order; several may touch one weight. Default NULL / 0 (up to SD_MAX_LORAS).
     * A LoRA that does not fit (a key no format knows, a module the model lacks, an SDXL LoRA, a
     * rank or shape mismatch, no LoRA tensors at all) fails the load, naming the file and the
     * first keys that did not match: nothing is applied partially. Modules of a component that is
     * not loaded (sd_model_params.components) are not applied and not an error. */
    const sd_lora *loras;
    int n_loras;
    /* 1: keys and modules that fit nothing are skipped (counted in sd_lora_report.skipped_keys)
     * instead of failing the load; shape and rank mismatches still fail. Default 0. */
    int lora_allow_unused;
    /* Called on the loading thread before each part is read (part: "tokenizer", "text_encoder",
     * "unet", "vae", "taesd"; index counts from 1 to count) and once at the end with part NULL
     * and index == count. Default NULL: the library prints nothing. */
    void (*progress)(void *user, const char *part, int index, int count);
    void *progress_user;
    /* Default SD_BACKEND_TYPE_AUTO. */
    sd_backend_type backend;
} sd_model_params;

sd_model_params sd_model_params_default(void);

/* Opens, validates and loads a model. On error *out is untouched. */
sd_status sd_model_load(sd_model **out, const sd_model_params *params);
void sd_model_free(sd_model *model);

/* What loading fused of one LoRA (sd_model_params.loras[index]). */
typedef struct sd_lora_report {
    int unet_modules;         /* UNet weights it changed */
    int text_encoder_modules; /* text encoder weights it changed */
    int unloaded_modules;     /* modules of components that were not loaded (not applied) */
    int skipped_keys;         /* keys that fit nothing; 0 unless lora_allow_unused */
    /* milliseconds spent on this LoRA: parsing and reading its file, the delta GEMMs, and the fused
     * weights' conversion to their storage type (reading the model's own weights, which a load
     * without LoRA does too, is not counted) */
    double fuse_ms;
} sd_lora_report;

/* Number of LoRAs fused at load (sd_model_params.n_loras). */
int sd_model_lora_count(const sd_model *model);
/* The report of LoRA `index` (0 .. sd_model_lora_count() - 1). */
sd_status sd_model_lora_report(const sd_model *model, int index, sd_lora_report *out);
/* Parses the command-line form "PATH[:SCALE]" (scale default 1.0; the text after the last ':' is
 * the scale only when it is a finite number, so other paths with a ':' stay whole). path receives
 * the path (path_size bytes). */
sd_status sd_lora_parse_spec(const char *spec, char *path, size_t path_size, float *scale);

/* Threads of the model's CPU backend (default: all online cores). Not while a stream runs. */
sd_status sd_model_set_threads(sd_model *model, int n_threads);
/* GFLOP executed by the model's backend so far (convolutions, linear layers, attention). */
double sd_model_gflop(const sd_model *model);
/* The backend a loaded model runs on ("cpu" or "cuda") and its activation dtype ("fp32", "fp16",
 * "bf16"). */
const char *sd_model_backend_name(const sd_model *model);
const char *sd_model_compute_dtype(const sd_model *model);

/* A one-line human description: architecture, source layout, components loaded. */
const char *sd_model_describe(const sd_model *model);

/* Tokenizes a prompt as diffusers' encode_prompt does: [start] + up to 75 BPE ids + [end], padded
 * to SD_TOKENS with the model's pad id. ids must hold SD_TOKENS entries. */
sd_status sd_model_tokenize(sd_model *model, const char *prompt, int32_t ids[SD_TOKENS]);

/* Width of the prompt embedding the UNet reads (768 for SD 1.x, 1024 for SD 2.x; SDXL: both text
 * encoders' widths together, 768 + 1280 = 2048). */
int sd_model_text_hidden_size(const sd_model *model);

/* Runs the text encoder on a prompt: out receives the prompt embedding, SD_TOKENS rows of
 * sd_model_text_hidden_size() floats (row-major). out_len is the capacity of out in floats.
 * SD 1.x/2.x: the last hidden state. SDXL: as diffusers' StableDiffusionXLPipeline.encode_prompt,
 * both encoders' penultimate hidden states side by side (each tokenized by its own tokenizer). */
sd_status sd_model_encode_prompt(sd_model *model, const char *prompt, float *out, size_t out_len);

/* SDXL's pooled prompt embedding width (text_encoder_2's projection_dim, 1280); 0 for SD 1.x/2.x. */
int sd_model_text_pooled_size(const sd_model *model);

/* SDXL: the pooled prompt embedding (text_encoder_2's text_embeds) into out, sd_model_text_pooled_size()
 * floats (out_len: capacity in floats). SD_ERR_STATE for SD 1.x/2.x models, which have none. */
sd_status sd_model_encode_prompt_pooled(sd_model *model, const char *prompt, float *out, size_t out_len);

/* The number of BPE tokens of a prompt, without the start and end tokens. CLIP reads
 * SD_TOKENS - 2 = 75 of them; the rest are truncated (as diffusers does). */
sd_status sd_model_count_tokens(sd_model *model, const char *prompt, int *n_tokens);
/* The vocabulary text of a token id ("cat</w>"), "" when out of range or no tokenizer is loaded. */
const char *sd_model_token_text(const sd_model *model, int32_t id);

/* Runs one component on the named tensors of a safetensors file and writes its outputs to another.
 * component and tensors (input -> output names):
 *   "text_encoder"  input_ids -> last_hidden_state
 *   "unet"          sample, timestep, encoder_hidden_states -> noise_pred
 *   "vae_encode"    image -> latent_mean, latent_std        "vae_decode"    latent -> image
 *   "taesd_encode"  image -> latents                        "taesd_decode"  latents -> image
 * (for the TAESD ones load the TAESD folder itself as the model). This is how a user checks a
 * model against diffusers; the golden tests use the same code. */
sd_status sd_model_eval_file(sd_model *model, const char *component, const char *input_path,
                             const char *output_path);


/* ---- Streams ------------------------------------------------------------------------------- */

/* A stream runs StreamDiffusion on one model: a prompt, a fixed size, and a t_index_list of steps.
 * img2img: push a frame, get a generated frame (with the stream batch, the output of frame k is
 * the one pushed n-1 calls earlier, n = number of steps). txt2img: each call makes a new image.
 * A stream borrows its model: free streams before the model. One thread per stream; streams of
 * one model must not run at the same time (they share its backend). */
typedef struct sd_stream sd_stream;

typedef enum sd_cfg_type {
    SD_CFG_NONE = 0,       /* no guidance: one UNet row per step */
    SD_CFG_FULL = 1,       /* classic CFG: a negative-prompt row per step (2x UNet work) */
    SD_CFG_SELF = 2,       /* RCFG self-negative: the negative comes from stored noise (no extra work) */
    SD_CFG_INITIALIZE = 3, /* RCFG onetime-negative: one extra negative row per call */
} sd_cfg_type;

#define SD_MAX_T_INDEX 16

typedef struct sd_stream_params {
    int width, height;      /* output size, multiples of 8. Default 512 x 512 */
    /* Steps as indices into the num_inference_steps LCM schedule (0 = most noise). Default {32, 45}.
     * n_t_index == 0 uses `strength` for a single step instead. */
    int t_index_list[SD_MAX_T_INDEX];
    int n_t_index;
    float strength;          /* 0..1, used when n_t_index == 0: t_index = round((1 - s) * steps) */
    int num_inference_steps; /* Default 50 */
    int frame_buffer_size;   /* frames per call. Default 1 */
    int use_denoising_batch; /* 1: all steps in one UNet batch (stream batch); 0: sequential. Default 1 */
    int do_add_noise;        /* Default 1 */
    sd_cfg_type cfg_type;    /* Default SD_CFG_SELF (upstream's default) */
    float guidance_scale;    /* Default 1.2; forced to 1 for SD_CFG_NONE */
    float delta;             /* RCFG delta. Default 1.0 */
    uint64_t seed;           /* the noise generator (torch.Generator().manual_seed(seed)). Default 2 */
    /* Per-frame draws that upstream takes from torch's global generator (txt2img latents,
     * sequential-mode noise). Default 67280421310721: torch's own default seed, so a fresh Python
     * process and a fresh stream draw the same numbers. */
    uint64_t frame_seed;
    /* Stochastic similarity filter: 0 = off, else the cosine threshold (e.g. 0.98). */
    float similar_filter_threshold;
    int similar_filter_max_skip; /* Default 10 */
    uint64_t filter_seed;        /* seed of the filter's draws (Python random.seed). Default 0 */
    int use_taesd;               /* decode/encode with the model's TAESD when loaded. Default 1 */
    /* txt2img with sd-turbo's one-step formula x0 = (x - sqrt(1 - a) eps) / sqrt(a), without the LCM
     * boundary scalings (upstream's txt2img_sd_turbo, which its wrapper uses for *turbo models).
     * Default 0. */
    int turbo;
} sd_stream_params;

sd_stream_params sd_stream_params_default(void);
/* Checks the parameters that need no model (sizes, t_index_list within 0..num_inference_steps-1
 * and increasing, frame_buffer_size, cfg_type, ranges), so a caller can refuse them before the
 * expensive model load. sd_stream_create runs the same checks. */
sd_status sd_stream_params_check(const sd_stream_params *params);

/* Creates a stream: validates the parameters against the model, precomputes the per-step
 * constants and the noise, and reserves all memory. Needs the model's text encoder, UNet and a
 * VAE or TAESD. A prompt must be set before the first frame. */
sd_status sd_stream_create(sd_stream **out, sd_model *model, const sd_stream_params *params);
void sd_stream_free(sd_stream *stream);

/* Encodes the prompt (and negative prompt, for guidance) once; takes effect on the next frame.
 * negative_prompt NULL keeps the current one ("" at first). */
sd_status sd_stream_set_prompt(sd_stream *stream, const char *prompt, const char *negative_prompt);

/* img2img: frames holds frame_buffer_size RGB images of width x height (HWC, 8-bit); out receives
 * the same number. *skipped (may be NULL) tells whether the similarity filter reused the last
 * output. */
sd_status sd_stream_img2img(sd_stream *stream, const uint8_t *frames, uint8_t *out, int *skipped);
/* txt2img: out receives one width x height RGB image (frame_buffer_size of them in batch mode). */
sd_status sd_stream_txt2img(sd_stream *stream, uint8_t *out);

/* Float-level variants for reproduction and tests: images [fb, 3, H, W] in [-1, 1] (diffusers'
 * convention), outputs unclamped. */
sd_status sd_stream_img2img_f32(sd_stream *stream, const float *images, float *out, int *skipped);
sd_status sd_stream_txt2img_f32(sd_stream *stream, float *out);

/* Live updates, effective from the next frame, nothing reloaded or reallocated:
 * guidance scale and RCFG delta (the prompt embeddings are re-arranged if guidance crosses 1);
 * the seed (reseeds the noise generator and redraws the initial noise, as upstream's
 * init_generator + update_noise); the t_index_list (same number of steps, since the batch is
 * sized by it; the per-step constants are recomputed, the latent buffer kept). */
sd_status sd_stream_set_guidance(sd_stream *stream, float guidance_scale, float delta);
sd_status sd_stream_set_seed(sd_stream *stream, uint64_t seed);
sd_status sd_stream_set_t_index_list(sd_stream *stream, const int *t_index_list, int n);

/* Replaces the stream's initial noise ([batch, 4, H/8, W/8] floats, batch = steps x
 * frame_buffer_size with the denoising batch, else frame_buffer_size), as upstream's
 * update_noise / an injected torch tensor. */
sd_status sd_stream_set_noise(sd_stream *stream, const float *noise, size_t count);

/* Stage timings of the last call, milliseconds. */
typedef struct sd_stream_timings {
    double preprocess_ms, encode_ms, unet_ms, decode_ms, postprocess_ms, total_ms;
    /* work done, GFLOP (2 per multiply-add of convolutions, linear layers and attention) */
    double encode_gflop, unet_gflop, decode_gflop;
    int unet_batch;
} sd_stream_timings;
sd_status sd_stream_get_timings(const sd_stream *stream, sd_stream_timings *out);

/* ---- Running a stream on a live source -------------------------------------------------------- */

/* Frames come from and go to callbacks, RGB 8-bit, width x height x 3 bytes each.
 * read: 1 = a frame was written to rgb, 0 = end of the source, -1 = error (call sd_fail-style
 * reporting is not available to callers: return -1 and the run fails with SD_ERR_IO).
 * write: 0 = ok, -1 = error. */
typedef struct sd_frame_source {
    int (*read)(void *user, uint8_t *rgb);
    void *user;
    int live; /* a camera or live pipe: when the pipeline falls behind, the oldest waiting frame is dropped */
} sd_frame_source;

typedef struct sd_frame_sink {
    int (*write)(void *user, const uint8_t *rgb);
    void *user;
    int live; /* a display or loopback device: frames it cannot take in time are dropped, the denoiser never waits */
} sd_frame_sink;

typedef struct sd_run_params {
    int queue_depth;   /* frames waiting per queue (input and output). Default 2 */
    int64_t max_frames; /* stop after this many input frames; 0 = until the source ends. Default 0 */
    /* The stream batch makes output lag input by n - 1 calls, and the first n - 1 outputs come from
     * the empty initial buffer (the brown frames upstream shows). Default 0: those are not emitted,
     * and at the end the last frame is fed n - 1 more times so every input frame gets its output,
     * in order (frames out == frames in). 1 emits them as upstream does. */
    int emit_warmup;
    int decode_threads; /* threads of the decoder's own backend. Default 0: as many as the model's */
} sd_run_params;

typedef struct sd_run_stats {
    int64_t frames_in, frames_out;
    int64_t dropped_in;  /* stale input frames dropped (live sources) */
    int64_t dropped_out; /* outputs a live sink could not take */
    int64_t skipped;     /* frames the similarity filter skipped (the last output repeats) */
    double seconds, fps;
    double preprocess_ms, denoise_ms, decode_ms, postprocess_ms; /* per frame, averages */
    int max_input_queue, max_output_queue;
} sd_run_stats;

sd_run_params sd_run_params_default(void);

/* Runs the stream until the source ends, max_frames, an error, or sd_stream_request_stop.
 * Input conversion runs on its own thread, the denoiser on the calling thread, the decoder and
 * output conversion on a third, with bounded queues between them; memory is reserved before the
 * first frame. stats (may be NULL) is filled in either way. */
sd_status sd_stream_run(sd_stream *stream, const sd_frame_source *source, const sd_frame_sink *sink,
                        const sd_run_params *params, sd_run_stats *stats);
/* Asks a running sd_stream_run to finish after the frames in flight; safe from a signal handler
 * or another thread. */
void sd_stream_request_stop(sd_stream *stream);

/* ---- Images -------------------------------------------------------------------------------- */

/* 8-bit RGB, row-major, width * height * 3 bytes, owned by the struct (free with sd_image_free). */
typedef struct sd_image {
    int width, height;
    uint8_t *pixels;
} sd_image;

/* PNG, JPEG or BMP (by their first bytes). Images over 16384 pixels a side or 64 Mpixels are
 * refused from the header, before any pixel is decoded. */
sd_status sd_image_load(sd_image *out, const char *path);
/* .png, .jpg/.jpeg or .bmp by extension; "-" writes PNG to stdout. The file appears complete or
 * not at all (written under a temporary name, then renamed). */
sd_status sd_image_save(const sd_image *img, const char *path);
/* SD_OK when path ends in a writable image type (or is "-") and its folder exists and is
 * writable (the message gives the system's reason); checked before any work is done. */
sd_status sd_image_check_path(const char *path);
sd_status sd_image_alloc(sd_image *out, int width, int height);
void sd_image_free(sd_image *img);
/* Scales to cover width x height keeping the aspect ratio, then crops the centre. */
sd_status sd_image_fit(sd_image *out, const sd_image *in, int width, int height);

/* ---- Benchmark models ------------------------------------------------------------------------ */

/* Writes a diffusers folder of architecture arch ("sd-turbo" or "sd15") with the real Hugging Face
 * configs and random weights (for benchmarks: speed does not depend on weight values), plus a
 * TAESD in output_dir/taesd. tokenizer_dir: a CLIP tokenizer folder to copy; NULL writes a
 * byte-level tokenizer. weights_dtype: "fp16" (default when NULL), "bf16" or "fp32". */
sd_status sd_make_random_model(const char *arch, const char *output_dir, const char *tokenizer_dir,
                               const char *weights_dtype, uint64_t seed);

/* Writes output_dir/pytorch_lora_weights.safetensors with the real key set and shapes of
 * latent-consistency/lcm-lora-sdv1-5 for arch "sd15" (278 modules, kohya keys, rank 64, alpha 64,
 * float16; the same rule applied to "sd-turbo"'s UNet) and random values: load-and-fuse time at
 * full size without the real file. */
sd_status sd_make_random_lcm_lora(const char *arch, const char *output_dir, uint64_t seed);

/* ---- Video streams (YUV4MPEG2) --------------------------------------------------------------- */

typedef struct sd_y4m_reader sd_y4m_reader;
typedef struct sd_y4m_writer sd_y4m_writer;

typedef struct sd_y4m_info {
    int width, height;
    int fps_num, fps_den;       /* F tag; 0/0 when absent or F0:0 */
    int aspect_num, aspect_den; /* A tag (pixel aspect ratio); 0/0 when absent or unknown */
    char interlace;             /* I tag: 'p', 't', 'b', 'm' or '?' (absent) */
    char chroma[16];            /* C tag without the C: "420jpeg" (absent), "420", "444", "mono", ... */
} sd_y4m_info;

/* Opens a y4m stream and reads its header. path "-" reads stdin. */
sd_status sd_y4m_reader_open(sd_y4m_reader **out, const char *path);
/* The same on a FILE* the caller keeps (not closed by sd_y4m_reader_close); reads only forward,
 * so pipes work, and a FILE of the caller's making (fopencookie) can make reads interruptible.
 * name appears in messages. */
sd_status sd_y4m_reader_open_file(sd_y4m_reader **out, FILE *file, const char *name);
/* The same over bytes in memory (borrowed). name appears in messages. */
sd_status sd_y4m_reader_open_memory(sd_y4m_reader **out, const void *bytes, size_t size, const char *name);
const sd_y4m_info *sd_y4m_reader_info(const sd_y4m_reader *reader);
/* Reads the next frame into rgb (RGB24, width * height * 3 bytes; rgb_len is its capacity).
 * Sets *end to 1 at the clean end of the stream (rgb untouched), else to 0. */
sd_status sd_y4m_reader_read_rgb(sd_y4m_reader *reader, uint8_t *rgb, size_t rgb_len, int *end);
void sd_y4m_reader_close(sd_y4m_reader *reader);

/* Creates path ("-": stdout) and writes the header "YUV4MPEG2 W H F Ip A1:1 C420jpeg".
 * fps_num/fps_den <= 0 write F25:1 (ffmpeg's assumption for a stream without a rate). */
sd_status sd_y4m_writer_open(sd_y4m_writer **out, const char *path, int width, int height, int fps_num,
                             int fps_den);
/* Converts one RGB24 frame (rgb_len >= width * height * 3) to 4:2:0 and writes it. */
sd_status sd_y4m_writer_write_rgb(sd_y4m_writer *writer, const uint8_t *rgb, size_t rgb_len);
/* Flushes and closes (stdout is flushed, not closed); reports a failed flush. NULL: SD_OK. */
sd_status sd_y4m_writer_close(sd_y4m_writer *writer);

/* Packed YUYV 4:2:2 (Y0 U Y1 V; webcams, v4l2loopback) <-> RGB24, BT.601 limited range.
 * width must be even. stride: bytes from one YUYV row to the next (>= width * 2). */
sd_status sd_yuyv_to_rgb(uint8_t *rgb, const uint8_t *yuyv, int width, int height, size_t stride);
sd_status sd_rgb_to_yuyv(uint8_t *yuyv, const uint8_t *rgb, int width, int height);

/* ---- Benchmarks ------------------------------------------------------------------------------ */

/* The machine's measured peak with n_threads threads (<= 0: all cores), GFLOP/s: fp32 FMA, and
 * bf16 dot products (0 when the CPU has no bf16 instructions). Takes about half a second. */
sd_status sd_measure_peak_gflops(int n_threads, double *fp32, double *bf16);

/* The accelerator a backend runs on, for benchmarks and logs. */
typedef struct sd_device_info {
    char name[256];          /* the GPU's name */
    int driver_version;      /* CUDA driver and runtime, e.g. 13000 for 13.0 */
    int runtime_version;
    int compute_capability;  /* major * 10 + minor: 90 for an H100 */
    int multiprocessors;
    double memory_gb;        /* device memory */
    double memory_used_gb;   /* in use on the device now, by every process */
    double clock_ghz;        /* the peak clock it reports */
    /* dense fp16 tensor-core peak with fp32 accumulation, TFLOP/s (per-architecture FLOP per clock
     * per multiprocessor x multiprocessors x clock; 0 for an architecture the table lacks) */
    double fp16_dense_tflops;
} sd_device_info;
/* Describes the GPU of SD_BACKEND_TYPE_CUDA (the CPU has sd_measure_peak_gflops). SD_ERR_UNSUPPORTED
 * without the CUDA backend, SD_ERR_BACKEND without a usable GPU; *out untouched on error. */
sd_status sd_device_info_get(sd_backend_type type, sd_device_info *out);

/* ---- Noise --------------------------------------------------------------------------------- */

/* Fills out[0..numel) exactly as torch.randn(shape, generator=torch.Generator().manual_seed(seed))
 * does on the CPU in float32 (mt19937, torch's Box-Muller layouts for numel < 16 and >= 16). */
sd_status sd_randn(uint64_t seed, int64_t numel, float *out);

/* ---- Models by Hugging Face id ------------------------------------------------------------ */

/* Everywhere a model, TAESD or LoRA path is taken (sd_model_params.path, .taesd_path, .loras[].path)
 * a Hugging Face id "org/name[@revision][/file]" works too: when no local file or folder of that
 * name exists, it is looked up in the hub cache ($HF_HUB_CACHE, $HF_HOME/hub,
 * ~/.cache/huggingface/hub: models--org--name/snapshots/<commit>/, refs/<revision>, default
 * revision main), as huggingface_hub and diffusers write it. Loading never downloads. */

/* The local path spec stands for: spec itself when it exists or is not an id, else the cached
 * snapshot folder (or file in it). SD_ERR_NOT_FOUND when the id is not cached (the message says
 * where it looked and what to run). */
sd_status sd_hub_resolve(const char *spec, char *out, size_t out_size);

/* Progress of sd_hub_pull: called for each file as bytes arrive (done of total; total 0 when
 * unknown) and once more when the file is complete (done == total) or found in the cache already
 * (cached = 1). */
typedef void (*sd_pull_progress)(void *user, const char *file, uint64_t done, uint64_t total, int cached);

typedef struct sd_pull_params {
    const char *id;       /* "org/name[@revision][/file]": the whole pipeline, or one file */
    const char *revision; /* branch, tag or commit; default: the id's @revision, else "main" */
    const char *variant;  /* "fp16": the *.fp16.safetensors weights where the repository has them */
    const char *endpoint; /* default $HF_ENDPOINT, else https://huggingface.co */
    const char *token;    /* default $HF_TOKEN, else the file $HF_TOKEN_PATH or $HF_HOME/token */
    sd_pull_progress progress;
    void *user;
} sd_pull_params;

typedef struct sd_pull_result {
    char snapshot[4096];       /* the cached snapshot folder (what the id now resolves to) */
    char commit[48];           /* the revision's commit hash */
    int files;                 /* files the pipeline needs */
    int downloaded;            /* of them, fetched now (the others were complete in the cache) */
    uint64_t bytes_downloaded; /* bytes received */
} sd_pull_result;

/* Downloads into the hub cache only the files sdstream needs (model_index.json, configs, tokenizer,
 * the .safetensors weights of unet, vae and text_encoder, the variant when asked; for a repository
 * without model_index.json (TAESD, a LoRA) its top-level configs and .safetensors). Never pickles.
 * Each file is checked against the hub's size and sha256 (LFS) or git sha1 before an atomic rename
 * into blobs/; a dropped transfer resumes from blobs/<etag>.incomplete. Files already complete are
 * not downloaded again. Fails with SD_ERR_IO (no network, HTTP errors, HF_HUB_OFFLINE set),
 * SD_ERR_FORMAT (bad answers, checksum mismatch: nothing is kept), SD_ERR_NOT_FOUND (404). */
sd_status sd_hub_pull(const sd_pull_params *params, sd_pull_result *result);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* SDSTREAM_H */
