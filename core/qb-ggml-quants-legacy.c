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

/* ---- a block of 32 as four vectors of 8 ---------------------------------- */

typedef guint8 QbLanesU8 __attribute__ ((vector_size (QB_LANES)));
typedef gint8  QbLanesS8 __attribute__ ((vector_size (QB_LANES)));

static const QbLanesI lane_index = { 0, 1, 2, 3, 4, 5, 6, 7 };

QB_INLINE QbLanes
lanes_max (QbLanes a, QbLanes b)
{
  return qb_lanes_select (a > b, a, b);
}

QB_INLINE QbLanes
lanes_min (QbLanes a, QbLanes b)
{
  return qb_lanes_select (a < b, a, b);
}

/* Largest lane.  Maxima and minima are exact in any order (no NaN). */
QB_INLINE float
lanes_hmax (QbLanes v)
{
  v = lanes_max (v, __builtin_shuffle (v, (QbLanesI) { 4, 5, 6, 7, 0, 1, 2, 3 }));
  v = lanes_max (v, __builtin_shuffle (v, (QbLanesI) { 2, 3, 0, 1, 6, 7, 4, 5 }));
  v = lanes_max (v, __builtin_shuffle (v, (QbLanesI) { 1, 0, 3, 2, 5, 4, 7, 6 }));
  return v[0];
}

QB_INLINE float
lanes_hmin (QbLanes v)
{
  v = lanes_min (v, __builtin_shuffle (v, (QbLanesI) { 4, 5, 6, 7, 0, 1, 2, 3 }));
  v = lanes_min (v, __builtin_shuffle (v, (QbLanesI) { 2, 3, 0, 1, 6, 7, 4, 5 }));
  v = lanes_min (v, __builtin_shuffle (v, (QbLanesI) { 1, 0, 3, 2, 5, 4, 7, 6 }));
  return v[0];
}

QB_INLINE QbLanesI
lanes_mini (QbLanesI a, QbLanesI b)
{
  return qb_lanes_selecti (a < b, a, b);
}

QB_INLINE int
lanes_hmini (QbLanesI v)
{
  v = lanes_mini (v, __builtin_shuffle (v, (QbLanesI) { 4, 5, 6, 7, 0, 1, 2, 3 }));
  v = lanes_mini (v, __builtin_shuffle (v, (QbLanesI) { 2, 3, 0, 1, 6, 7, 4, 5 }));
  v = lanes_mini (v, __builtin_shuffle (v, (QbLanesI) { 1, 0, 3, 2, 5, 4, 7, 6 }));
  return v[0];
}

QB_INLINE guint32
lanes_hor (QbLanesI v)
{
  guint32 r = 0;
  for (int b = 0; b < QB_LANES; b++)
    r |= (guint32) v[b];
  return r;
}

QB_INLINE void
block_load (const float *x, QbLanes *v)
{
  memcpy (v, x, 4 * sizeof (QbLanes));
}

QB_INLINE float
block_absmax (const QbLanes *v)
{
  QbLanes m = lanes_max (lanes_max (qb_lanes_abs (v[0]), qb_lanes_abs (v[1])),
                         lanes_max (qb_lanes_abs (v[2]), qb_lanes_abs (v[3])));
  return lanes_hmax (m);
}

/* The value of largest magnitude, the first one on ties, 0 for a zero block
 * (ggml's scan starts from +0 and replaces it only on a strict increase). */
