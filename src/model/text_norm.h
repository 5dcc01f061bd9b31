/* text_norm.h — the text CLIP's tokenizer normalises before BPE (tokenizer.h lists the rules):
 * UTF-8 to code points and back, the Unicode classes its pre-tokenizer splits on (\p{L}, \p{N},
 * whitespace as Python's regex module sees them), the ftfy subset and HTML unescaping upstream
 * applies, whitespace cleanup, and Python's str.lower(). Code points in, code points out. */
#ifndef SD_MODEL_TEXT_NORM_H
#define SD_MODEL_TEXT_NORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* n bytes to code points in out (room for n); invalid bytes become U+FFFD (rule 1). */
size_t sd_utf8_decode(const unsigned char *s, size_t n, uint32_t *out);
/* One code point as UTF-8 into o (room for 4); returns the bytes written. */
size_t sd_utf8_encode(uint32_t c, uint8_t *o);

bool sd_uni_is_letter(uint32_t c);
bool sd_uni_is_number(uint32_t c);
bool sd_uni_is_space(uint32_t c);

/* html.unescape over code points, in place; returns the new length. */
size_t sd_text_html_unescape(uint32_t *cp, size_t n);
/* The ftfy subset, then whitespace runs to one space, stripped; in place. */
size_t sd_text_clean(uint32_t *cp, size_t n);
/* Python's str.lower() (Final_Sigma, U+0130 -> two characters); out holds 2n. */
size_t sd_text_lower(const uint32_t *cp, size_t n, uint32_t *out);

#endif
