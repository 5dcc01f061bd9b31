/* protocol.h — the messages between the page and `sdstream serve`, parsed and written.
 *
 * WebSocket at /ws. Text messages are JSON objects with a "type"; binary messages are frames:
 *   client -> server  [u32 id][u32 flags = 0][JPEG of exactly width x height]   (little-endian)
 *   server -> client  [u32 id][u32 flags][JPEG]   id: the input frame (img2img) or the txt2img request
 *                                                 it answers; flags bit 0: the similarity filter skipped
 *                                                 the frame (the last output again)
 * Client text messages: {"type":"config", ...fields below...}  {"type":"txt2img","id":N}
 * Server text messages: hello, config (what is applied), status (ready/queued), stats, error.
 * README.md "sdstream serve" documents every field and limit; the parser below is the truth. */
#ifndef SD_SERVER_PROTOCOL_H
#define SD_SERVER_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "sdstream.h"

enum {
    SERVE_PROMPT_MAX = 1000,   /* bytes of a prompt or negative prompt */
    SERVE_FRAME_HEADER = 8,    /* bytes before the JPEG in a binary message */
    SERVE_MIN_SIZE = 64,       /* smallest width/height */
};

typedef enum serve_mode { SERVE_MODE_IMG2IMG = 0, SERVE_MODE_TXT2IMG = 1 } serve_mode;

/* A session's settings. Every field has a default (serve_config_default) and a range checked by
 * serve_parse_message. */
typedef struct serve_config {
    serve_mode mode;
    char prompt[SERVE_PROMPT_MAX + 1];
    char negative_prompt[SERVE_PROMPT_MAX + 1];
    int t_index_list[SD_MAX_T_INDEX];
    int n_t_index; /* 0: one step from `strength` */
    float strength;
    float guidance, delta;
    sd_cfg_type cfg_type;
    uint64_t seed;
    float similar_threshold; /* 0: the similarity filter is off */
    int similar_max_skip;
    int width, height;
    int jpeg_quality;
} serve_config;

typedef enum serve_msg_kind { SERVE_MSG_CONFIG = 1, SERVE_MSG_TXT2IMG = 2 } serve_msg_kind;

typedef struct serve_message {
    serve_msg_kind kind;
    serve_config config; /* SERVE_MSG_CONFIG: the current config with the message's fields applied */
    uint32_t id;         /* SERVE_MSG_TXT2IMG: the request id echoed in the answer's frame header */
} serve_message;

serve_config serve_config_default(int width, int height);

/* Parses a client text message against the session's current config and the server's largest
 * allowed width/height. Returns 0, or -1 with a message naming the field in err. Unknown types and
 * unknown fields are errors (a typo must not be silently ignored). */
int serve_parse_message(const char *text, size_t len, const serve_config *current, int max_size, serve_message *out,
                        char *err, size_t err_len);

/* One step at t_index = round((1 - strength) * 50) (strength 0.02..1, checked by the caller). */
void serve_config_set_strength(serve_config *c, float strength);

/* Whether going from a to b needs a new sd_stream (size, cfg type, number of steps, filter) rather
 * than the live setters. */
int serve_config_needs_new_stream(const serve_config *a, const serve_config *b);

/* Fills an sd_stream_params from a config. */
void serve_config_to_params(const serve_config *c, sd_stream_params *p);

/* Writes {"type":"config", ...} describing c into out (NUL-terminated). Returns the length or -1
 * if it does not fit. */
int serve_format_config(const serve_config *c, char *out, size_t cap);

/* Writes {"type":"error","code":code,"message":message} into out (cap bytes, the message escaped and
 * truncated to fit). */
void serve_format_error(char *out, size_t cap, const char *code, const char *message);

/* Escapes text as the inside of a JSON string into dst (cap bytes, truncated to fit, NUL-terminated). */
void serve_json_escape(char *dst, size_t cap, const char *text);

/* Binary frame header. */
void serve_put_frame_header(uint8_t *dst, uint32_t id, uint32_t flags);
void serve_get_frame_header(const uint8_t *src, uint32_t *id, uint32_t *flags);

#endif
