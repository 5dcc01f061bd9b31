/* cpu_winograd.h — 3x3 stride-1 convolutions by Winograd F(4x4, 3x3) (cpu_winograd.c), which the
 * CPU conv2d uses where it pays. */
#ifndef SD_BACKEND_CPU_WINOGRAD_H
#define SD_BACKEND_CPU_WINOGRAD_H

#include <stdbool.h>

#include "backend/cpu/cpu_backend.h"

/* True when sd_cpu_conv3x3_winograd handles (and pays off for) this convolution. */
bool sd_cpu_winograd_applies(const sd_cpu_state *cpu, int64_t ci, int64_t co, int64_t h, int64_t w, int64_t k,
                             int stride, int padding);
/* out [N, Co, H, W] = act(conv3x3(in [N, Ci, H, W], weight [Co, Ci, 3, 3] (F32/F16/BF16), bias [Co]
 * or NULL) + residual (or NULL)), stride 1, padding 1; act NONE or RELU. Shapes are checked by the
 * caller. */
void sd_cpu_conv3x3_winograd(sd_backend *be, sd_tensor *out, const sd_tensor *in, const sd_tensor *weight,
                             const sd_tensor *bias, const sd_tensor *residual, sd_activation act);

#endif
