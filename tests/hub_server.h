/* hub_server.h — a test-only Hugging Face hub on 127.0.0.1 (a thread of the test process): serves
 * local folders as repositories in the hub's URL and header layout, with faults on request.
 *
 *   GET  /api/models/{org}/{name}/revision/{rev}  {"sha": <commit>, "siblings": [{"rfilename": ...}]}
 *   HEAD/GET /{org}/{name}/resolve/{rev}/{path}   small files: 200, ETag = git blob sha1;
 *        *.safetensors (LFS): 302 to http://127.0.0.1:PORT/cdn/{org}/{name}/{path}, X-Linked-Etag =
 *        sha256, X-Linked-Size; every answer carries X-Repo-Commit
 *   GET  /cdn/...                                  the bytes, Range: bytes=N- answered with 206
 * One connection at a time, Connection: close, 5 s receive timeout: every loop is bounded. */
#ifndef SD_TESTS_HUB_SERVER_H
#define SD_TESTS_HUB_SERVER_H

#include <stdbool.h>
#include <stdint.h>

enum { HUB_SERVER_MAX_REPOS = 8 };

typedef struct hub_server_repo {
    const char *id;    /* "org/name" */
    const char *dir;   /* served folder (followed symlinks) */
    const char *token; /* non-NULL: gated, needs "Authorization: Bearer <token>" (401 otherwise) */
} hub_server_repo;

/* Faults, matched by the file's path in the repository ("" = none). */
typedef struct hub_server_faults {
    char drop_file[256];    /* the first CDN GET of it sends half its bytes, then closes */
    char corrupt_file[256]; /* always served with one byte flipped (the etag stays the real one) */
    char refuse_range_file[256]; /* Range requests get 416 */
} hub_server_faults;

typedef struct hub_server_stats {
    int api_calls, heads, file_gets; /* file_gets: GETs that sent a file's bytes (resolve or CDN) */
    int range_gets, drops, answers_416, answers_401, answers_404;
    int64_t bytes_sent;
} hub_server_stats;

typedef struct hub_server hub_server;

/* Starts the server on a free port; NULL on failure. */
hub_server *hub_server_start(const hub_server_repo *repos, int n_repos);
int hub_server_port(const hub_server *s);
/* Faults for the next requests (copied); stats since the last reset. Thread-safe. */
void hub_server_set_faults(hub_server *s, const hub_server_faults *f);
hub_server_stats hub_server_stats_take(hub_server *s); /* returns and resets */
/* The commit hash the server reports for repository id. */
void hub_server_commit(const char *id, char out[41]);
void hub_server_stop(hub_server *s);

#endif
