/* SPDX-License-Identifier: MIT */
/* qb-ggml-search-private.h — ggml's scale searches, run on eight groups at
 * once.
 *
 * ggml fits each group of 16 or 32 values on its own, trying a row of
 * candidate scales and keeping the best.  Here eight independent groups
 * sit in the eight lanes of a GCC vector (QbLanes: xt[i] holds value i of
 * every group), and each step runs for all of them with one vector
 * operation.  Every lane performs exactly the scalar algorithm: the same
 * IEEE operations in the same order, the same strict comparisons; where
 * ggml branches, a lane computes both sides and selects.  So each group
 * gets ggml's result bit for bit, and no sum is ever reordered.
 *
 * The vector type is generic: GCC emits SSE2 pairs for baseline x86-64 and
 * single AVX registers in the cloned kernels.
 */
#pragma once

#include "qb-ggml-quants-private.h"

G_BEGIN_DECLS

#define QB_LANES 8

typedef float  QbLanes  __attribute__ ((vector_size (QB_LANES * sizeof (float))));
typedef gint32 QbLanesI __attribute__ ((vector_size (QB_LANES * sizeof (gint32))));

QB_INLINE QbLanes
qb_lanes_select (QbLanesI mask, QbLanes a, QbLanes b)
{
  return (QbLanes) ((mask & (QbLanesI) a) | (~mask & (QbLanesI) b));
}

QB_INLINE QbLanesI
qb_lanes_selecti (QbLanesI mask, QbLanesI a, QbLanesI b)
{
  return (mask & a) | (~mask & b);
}

QB_INLINE QbLanes
qb_lanes_abs (QbLanes v)
{
  return (QbLanes) ((QbLanesI) v & 0x7fffffff);
}

QB_INLINE QbLanes
qb_lanes_float (QbLanesI v)
{
  return __builtin_convertvector (v, QbLanes);
}

/* qb_nearest_int() in every lane. */
QB_INLINE QbLanesI
qb_lanes_nearest_int (QbLanes f)
{
  QbLanesI i = (QbLanesI) (f + 12582912.f);
  return (i & 0x007fffff) - 0x00400000;
}

QB_INLINE QbLanesI
qb_lanes_clamp (QbLanesI v, int lo, int hi)
{
  QbLanesI vlo = (QbLanesI) { 0 } + lo, vhi = (QbLanesI) { 0 } + hi;
  v = qb_lanes_selecti (v < vlo, vlo, v);
  return qb_lanes_selecti (v > vhi, vhi, v);
}

/* qb_fp32_to_fp16() in every lane (round to nearest even, NaN kept quiet,
 * overflow to infinity); each case computed, then selected. */
QB_INLINE QbLanesI
qb_lanes_fp16_bits (QbLanes f)
{
  typedef guint32 QbLanesU __attribute__ ((vector_size (sizeof (QbLanesI))));
  QbLanesU x = (QbLanesU) f;
  QbLanesI sign = (QbLanesI) ((x >> 16) & 0x8000);
  QbLanesI a = (QbLanesI) (x & 0x7fffffff);
  QbLanesI normal = (QbLanesI) (((x & 0x7fffffff) + 0xc8000fffu + ((x >> 13) & 1)) >> 13 & 0xffff);
  QbLanesI subnormal = (QbLanesI) ((QbLanes) a + 0.5f) - 0x3f000000;
  QbLanesI h = qb_lanes_selecti (a < 0x38800000, subnormal, normal);

  h = qb_lanes_selecti (a >= 0x477ff000, (QbLanesI) { 0 } + 0x7c00, h);
  h = qb_lanes_selecti (a > 0x7f800000, (QbLanesI) { 0 } + 0x7e00, h);
  return sign | h;
}

QB_INLINE void
qb_put_f16_bits (guint8 *p, gint32 h)
{
  p[0] = h & 0xff;
  p[1] = (h >> 8) & 0xff;
}

/* n_groups groups of n values, group b at x + b * stride, into lanes
 * (spare lanes zero). */
QB_INLINE void
qb_lanes_load (const float *x, gint64 stride, int n, int n_groups, QbLanes *xt)
{
  for (int i = 0; i < n; i++)
    {
      float v[QB_LANES];
      for (int b = 0; b < QB_LANES; b++)
        v[b] = b < n_groups ? x[b * stride + i] : 0.0f;
      memcpy (&xt[i], v, sizeof v);
    }
}

