/* SPDX-License-Identifier: MIT */
/* qb-format-nf.c — NF4, the 4-bit NormalFloat of bitsandbytes.
 *
 * Blocks of 64: the block's absmax as f32, then 32 bytes of indices into
 * 16 levels (quantiles of a normal distribution scaled to [-1, 1]), first
 * value of each pair in the high nibble, as bitsandbytes stores them
 * without double quantization: 4.5 bits per weight.  A value goes to the
 * nearest level of x / absmax; bitsandbytes' thresholds are the midpoints
 * and send a value exactly on one downwards.
 *
 * Search (with search or importance): the stored scale absmax·(1 - k/40),
 * k = 0..20, each also refitted by weighted least squares over the levels;
 * the smallest Σ w (x - x̂)² wins, plain absmax first.
 */
#include "qb-format-private.h"
#include "qb-ggml-quants-private.h"

#include <math.h>
#include <string.h>

#define NF4_BLOCK 64

static const float nf4_levels[16] = {
  -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
  -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
  0.07958029955625534f, 0.16093020141124725f, 0.24611230790615082f, 0.33791524171829224f,
  0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

#define MID(k) ((nf4_levels[k] + nf4_levels[k + 1]) / 2)
static const float nf4_midpoints[15] = {
  MID (0), MID (1), MID (2), MID (3), MID (4), MID (5), MID (6), MID (7),
  MID (8), MID (9), MID (10), MID (11), MID (12), MID (13), MID (14),
};
#undef MID

static inline int
nf4_index (float v)
{
  int idx = 0;
  for (int k = 0; k < 15; k++)
    idx += v > nf4_midpoints[k];
  return idx;
}

/* Plain rounding against absmax, straight into the packed bytes. */
QB_KERNEL static void
nf4_plain (const float *x, float absmax, guint8 *packed)
{
  float inv = absmax != 0 ? 1.0f / absmax : 0.0f;
  for (int j = 0; j < NF4_BLOCK / 2; j++)
    packed[j] = (guint8) (nf4_index (x[2 * j] * inv) << 4 | nf4_index (x[2 * j + 1] * inv));
}

/* Indices of x against scale s, and Σ w (x - s·level)². */
QB_KERNEL static double
nf4_codes (const float *x, const float *w, float s, guint8 *codes)
{
  float inv = s != 0 ? 1.0f / s : 0.0f, part[8] = { 0 };
  double err = 0;

  for (int i = 0; i < NF4_BLOCK; i += 8)
    for (int k = 0; k < 8; k++)
      {
        int idx = nf4_index (x[i + k] * inv);
        float diff = x[i + k] - s * nf4_levels[idx];
        codes[i + k] = (guint8) idx;
        part[k] += (w ? w[i + k] : 1.0f) * diff * diff;
      }
  for (int k = 0; k < 8; k++)
    err += part[k];
  return err;
}

static float
nf4_refit (const float *x, const float *w, const guint8 *codes)
{
  double sxl = 0, sll = 0;
  for (int i = 0; i < NF4_BLOCK; i++)
    {
      double l = nf4_levels[codes[i]], wi = w ? w[i] : 1.0;
      sxl += wi * x[i] * l;
      sll += wi * l * l;
    }
  return sll > 0 ? (float) (sxl / sll) : 0.0f;
}

static void
put_f32 (guint8 *p, float f)
{
  guint32 bits;
  memcpy (&bits, &f, 4);
  for (int b = 0; b < 4; b++)
    p[b] = (bits >> (8 * b)) & 0xff;
}

static void
nf4_try (const float *x, const float *w, float s, guint8 *scratch,
         float *best_s, double *best_err, guint8 *codes)
{
  double err = nf4_codes (x, w, s, scratch);
  if (err < *best_err)
    {
      *best_err = err;
      *best_s = s;
      memcpy (codes, scratch, NF4_BLOCK);
    }
}

void
qb_format_nf4_quantize_row (const QbQuantParams *p, const float *x, void *y, gint64 n)
{
  gboolean search = p->search || p->importance != NULL;
  guint8 *out = y;

  g_return_if_fail (n % NF4_BLOCK == 0);
  for (gint64 i = 0; i < n; i += NF4_BLOCK, out += 36)
    {
      const float *xb = x + i, *w = p->importance ? p->importance + i : NULL;
      float absmax = qb_format_absmax (xb, NF4_BLOCK), best_s = 0;
      double best_err = INFINITY;
      guint8 codes[NF4_BLOCK], scratch[NF4_BLOCK];

      if (!search)
        {
          put_f32 (out, absmax);
          nf4_plain (xb, absmax, out + 4);
          continue;
        }
      nf4_try (xb, w, absmax, scratch, &best_s, &best_err, codes);
      for (int k = 1; k < QB_SEARCH_STEPS; k++)
        nf4_try (xb, w, absmax * qb_search_factor (k), scratch, &best_s, &best_err, codes);
      for (int k = 0; k < QB_SEARCH_STEPS; k++)
        {
          nf4_codes (xb, w, absmax * qb_search_factor (k), scratch);
          nf4_try (xb, w, nf4_refit (xb, w, scratch), scratch, &best_s, &best_err, codes);
        }

      put_f32 (out, best_s);
      for (int j = 0; j < NF4_BLOCK / 2; j++)
        out[4 + j] = codes[2 * j] << 4 | codes[2 * j + 1];
    }
}
QB_KERNEL void
qb_format_nf4_dequantize_row (const QbQuantParams *p, const void *y, float *x, gint64 n)
{
  const guint8 *in = y;

  for (gint64 i = 0; i < n; i += NF4_BLOCK, in += 36, x += NF4_BLOCK)
    {
      guint32 bits = (guint32) in[0] | (guint32) in[1] << 8 | (guint32) in[2] << 16
                     | (guint32) in[3] << 24;
      float s, scaled[16];
      memcpy (&s, &bits, 4);
      for (int k = 0; k < 16; k++)
        scaled[k] = nf4_levels[k] * s;
      for (int j = 0; j < NF4_BLOCK / 2; j++)
        {
          x[2 * j] = scaled[in[4 + j] >> 4];
          x[2 * j + 1] = scaled[in[4 + j] & 0xf];
        }
    }
}
