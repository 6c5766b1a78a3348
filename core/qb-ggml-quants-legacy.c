/* qb-ggml-quants-legacy.c — Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0, bit-exact.
 *
 * Without importance weights ggml rounds each block of 32 against its
 * extreme value; these loops run across the 32 values of a block.  With
 * importance weights it searches the scale (Q4_0, Q5_0) or scale and
 * minimum (Q4_1, Q5_1); eight blocks then share the vector lanes
 * (qb-ggml-search-private.h).
 */
#include "qb-ggml-quants.h"
#include "qb-ggml-search-private.h"

/* ---- block statistics -------------------------------------------------- */

/* Largest |x| of a block.  The maximum is exact whatever the order. */
QB_INLINE float
block_absmax (const float *x)
{
  float m[8] = { 0 };
  for (int j = 0; j < QB_QK; j += 8)
    for (int k = 0; k < 8; k++)
      {
        float a = fabsf (x[j + k]);
        m[k] = a > m[k] ? a : m[k];
      }
  for (int k = 1; k < 8; k++)
    m[0] = m[k] > m[0] ? m[k] : m[0];
  return m[0];
}

/* The value of largest magnitude, the first one on ties, 0 for a zero block
 * (ggml's scan starts from +0 and replaces it only on a strict increase). */
QB_INLINE float
block_signed_max (const float *x)
{
  float amax = block_absmax (x);
  if (amax == 0)
    return 0.0f;
  for (int j = 0; ; j++)
    if (fabsf (x[j]) == amax)
      return x[j];
}

static float
first_zero (const float *x)
{
  for (int j = 0; j < QB_QK; j++)
    if (x[j] == 0)
      return x[j];
  return 0.0f;
}

/* Minimum and maximum of a block.  The values do not depend on the order,
 * but the sign of a zero does: when an extreme is ±0, take the first one as
 * ggml's sequential scan does. */
QB_INLINE void
block_min_max (const float *x, float *min_out, float *max_out)
{
  float mn[8], mx[8];
  for (int k = 0; k < 8; k++)
    mn[k] = mx[k] = x[k];
  for (int j = 8; j < QB_QK; j += 8)
    for (int k = 0; k < 8; k++)
      {
        float v = x[j + k];
        mn[k] = v < mn[k] ? v : mn[k];
        mx[k] = v > mx[k] ? v : mx[k];
      }
  for (int k = 1; k < 8; k++)
    {
      mn[0] = mn[k] < mn[0] ? mn[k] : mn[0];
      mx[0] = mx[k] > mx[0] ? mx[k] : mx[0];
    }
  if (mn[0] == 0)
    mn[0] = first_zero (x);
  if (mx[0] == 0)
    mx[0] = first_zero (x);
  *min_out = mn[0];
  *max_out = mx[0];
}

/* roundf (v): truncate, then step away from zero when the dropped fraction
 * is at least one half.  v - trunc (v) is exact. */
QB_INLINE int
round_half_away (float v)
{
  int t = (int) v;
  float f = v - (float) t;
  return t + (f >= 0.5f) - (f <= -0.5f);
}

static void
put_u32_le (guint8 *p, guint32 v)
{
  p[0] = v & 0xff;
  p[1] = (v >> 8) & 0xff;
  p[2] = (v >> 16) & 0xff;
  p[3] = v >> 24;
}

