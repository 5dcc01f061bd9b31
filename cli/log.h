/* log.h — every line the sdstream command writes to stderr goes through here, so that with
 * --json-stats each of them is one JSON object ({"level": "error", "message": "..."}) and a
 * program reading stderr never meets a line it cannot parse. Results (images, frames, token ids,
 * --help) go to stdout and never through here. */
#ifndef SD_CLI_LOG_H
#define SD_CLI_LOG_H

#include <stdbool.h>

void cli_log_set_json(bool json);
bool cli_log_json(void);
/* "error: ...", "warning: ...", or a plain progress/info line. */
void cli_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A line that is already a JSON object in JSON mode (statistics): printed as given. */
void cli_log_raw(const char *line);
/* A progress line that a terminal overwrites in place ("\r", no newline); on anything else, or
 * in JSON mode, an ordinary info line. cli_log_progress_end() ends a line left open. */
void cli_log_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_log_progress_end(void);

#endif
