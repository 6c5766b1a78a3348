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
  int   mbits;       /* mantissa bits */
  int   bias;
  float max;         /* largest finite value */
  guint8 max_code;   /* its code */
  guint8 nan_code;
  float (*decode) (guint8 v);
} Fp8Spec;

static const Fp8Spec e4m3 = { 3, 7, 448.0f, 0x7e, 0x7f, qb_fp8_e4m3_to_fp32 };
static const Fp8Spec e5m2 = { 2, 15, 57344.0f, 0x7b, 0x7e, qb_fp8_e5m2_to_fp32 };

static const Fp8Spec *
spec_of (const QbFormat *f)
{
  return g_str_has_prefix (f->name, "FP8_E4M3") ? &e4m3 : &e5m2;
}

/* Round to nearest even, saturating. */
static guint8
fp8_encode (const Fp8Spec *s, float v)
{
  guint8 sign = signbit (v) ? 0x80 : 0;
  float a = fabsf (v);
  guint32 bits;
  int shift = 23 - s->mbits;

  if (isnan (v))
    return sign | s->nan_code;
  if (a >= s->max)
    return sign | s->max_code;
  if (a < ldexpf (1.0f, 1 - s->bias))
    /* Subnormal: a multiple of 2^(1 - bias - mbits), found by scaling
     * (exact) and rounding to nearest even. */
    return sign | (guint8) qb_nearest_int (ldexpf (a, s->bias - 1 + s->mbits));
  memcpy (&bits, &a, 4);
  bits = (bits + (1u << (shift - 1)) - 1 + ((bits >> shift) & 1)) >> shift;
  bits -= (guint32) (127 - s->bias) << s->mbits;
  return sign | (guint8) MIN (bits, s->max_code);
}

static double
fp8_codes (const Fp8Spec *s, const float *x, const float *w, gint64 n, float scale, guint8 *codes)
{
  float inv = 1.0f / scale;
  double err = 0;

  for (gint64 i = 0; i < n; i++)
    {
      float diff;
      codes[i] = fp8_encode (s, x[i] * inv);
      diff = x[i] - s->decode (codes[i]) * scale;
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
      fp8_codes (s, x, NULL, n, plain_scale (s, p->tensor_absmax), out);
      return;
    }
  else
    {
      gboolean search = p->search || p->importance != NULL;
      float s0 = plain_scale (s, qb_format_absmax (x, n)), best_s = s0;
      double best_err = fp8_codes (s, x, p->importance, n, s0, out + 4);
      g_autofree guint8 *scratch = search ? g_malloc (n) : NULL;

      for (int k = 1; search && k < QB_SEARCH_STEPS; k++)
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
    scale = plain_scale (s, p->tensor_absmax);
  else
    {
      scale = get_f32 (in);
      in += 4;
    }
  for (gint64 i = 0; i < n; i++)
    x[i] = s->decode (in[i]) * scale;
}