static guint32
get_u32_le (const guint8 *p)
{
  return (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
}

/* Low nibbles of 32 five-bit codes into qs, fifth bits into qh. */
QB_INLINE void
pack_5bit (const guint8 *L, guint8 *qs, guint8 *qh)
{
  guint32 h = 0;
  for (int j = 0; j < 16; j++)
    {
      qs[j] = (L[j] & 0x0f) | (L[j + 16] & 0x0f) << 4;
      h |= (guint32) ((L[j] & 0x10) >> 4) << j;
      h |= (guint32) ((L[j + 16] & 0x10) >> 4) << (j + 16);
    }
  put_u32_le (qh, h);
}

/* ---- rounding against the block extreme (no importance) ------------------ */

QB_KERNEL static void
q8_0_ref (const float *x, void *vy, gint64 nb)
{
  QbBlockQ8_0 *y = vy;

  for (gint64 i = 0; i < nb; i++, x += QB_QK)
    {
      float d = block_absmax (x) / 127;
      float id = d != 0 ? 1.0f / d : 0.0f;

      qb_put_f16 (y[i].d, d);
      for (int j = 0; j < QB_QK; j++)
        y[i].qs[j] = (gint8) round_half_away (x[j] * id);
    }
}

/* Q4_0 and Q5_0: d = max / -2^(bits-1), codes (x/d + offset + 0.5) cut at
 * the top code. */
QB_INLINE void
symmetric_codes (const float *x, int half, float *d_out, guint8 *L)
{
  float d = block_signed_max (x) / -half;
  float id = d != 0 ? 1.0f / d : 0.0f;

  for (int j = 0; j < QB_QK; j++)
    {
      int v = (int) (x[j] * id + (half + 0.5f));
      L[j] = (guint8) (v < 2 * half - 1 ? v : 2 * half - 1);
    }
  *d_out = d;
}

QB_KERNEL static void
q4_0_ref (const float *x, void *vy, gint64 nb)
{
  QbBlockQ4_0 *y = vy;

  for (gint64 i = 0; i < nb; i++, x += QB_QK)
    {
      guint8 L[QB_QK];
      float d;

      symmetric_codes (x, 8, &d, L);
      qb_put_f16 (y[i].d, d);
      for (int j = 0; j < 16; j++)
        y[i].qs[j] = L[j] | L[j + 16] << 4;
    }
}

QB_KERNEL static void
q5_0_ref (const float *x, void *vy, gint64 nb)
{
  QbBlockQ5_0 *y = vy;

  for (gint64 i = 0; i < nb; i++, x += QB_QK)
    {
      guint8 L[QB_QK];
      float d;

      symmetric_codes (x, 16, &d, L);
      qb_put_f16 (y[i].d, d);
      pack_5bit (L, y[i].qs, y[i].qh);
    }
}

/* Q4_1 and Q5_1: d = (max - min) / nmax, m = min. */
QB_INLINE void
asymmetric_codes (const float *x, int nmax, float *d_out, float *m_out, guint8 *L)
{
  float min, max, d, id;

  block_min_max (x, &min, &max);
  d = (max - min) / nmax;
  id = d != 0 ? 1.0f / d : 0.0f;
  for (int j = 0; j < QB_QK; j++)
    {
      int v = (int) ((x[j] - min) * id + 0.5f);
      L[j] = (guint8) (v < nmax ? v : nmax);
    }
  *d_out = d;
  *m_out = min;
}

QB_KERNEL static void
q4_1_ref (const float *x, void *vy, gint64 nb)
{
  QbBlockQ4_1 *y = vy;

  for (gint64 i = 0; i < nb; i++, x += QB_QK)
    {
      guint8 L[QB_QK];
      float d, m;

      asymmetric_codes (x, 15, &d, &m, L);
      qb_put_f16 (y[i].d, d);
      qb_put_f16 (y[i].m, m);
      for (int j = 0; j < 16; j++)
        y[i].qs[j] = L[j] | L[j + 16] << 4;
    }
}

/* ggml does not cut Q5_1's codes at 31, but (x - min) / d never reaches
 * 31.5, so the cut in asymmetric_codes() changes nothing. */
QB_KERNEL static void
q5_1_ref (const float *x, void *vy, gint64 nb)
{
  QbBlockQ5_1 *y = vy;

  for (gint64 i = 0; i < nb; i++, x += QB_QK)
    {
      guint8 L[QB_QK];
      float d, m;

      asymmetric_codes (x, 31, &d, &m, L);
      qb_put_f16 (y[i].d, d);
      qb_put_f16 (y[i].m, m);
      pack_5bit (L, y[i].qs, y[i].qh);
    }
}

/* ---- importance-weighted search ------------------------------------------ */

/* Per value weight of ggml's legacy imatrix paths: qw · sqrt(σ² + x²),
 * σ² the mean square of the whole row. */
QB_INLINE void
lanes_weights (const QbLanes *xt, const float *qw, float sigma2, int n_groups, QbLanes *wt)
{
  for (int j = 0; j < QB_QK; j++)
    {
      float w[QB_LANES];
      for (int b = 0; b < QB_LANES; b++)
        w[b] = b < n_groups ? qw[b * QB_QK + j] * sqrtf (sigma2 + xt[j][b] * xt[j][b]) : 0.0f;
      memcpy (&wt[j], w, sizeof w);
    }
}

typedef void (*StoreBlockFunc) (guint8 *block, const guint8 *L, float d, float m);

static void
store_q4_0 (guint8 *block, const guint8 *L, float d, float m)
{
  QbBlockQ4_0 *y = (QbBlockQ4_0 *) block;
  qb_put_f16 (y->d, d);
  for (int j = 0; j < 16; j++)
    y->qs[j] = L[j] | L[j + 16] << 4;
}

static void
store_q5_0 (guint8 *block, const guint8 *L, float d, float m)
{
  QbBlockQ5_0 *y = (QbBlockQ5_0 *) block;
  qb_put_f16 (y->d, d);
  pack_5bit (L, y->qs, y->qh);
}

static void
store_q4_1 (guint8 *block, const guint8 *L, float d, float m)
{
  QbBlockQ4_1 *y = (QbBlockQ4_1 *) block;
  qb_put_f16 (y->d, d);
  qb_put_f16 (y->m, m);
  for (int j = 0; j < 16; j++)
    y->qs[j] = L[j] | L[j + 16] << 4;
}

static void
store_q5_1 (guint8 *block, const guint8 *L, float d, float m)
{
  QbBlockQ5_1 *y = (QbBlockQ5_1 *) block;
  qb_put_f16 (y->d, d);
  qb_put_f16 (y->m, m);
  pack_5bit (L, y->qs, y->qh);
}

/* One row with importance weights: symmetric formats search with
 * make_qx_quants (nmax = 8 or 16), asymmetric ones with make_qkx3_quants
 * (nmax = 15 or 31, 37 candidates from -0.9 in steps of 0.05). */
QB_KERNEL static void
legacy_row_weighted (const float *x, guint8 *y, gint64 n, const float *qw,
                     int nmax, gboolean asymmetric, gsize block_bytes, StoreBlockFunc store)
{
  float sigma2 = qb_sum_squares (x, n) / n;

  for (gint64 ib = 0; ib < n / QB_QK; ib += QB_LANES)
    {
      int n_groups = (int) MIN (QB_LANES, n / QB_QK - ib);
      QbLanes xt[QB_QK], wt[QB_QK], scale, the_min = { 0 };
      QbLanesI Lt[QB_QK];
      guint8 L[QB_QK * QB_LANES];

      /* Spare lanes hold zero groups, which the searches pass over. */
      qb_lanes_load (x + ib * QB_QK, QB_QK, QB_QK, n_groups, xt);
      lanes_weights (xt, qw + ib * QB_QK, sigma2, n_groups, wt);
      if (asymmetric)
        scale = qb_lanes_qkx_quants (xt, wt, QB_QK, nmax, -0.9f, 0.05f, 36, FALSE, Lt, &the_min);
      else
        scale = qb_lanes_qx_quants (xt, wt, QB_QK, nmax, Lt);

      qb_lanes_store_codes (Lt, QB_QK, n_groups, L);
      for (int b = 0; b < n_groups; b++)
        store (y + (ib + b) * block_bytes, L + b * QB_QK, scale[b], -the_min[b]);
    }
}

/* ---- entry points -------------------------------------------------------- */

typedef void (*RefFunc) (const float *x, void *y, gint64 nb);

static gsize
quantize_legacy (const float *src, void *dst, gint64 n_rows, gint64 n_per_row,
                 const float *imatrix, gsize block_bytes, RefFunc ref,
                 int nmax, gboolean asymmetric, StoreBlockFunc store)
{
  gsize row_bytes = (gsize) (n_per_row / QB_QK) * block_bytes;

  g_return_val_if_fail (n_per_row % QB_QK == 0, 0);
  for (gint64 r = 0; r < n_rows; r++)
    {
      const float *x = src + r * n_per_row;
      guint8 *y = (guint8 *) dst + r * row_bytes;

      if (imatrix == NULL || store == NULL)
        ref (x, y, n_per_row / QB_QK);
      else
        legacy_row_weighted (x, y, n_per_row, imatrix, nmax, asymmetric, block_bytes, store);
    }
  return (gsize) n_rows * row_bytes;
}

gsize
qb_quantize_q4_0 (const float *src, void *dst, gint64 n_rows, gint64 n_per_row, const float *imatrix)
{
  return quantize_legacy (src, dst, n_rows, n_per_row, imatrix, sizeof (QbBlockQ4_0),
                          q4_0_ref, 8, FALSE, store_q4_0);
}

gsize
qb_quantize_q5_0 (const float *src, void *dst, gint64 n_rows, gint64 n_per_row, const float *imatrix)
{
  return quantize_legacy (src, dst, n_rows, n_per_row, imatrix, sizeof (QbBlockQ5_0),
                          q5_0_ref, 16, FALSE, store_q5_0);
}

gsize
qb_quantize_q4_1 (const float *src, void *dst, gint64 n_rows, gint64 n_per_row, const float *imatrix)
{
  return quantize_legacy (src, dst, n_rows, n_per_row, imatrix, sizeof (QbBlockQ4_1),
                          q4_1_ref, 15, TRUE, store_q4_1);
}

gsize
qb_quantize_q5_1 (const float *src, void *dst, gint64 n_rows, gint64 n_per_row, const float *imatrix)
{
  return quantize_legacy (src, dst, n_rows, n_per_row, imatrix, sizeof (QbBlockQ5_1),
                          q5_1_ref, 31, TRUE, store_q5_1);
}

/* Q8_0 has no weighted path in ggml: importance is ignored. */
gsize
qb_quantize_q8_0 (const float *src, void *dst, gint64 n_rows, gint64 n_per_row, const float *imatrix)
{
  return quantize_legacy (src, dst, n_rows, n_per_row, NULL, sizeof (QbBlockQ8_0),
                          q8_0_ref, 0, FALSE, NULL);
}

/* ---- dequantization ------------------------------------------------------ */

QB_KERNEL void
qb_dequantize_row_q4_0 (const void *src, float *y, gint64 n)
{
  const QbBlockQ4_0 *x = src;
  for (gint64 i = 0; i < n / QB_QK; i++, y += QB_QK)
    {
      float d = qb_get_f16 (x[i].d);
      for (int j = 0; j < 16; j++)
        {
          y[j] = ((x[i].qs[j] & 0x0f) - 8) * d;
          y[j + 16] = ((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

QB_KERNEL void
qb_dequantize_row_q4_1 (const void *src, float *y, gint64 n)
{
  const QbBlockQ4_1 *x = src;
  for (gint64 i = 0; i < n / QB_QK; i++, y += QB_QK)
    {
      float d = qb_get_f16 (x[i].d), m = qb_get_f16 (x[i].m);
      for (int j = 0; j < 16; j++)
        {
          y[j] = (x[i].qs[j] & 0x0f) * d + m;
          y[j + 16] = (x[i].qs[j] >> 4) * d + m;
        }
    }
}

QB_KERNEL void
qb_dequantize_row_q5_0 (const void *src, float *y, gint64 n)
{
  const QbBlockQ5_0 *x = src;
  for (gint64 i = 0; i < n / QB_QK; i++, y += QB_QK)
    {
      float d = qb_get_f16 (x[i].d);
      guint32 qh = get_u32_le (x[i].qh);
      for (int j = 0; j < 16; j++)
        {
          int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
          y[j] = (((x[i].qs[j] & 0x0f) | h0) - 16) * d;
          y[j + 16] = (((x[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

QB_KERNEL void
qb_dequantize_row_q5_1 (const void *src, float *y, gint64 n)
{
  const QbBlockQ5_1 *x = src;
  for (gint64 i = 0; i < n / QB_QK; i++, y += QB_QK)
    {
      float d = qb_get_f16 (x[i].d), m = qb_get_f16 (x[i].m);
      guint32 qh = get_u32_le (x[i].qh);
      for (int j = 0; j < 16; j++)
        {
          int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
          y[j] = ((x[i].qs[j] & 0x0f) | h0) * d + m;
          y[j + 16] = ((x[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

QB_KERNEL void
qb_dequantize_row_q8_0 (const void *src, float *y, gint64 n)
{
  const QbBlockQ8_0 *x = src;
  for (gint64 i = 0; i < n / QB_QK; i++, y += QB_QK)
    {
      float d = qb_get_f16 (x[i].d);
      for (int j = 0; j < QB_QK; j++)
        y[j] = x[i].qs[j] * d;
    }
}
