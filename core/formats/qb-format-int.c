/* SPDX-License-Identifier: MIT */
/* qb-format-int.c — uniform integer formats INTn, n = 2..8.
 *
 * A group (32..256 values, a whole row, or the whole tensor) has a scale d
 * stored as f16 and unsigned n-bit codes u; x = d · (u - z) with
 * z = 2^(n-1) for symmetric formats and a stored u8 zero point for
 * asymmetric ones.  Layouts in qb-format.h.
 *
 * Plain rounding: symmetric d = absmax / (2^(n-1) - 1); asymmetric over
 * [lo, hi] = [min (x, 0), max (x, 0)], d = (hi - lo) / (2^n - 1),
 * z = round (-lo / d).  Codes always round against the stored f16 d.
 * Search (qb-format-private.h): symmetric scales d·(1 - k/40), k = 0..20;
 * asymmetric ranges cut by 0..25 % at either end; each candidate's codes
 * also refitted with the weighted least-squares scale.  Per-tensor formats have a fixed scale, and
 * rounding to the nearest code already minimizes every term of the
 * weighted error, so importance and search leave them unchanged.
 */
#include "qb-format-private.h"
#include "qb-ggml-quants-private.h"

#include <math.h>
#include <string.h>

typedef struct {
  guint    bits;
  gboolean asymmetric;
  int      top;        /* largest code, 2^n - 1 */
  int      half;       /* 2^(n-1): the zero of symmetric codes */
} IntSpec;

static IntSpec
spec_of (const QbFormat *f)
{
  IntSpec s = { f->bits, f->asymmetric, (1 << f->bits) - 1, 1 << (f->bits - 1) };
  return s;
}

static float
round_f16 (float v)
{
  return qb_fp16_to_fp32 (qb_fp32_to_fp16 (v));
}

/* Code of one value: u = clamp (round (x / d) + z, 0, top).  The quotient
 * is clamped first so that the rounding trick stays in range whatever the
 * input. */
static inline int
int_code (float v, float lo, float hi, int z, int top)
{
  v = v < lo ? lo : v > hi ? hi : v;
  return qb_clampi (qb_nearest_int (v) + z, 0, top);
}

/* Codes only, for plain rounding. */
QB_KERNEL static void
int_codes_plain (const IntSpec *s, const float *x, gint64 n, float d, int z, guint8 *codes)
{
  /* Locals: a store to codes[] could alias *s otherwise, and that would
   * stop the vectorizer. */
  const int top = s->top;
  float id = d != 0 ? 1.0f / d : 0.0f;
  float lo = (float) -z - 1, hi = (float) (top - z) + 1;

  for (gint64 i = 0; i < n; i++)
    codes[i] = (guint8) int_code (x[i] * id, lo, hi, z, top);
}

/* Codes against the stored scale d and zero z, and Σ w (x - d (u - z))². */
static double
int_codes (const IntSpec *s, const float *x, const float *w, gint64 n, float d, int z,
           guint8 *codes)
{
  int_codes_plain (s, x, n, d, z, codes);
  return qb_format_codes_sse (x, w, codes, n, d, (float) z);
}

/* Weighted least-squares scale for fixed codes: Σ w x q / Σ w q². */
static float
refit_scale (const float *x, const float *w, const guint8 *codes, gint64 n, int z)
{
  double sxq = 0, sqq = 0;
  for (gint64 i = 0; i < n; i++)
    {
      double q = codes[i] - z, wi = w ? w[i] : 1.0;
      sxq += wi * x[i] * q;
      sqq += wi * q * q;
    }
  return sqq > 0 ? (float) (sxq / sqq) : 0.0f;
}

typedef struct {
  float  d;
  int    z;
  double err;
} Choice;

/* Tries scale d (rounded to f16) with zero z; keeps it if strictly better. */
static void
try_scale (const IntSpec *s, const float *x, const float *w, gint64 n, float d, int z,
           guint8 *scratch, Choice *best, guint8 *codes)
{
  float dd = round_f16 (d);
  double err = int_codes (s, x, w, n, dd, z, scratch);

  if (err < best->err)
    {
      best->d = dd;
      best->z = z;
      best->err = err;
      memcpy (codes, scratch, n);
    }
}

static int
zero_point (const IntSpec *s, float lo, float d)
{
  return d != 0 ? qb_clampi (qb_nearest_int (-lo / d), 0, s->top) : 0;
}

/* Plain rounding: absmax / (2^(n-1) - 1), or the range [min (x, 0),
 * max (x, 0)] over 2^n - 1 with a rounded zero point. */
static Choice
plain_group (const IntSpec *s, const float *x, gint64 n, guint8 *codes)
{
  Choice c = { 0, s->half, 0 };

  if (!s->asymmetric)
    c.d = round_f16 (qb_format_absmax (x, n) / (s->half - 1 > 0 ? s->half - 1 : 1));
  else
    {
      float lo, hi;
      qb_format_min_max (x, n, &lo, &hi);
      c.d = round_f16 ((hi - lo) / s->top);
      c.z = zero_point (s, lo, c.d);
    }
  int_codes_plain (s, x, n, c.d, c.z, codes);
  return c;
}