QB_INLINE float
block_signed_max (const float *x, const QbLanes *v)
{
  float amax = block_absmax (v);
  QbLanesI first = (QbLanesI) { 0 } + QB_QK;

  if (amax == 0)
    return 0.0f;
  for (int k = 3; k >= 0; k--)
    first = qb_lanes_selecti (qb_lanes_abs (v[k]) == amax, lane_index + 8 * k, first);
  return x[lanes_hmini (first)];
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
block_min_max (const float *x, const QbLanes *v, float *min_out, float *max_out)
{
  float mn = lanes_hmin (lanes_min (lanes_min (v[0], v[1]), lanes_min (v[2], v[3])));
  float mx = lanes_hmax (lanes_max (lanes_max (v[0], v[1]), lanes_max (v[2], v[3])));

  *min_out = mn == 0 ? first_zero (x) : mn;
  *max_out = mx == 0 ? first_zero (x) : mx;
}

/* roundf (v): truncate, then step away from zero when the dropped fraction
 * is at least one half (masks are -1).  v - trunc (v) is exact. */
QB_INLINE QbLanesI
lanes_round_half_away (QbLanes v)
{
  QbLanesI t = __builtin_convertvector (v, QbLanesI);
  QbLanes f = v - qb_lanes_float (t);
  return t - (f >= 0.5f) + (f <= -0.5f);
}

/* Truncation toward zero of v, cut at top (codes are never negative). */
QB_INLINE QbLanesI
lanes_code (QbLanes v, int top)
{
  QbLanesI c = __builtin_convertvector (v, QbLanesI);
  return qb_lanes_selecti (c > top, (QbLanesI) { 0 } + top, c);
}

QB_INLINE void
store_bytes (guint8 *p, QbLanesI v)
{
  QbLanesU8 b = __builtin_convertvector (v, QbLanesU8);
  memcpy (p, &b, sizeof b);
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

/* Codes c[k] (values 8k..8k+7) two to a byte: value j low, j + 16 high. */
QB_INLINE void
pack_4bit (const QbLanesI *c, guint8 *qs)
{
  store_bytes (qs, c[0] | c[2] << 4);
  store_bytes (qs + 8, c[1] | c[3] << 4);
}

/* Low nibbles into qs, fifth bits into the 32-bit mask qh. */
QB_INLINE void
pack_5bit (const QbLanesI *c, guint8 *qs, guint8 *qh)
{
  QbLanesI h = { 0 }, low[4];

  for (int k = 0; k < 4; k++)
    {
      h |= ((c[k] >> 4) & 1) << (lane_index + 8 * k);
      low[k] = c[k] & 0x0f;
    }
  pack_4bit (low, qs);
  put_u32_le (qh, lanes_hor (h));
}

/* ---- rounding against the block extreme (no importance) ------------------
 *
 * Blocks go in batches of eight: first the extremes of each block, then the
 * eight scales, their inverses and their f16 bits in vector lanes, then the
 * codes.  Batching keeps the two divisions per block off the critical path.
 */

/* Inverse scale as ggml takes it: 1/d, or 0 for d = 0. */
QB_INLINE QbLanes
lanes_inverse (QbLanes d)
{
  return qb_lanes_select (d != 0.0f, 1.0f / d, (QbLanes) { 0 });
}

QB_KERNEL static void
q8_0_ref (const float *x, void *vy, gint64 nb)
{
  QbBlockQ8_0 *y = vy;

  for (gint64 i = 0; i < nb; i += QB_LANES, x += QB_LANES * QB_QK)
    {
      int n = (int) MIN (QB_LANES, nb - i);
      QbLanes v[4], amax = { 0 }, d, id;
      QbLanesI h;

      for (int b = 0; b < n; b++)
        {
          block_load (x + b * QB_QK, v);
          amax[b] = block_absmax (v);
        }
      d = amax / 127.0f;
      id = lanes_inverse (d);
      h = qb_lanes_fp16_bits (d);
      for (int b = 0; b < n; b++)
        {
          qb_put_f16_bits (y[i + b].d, h[b]);
          block_load (x + b * QB_QK, v);
          for (int k = 0; k < 4; k++)
            {
              QbLanesS8 q = __builtin_convertvector (lanes_round_half_away (v[k] * id[b]), QbLanesS8);
              memcpy (y[i + b].qs + 8 * k, &q, sizeof q);
            }
        }
    }
}

/* Q4_0 and Q5_0: d = max / -2^(bits-1), codes (x/d + offset + 0.5) cut at
 * the top code.  Stores d and leaves block b's codes in c[4 b..4 b + 3]. */
QB_INLINE void
symmetric_batch (const float *x, int n, int half, guint8 *y, gsize block_bytes, QbLanesI *c)
{
  QbLanes v[4], max = { 0 }, d, id;
  QbLanesI h;

  for (int b = 0; b < n; b++)
    {
      block_load (x + b * QB_QK, v);
      max[b] = block_signed_max (x + b * QB_QK, v);
    }
  d = max / (float) -half;
  id = lanes_inverse (d);
  h = qb_lanes_fp16_bits (d);
  for (int b = 0; b < n; b++)
    {
      qb_put_f16_bits (y + b * block_bytes, h[b]);
      block_load (x + b * QB_QK, v);
      for (int k = 0; k < 4; k++)
        c[4 * b + k] = lanes_code (v[k] * id[b] + (half + 0.5f), 2 * half - 1);
    }
}

QB_KERNEL static void
q4_0_ref (const float *x, void *vy, gint64 nb)
{
  QbBlockQ4_0 *y = vy;

  for (gint64 i = 0; i < nb; i += QB_LANES, x += QB_LANES * QB_QK)
    {
      int n = (int) MIN (QB_LANES, nb - i);
      QbLanesI c[4 * QB_LANES];

      symmetric_batch (x, n, 8, y[i].d, sizeof (QbBlockQ4_0), c);
      for (int b = 0; b < n; b++)
        pack_4bit (c + 4 * b, y[i + b].qs);
    }
}

QB_KERNEL static void
q5_0_ref (const float *x, void *vy, gint64 nb)
{
  QbBlockQ5_0 *y = vy;

  for (gint64 i = 0; i < nb; i += QB_LANES, x += QB_LANES * QB_QK)
    {
      int n = (int) MIN (QB_LANES, nb - i);
      QbLanesI c[4 * QB_LANES];

      symmetric_batch (x, n, 16, y[i].d, sizeof (QbBlockQ5_0), c);
      for (int b = 0; b < n; b++)
        pack_5bit (c + 4 * b, y[i + b].qs, y[i + b].qh);
    }
}

/* Q4_1 and Q5_1: d = (max - min) / nmax, m = min.  (ggml does not cut
 * Q5_1's codes at 31, but (x - min) / d never reaches 31.5, so the cut
 * changes nothing.)  Stores d and m (the first two halves of the block). */
QB_INLINE void
asymmetric_batch (const float *x, int n, int nmax, guint8 *y, gsize block_bytes, QbLanesI *c)
{
  QbLanes v[4], min = { 0 }, max = { 0 }, d, id;
  QbLanesI hd, hm;

  for (int b = 0; b < n; b++)
    {
      block_load (x + b * QB_QK, v);
      block_min_max (x + b * QB_QK, v, &min[b], &max[b]);
    }
  d = (max - min) / (float) nmax;
  id = lanes_inverse (d);
  hd = qb_lanes_fp16_bits (d);
  hm = qb_lanes_fp16_bits (min);
  for (int b = 0; b < n; b++)
    {
      qb_put_f16_bits (y + b * block_bytes, hd[b]);
      qb_put_f16_bits (y + b * block_bytes + 2, hm[b]);
      block_load (x + b * QB_QK, v);
      for (int k = 0; k < 4; k++)
        c[4 * b + k] = lanes_code ((v[k] - min[b]) * id[b] + 0.5f, nmax);
    }
}

QB_KERNEL static void
q4_1_ref (const float *x, void *vy, gint64 nb)
{
  QbBlockQ4_1 *y = vy;

  for (gint64 i = 0; i < nb; i += QB_LANES, x += QB_LANES * QB_QK)
    {
      int n = (int) MIN (QB_LANES, nb - i);
      QbLanesI c[4 * QB_LANES];

      asymmetric_batch (x, n, 15, y[i].d, sizeof (QbBlockQ4_1), c);
      for (int b = 0; b < n; b++)
        pack_4bit (c + 4 * b, y[i + b].qs);
    }
}

QB_KERNEL static void
q5_1_ref (const float *x, void *vy, gint64 nb)
{
  QbBlockQ5_1 *y = vy;

  for (gint64 i = 0; i < nb; i += QB_LANES, x += QB_LANES * QB_QK)
    {
      int n = (int) MIN (QB_LANES, nb - i);
      QbLanesI c[4 * QB_LANES];

      asymmetric_batch (x, n, 31, y[i].d, sizeof (QbBlockQ5_1), c);
      for (int b = 0; b < n; b++)
        pack_5bit (c + 4 * b, y[i + b].qs, y[i + b].qh);
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

typedef void (*StoreBlockFunc) (guint8 *block, const QbLanesI *c, float d, float m);

static void
store_q4_0 (guint8 *block, const QbLanesI *c, float d, float m)
{
  QbBlockQ4_0 *y = (QbBlockQ4_0 *) block;
  qb_put_f16 (y->d, d);
  pack_4bit (c, y->qs);
}

static void
store_q5_0 (guint8 *block, const QbLanesI *c, float d, float m)
{
  QbBlockQ5_0 *y = (QbBlockQ5_0 *) block;
  qb_put_f16 (y->d, d);
  pack_5bit (c, y->qs, y->qh);
}

static void
store_q4_1 (guint8 *block, const QbLanesI *c, float d, float m)
{
  QbBlockQ4_1 *y = (QbBlockQ4_1 *) block;
  qb_put_f16 (y->d, d);
  qb_put_f16 (y->m, m);
  pack_4bit (c, y->qs);
}

static void
store_q5_1 (guint8 *block, const QbLanesI *c, float d, float m)
{
  QbBlockQ5_1 *y = (QbBlockQ5_1 *) block;
  qb_put_f16 (y->d, d);
  qb_put_f16 (y->m, m);
  pack_5bit (c, y->qs, y->qh);
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

      /* Spare lanes hold zero groups, which the searches pass over. */
      qb_lanes_load (x + ib * QB_QK, QB_QK, QB_QK, n_groups, xt);
      lanes_weights (xt, qw + ib * QB_QK, sigma2, n_groups, wt);
      if (asymmetric)
        scale = qb_lanes_qkx_quants (xt, wt, QB_QK, nmax, -0.9f, 0.05f, 36, FALSE, Lt, &the_min);
      else
        scale = qb_lanes_qx_quants (xt, wt, QB_QK, nmax, Lt);

      for (int b = 0; b < n_groups; b++)
        {
          QbLanesI c[4];
          for (int k = 0; k < 4; k++)
            for (int l = 0; l < QB_LANES; l++)
              c[k][l] = Lt[8 * k + l][b];
          store (y + (ib + b) * block_bytes, c, scale[b], -the_min[b]);
        }
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

/* ---- blocks with a given scale (for searches) ------------------------------ */

void
qb_ggml_encode_block (QbDType dtype, const float *x, float d, float m, void *block)
{
  QbBlockQ4_0 *q = block;   /* every legacy block starts with its f16 d */
  QbLanes v[4];
  QbLanesI c[4];
  int lo = 0, hi = 15, offset = 8;
  float dd, mm = 0, id;

  qb_put_f16 (q->d, d);
  dd = qb_get_f16 (q->d);
  id = dd != 0 ? 1.0f / dd : 0.0f;
  if (dtype == QB_DTYPE_Q4_1 || dtype == QB_DTYPE_Q5_1)
    {
      qb_put_f16 (((QbBlockQ4_1 *) block)->m, m);
      mm = qb_get_f16 (((QbBlockQ4_1 *) block)->m);
      offset = 0;
      hi = dtype == QB_DTYPE_Q4_1 ? 15 : 31;
    }
  else if (dtype == QB_DTYPE_Q5_0)
    hi = 31, offset = 16;
  else if (dtype == QB_DTYPE_Q8_0)
    lo = -128, hi = 127, offset = 0;

  block_load (x, v);
  for (int k = 0; k < 4; k++)
    c[k] = qb_lanes_clamp (qb_lanes_nearest_int ((v[k] - mm) * id) + offset, lo, hi);

  switch (dtype)
    {
    case QB_DTYPE_Q4_0:
      pack_4bit (c, q->qs);
      break;
    case QB_DTYPE_Q4_1:
      pack_4bit (c, ((QbBlockQ4_1 *) block)->qs);
      break;
    case QB_DTYPE_Q5_0:
      pack_5bit (c, ((QbBlockQ5_0 *) block)->qs, ((QbBlockQ5_0 *) block)->qh);
      break;
    case QB_DTYPE_Q5_1:
      pack_5bit (c, ((QbBlockQ5_1 *) block)->qs, ((QbBlockQ5_1 *) block)->qh);
      break;
    case QB_DTYPE_Q8_0:
      for (int k = 0; k < 4; k++)
        {
          QbLanesS8 b = __builtin_convertvector (c[k], QbLanesS8);
          memcpy (((QbBlockQ8_0 *) block)->qs + 8 * k, &b, sizeof b);
        }
      break;
    default:
      g_return_if_reached ();
    }
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
