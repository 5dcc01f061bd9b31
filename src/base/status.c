/* status.c — the per-thread error message behind sd_last_error(). */
#include "base/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { SD_ERROR_MESSAGE_MAX = 1024 };
static _Thread_local char g_message[SD_ERROR_MESSAGE_MAX];

sd_status sd_fail(sd_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_message, sizeof g_message, fmt, ap);
    va_end(ap);
    return status;
}

void sd_error_prefix(const char *fmt, ...) {
    char prefix[SD_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    /* prefix + ": " + message, truncated to the buffer */
    char joined[SD_ERROR_MESSAGE_MAX];
    size_t len = strlen(prefix);
    if (len > sizeof joined - 3) len = sizeof joined - 3;
    memcpy(joined, prefix, len);
    joined[len++] = ':';
    joined[len++] = ' ';
    size_t rest = strnlen(g_message, sizeof g_message - 1);
    if (rest > sizeof joined - 1 - len) rest = sizeof joined - 1 - len;
    memcpy(joined + len, g_message, rest);
    joined[len + rest] = '\0';
    memcpy(g_message, joined, len + rest + 1);
}

void sd_error_clear(void) { g_message[0] = '\0'; }

const char *sd_last_error(void) { return g_message; }

const char *sd_status_name(sd_status status) {
    switch (status) {
    case SD_OK: return "SD_OK";
    case SD_ERR_ARG: return "SD_ERR_ARG";
    case SD_ERR_IO: return "SD_ERR_IO";
    case SD_ERR_FORMAT: return "SD_ERR_FORMAT";
    case SD_ERR_UNSUPPORTED: return "SD_ERR_UNSUPPORTED";
    case SD_ERR_NOMEM: return "SD_ERR_NOMEM";
    case SD_ERR_LIMIT: return "SD_ERR_LIMIT";
    case SD_ERR_NOT_FOUND: return "SD_ERR_NOT_FOUND";
    case SD_ERR_STATE: return "SD_ERR_STATE";
    case SD_ERR_BACKEND: return "SD_ERR_BACKEND";
    }
    return "SD_ERR_UNKNOWN";
}
