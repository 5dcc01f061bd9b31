/* test_stream_api.c — the stream's behaviour beyond the goldens: the n-1 frame lag of the stream
 * batch, prompt changes mid-stream (keeping the negative prompt, which upstream loses), live
 * guidance / seed / t_index_list updates, explicit noise, two frames per call with two steps
 * (where upstream crashes), and API misuse. Tiny SD 1.5 + TAESD at 64x64. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

enum { W = 64, H = 64, FRAME = W * H * 3 };

static sd_model *g_model;

static sd_stream_params base_params(void) {
    sd_stream_params p = sd_stream_params_default();
    p.width = W, p.height = H;
    p.cfg_type = SD_CFG_NONE;
    p.seed = 7, p.frame_seed = 11;
    return p;
}

static sd_stream *make(const sd_stream_params *p, const char *prompt, const char *negative) {
    sd_stream *s = NULL;
    CHECK_OK(sd_stream_create(&s, g_model, p));
    if (s) CHECK_OK(sd_stream_set_prompt(s, prompt, negative));
    return s;
}

/* A frame that differs by `seed`: smooth gradients. */
static void frame(uint8_t *rgb, int seed) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++)
                rgb[(y * W + x) * 3 + c] = (uint8_t)(127 + 120 * sin(0.05 * (x + 3 * seed) * (c + 1) + 0.07 * y * (seed % 5 + 1)));
}

static bool same(const uint8_t *a, const uint8_t *b, size_t n) { return memcmp(a, b, n) == 0; }

/* With n steps in the stream batch, output k is input k - (n - 1) finished: two streams that see
 * the same first frame and then different frames agree on outputs 0..n-1 and differ after. */
static void test_lag(int n_steps) {
    sd_stream_params p = base_params();
    static const int lists[3][3] = {{45}, {32, 45}, {16, 32, 45}};
    p.n_t_index = n_steps;
    memcpy(p.t_index_list, lists[n_steps - 1], (size_t)n_steps * sizeof(int));
    sd_stream *a = make(&p, "a cat", NULL), *b = make(&p, "a cat", NULL);
    if (!a || !b) return;
    uint8_t in_a[FRAME], in_b[FRAME], out_a[FRAME], out_b[FRAME];
    int first_diff = -1;
    for (int k = 0; k < n_steps + 2; k++) {
        frame(in_a, k);
        frame(in_b, k == 0 ? 0 : 100 + k); /* same first frame, different after */
        CHECK_OK(sd_stream_img2img(a, in_a, out_a, NULL));
        CHECK_OK(sd_stream_img2img(b, in_b, out_b, NULL));
        if (first_diff < 0 && !same(out_a, out_b, FRAME)) first_diff = k;
    }
    CHECK(first_diff == n_steps, "%d steps: outputs first differ at call %d, expected %d (a lag of n - 1 = %d)", n_steps,
          first_diff, n_steps, n_steps - 1);
    sd_stream_free(a);
    sd_stream_free(b);
}

/* Sequential txt2img depends only on the prompt embeddings and the frame generator, so changing
 * the prompt mid-stream must equal a fresh stream given that prompt (and the kept negative). */
static void test_prompt_change(void) {
    sd_stream_params p = base_params();
    p.use_denoising_batch = 0;
    p.cfg_type = SD_CFG_FULL;
    p.guidance_scale = 2.0f;
    p.n_t_index = 1, p.t_index_list[0] = 10;
    uint8_t a1[FRAME], a2[FRAME], b1[FRAME], b2[FRAME], c1[FRAME], c2[FRAME];
    sd_stream *a = make(&p, "a red car", "blurry");
    sd_stream *b = make(&p, "a red car", "blurry");
    sd_stream *c = make(&p, "a red car", "");
    if (!a || !b || !c) return;
    CHECK_OK(sd_stream_txt2img(a, a1));
    CHECK_OK(sd_stream_set_prompt(a, "a green forest", NULL)); /* keeps "blurry" */
    CHECK_OK(sd_stream_txt2img(a, a2));
    CHECK_OK(sd_stream_txt2img(b, b1));
    CHECK_OK(sd_stream_set_prompt(b, "a green forest", "blurry"));
    CHECK_OK(sd_stream_txt2img(b, b2));
    CHECK_OK(sd_stream_txt2img(c, c1));
    CHECK_OK(sd_stream_set_prompt(c, "a green forest", NULL));
    CHECK_OK(sd_stream_txt2img(c, c2));
    CHECK(same(a1, b1, FRAME), "two streams with the same prompts and seeds agree");
    CHECK(!same(a1, c1, FRAME), "the negative prompt changes the frame under full CFG");
    CHECK(!same(a1, a2, FRAME), "a new prompt changes the next frame");
    CHECK(same(a2, b2, FRAME), "the negative prompt is kept across a prompt change (equals a stream given it again)");
    CHECK(!same(a2, c2, FRAME), "and it matters: with an empty negative the frame differs");
    sd_stream_free(a), sd_stream_free(b), sd_stream_free(c);
}

