/* SPDX-License-Identifier: MIT */
/* qb-format-float.c — F32, F16 and BF16 rows.
 *
 * Conversions as ggml_quantize_chunk makes them (round to nearest even;
 * bit-exact with llama.cpp's F16 and BF16 output).  No scale, so importance
 * and search change nothing.
 */
#include "qb-format-private.h"
#include "qb-ggml-search-private.h"

#include <string.h>

/* Eight values at a time through the lane version of qb_fp32_to_fp16(). */
QB_KERNEL static void
to_f16 (const float *x, guint8 *y, gint64 n)
{
  gint64 i = 0;

  for (; i + QB_LANES <= n; i += QB_LANES)
    {
      QbLanes v;
      QbLanesI h;
      memcpy (&v, x + i, sizeof v);
      h = qb_lanes_fp16_bits (v);
      for (int b = 0; b < QB_LANES; b++)
        qb_put_f16_bits (y + 2 * (i + b), h[b]);
    }
  for (; i < n; i++)
    qb_put_f16_bits (y + 2 * i, qb_fp32_to_fp16 (x[i]));
}

QB_KERNEL static void
to_bf16 (const float *x, guint8 *y, gint64 n)
{
  for (gint64 i = 0; i < n; i++)
    qb_put_f16_bits (y + 2 * i, qb_fp32_to_bf16 (x[i]));
}

void
qb_format_float_quantize_row (const QbQuantParams *p, const float *x, void *y, gint64 n)
{
  switch (p->format->dtype)
    {
    case QB_DTYPE_F32:
      memcpy (y, x, (gsize) n * sizeof (float));
      break;
    case QB_DTYPE_F16:
      to_f16 (x, y, n);
      break;
    case QB_DTYPE_BF16:
      to_bf16 (x, y, n);
      break;
    default:
      g_return_if_reached ();
    }
}

void
qb_format_float_dequantize_row (const QbQuantParams *p, const void *y, float *x, gint64 n)
{
  qb_dtype_info (p->format->dtype)->to_float (y, x, n);
}
