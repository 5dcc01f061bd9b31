/* op_profile.h — where a forward pass spends its time, op by op.
 *
 * With SDSTREAM_PROFILE=1 in the environment every backend times each op it runs and keeps the
 * totals per op kind and shape ("conv3x3 s1 320->320 @32x32"); when the backend is freed the table
 * goes to stderr, slowest first, with each row's share of the total and its GFLOP/s. For finding
 * what to optimise; `sdstream bench` is the measurement. Off by default: then an op pays one
 * pointer test. */
#ifndef SD_BACKEND_OP_PROFILE_H
#define SD_BACKEND_OP_PROFILE_H

#include <stdio.h>

typedef struct sd_op_profile sd_op_profile;

/* NULL unless SDSTREAM_PROFILE is set to a non-zero value (or allocation fails). */
sd_op_profile *sd_op_profile_from_env(void);
void sd_op_profile_add(sd_op_profile *p, const char *key, double ms, double flops);
void sd_op_profile_print(const sd_op_profile *p, FILE *f, const char *title);
void sd_op_profile_free(sd_op_profile *p);

#endif
