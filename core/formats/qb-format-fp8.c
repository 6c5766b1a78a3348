/* SPDX-License-Identifier: MIT */
/* qb-format-fp8.c — FP8 E4M3 and E5M2 with a float32 scale.
 *
 * E4M3 is the OCP "fn" variant (no infinities, max 448), E5M2 the IEEE-like
 * one (max 57344).  Values x / s round to nearest, ties to even, and
 * saturate at the largest finite value.  The scale s = absmax / max finite
 * is per row (…_CH, stored as f32 ahead of the row) or per tensor (…_T,
 * from tensor_absmax, stored once).
 *
 * Search (per-row scales, with search or importance): s·(1 - k/40),
 * k = 0..20, smallest Σ w (x - x̂)² wins, plain s first.  A per-tensor
 * scale is fixed, and rounding to nearest already minimizes every term.
 */
#include "qb-format-private.h"
#include "qb-ggml-quants-private.h"

#include <math.h>
#include <string.h>

typedef struct {
  int    mbits;      /* mantissa bits */
  int    bias;
  float  max;        /* largest finite value */
  guint8 max_code;   /* its code */
  guint8 nan_code;
  float *table;      /* the 256 decoded values, built on first use */
} Fp8Spec;

static float e4m3_table[256], e5m2_table[256];
static Fp8Spec e4m3 = { 3, 7, 448.0f, 0x7e, 0x7f, e4m3_table };
static Fp8Spec e5m2 = { 2, 15, 57344.0f, 0x7b, 0x7e, e5m2_table };

static const Fp8Spec *
spec_of (const QbFormat *f)
{
  static gsize tables_ready = 0;

  if (g_once_init_enter (&tables_ready))
    {
      for (int v = 0; v < 256; v++)
        {
          e4m3_table[v] = qb_fp8_e4m3_to_fp32 ((guint8) v);
          e5m2_table[v] = qb_fp8_e5m2_to_fp32 ((guint8) v);
        }
      g_once_init_leave (&tables_ready, 1);
    }
  return g_str_has_prefix (f->name, "FP8_E4M3") ? &e4m3 : &e5m2;
}

/* Round to nearest even, saturating, without branches so that loops over
 * it vectorize: both the normal and the subnormal result are computed and
 * the right one selected.  Normal: round the float's mantissa to mbits and
 * rebias the exponent.  Subnormal: a multiple of 2^(1 - bias - mbits),
 * found by an exact power-of-two scaling and rounding to nearest even. */
static inline __attribute__ ((always_inline)) guint8
fp8_encode (float v, int mbits, int bias, float max, guint8 max_code, guint8 nan_code)
{
  guint32 bits, a, normal, min_normal, max_bits;
  float af = fabsf (v), sub_scale = (float) (1 << (bias - 1 + mbits));
  int shift = 23 - mbits;
  guint8 code;

  memcpy (&bits, &v, 4);
  memcpy (&max_bits, &max, 4);
  a = bits & 0x7fffffff;
  min_normal = (guint32) (128 - bias) << 23;
  normal = ((a + (1u << (shift - 1)) - 1 + ((a >> shift) & 1)) >> shift)
           - ((guint32) (127 - bias) << mbits);
  code = a < min_normal ? (guint8) qb_nearest_int (af * sub_scale) : (guint8) normal;
  code = a >= max_bits ? max_code : code;
  code = a > 0x7f800000 ? nan_code : code;
  return (guint8) ((bits >> 24) & 0x80) | code;
}

QB_KERNEL static void
encode_e4m3 (const float *x, gint64 n, float inv, guint8 *codes)
{
  for (gint64 i = 0; i < n; i++)
    codes[i] = fp8_encode (x[i] * inv, 3, 7, 448.0f, 0x7e, 0x7f);
}

QB_KERNEL static void
encode_e5m2 (const float *x, gint64 n, float inv, guint8 *codes)
{
  for (gint64 i = 0; i < n; i++)
    codes[i] = fp8_encode (x[i] * inv, 2, 15, 57344.0f, 0x7b, 0x7e);
}

static void
fp8_codes_plain (const Fp8Spec *s, const float *x, gint64 n, float scale, guint8 *codes)
{
  if (s == &e4m3)
    encode_e4m3 (x, n, 1.0f / scale, codes);
  else
    encode_e5m2 (x, n, 1.0f / scale, codes);
}

QB_KERNEL static void
fp8_decode (const Fp8Spec *s, const guint8 *codes, gint64 n, float scale, float *x)
{
  const float *table = s->table;
  for (gint64 i = 0; i < n; i++)
    x[i] = table[codes[i]] * scale;
}

/* Codes and Σ w (x - x̂)². */
static double
fp8_codes (const Fp8Spec *s, const float *x, const float *w, gint64 n, float scale, guint8 *codes)
{
  double err = 0;

  fp8_codes_plain (s, x, n, scale, codes);
  for (gint64 i = 0; i < n; i++)
    {
      float diff = x[i] - s->table[codes[i]] * scale;
      err += (w ? w[i] : 1.0f) * diff * diff;
    }
  return err;
}

/* absmax / max finite; 1 for an all-zero row, whose codes are 0 anyway. */
static float
plain_scale (const Fp8Spec *s, float absmax)
{
  return absmax > 0 && isfinite (absmax) ? absmax / s->max : 1.0f;
}

static void
put_f32 (guint8 *p, float f)
{
  guint32 bits;
  memcpy (&bits, &f, 4);
  for (int b = 0; b < 4; b++)
    p[b] = (bits >> (8 * b)) & 0xff;
}

static float
get_f32 (const guint8 *p)
{
  guint32 bits = (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
  float f;
  memcpy (&f, &bits, 4);
  return f;
}

void
qb_format_fp8_quantize_row (const QbQuantParams *p, const float *x, void *y, gint64 n)
{
  const Fp8Spec *s = spec_of (p->format);
  guint8 *out = y;

  if (p->format->scope == QB_SCOPE_TENSOR)
    {
      fp8_codes_plain (s, x, n, qb_format_tensor_scale (p->format, p->tensor_absmax), out);
      return;
    }
  else
    {
      gboolean search = p->search || p->importance != NULL;
      float s0 = plain_scale (s, qb_format_absmax (x, n)), best_s = s0;
      double best_err;
      g_autofree guint8 *scratch = NULL;

      if (!search)
        {
          fp8_codes_plain (s, x, n, s0, out + 4);
          put_f32 (out, s0);
          return;
        }
      scratch = g_malloc (n);
      best_err = fp8_codes (s, x, p->importance, n, s0, out + 4);

      for (int k = 1; k < QB_SEARCH_STEPS; k++)
        {
          float sc = s0 * qb_search_factor (k);
          double err = fp8_codes (s, x, p->importance, n, sc, scratch);
          if (err < best_err)
            {
              best_err = err;
              best_s = sc;
              memcpy (out + 4, scratch, n);
            }
        }
      put_f32 (out, best_s);
    }
}

void
qb_format_fp8_dequantize_row (const QbQuantParams *p, const void *y, float *x, gint64 n)
{
  const Fp8Spec *s = spec_of (p->format);
  const guint8 *in = y;
  float scale;

  if (p->format->scope == QB_SCOPE_TENSOR)
    scale = qb_format_tensor_scale (p->format, p->tensor_absmax);
  else
    {
      scale = get_f32 (in);
      in += 4;
    }
  fp8_decode (s, in, n, scale, x);
}
