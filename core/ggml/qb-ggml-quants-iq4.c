/* SPDX-License-Identifier: MIT */
/* qb-ggml-quants-iq4.c — IQ4_NL and IQ4_XS, bit-exact.
 *
 * Both map groups of 32 onto 16 fixed non-uniform levels times a scale.
 * IQ4_NL keeps an f16 scale per group; IQ4_XS quantizes the 8 group scales
 * of a super-block of 256 to 6 bits.  The scale search of each group (15
 * candidates around -max/127) runs with eight groups in vector lanes.
 */
#include "qb-ggml-quants.h"
#include "qb-ggml-search-private.h"

/* The 16 levels (ggml's kvalues_iq4nl). */
static const gint8 iq4_levels[16] = {
  -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};

/* Midpoints between neighbouring levels, and the gaps between them. */
static const float iq4_midpoints[15] = {
  -115.5f, -93.5f, -74.0f, -57.0f, -42.0f, -28.5f, -16.0f, -4.5f,
  7.0f, 19.0f, 31.5f, 45.5f, 61.0f, 79.0f, 101.0f,
};
static const float iq4_gaps[15] = {
  23, 21, 18, 16, 14, 13, 12, 11, 12, 12, 13, 15, 16, 20, 24,
};

/* Index of the level nearest to v.  ggml bisects and picks the lower level
 * only when v is strictly closer to it, so the upper one wins exactly at a
 * midpoint: the index is the number of midpoints <= v.  (Near a midpoint
 * ggml's differences v - lo and hi - v are exact, so the comparison
 * agrees.)  Counted as 15 minus the midpoints above v, a NaN lands on 15
 * as in ggml.  Comparison masks are -1, hence the additions. */
QB_INLINE QbLanesI
lanes_level_index (QbLanes v)
{
  QbLanesI idx = (QbLanesI) { 0 } + 15;
  for (int k = 0; k < 15; k++)
    idx += v < iq4_midpoints[k];
  return idx;
}

/* The nearest level itself: 113 less the gaps above v.  All small integers,
 * so every step is exact. */
QB_INLINE QbLanes
lanes_level (QbLanes v)
{
  QbLanes q = (QbLanes) { 0 } + 113.0f;
  for (int k = 0; k < 15; k++)
    q -= (QbLanes) ((v < iq4_midpoints[k]) & (QbLanesI) ((QbLanes) { 0 } + iq4_gaps[k]));
  return q;
}

/* Σ w q x and Σ w q² with q the level nearest to id · x. */
QB_INLINE void
lanes_iq4_sums (const QbLanes *xt, const QbLanes *wt, QbLanes id, QbLanes *sumqx_out, QbLanes *sumq2_out)
{
  QbLanes sumqx = { 0 }, sumq2 = { 0 };
  for (int j = 0; j < 32; j++)
    {
      QbLanes q = lanes_level (id * xt[j]);
      sumqx += wt[j] * q * xt[j];
      sumq2 += wt[j] * q * q;
    }
  *sumqx_out = sumqx;
  *sumq2_out = sumq2;
}

/* Scale search of eight groups of 32 (the first part of ggml's
 * quantize_row_iq4_nl_impl): d = -max / -127 refined by weighted least
 * squares over the levels, then 15 candidates id = (k - 127) / max,
 * k = -7..7.  All-zero groups get scale 0. */
QB_INLINE QbLanes
lanes_iq4_scales (const QbLanes *xt, const QbLanes *wt)
{
  QbLanes amax, max, sumqx, sumq2, scale, best;

  qb_lanes_signed_max (xt, 32, &amax, &max);
  lanes_iq4_sums (xt, wt, 1.0f / (-max / (float) iq4_levels[0]), &sumqx, &sumq2);
  scale = sumqx / sumq2;
  best = scale * sumqx;
  for (int itry = -7; itry <= 7; itry++)
    {
      QbLanes d;
      QbLanesI take;

      lanes_iq4_sums (xt, wt, (float) (itry + iq4_levels[0]) / max, &sumqx, &sumq2);
      d = sumqx / sumq2;
      take = (sumq2 > 0.0f) & (sumqx * sumqx > best * sumq2);
      scale = qb_lanes_select (take, d, scale);
      best = qb_lanes_select (take, d * sumqx, best);
    }
  return qb_lanes_select (amax < QB_GROUP_MAX_EPS, (QbLanes) { 0 }, scale);
}