static void test_live_updates(void) {
    sd_stream_params p = base_params();
    p.use_denoising_batch = 0;
    p.n_t_index = 1, p.t_index_list[0] = 20;
    uint8_t in[FRAME], o1[FRAME], o2[FRAME], o3[FRAME];
    frame(in, 3);
    sd_stream *s = make(&p, "a cat", NULL);
    if (!s) return;
    CHECK_OK(sd_stream_img2img(s, in, o1, NULL));
    /* a new t_index (less noise) changes the result; the wrong number of steps is refused */
    CHECK_OK(sd_stream_set_t_index_list(s, (int[]){40}, 1));
    CHECK_OK(sd_stream_img2img(s, in, o2, NULL));
    CHECK(!same(o1, o2, FRAME), "t_index_list update takes effect");
    CHECK(sd_stream_set_t_index_list(s, (int[]){10, 20}, 2) == SD_ERR_ARG, "changing the number of steps is refused");
    CHECK(sd_stream_set_t_index_list(s, (int[]){50}, 1) == SD_ERR_ARG, "t_index 50 of 50 steps is refused");
    /* reseeding redraws the noise: the same seed twice gives the same frame */
    CHECK_OK(sd_stream_set_seed(s, 99));
    CHECK_OK(sd_stream_img2img(s, in, o2, NULL));
    CHECK_OK(sd_stream_set_seed(s, 99));
    CHECK_OK(sd_stream_img2img(s, in, o3, NULL));
    CHECK(same(o2, o3, FRAME), "same seed, same frame");
    CHECK(sd_stream_set_guidance(s, NAN, 1.0f) == SD_ERR_ARG, "NaN guidance refused");
    CHECK_OK(sd_stream_set_guidance(s, 1.5f, 0.5f));
    /* explicit noise: wrong size refused, right size used */
    float noise[4 * (W / 8) * (H / 8)];
    for (size_t i = 0; i < sizeof noise / sizeof noise[0]; i++) noise[i] = (float)((i * 37) % 11) / 11.0f - 0.5f;
    CHECK(sd_stream_set_noise(s, noise, 10) == SD_ERR_ARG, "noise of the wrong size refused");
    CHECK_OK(sd_stream_set_noise(s, noise, sizeof noise / sizeof noise[0]));
    CHECK_OK(sd_stream_img2img(s, in, o3, NULL));
    CHECK(!same(o2, o3, FRAME), "injected noise is used");
    sd_stream_free(s);
}

/* Two frames per call with two steps: upstream crashes; here each frame slot is its own stream,
 * so feeding frame pairs (A, B) equals two one-frame streams fed A and B. */
static void test_two_frames_two_steps(void) {
    sd_stream_params p = base_params();
    p.frame_buffer_size = 2;
    sd_stream *s = make(&p, "a cat", NULL);
    if (!s) return;
    uint8_t in[2 * FRAME], out[2 * FRAME];
    for (int k = 0; k < 3; k++) {
        frame(in, 2 * k);
        frame(in + FRAME, 2 * k + 1);
        CHECK_OK(sd_stream_img2img(s, in, out, NULL));
    }
    bool varied = false;
    for (int i = 1; i < 2 * FRAME; i++) varied |= out[i] != out[0];
    CHECK(varied, "two frames per call with two steps produce images");
    CHECK(!same(out, out + FRAME, FRAME), "the two frame slots differ");
    sd_stream_free(s);
}

