/* status.h — error reporting: sd_status codes plus a per-thread message buffer.
 *
 * A failing function sets the message and returns the code in one step:
 *     return sd_fail(SD_ERR_FORMAT, "%s: tensor '%s': expected F32, found %s", path, name, dt);
 * Callers that add context prefix it while propagating:
 *     SD_TRY_CTX(load_unet(...), "loading unet from %s", dir);
 * The buffer is fixed (no allocation on the error path) and truncates long messages.
 */
#ifndef SD_BASE_STATUS_H
#define SD_BASE_STATUS_H

#include "sdstream.h"

#if defined(__GNUC__)
#define SD_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define SD_PRINTF(fmt_idx, arg_idx)
#endif

/* Sets this thread's message and returns status. */
sd_status sd_fail(sd_status status, const char *fmt, ...) SD_PRINTF(2, 3);
/* Prepends "<context>: " to this thread's message. */
void sd_error_prefix(const char *fmt, ...) SD_PRINTF(1, 2);
void sd_error_clear(void);

#define SD_TRY(expr)                                                                               \
    do {                                                                                           \
        sd_status sd_try_status_ = (expr);                                                         \
        if (sd_try_status_ != SD_OK) return sd_try_status_;                                        \
    } while (0)

#define SD_TRY_CTX(expr, ...)                                                                      \
    do {                                                                                           \
        sd_status sd_try_status_ = (expr);                                                         \
        if (sd_try_status_ != SD_OK) {                                                             \
            sd_error_prefix(__VA_ARGS__);                                                          \
            return sd_try_status_;                                                                 \
        }                                                                                          \
    } while (0)

/* Checks a precondition on caller input; survives NDEBUG. */
#define SD_CHECK_ARG(cond, ...)                                                                    \
    do {                                                                                           \
        if (!(cond)) return sd_fail(SD_ERR_ARG, __VA_ARGS__);                                      \
    } while (0)

#endif
