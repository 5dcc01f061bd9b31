/* web_assets.h — the page's files (web/), embedded into the binary at build time by
 * tools/embed_web.cmake, so `sdstream serve` works from any folder. */
#ifndef SD_SERVER_WEB_ASSETS_H
#define SD_SERVER_WEB_ASSETS_H

#include <stddef.h>

typedef struct web_asset {
    const char *path;         /* "/index.html", "/app.js", ... */
    const char *content_type;
    const unsigned char *data;
    size_t size;
} web_asset;

extern const web_asset web_assets[];
extern const size_t web_assets_count;

#endif