/* Codes of lane b back to group b at L + b * n. */
QB_INLINE void
qb_lanes_store_codes (const QbLanesI *Lt, int n, int n_groups, guint8 *L)
{
  for (int b = 0; b < n_groups; b++)
    for (int i = 0; i < n; i++)
      L[b * n + i] = (guint8) Lt[i][b];
}

/* Σ v per lane, in order. */
QB_INLINE QbLanes
qb_lanes_sum (const QbLanes *v, int n)
{
  QbLanes s = { 0 };
  for (int i = 0; i < n; i++)
    s += v[i];
  return s;
}

/* Σ v² per lane, in order. */
QB_INLINE QbLanes
qb_lanes_sum_squares (const QbLanes *v, int n)
{
  QbLanes s = { 0 };
  for (int i = 0; i < n; i++)
    s += v[i] * v[i];
  return s;
}

/* The value of largest magnitude per lane (the first one on ties), as ggml
 * finds it: amax starts at +0 and grows on strict comparison. */
QB_INLINE void
qb_lanes_signed_max (const QbLanes *xt, int n, QbLanes *amax_out, QbLanes *max_out)
{
  QbLanes amax = { 0 }, max = { 0 };
  for (int i = 0; i < n; i++)
    {
      QbLanes a = qb_lanes_abs (xt[i]);
      QbLanesI gt = a > amax;
      amax = qb_lanes_select (gt, a, amax);
      max = qb_lanes_select (gt, xt[i], max);
    }
  *amax_out = amax;
  *max_out = max;
}

/* Codes l in [-nmax, nmax-1] of round (iscale · x). */
QB_INLINE QbLanesI
qb_lanes_qx_code (QbLanes iscale, QbLanes x, int nmax)
{
  return qb_lanes_clamp (qb_lanes_nearest_int (iscale * x), -nmax, nmax - 1);
}

/* Σ w x l and Σ w l² of the symmetric codes for one candidate iscale. */
QB_INLINE void
qb_lanes_qx_sums (const QbLanes *xt, const QbLanes *wt, int n, int nmax, QbLanes iscale,
                  QbLanes *sumlx_out, QbLanes *suml2_out)
{
  QbLanes sumlx = { 0 }, suml2 = { 0 };
  for (int i = 0; i < n; i++)
    {
      QbLanes l = qb_lanes_float (qb_lanes_qx_code (iscale, xt[i], nmax));
      sumlx += wt[i] * xt[i] * l;
      suml2 += wt[i] * l * l;
    }
  *sumlx_out = sumlx;
  *suml2_out = suml2;
}

/* Symmetric codes l in [-nmax, nmax-1] with x ≈ scale · l, minimizing
 * Σ w (x - scale l)² (llama.cpp's make_qx_quants with rmse_type 1).  The
 * candidates are iscale = -nmax / max, then -(nmax + 0.1 k) / max for
 * k = -9..9, k ≠ 0.  Lt gets l + nmax; the least-squares scale of the
 * winner is returned, 0 for an all-zero group. */
QB_INLINE QbLanes
qb_lanes_qx_quants (const QbLanes *xt, const QbLanes *wt, int n, int nmax, QbLanesI *Lt)
{
  QbLanes amax, max, iscale, sumlx, suml2, scale, best, best_iscale;
  QbLanesI zero;

  qb_lanes_signed_max (xt, n, &amax, &max);
  zero = amax < QB_GROUP_MAX_EPS;

  iscale = (float) -nmax / max;
  qb_lanes_qx_sums (xt, wt, n, nmax, iscale, &sumlx, &suml2);
  scale = qb_lanes_select (suml2 != 0.0f, sumlx / suml2, (QbLanes) { 0 });
  best = scale * sumlx;
  best_iscale = iscale;

  for (int is = -9; is <= 9; is++)
    {
      QbLanesI take;
      QbLanes s;

      if (is == 0)
        continue;
      iscale = -(nmax + 0.1f * is) / max;
      qb_lanes_qx_sums (xt, wt, n, nmax, iscale, &sumlx, &suml2);
      s = sumlx / suml2;
      take = (suml2 > 0.0f) & (sumlx * sumlx > best * suml2);
      scale = qb_lanes_select (take, s, scale);
      best = qb_lanes_select (take, s * sumlx, best);
      best_iscale = qb_lanes_select (take, iscale, best_iscale);
    }

  for (int i = 0; i < n; i++)
    Lt[i] = ~zero & (qb_lanes_qx_code (best_iscale, xt[i], nmax) + nmax);
  return qb_lanes_select (zero, (QbLanes) { 0 }, scale);
}