/* Weights importance · sqrt(σ² + x²) (group b's importance at
 * qw + 32 b, for the first n_groups lanes), or x² without importance. */
QB_INLINE void
lanes_iq4_weights (const QbLanes *xt, const float *qw, int n_groups, QbLanes sigma2, QbLanes *wt)
{
  for (int j = 0; j < 32; j++)
    {
      float w[QB_LANES];
      if (qw == NULL)
        {
          wt[j] = xt[j] * xt[j];
          continue;
        }
      for (int b = 0; b < QB_LANES; b++)
        w[b] = b < n_groups ? qw[32 * b + j] * sqrtf (sigma2[b] + xt[j][b] * xt[j][b]) : 0.0f;
      memcpy (&wt[j], w, sizeof w);
    }
}

/* Codes of the levels nearest to id · x, two to a byte per group of 32. */
QB_INLINE void
lanes_iq4_pack (const QbLanes *xt, QbLanes id, int n_groups, guint8 *q4, gsize stride)
{
  QbLanesI Lt[32];
  guint8 L[32 * QB_LANES];

  for (int j = 0; j < 32; j++)
    Lt[j] = lanes_level_index (id * xt[j]);
  qb_lanes_store_codes (Lt, 32, n_groups, L);
  for (int b = 0; b < n_groups; b++)
    for (int j = 0; j < 16; j++)
      q4[b * stride + j] = L[32 * b + j] | L[32 * b + j + 16] << 4;
}

/* ---- IQ4_NL -------------------------------------------------------------- */

QB_KERNEL static void
iq4_nl_row (const float *x, QbBlockIQ4_NL *y, gint64 nb, const float *qw)
{
  for (gint64 ib = 0; ib < nb; ib += QB_LANES)
    {
      int n_groups = (int) MIN (QB_LANES, nb - ib);
      QbLanes xt[32], wt[32], sigma2, scale, id;

      /* Each IQ4_NL block is a super-block of its own: σ² of its 32 values. */
      qb_lanes_load (x + ib * 32, 32, 32, n_groups, xt);
      sigma2 = qb_lanes_sum_squares (xt, 32) * (2.f / 32);
      lanes_iq4_weights (xt, qw ? qw + ib * 32 : NULL, n_groups, sigma2, wt);
      scale = lanes_iq4_scales (xt, wt);
      id = qb_lanes_select (scale != 0.0f, 1.0f / scale, (QbLanes) { 0 });
      for (int b = 0; b < n_groups; b++)
        qb_put_f16 (y[ib + b].d, scale[b]);
      lanes_iq4_pack (xt, id, n_groups, y[ib].qs, sizeof (QbBlockIQ4_NL));
    }
}

/* ---- IQ4_XS -------------------------------------------------------------- */

QB_KERNEL static void
iq4_xs_row (const float *x, QbBlockIQ4_XS *y, gint64 nb, const float *qw)
{
  for (gint64 i = 0; i < nb; i++, x += QB_QK_K, qw = qw ? qw + QB_QK_K : NULL)
    {
      float sigma2 = qb_sum_squares (x, QB_QK_K) * (2.f / QB_QK_K);
      float max_scale = 0, amax_scale = 0, d, id;
      QbLanes xt[32], wt[32], scale, idl;
      guint16 scales_h = 0;

      qb_lanes_load (x, 32, 32, QB_LANES, xt);
      lanes_iq4_weights (xt, qw, QB_LANES, (QbLanes) { 0 } + sigma2, wt);
      scale = lanes_iq4_scales (xt, wt);
      for (int b = 0; b < QB_LANES; b++)
        if (fabsf (scale[b]) > amax_scale)
          {
            amax_scale = fabsf (scale[b]);
            max_scale = scale[b];
          }

      /* Group scales to 6 bits against d = -max_scale / 32; the values are
       * requantized with each group's scale as stored. */
      d = -max_scale / 32;
      id = d != 0 ? 1 / d : 0.f;
      qb_put_f16 (y[i].d, d);
      memset (y[i].scales_l, 0, sizeof y[i].scales_l);
      for (int b = 0; b < QB_LANES; b++)
        {
          int l = qb_clampi (qb_nearest_int (id * scale[b]), -32, 31);
          float dl = d * l;
          idl[b] = dl != 0 ? 1 / dl : 0.f;
          l += 32;
          y[i].scales_l[b / 2] |= (l & 0xf) << (4 * (b % 2));
          scales_h |= (guint16) ((l >> 4) << (2 * b));
        }
      y[i].scales_h[0] = scales_h & 0xff;
      y[i].scales_h[1] = scales_h >> 8;
      lanes_iq4_pack (xt, idl, QB_LANES, y[i].qs, 16);
    }
}

