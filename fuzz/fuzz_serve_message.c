/* fuzz_serve_message.c — libFuzzer target for what a WebSocket client can send `sdstream serve`:
 * the JSON control messages (serve_parse_message) and the binary frames' header + JPEG header check
 * and decode (jpeg_peek_size / jpeg_decode_rgb at a small session size). Input's first byte picks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jpeg_codec.h"
#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char err[512];
    if (data[0] & 1) {
        serve_config c = serve_config_default(64, 64);
        serve_message m;
        if (serve_parse_message((const char *)data + 1, size - 1, &c, 1024, &m, err, sizeof err) == 0 &&
            m.kind == SERVE_MSG_CONFIG) {
            char out[8192];
            serve_format_config(&m.config, out, sizeof out);
            sd_stream_params p;
            serve_config_to_params(&m.config, &p);
        }
        return 0;
    }
    static jpeg_codec *codec;
    if (!codec) codec = jpeg_codec_create();
    static uint8_t rgb[64 * 64 * 3];
    int w = 0, h = 0;
    if (jpeg_peek_size(codec, data + 1, size - 1, &w, &h, err, sizeof err) == 0 && w == 64 && h == 64)
        jpeg_decode_rgb(codec, data + 1, size - 1, 64, 64, rgb, err, sizeof err);
    return 0;
}
