/* log.c — see log.h. Lines are formatted into a fixed buffer and written with one fputs, so the
 * threads of `stream` never interleave inside a line. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static bool g_json, g_line_open;

void cli_log_set_json(bool json) { g_json = json; }
bool cli_log_json(void) { return g_json; }

/* JSON string escaping of text into out (always NUL-terminated). */
static void escape(char *out, size_t cap, const char *text) {
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)text; *c && n + 8 < cap; c++) {
        if (*c == '"' || *c == '\\') out[n++] = '\\', out[n++] = (char)*c;
        else if (*c == '\n') out[n++] = '\\', out[n++] = 'n';
        else if (*c < 0x20) n += (size_t)snprintf(out + n, cap - n, "\\u%04x", *c);
        else out[n++] = (char)*c;
    }
    out[n] = '\0';
}

static void emit(const char *level, const char *fmt, va_list ap) {
    char msg[2048], line[4400];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t len = strlen(msg);
    while (len > 0 && msg[len - 1] == '\n') msg[--len] = '\0';
    if (g_json) {
        char esc[4200];
        escape(esc, sizeof esc, msg);
        snprintf(line, sizeof line, "{\"level\": \"%s\", \"message\": \"%s\"}\n", level, esc);
    } else {
        snprintf(line, sizeof line, "%s%s%s%s\n", g_line_open ? "\n" : "", strcmp(level, "info") ? level : "",
                 strcmp(level, "info") ? ": " : "", msg);
    }
    g_line_open = false;
    fputs(line, stderr);
}

#define EMIT(level)                                                                                                    \
    do {                                                                                                               \
        va_list ap;                                                                                                    \
        va_start(ap, fmt);                                                                                             \
        emit(level, fmt, ap);                                                                                          \
        va_end(ap);                                                                                                    \
    } while (0)

void cli_log_error(const char *fmt, ...) { EMIT("error"); }
void cli_log_warning(const char *fmt, ...) { EMIT("warning"); }
void cli_log_info(const char *fmt, ...) { EMIT("info"); }

void cli_log_raw(const char *line) {
    if (g_line_open) fputs("\n", stderr);
    g_line_open = false;
    fputs(line, stderr);
}

void cli_log_progress(const char *fmt, ...) {
    if (g_json || !isatty(STDERR_FILENO)) {
        EMIT("info");
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\r%-70s", msg); /* the padding wipes a longer previous line */
    fflush(stderr);
    g_line_open = true;
}

void cli_log_progress_end(void) {
    if (g_line_open) fputs("\n", stderr);
    g_line_open = false;
}
