/* qb-ggml-search-private.h — ggml's scale searches, run on several groups at
 * once.
 *
 * ggml fits each group of 16 or 32 values on its own, trying a row of
 * candidate scales and keeping the best.  Here n_lanes independent groups
 * sit side by side (element-major: xt[i * n_lanes + b] is value i of group
 * b), and every step runs for all lanes in one loop that GCC vectorizes.
 * Each lane performs exactly the scalar algorithm: same operations, same
 * order of summation, same strict comparisons; where ggml branches, a lane
 * computes both sides and selects.  So the results are ggml's, bit for bit.
 *
 * These are always inlined so that the group size and lane count are
 * constants in each kernel that uses them.
 */
#pragma once

#include "qb-ggml-quants-private.h"

G_BEGIN_DECLS

#define QB_LANES_MAX 16

/* The value of largest magnitude per lane (the first one on ties), as ggml
 * finds it: amax starts at 0 and grows on strict comparison. */
QB_INLINE void
qb_lanes_signed_max (int n, int nl, const float *xt, float *amax, float *max)
{
  for (int b = 0; b < nl; b++)
    amax[b] = max[b] = 0.0f;
  for (int i = 0; i < n; i++)
    for (int b = 0; b < nl; b++)
      {
        float v = xt[i * nl + b];
        float a = fabsf (v);
        gboolean gt = a > amax[b];
        amax[b] = gt ? a : amax[b];
        max[b] = gt ? v : max[b];
      }
}

/* Σ w x l and Σ w l² of the symmetric codes for one candidate iscale. */
QB_INLINE void
qb_lanes_qx_sums (int n, int nl, int nmax, const float *xt, const float *wt,
                  const float *iscale, float *sumlx, float *suml2)
{
  for (int b = 0; b < nl; b++)
    sumlx[b] = suml2[b] = 0;
  for (int i = 0; i < n; i++)
    for (int b = 0; b < nl; b++)
      {
        float x = xt[i * nl + b], w = wt[i * nl + b];
        int l = qb_clampi (qb_nearest_int (iscale[b] * x), -nmax, nmax - 1);
        sumlx[b] += w * x * l;
        suml2[b] += w * l * l;
      }
}

/* Symmetric codes l in [-nmax, nmax-1] with x ≈ scale * l, minimizing
 * Σ w (x - scale l)² (llama.cpp's make_qx_quants with rmse_type 1).  The
 * candidates are iscale = -nmax / max, then -(nmax + 0.1 k) / max for
 * k = -9..9, k ≠ 0.  Lt gets l + nmax; scale[b] is the least-squares scale
 * of the winner, 0 for an all-zero group. */
QB_INLINE void
qb_lanes_qx_quants (int n, int nl, int nmax, const float *xt, const float *wt,
                    guint8 *Lt, float *scale)
{
  float amax[QB_LANES_MAX], max[QB_LANES_MAX];
  float iscale[QB_LANES_MAX], sumlx[QB_LANES_MAX], suml2[QB_LANES_MAX];
  float best[QB_LANES_MAX], best_iscale[QB_LANES_MAX];

  qb_lanes_signed_max (n, nl, xt, amax, max);

  for (int b = 0; b < nl; b++)
    iscale[b] = -nmax / max[b];
  qb_lanes_qx_sums (n, nl, nmax, xt, wt, iscale, sumlx, suml2);
  for (int b = 0; b < nl; b++)
    {
      scale[b] = suml2[b] != 0 ? sumlx[b] / suml2[b] : 0.0f;
      best[b] = scale[b] * sumlx[b];
      best_iscale[b] = iscale[b];
    }

  for (int is = -9; is <= 9; is++)
    {
      if (is == 0)
        continue;
      for (int b = 0; b < nl; b++)
        iscale[b] = -(nmax + 0.1f * is) / max[b];
      qb_lanes_qx_sums (n, nl, nmax, xt, wt, iscale, sumlx, suml2);
      for (int b = 0; b < nl; b++)
        {
          float s = sumlx[b] / suml2[b];
          gboolean take = suml2[b] > 0 && sumlx[b] * sumlx[b] > best[b] * suml2[b];
          scale[b] = take ? s : scale[b];
          best[b] = take ? s * sumlx[b] : best[b];
          best_iscale[b] = take ? iscale[b] : best_iscale[b];
        }
    }

  for (int i = 0; i < n; i++)
    for (int b = 0; b < nl; b++)
      {
        int l = qb_clampi (qb_nearest_int (best_iscale[b] * xt[i * nl + b]), -nmax, nmax - 1);
        Lt[i * nl + b] = amax[b] < QB_GROUP_MAX_EPS ? 0 : (guint8) (l + nmax);
      }
  for (int b = 0; b < nl; b++)
    scale[b] = amax[b] < QB_GROUP_MAX_EPS ? 0.0f : scale[b];
}

/* Asymmetric codes l in [0, nmax] with x ≈ scale * l - the_min, minimizing
 * Σ w d(x, scale l - the_min), d the squared or (use_mad) absolute
 * difference (llama.cpp's make_qkx2_quants / make_qkx3_quants with
 * weights).  Candidates iscale = (rmin + rdelta k + nmax) / (max - min),
 * k = 0..nstep, each refined by weighted least squares.  As in ggml, a
 * taken candidate's minimum feeds the following candidates, so candidates
 * run one after the other and lanes carry their own minimum. */
