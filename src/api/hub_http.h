/* hub_http.h — the HTTP requests sdstream makes to a Hugging Face hub, over Debian's libcurl:
 * a bounded JSON GET (the revision's file list), a HEAD that reads the hub's file metadata without
 * following the redirect to the CDN, and a resumable GET into a file. http and https only; every
 * request has a connect timeout and a stall timeout, so nothing waits forever. */
#ifndef SD_API_HUB_HTTP_H
#define SD_API_HUB_HTTP_H

#include <stdint.h>
#include <stdio.h>

#include "base/status.h"

/* What the hub's headers say about a file (the parts sdstream uses). */
typedef struct hub_response {
    long status;          /* HTTP status of the last response; 0 when none arrived */
    char etag[160];       /* X-Linked-Etag, else ETag, normalised (no W/, no quotes) */
    char commit[64];      /* X-Repo-Commit */
    int64_t linked_size;  /* X-Linked-Size; -1 when absent */
    int64_t content_length; /* Content-Length; -1 when absent */
    char location[2048];  /* Location of a redirect */
    int has_linked_etag;  /* the etag came from X-Linked-Etag (an LFS file: sha256) */
} hub_response;

void hub_response_reset(hub_response *r);
/* Reads one raw header line ("Name: value\r\n") into r; a status line ("HTTP/1.1 302 ...")
 * starts a new response. Lines it does not know are ignored. */
void hub_parse_header(hub_response *r, const char *line, size_t len);

typedef void (*hub_progress_fn)(void *user, int64_t done, int64_t total);

/* GET url into a malloc'd NUL-terminated body of at most max_bytes (SD_ERR_LIMIT beyond). token
 * may be NULL. SD_OK means a response arrived (check r->status); SD_ERR_IO: none did. */
sd_status hub_http_get_body(const char *url, const char *token, size_t max_bytes, char **body, hub_response *r);
/* HEAD url; redirects are not followed (r->location holds the target). */
sd_status hub_http_head(const char *url, const char *token, hub_response *r);
/* GET url (redirects followed, at most 5) appending to f from byte `offset` (Range request when
 * offset > 0). A 200 answer to a Range request truncates f and writes from 0 (*restarted = 1).
 * Bytes are written only for 200/206. SD_ERR_IO when the transfer broke (bytes written so far stay
 * in f; resume from its size). */
sd_status hub_http_download(const char *url, const char *token, FILE *f, int64_t offset, hub_response *r,
                            int *restarted, hub_progress_fn progress, void *user);

#endif