/* ---- entry points -------------------------------------------------------- */

gsize
qb_quantize_iq4_nl (const float *src, void *dst, gint64 n_rows, gint64 n_per_row, const float *imatrix)
{
  gint64 nb = n_per_row / QB_QK;

  g_return_val_if_fail (n_per_row % QB_QK == 0, 0);
  for (gint64 r = 0; r < n_rows; r++)
    iq4_nl_row (src + r * n_per_row, (QbBlockIQ4_NL *) dst + r * nb, nb, imatrix);
  return (gsize) (n_rows * nb) * sizeof (QbBlockIQ4_NL);
}

gsize
qb_quantize_iq4_xs (const float *src, void *dst, gint64 n_rows, gint64 n_per_row, const float *imatrix)
{
  gint64 nb = n_per_row / QB_QK_K;

  g_return_val_if_fail (n_per_row % QB_QK_K == 0, 0);
  for (gint64 r = 0; r < n_rows; r++)
    iq4_xs_row (src + r * n_per_row, (QbBlockIQ4_XS *) dst + r * nb, nb, imatrix);
  return (gsize) (n_rows * nb) * sizeof (QbBlockIQ4_XS);
}

/* ---- a block with a given scale (for searches) ----------------------------- */

void
qb_ggml_encode_iq4_nl (const float *x, float d, void *block)
{
  QbBlockIQ4_NL *y = block;
  QbLanes xt[32];
  float dd;

  qb_put_f16 (y->d, d);
  dd = qb_get_f16 (y->d);
  qb_lanes_load (x, 0, 32, 1, xt);
  lanes_iq4_pack (xt, (QbLanes) { 0 } + (dd != 0 ? 1.0f / dd : 0.0f), 1, y->qs, 0);
}

/* ---- dequantization ------------------------------------------------------ */

QB_KERNEL void
qb_dequantize_row_iq4_nl (const void *restrict src, float *restrict y, gint64 n)
{
  const QbBlockIQ4_NL *x = src;
  for (gint64 i = 0; i < n / QB_QK; i++, y += QB_QK)
    {
      float d = qb_get_f16 (x[i].d);
      for (int j = 0; j < 16; j++)
        {
          y[j] = d * iq4_levels[x[i].qs[j] & 0xf];
          y[j + 16] = d * iq4_levels[x[i].qs[j] >> 4];
        }
    }
}

QB_KERNEL void
qb_dequantize_row_iq4_xs (const void *restrict src, float *restrict y, gint64 n)
{
  const QbBlockIQ4_XS *x = src;
  for (gint64 i = 0; i < n / QB_QK_K; i++)
    {
      float d = qb_get_f16 (x[i].d);
      guint16 scales_h = (guint16) (x[i].scales_h[0] | x[i].scales_h[1] << 8);
      const guint8 *qs = x[i].qs;
      for (int ib = 0; ib < 8; ib++, y += 32, qs += 16)
        {
          int ls = ((x[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf) | ((scales_h >> (2 * ib)) & 3) << 4;
          float dl = d * (ls - 32);
          for (int j = 0; j < 16; j++)
            {
              y[j] = dl * iq4_levels[qs[j] & 0xf];
              y[j + 16] = dl * iq4_levels[qs[j] >> 4];
            }
        }
    }
}
