/* SPDX-License-Identifier: MIT */
/* qb-format-mx.c — MXFP4, the OCP Microscaling FP4 format.
 *
 * Blocks of 32 (OCP MX v1.0): a shared scale X = 2^(e - 127) stored as one
 * E8M0 byte e, then 32 E2M1 elements (sign, 2-bit exponent, 1-bit
 * mantissa: 0, 0.5, 1, 1.5, 2, 3, 4, 6), two per byte, element 2j in the
 * low nibble: 4.25 bits per weight.  Per the spec the shared exponent is
 * floor (log2 (absmax)) - 2, 2 being the largest exponent of E2M1, and
 * elements x / X round to nearest, ties to even, saturating at ±6.
 *
 * Search (with search or importance): exponents one below and one above
 * the spec's also tried, smallest Σ w (x - x̂)² wins, the spec's first.
 */
#include "qb-format-private.h"
#include "qb-ggml-quants-private.h"

#include <math.h>
#include <string.h>

#define MX_BLOCK 32
#define MX_BYTES 17

static const float e2m1_values[8] = { 0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f };
/* All 16 codes, sign included. */
static const float e2m1_signed[16] = {
  0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
  -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f,
};

/* Magnitude index of |v| rounded to nearest E2M1, ties to the even
 * mantissa (an even index): a tie goes up where the upper neighbour is
 * even.  Beyond 5 everything saturates at 6. */
static inline int
e2m1_index (float a)
{
  return (a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f)
         + (a > 2.5f) + (a >= 3.5f) + (a > 5.0f);
}

static int
spec_exponent (float absmax)
{
  int e;
  if (absmax == 0 || !isfinite (absmax))
    return -127;
  frexpf (absmax, &e);           /* absmax = m·2^e, m in [0.5, 1) */
  return CLAMP (e - 1 - 2, -127, 127);
}

/* 2^e for e in [-127, 127], exactly (2^-127 is subnormal). */
static float
pow2 (int e)
{
  return ldexpf (1.0f, e);
}

static inline int
e2m1_code (float x, float inv)
{
  return (signbit (x) != 0) << 3 | e2m1_index (fabsf (x) * inv);
}

/* Plain rounding against 2^e, straight into the packed bytes. */
QB_KERNEL static void
mx_plain (const float *x, int e, guint8 *packed)
{
  float inv = pow2 (-e);
  for (int j = 0; j < MX_BLOCK / 2; j++)
    packed[j] = (guint8) (e2m1_code (x[2 * j], inv) | e2m1_code (x[2 * j + 1], inv) << 4);
}

/* Codes of x against 2^e, and Σ w (x - x̂)². */
static double
mx_codes (const float *x, const float *w, int e, guint8 *codes)
{
  float scale = pow2 (e), inv = pow2 (-e);
  double err = 0;

  for (int i = 0; i < MX_BLOCK; i++)
    {
      int idx = e2m1_index (fabsf (x[i]) * inv);
      float v = e2m1_values[idx] * scale, diff;
      gboolean neg = signbit (x[i]) != 0;
      codes[i] = (guint8) (neg << 3 | idx);
      diff = x[i] - (neg ? -v : v);
      err += (w ? w[i] : 1.0f) * diff * diff;
    }
  return err;
}

void
qb_format_mxfp4_quantize_row (const QbQuantParams *p, const float *x, void *y, gint64 n)
{
  gboolean search = p->search || p->importance != NULL;
  guint8 *out = y;

  g_return_if_fail (n % MX_BLOCK == 0);
  for (gint64 i = 0; i < n; i += MX_BLOCK, out += MX_BYTES)
    {
      const float *xb = x + i, *w = p->importance ? p->importance + i : NULL;
      int e0 = spec_exponent (qb_format_absmax (xb, MX_BLOCK)), best_e = e0;
      guint8 codes[MX_BLOCK], scratch[MX_BLOCK];
      double best_err;

      if (!search)
        {
          out[0] = (guint8) (e0 + 127);
          mx_plain (xb, e0, out + 1);
          continue;
        }
      best_err = mx_codes (xb, w, e0, codes);
      for (int de = -1; de <= 1; de += 2)
        {
          int e = e0 + de;
          double err;
          if (e < -127 || e > 127)
            continue;
          err = mx_codes (xb, w, e, scratch);
          if (err < best_err)
            {
              best_err = err;
              best_e = e;
              memcpy (codes, scratch, MX_BLOCK);
            }
        }
      out[0] = (guint8) (best_e + 127);
      for (int j = 0; j < MX_BLOCK / 2; j++)
        out[1 + j] = codes[2 * j] | codes[2 * j + 1] << 4;
    }
}

QB_KERNEL void
qb_format_mxfp4_dequantize_row (const QbQuantParams *p, const void *y, float *x, gint64 n)
{
  const guint8 *in = y;

  for (gint64 i = 0; i < n; i += MX_BLOCK, in += MX_BYTES, x += MX_BLOCK)
    {
      /* E8M0 255 is NaN; everything else is an exact power of two. */
      float scale = in[0] == 255 ? NAN : pow2 (in[0] - 127);
      for (int j = 0; j < MX_BLOCK / 2; j++)
        {
          x[2 * j] = e2m1_signed[in[1 + j] & 0xf] * scale;
          x[2 * j + 1] = e2m1_signed[in[1 + j] >> 4] * scale;
        }
    }
}
