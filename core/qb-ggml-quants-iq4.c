/* qb-ggml-quants-iq4.c — IQ4_NL and IQ4_XS, bit-exact.
 *
 * Both map groups of 32 onto 16 fixed non-uniform levels times a scale.
 * IQ4_NL keeps an f16 scale per group; IQ4_XS quantizes the 8 group scales
 * of a super-block of 256 to 6 bits.  The scale search of each group (15
 * candidates around -max/127) runs with eight groups in vector lanes.
 */
#include "qb-ggml-quants.h"
#include "qb-ggml-search-private.h"

#define NL 8   /* groups of 32 searched side by side */

/* The 16 levels (ggml's kvalues_iq4nl). */
static const gint8 iq4_levels[16] = {
  -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};

/* Midpoints between neighbouring levels. */
static const float iq4_midpoints[15] = {
  -115.5f, -93.5f, -74.0f, -57.0f, -42.0f, -28.5f, -16.0f, -4.5f,
  7.0f, 19.0f, 31.5f, 45.5f, 61.0f, 79.0f, 101.0f,
};

/* Index of the level nearest to v.  ggml bisects and picks the lower level
 * only when v is strictly closer to it, so the upper one wins exactly at a
 * midpoint: the index is the number of midpoints <= v.  Near a midpoint
 * ggml's differences v - lo and hi - v are exact, so the comparison agrees.
 * Counted as 15 minus the midpoints above v, a NaN lands on 15 as in ggml. */
QB_INLINE int
nearest_level (float v)
{
  int above = 0;
  for (int k = 0; k < 15; k++)
    above += v < iq4_midpoints[k];
  return 15 - above;
}

/* Σ w q x and Σ w q² with q the level nearest to id · x. */
QB_INLINE void
lanes_iq4_sums (const float *xt, const float *wt, const float *id, float *sumqx, float *sumq2)
{
  for (int b = 0; b < NL; b++)
    sumqx[b] = sumq2[b] = 0;
  for (int j = 0; j < 32; j++)
    for (int b = 0; b < NL; b++)
      {
        float x = xt[j * NL + b], w = wt[j * NL + b];
        float q = iq4_levels[nearest_level (id[b] * x)];
        sumqx[b] += w * q * x;
        sumq2[b] += w * q * q;
      }
}

/* Scale search of 8 groups of 32 (ggml's quantize_row_iq4_nl_impl, first
 * part): d from -max/-127, refined by weighted least squares over the
 * levels, then 15 candidates id = (k - 127) / max, k = -7..7.  Lanes of
 * all-zero groups get scale 0. */
QB_INLINE void
lanes_iq4_scales (const float *xt, const float *wt, float *scale)
{
  float amax[NL], max[NL], id[NL], sumqx[NL], sumq2[NL], best[NL];

  qb_lanes_signed_max (32, NL, xt, amax, max);

  for (int b = 0; b < NL; b++)
    id[b] = 1 / (-max[b] / iq4_levels[0]);
  lanes_iq4_sums (xt, wt, id, sumqx, sumq2);
  for (int b = 0; b < NL; b++)
    {
      scale[b] = sumqx[b] / sumq2[b];
      best[b] = scale[b] * sumqx[b];
    }

  for (int itry = -7; itry <= 7; itry++)
    {
      for (int b = 0; b < NL; b++)
        id[b] = (itry + iq4_levels[0]) / max[b];
      lanes_iq4_sums (xt, wt, id, sumqx, sumq2);
      for (int b = 0; b < NL; b++)
        {
          float d = sumqx[b] / sumq2[b];
          gboolean take = sumq2[b] > 0 && sumqx[b] * sumqx[b] > best[b] * sumq2[b];
          scale[b] = take ? d : scale[b];
          best[b] = take ? d * sumqx[b] : best[b];
        }
    }
  for (int b = 0; b < NL; b++)
    scale[b] = amax[b] < QB_GROUP_MAX_EPS ? 0.0f : scale[b];
}

/* Element-major values and weights of n_groups consecutive groups of 32
 * (spare lanes zero): importance · sqrt(σ² + x²), or x² without importance. */