/* Codes l in [0, nmax] of round (iscale · (x - min)). */
QB_INLINE QbLanesI
qb_lanes_qkx_code (QbLanes iscale, QbLanes x, QbLanes min, int nmax)
{
  return qb_lanes_clamp (qb_lanes_nearest_int (iscale * (x - min)), 0, nmax);
}

/* Σ w·d(x, scale·l + min) with d the squared or (use_mad) absolute
 * difference. */
QB_INLINE QbLanes
qb_lanes_qkx_error (const QbLanes *xt, const QbLanes *wt, int n, int nmax, gboolean use_mad,
                    QbLanes iscale, QbLanes origin, QbLanes scale, QbLanes min)
{
  QbLanes err = { 0 };
  for (int i = 0; i < n; i++)
    {
      QbLanes l = qb_lanes_float (qb_lanes_qkx_code (iscale, xt[i], origin, nmax));
      QbLanes diff = scale * l + min - xt[i];
      err += wt[i] * (use_mad ? qb_lanes_abs (diff) : diff * diff);
    }
  return err;
}

/* Asymmetric codes l in [0, nmax] with x ≈ scale · l - the_min, minimizing
 * Σ w·d(x, scale l - the_min) (llama.cpp's make_qkx2_quants, and
 * make_qkx3_quants with weights).  Candidates iscale = (rmin + rdelta k +
 * nmax) / (max - min), k = 0..nstep, each refined by weighted least
 * squares.  As in ggml, a taken candidate's minimum is where the following
 * candidates round from, so candidates run one after the other and each
 * lane carries its own minimum.  Returns the scale (0 for a flat group). */
QB_INLINE QbLanes
qb_lanes_qkx_quants (const QbLanes *xt, const QbLanes *wt, int n, int nmax,
                     float rmin, float rdelta, int nstep, gboolean use_mad,
                     QbLanesI *Lt, QbLanes *the_min)
{
  QbLanes min = xt[0], max = xt[0], sum_w = wt[0], sum_x = wt[0] * xt[0];
  QbLanes scale, best_mad, best_iscale, best_origin, min0;
  QbLanesI flat;

  for (int i = 1; i < n; i++)
    {
      min = qb_lanes_select (xt[i] < min, xt[i], min);
      max = qb_lanes_select (xt[i] > max, xt[i], max);
      sum_w += wt[i];
      sum_x += wt[i] * xt[i];
    }
  min = qb_lanes_select (min > 0.0f, (QbLanes) { 0 }, min);
  flat = max == min;
  min0 = min;

  best_iscale = (float) nmax / (max - min);
  best_origin = min;
  scale = 1.0f / best_iscale;
  best_mad = qb_lanes_qkx_error (xt, wt, n, nmax, use_mad, best_iscale, min, scale, min);

  for (int is = 0; is <= nstep; is++)
    {
      QbLanes iscale = (rmin + rdelta * is + nmax) / (max - min);
      QbLanes sum_l = { 0 }, sum_l2 = { 0 }, sum_xl = { 0 }, D, this_scale, this_min, mad;
      QbLanesI pos, take;

      for (int i = 0; i < n; i++)
        {
          QbLanes l = qb_lanes_float (qb_lanes_qkx_code (iscale, xt[i], min, nmax));
          QbLanes wl = wt[i] * l;
          sum_l += wl;
          sum_l2 += wl * l;
          sum_xl += wl * xt[i];
        }
      D = sum_w * sum_l2 - sum_l * sum_l;
      this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      pos = this_min > 0.0f;
      this_scale = qb_lanes_select (pos, sum_xl / sum_l2, this_scale);
      this_min = qb_lanes_select (pos, (QbLanes) { 0 }, this_min);

      mad = qb_lanes_qkx_error (xt, wt, n, nmax, use_mad, iscale, min, this_scale, this_min);
      take = (D > 0.0f) & (mad < best_mad);
      best_mad = qb_lanes_select (take, mad, best_mad);
      best_iscale = qb_lanes_select (take, iscale, best_iscale);
      best_origin = qb_lanes_select (take, min, best_origin);
      scale = qb_lanes_select (take, this_scale, scale);
      min = qb_lanes_select (take, this_min, min);
    }

  /* A flat group (max == min once min is clamped to 0) keeps zero codes. */
  for (int i = 0; i < n; i++)
    Lt[i] = ~flat & qb_lanes_qkx_code (best_iscale, xt[i], best_origin, nmax);
  *the_min = -qb_lanes_select (flat, min0, min);
  return qb_lanes_select (flat, (QbLanes) { 0 }, scale);
}

G_END_DECLS
