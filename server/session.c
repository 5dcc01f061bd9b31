/* session.c — a session's bounded mailboxes: text messages and growable byte buffers. */
#include "session.h"

#include <stdlib.h>
#include <string.h>

void session_push_text(session *s, const char *text) {
    size_t n = strlen(text);
    if (n >= SESSION_TEXT_MAX) n = SESSION_TEXT_MAX - 1;
    if (s->text_count == SESSION_TEXT_SLOTS) { /* full: the oldest goes */
        s->text_head = (s->text_head + 1) % SESSION_TEXT_SLOTS;
        s->text_count--;
    }
    int slot = (s->text_head + s->text_count) % SESSION_TEXT_SLOTS;
    memcpy(s->text[slot], text, n);
    s->text[slot][n] = '\0';
    s->text_len[slot] = n;
    s->text_count++;
}

void session_set_stats(session *s, const char *text) {
    size_t n = strlen(text);
    if (n >= sizeof s->stats_text) n = sizeof s->stats_text - 1;
    memcpy(s->stats_text, text, n);
    s->stats_text[n] = '\0';
    s->stats_pending = true;
}

int byte_buf_reserve(byte_buf *b, size_t cap) {
    if (cap <= b->cap) return 0;
    uint8_t *d = realloc(b->data, cap);
    if (!d) return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

void byte_buf_free(byte_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
