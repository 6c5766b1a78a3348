/* SPDX-License-Identifier: MIT */
/* qb-format-private.h — what the format families share with the table.
 *
 * Each family (qb-format-float.c, -ggml.c, -int.c, -nf.c, -mx.c, -fp8.c)
 * provides a row quantizer and dequantizer that read their parameters
 * (bits, block size, scope) from p->format, so one pair serves every row
 * of the family in the table.
 *
 * Search.  When QbQuantParams.search is set, or importance is given, a
 * group's scale (and zero point) is chosen among candidates by the
 * squared error Σ w (x - x̂)², with w the per-column importance or 1,
 * computed on the values exactly as they dequantize (stored f16 scales
 * included).  The grid: the plain-rounding scale times 1 - k/40 for
 * k = 0..QB_SEARCH_STEPS-1 (1.0 down to 0.5; each also refitted by
 * weighted least squares where codes are linear), and for zero-point
 * formats the range [lo, hi] shrunk at either end by 0, 5, .. 25 %.  The
 * plain-rounding candidate comes first and is replaced only by a strictly
 * better one, so a search never does worse than rounding on its objective.
 */
#pragma once

#include "qb-format.h"

G_BEGIN_DECLS

#define QB_SEARCH_STEPS 21   /* scale factors 1.0, 0.975, .. 0.5 */
#define QB_SEARCH_ENDS  6    /* zero-point formats: 0 .. 25 % off each end */

static inline float
qb_search_factor (int k)
{
  return 1.0f - k / 40.0f;
}

static inline float
qb_search_end_factor (int k)
{
  return 1.0f - k / 20.0f;
}

/* Σ w (x - y)², w NULL meaning 1. */
double qb_format_weighted_sse (const float *x, const float *y, const float *w, gint64 n);

/* Σ w (x - d·(codes - z))², w NULL meaning 1. */
double qb_format_codes_sse (const float *x, const float *w, const guint8 *codes, gint64 n,
                            float d, float z);

/* Largest |x|. */
float  qb_format_absmax  (const float *x, gint64 n);
/* min (x, 0) and max (x, 0). */
void   qb_format_min_max (const float *x, gint64 n, float *lo, float *hi);

/* Code packing: n codes of bits bits, LSB first. */
void   qb_pack_bits   (const guint8 *codes, gint64 n, guint bits, guint8 *out);
void   qb_unpack_bits (const guint8 *in, gint64 n, guint bits, guint8 *codes);

void qb_format_float_quantize_row   (const QbQuantParams *p, const float *x, void *y, gint64 n);
void qb_format_float_dequantize_row (const QbQuantParams *p, const void *y, float *x, gint64 n);
void qb_format_ggml_quantize_row    (const QbQuantParams *p, const float *x, void *y, gint64 n);
void qb_format_ggml_dequantize_row  (const QbQuantParams *p, const void *y, float *x, gint64 n);
void qb_format_int_quantize_row     (const QbQuantParams *p, const float *x, void *y, gint64 n);
void qb_format_int_dequantize_row   (const QbQuantParams *p, const void *y, float *x, gint64 n);
void qb_format_nf4_quantize_row     (const QbQuantParams *p, const float *x, void *y, gint64 n);
void qb_format_nf4_dequantize_row   (const QbQuantParams *p, const void *y, float *x, gint64 n);
void qb_format_mxfp4_quantize_row   (const QbQuantParams *p, const float *x, void *y, gint64 n);
void qb_format_mxfp4_dequantize_row (const QbQuantParams *p, const void *y, float *x, gint64 n);
void qb_format_fp8_quantize_row     (const QbQuantParams *p, const float *x, void *y, gint64 n);
void qb_format_fp8_dequantize_row   (const QbQuantParams *p, const void *y, float *x, gint64 n);

G_END_DECLS