/* Tries scale d with zero z, then the least-squares scale of the codes d
 * gave (try_scale leaves them in scratch). */
static void
try_scale_and_refit (const IntSpec *s, const float *x, const float *w, gint64 n, float d, int z,
                     guint8 *scratch, Choice *best, guint8 *codes)
{
  try_scale (s, x, w, n, d, z, scratch, best, codes);
  try_scale (s, x, w, n, refit_scale (x, w, scratch, n, z), z, scratch, best, codes);
}

/* Chooses d (and z) for a group and fills its codes.  The first candidate
 * of the search is exactly plain rounding's. */
static Choice
quantize_group (const IntSpec *s, const float *x, const float *w, gint64 n, gboolean search,
                guint8 *codes, guint8 *scratch)
{
  Choice best = { 0, s->half, INFINITY };

  if (!search)
    return plain_group (s, x, n, codes);
  if (!s->asymmetric)
    {
      float d0 = qb_format_absmax (x, n) / (s->half - 1 > 0 ? s->half - 1 : 1);
      for (int k = 0; k < QB_SEARCH_STEPS; k++)
        try_scale_and_refit (s, x, w, n, d0 * qb_search_factor (k), s->half, scratch, &best, codes);
    }
  else
    {
      float lo, hi;
      qb_format_min_max (x, n, &lo, &hi);
      for (int a = 0; a < QB_SEARCH_ENDS; a++)
        for (int b = 0; b < QB_SEARCH_ENDS; b++)
          {
            float l = lo * qb_search_end_factor (a), h = hi * qb_search_end_factor (b);
            float dd = round_f16 ((h - l) / s->top);
            try_scale_and_refit (s, x, w, n, dd, zero_point (s, l, dd), scratch, &best, codes);
          }
    }
  return best;
}

static void
put_header (const IntSpec *s, guint8 *p, const Choice *c)
{
  qb_put_f16 (p, c->d);
  if (s->asymmetric)
    p[2] = (guint8) c->z;
}

void
qb_format_int_quantize_row (const QbQuantParams *p, const float *x, void *y, gint64 n)
{
  const QbFormat *f = p->format;
  IntSpec s = spec_of (f);
  gboolean search = p->search || p->importance != NULL;
  guint8 stack_codes[512], *codes = stack_codes, *scratch = stack_codes + 256;
  g_autofree guint8 *heap = NULL;
  guint8 *out = y;

  if (f->scope != QB_SCOPE_BLOCK && n > 256)
    {
      heap = g_malloc (2 * n);
      codes = heap;
      scratch = heap + n;
    }

  switch (f->scope)
    {
    case QB_SCOPE_BLOCK:
      {
        guint hdr = 2 + s.asymmetric;
        for (gint64 i = 0; i < n; i += f->block_size, out += f->block_bytes)
          {
            const float *w = p->importance ? p->importance + i : NULL;
            Choice c = quantize_group (&s, x + i, w, f->block_size, search, codes, scratch);
            put_header (&s, out, &c);
            qb_pack_bits (codes, f->block_size, s.bits, out + hdr);
          }
        break;
      }
    case QB_SCOPE_CHANNEL:
      {
        Choice c = quantize_group (&s, x, p->importance, n, search, codes, scratch);
        put_header (&s, out, &c);
        qb_pack_bits (codes, n, s.bits, out + f->scale_bytes);
        break;
      }
    case QB_SCOPE_TENSOR:
      {
        float d = qb_format_tensor_scale (f, p->tensor_absmax);
        int_codes_plain (&s, x, n, d, s.half, codes);
        qb_pack_bits (codes, n, s.bits, out);
        break;
      }
    }
}

QB_KERNEL static void
int_dequantize (const guint8 *codes, gint64 n, float d, int z, float *x)
{
  for (gint64 i = 0; i < n; i++)
    x[i] = d * (codes[i] - z);
}

void
qb_format_int_dequantize_row (const QbQuantParams *p, const void *y, float *x, gint64 n)
{
  const QbFormat *f = p->format;
  IntSpec s = spec_of (f);
  const guint8 *in = y;
  guint8 stack_codes[256], *codes = stack_codes;
  g_autofree guint8 *heap = NULL;

  if (f->scope != QB_SCOPE_BLOCK && n > 256)
    codes = heap = g_malloc (n);

  switch (f->scope)
    {
    case QB_SCOPE_BLOCK:
      for (gint64 i = 0; i < n; i += f->block_size, in += f->block_bytes)
        {
          qb_unpack_bits (in + 2 + s.asymmetric, f->block_size, s.bits, codes);
          int_dequantize (codes, f->block_size, qb_get_f16 (in), s.asymmetric ? in[2] : s.half,
                          x + i);
        }
      break;
    case QB_SCOPE_CHANNEL:
      qb_unpack_bits (in + f->scale_bytes, n, s.bits, codes);
      int_dequantize (codes, n, qb_get_f16 (in), s.asymmetric ? in[2] : s.half, x);
      break;
    case QB_SCOPE_TENSOR:
      qb_unpack_bits (in, n, s.bits, codes);
      int_dequantize (codes, n, qb_format_tensor_scale (f, p->tensor_absmax), s.half, x);
      break;
    }
}