QB_INLINE void
load_groups (const float *x, const float *qw, const float *sigma2, int n_groups,
             float *xt, float *wt)
{
  for (int b = 0; b < NL; b++)
    for (int j = 0; j < 32; j++)
      {
        float v = b < n_groups ? x[b * 32 + j] : 0;
        float w = b >= n_groups ? 0 : qw ? qw[b * 32 + j] * sqrtf (sigma2[b] + v * v) : v * v;
        xt[j * NL + b] = v;
        wt[j * NL + b] = w;
      }
}

static void
pack_nibbles (const guint8 *L, guint8 *q4)
{
  for (int j = 0; j < 16; j++)
    q4[j] = L[j] | L[j + 16] << 4;
}

/* ---- IQ4_NL -------------------------------------------------------------- */

QB_KERNEL static void
iq4_nl_row (const float *x, QbBlockIQ4_NL *y, gint64 nb, const float *qw)
{
  for (gint64 ib = 0; ib < nb; ib += NL)
    {
      int n_groups = (int) MIN (NL, nb - ib);
      float xt[32 * NL], wt[32 * NL], sigma2[NL], scale[NL];

      /* Each IQ4_NL block is its own super-block: σ² over its 32 values. */
      for (int b = 0; b < n_groups; b++)
        sigma2[b] = qb_sum_squares (x + (ib + b) * 32, 32) * (2.f / 32);
      load_groups (x + ib * 32, qw ? qw + ib * 32 : NULL, sigma2, n_groups, xt, wt);
      lanes_iq4_scales (xt, wt, scale);

      for (int b = 0; b < n_groups; b++)
        {
          float id = scale[b] != 0 ? 1 / scale[b] : 0;
          guint8 L[32];
          qb_put_f16 (y[ib + b].d, scale[b]);
          for (int j = 0; j < 32; j++)
            L[j] = (guint8) nearest_level (id * x[(ib + b) * 32 + j]);
          pack_nibbles (L, y[ib + b].qs);
        }
    }
}

/* ---- IQ4_XS -------------------------------------------------------------- */

QB_KERNEL static void
iq4_xs_row (const float *x, QbBlockIQ4_XS *y, gint64 nb, const float *qw)
{
  for (gint64 i = 0; i < nb; i++, x += QB_QK_K, qw = qw ? qw + QB_QK_K : NULL)
    {
      float sigma2 = qb_sum_squares (x, QB_QK_K) * (2.f / QB_QK_K);
      float sigma2s[NL], xt[QB_QK_K], wt[QB_QK_K], scale[NL], max_scale = 0, amax_scale = 0, d, id;
      guint16 scales_h = 0;

      for (int b = 0; b < NL; b++)
        sigma2s[b] = sigma2;
      load_groups (x, qw, sigma2s, NL, xt, wt);
      lanes_iq4_scales (xt, wt, scale);
      for (int b = 0; b < NL; b++)
        if (fabsf (scale[b]) > amax_scale)
          {
            amax_scale = fabsf (scale[b]);
            max_scale = scale[b];
          }

      /* Group scales to 6 bits against d = -max_scale / 32; the values are
       * then requantized with the group scale as stored. */
      d = -max_scale / 32;
      id = d != 0 ? 1 / d : 0.f;
      qb_put_f16 (y[i].d, d);
      memset (y[i].scales_l, 0, sizeof y[i].scales_l);
      for (int b = 0; b < NL; b++)
        {
          int l = qb_clampi (qb_nearest_int (id * scale[b]), -32, 31);
          float dl = d * l;
          float idl = dl != 0 ? 1 / dl : 0.f;
          guint8 L[32];

          for (int j = 0; j < 32; j++)
            L[j] = (guint8) nearest_level (idl * x[32 * b + j]);
          pack_nibbles (L, y[i].qs + 16 * b);
          l += 32;
          y[i].scales_l[b / 2] |= (l & 0xf) << (4 * (b % 2));
          scales_h |= (guint16) ((l >> 4) << (2 * b));
        }
      y[i].scales_h[0] = scales_h & 0xff;
      y[i].scales_h[1] = scales_h >> 8;
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

/* ---- dequantization ------------------------------------------------------ */

QB_KERNEL void
qb_dequantize_row_iq4_nl (const void *src, float *y, gint64 n)
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
qb_dequantize_row_iq4_xs (const void *src, float *y, gint64 n)
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
