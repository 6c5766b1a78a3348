/* SPDX-License-Identifier: MIT */
/* qb-ggml-quants.h — llama.cpp's block formats, bit-exact.
 *
 * Quantizers follow ggml_quantize_chunk(): n_per_row is a multiple of the
 * block size, imatrix is NULL or n_per_row importance weights, and the
 * result is byte-identical to ggml's for the same input (February 2025,
 * quantization version 2).  They return the bytes written.
 * Dequantizers convert n values (a multiple of the block size) exactly as
 * ggml's to_float does.
 *
 * Exactness is for finite input; NaN or infinite values still give valid
 * blocks (and never a crash), but not necessarily ggml's bytes.  The
 * functions keep no state and are safe to call from any thread.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QB_GGML_QUANT_DECLARE(t)                                             \
  void  qb_dequantize_row_##t (const void *src, float *dst, gint64 n);     \
  gsize qb_quantize_##t       (const float *src, void *dst, gint64 n_rows, \
                               gint64 n_per_row, const float *imatrix);

QB_GGML_QUANT_DECLARE (q4_0)
QB_GGML_QUANT_DECLARE (q4_1)
QB_GGML_QUANT_DECLARE (q5_0)
QB_GGML_QUANT_DECLARE (q5_1)
QB_GGML_QUANT_DECLARE (q8_0)
QB_GGML_QUANT_DECLARE (q2_K)
QB_GGML_QUANT_DECLARE (q3_K)
QB_GGML_QUANT_DECLARE (q4_K)
QB_GGML_QUANT_DECLARE (q5_K)
QB_GGML_QUANT_DECLARE (q6_K)
QB_GGML_QUANT_DECLARE (iq4_nl)
QB_GGML_QUANT_DECLARE (iq4_xs)

#undef QB_GGML_QUANT_DECLARE

G_END_DECLS