static void test_misuse(void) {
    sd_stream_params p = base_params();
    sd_stream *s = NULL;
    uint8_t in[FRAME], out[FRAME];
    frame(in, 1);
    p.cfg_type = (sd_cfg_type)7;
    CHECK(sd_stream_create(&s, g_model, &p) == SD_ERR_ARG && strstr(sd_last_error(), "cfg_type"), "unknown cfg type: %s", sd_last_error());
    p = base_params();
    p.width = 60;
    CHECK(sd_stream_create(&s, g_model, &p) == SD_ERR_ARG && strstr(sd_last_error(), "multiples of 8"), "width 60: %s", sd_last_error());
    p = base_params();
    p.frame_buffer_size = 0;
    CHECK(sd_stream_create(&s, g_model, &p) == SD_ERR_ARG, "frame_buffer_size 0 refused");
    p = base_params();
    p.t_index_list[0] = 60;
    CHECK(sd_stream_create(&s, g_model, &p) == SD_ERR_ARG && strstr(sd_last_error(), "t_index_list"), "t_index 60: %s", sd_last_error());
    CHECK(s == NULL, "no stream on failure");
    /* the model-free checks a caller can run before loading anything */
    p = base_params();
    CHECK_OK(sd_stream_params_check(&p));
    p.n_t_index = 2, p.t_index_list[0] = 45, p.t_index_list[1] = 32;
    CHECK(sd_stream_params_check(&p) == SD_ERR_ARG && strstr(sd_last_error(), "must increase"), "45,32: %s", sd_last_error());
    CHECK(sd_stream_create(&s, g_model, &p) == SD_ERR_ARG && s == NULL, "45,32 refused by create too");
    p.t_index_list[0] = p.t_index_list[1] = 32;
    CHECK(sd_stream_params_check(&p) == SD_ERR_ARG, "32,32 refused: %s", sd_last_error());
    p = base_params();
    p.n_t_index = 1, p.t_index_list[0] = 12, p.num_inference_steps = 10;
    CHECK(sd_stream_params_check(&p) == SD_ERR_ARG && strstr(sd_last_error(), "0..9"), "index 12 of 10 steps: %s", sd_last_error());
    CHECK(sd_stream_params_check(NULL) == SD_ERR_ARG, "NULL params refused");
    p = base_params();
    CHECK_OK(sd_stream_create(&s, g_model, &p));
    if (s) {
        int backwards[2] = {40, 20};
        CHECK(sd_stream_set_t_index_list(s, backwards, 2) == SD_ERR_ARG && strstr(sd_last_error(), "must increase"),
              "set_t_index_list 40,20: %s", sd_last_error());
        sd_stream_free(s);
        s = NULL;
    }
    CHECK(sd_stream_create(&s, NULL, &p) == SD_ERR_ARG, "NULL model refused");
    p = base_params();
    CHECK_OK(sd_stream_create(&s, g_model, &p));
    CHECK(sd_stream_img2img(s, in, out, NULL) == SD_ERR_STATE && strstr(sd_last_error(), "prompt"), "frame before a prompt: %s", sd_last_error());
    CHECK(sd_stream_set_prompt(s, NULL, NULL) == SD_ERR_ARG, "NULL prompt refused");
    CHECK(sd_stream_img2img(NULL, in, out, NULL) == SD_ERR_ARG, "NULL stream refused");
    CHECK(sd_stream_img2img(s, NULL, out, NULL) == SD_ERR_ARG, "NULL frames refused");
    sd_stream_free(s);
    sd_stream_free(NULL);
}

static void count_progress(void *user, const char *part, int index, int count) {
    int *calls = user;
    if (part) calls[0]++;
    else calls[1] = index == count ? count : -1;
}

/* The load's progress callback, token counting, and SDSTREAM_THREADS that cannot be a count. */
static void test_model_extras(const char *model, const char *taesd) {
    sd_model_params mp = sd_model_params_default();
    mp.path = model, mp.taesd_path = taesd;
    int calls[2] = {0, 0};
    mp.progress = count_progress, mp.progress_user = calls;
    sd_model *m = NULL;
    CHECK_OK(sd_model_load(&m, &mp));
    CHECK(calls[0] == 5 && calls[1] == 5, "progress: 5 parts then the end (%d, %d)", calls[0], calls[1]);
    int n = -1;
    char prompt[1024] = "";
    for (int i = 0; i < 80; i++) strcat(prompt, "cat ");
    if (m) CHECK_OK(sd_model_count_tokens(m, prompt, &n));
    CHECK(n == 80, "80 tokens counted (%d)", n);
    CHECK(m && strcmp(sd_model_token_text(m, 2368), "cat</w>") == 0, "token 2368 is cat</w>: %s", sd_model_token_text(m, 2368));
    CHECK(m && strcmp(sd_model_token_text(m, -5), "") == 0, "an id out of range gives \"\"");
    sd_model_free(m);
    setenv("SDSTREAM_THREADS", "four", 1);
    mp.progress = NULL;
    m = NULL;
    CHECK(sd_model_load(&m, &mp) == SD_ERR_ARG && strstr(sd_last_error(), "SDSTREAM_THREADS") && m == NULL,
          "SDSTREAM_THREADS=four refused: %s", sd_last_error());
    unsetenv("SDSTREAM_THREADS");
}

int main(void) {
    sd_model_params mp = sd_model_params_default();
    char model[4096], taesd[4096];
    snprintf(model, sizeof model, "%s", check_ref("models/tiny-sd15"));
    snprintf(taesd, sizeof taesd, "%s", check_ref("models/taesd"));
    mp.path = model, mp.taesd_path = taesd;
    CHECK_OK(sd_model_load(&g_model, &mp));
    if (!g_model) return check_finish();
    test_lag(1);
    test_lag(2);
    test_lag(3);
    test_prompt_change();
    test_live_updates();
    test_two_frames_two_steps();
    test_misuse();
    test_model_extras(model, taesd);
    sd_model_free(g_model);
    return check_finish();
}