QB_INLINE void
qb_lanes_qkx_quants (int n, int nl, int nmax, const float *xt, const float *wt,
                     float rmin, float rdelta, int nstep, gboolean use_mad,
                     guint8 *Lt, float *scale, float *the_min)
{
  float min[QB_LANES_MAX], max[QB_LANES_MAX], sum_w[QB_LANES_MAX], sum_x[QB_LANES_MAX];
  float best_mad[QB_LANES_MAX], best_iscale[QB_LANES_MAX], best_origin[QB_LANES_MAX];
  float min0[QB_LANES_MAX];
  gboolean flat[QB_LANES_MAX];

  for (int b = 0; b < nl; b++)
    {
      min[b] = max[b] = xt[b];
      sum_w[b] = wt[b];
      sum_x[b] = sum_w[b] * xt[b];
    }
  for (int i = 1; i < n; i++)
    for (int b = 0; b < nl; b++)
      {
        float x = xt[i * nl + b], w = wt[i * nl + b];
        min[b] = x < min[b] ? x : min[b];
        max[b] = x > max[b] ? x : max[b];
        sum_w[b] += w;
        sum_x[b] += w * x;
      }
  for (int b = 0; b < nl; b++)
    {
      min[b] = min[b] > 0 ? 0.0f : min[b];
      flat[b] = max[b] == min[b];
      min0[b] = min[b];
      best_iscale[b] = nmax / (max[b] - min[b]);
      best_origin[b] = min[b];
      scale[b] = 1 / best_iscale[b];
      best_mad[b] = 0;
    }
  for (int i = 0; i < n; i++)
    for (int b = 0; b < nl; b++)
      {
        float x = xt[i * nl + b];
        int l = qb_clampi (qb_nearest_int (best_iscale[b] * (x - min[b])), 0, nmax);
        float diff = scale[b] * l + min[b] - x;
        best_mad[b] += wt[i * nl + b] * (use_mad ? fabsf (diff) : diff * diff);
      }

  for (int is = 0; is <= nstep; is++)
    {
      float iscale[QB_LANES_MAX], sum_l[QB_LANES_MAX], sum_l2[QB_LANES_MAX], sum_xl[QB_LANES_MAX];
      float this_scale[QB_LANES_MAX], this_min[QB_LANES_MAX], D[QB_LANES_MAX], mad[QB_LANES_MAX];

      for (int b = 0; b < nl; b++)
        {
          iscale[b] = (rmin + rdelta * is + nmax) / (max[b] - min[b]);
          sum_l[b] = sum_l2[b] = sum_xl[b] = 0;
        }
      for (int i = 0; i < n; i++)
        for (int b = 0; b < nl; b++)
          {
            float x = xt[i * nl + b];
            int l = qb_clampi (qb_nearest_int (iscale[b] * (x - min[b])), 0, nmax);
            float wl = wt[i * nl + b] * l;
            sum_l[b] += wl;
            sum_l2[b] += wl * l;
            sum_xl[b] += wl * x;
          }
      for (int b = 0; b < nl; b++)
        {
          gboolean pos;
          D[b] = sum_w[b] * sum_l2[b] - sum_l[b] * sum_l[b];
          this_scale[b] = (sum_w[b] * sum_xl[b] - sum_x[b] * sum_l[b]) / D[b];
          this_min[b] = (sum_l2[b] * sum_x[b] - sum_l[b] * sum_xl[b]) / D[b];
          pos = this_min[b] > 0;
          this_scale[b] = pos ? sum_xl[b] / sum_l2[b] : this_scale[b];
          this_min[b] = pos ? 0.0f : this_min[b];
          mad[b] = 0;
        }
      for (int i = 0; i < n; i++)
        for (int b = 0; b < nl; b++)
          {
            float x = xt[i * nl + b];
            int l = qb_clampi (qb_nearest_int (iscale[b] * (x - min[b])), 0, nmax);
            float diff = this_scale[b] * l + this_min[b] - x;
            mad[b] += wt[i * nl + b] * (use_mad ? fabsf (diff) : diff * diff);
          }
      for (int b = 0; b < nl; b++)
        {
          gboolean take = D[b] > 0 && mad[b] < best_mad[b];
          best_mad[b] = take ? mad[b] : best_mad[b];
          best_iscale[b] = take ? iscale[b] : best_iscale[b];
          best_origin[b] = take ? min[b] : best_origin[b];
          scale[b] = take ? this_scale[b] : scale[b];
          min[b] = take ? this_min[b] : min[b];
        }
    }

  /* A flat group (max == min after clamping min to 0) keeps zero codes. */
  for (int i = 0; i < n; i++)
    for (int b = 0; b < nl; b++)
      {
        int l = qb_clampi (qb_nearest_int (best_iscale[b] * (xt[i * nl + b] - best_origin[b])), 0, nmax);
        Lt[i * nl + b] = flat[b] ? 0 : (guint8) l;
      }
  for (int b = 0; b < nl; b++)
    {
      scale[b] = flat[b] ? 0.0f : scale[b];
      min[b] = flat[b] ? min0[b] : min[b];
      the_min[b] = -min[b];
    }
}

G_END_DECLS
