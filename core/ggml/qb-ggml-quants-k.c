/* SPDX-License-Identifier: MIT */
/* qb-ggml-quants-k.c — Q2_K, Q3_K, Q4_K, Q5_K and Q6_K, bit-exact.
 *
 * A super-block of 256 values holds 16 groups of 16 (Q2_K, Q3_K, Q6_K) or
 * 8 groups of 32 (Q4_K, Q5_K), each with a quantized scale (and minimum).
 * ggml fits every group with a scale search, then quantizes the group
 * scales against a super-block scale and requantizes the values with the
 * scales as stored.  The group fits run side by side in vector lanes
 * (qb-ggml-search-private.h); the rest follows ggml step by step.
 */
#include "qb-ggml-quants.h"
#include "qb-ggml-search-private.h"

/* ---- helpers ------------------------------------------------------------- */

/* Weights of ggml's K-quant imatrix paths: qw · sqrt(σ² + x²). */
QB_INLINE void
lanes_weights_imatrix (const QbLanes *xt, const float *qw, gint64 stride, int n, float sigma2,
                       QbLanes *wt)
{
  for (int i = 0; i < n; i++)
    {
      float w[QB_LANES];
      for (int b = 0; b < QB_LANES; b++)
        w[b] = qw[b * stride + i] * sqrtf (sigma2 + xt[i][b] * xt[i][b]);
      memcpy (&wt[i], w, sizeof w);
    }
}

/* Codes 0..3 of 256 values, four to a byte as Q2_K and Q3_K keep them. */
QB_INLINE void
pack_2bit (const guint8 *L, guint8 *qs)
{
  for (int j = 0; j < QB_QK_K; j += 128)
    for (int l = 0; l < 32; l++)
      qs[j / 4 + l] = L[j + l] | L[j + l + 32] << 2 | L[j + l + 64] << 4 | L[j + l + 96] << 6;
}

/* Scale and minimum of group j from the 12 packed 6-bit pairs of Q4_K and
 * Q5_K. */
static inline void
get_scale_min_k4 (int j, const guint8 *q, guint8 *d, guint8 *m)
{
  if (j < 4)
    {
      *d = q[j] & 63;
      *m = q[j + 4] & 63;
    }
  else
    {
      *d = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
      *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

static void
put_scale_min_k4 (int j, guint8 ls, guint8 lm, guint8 *q)
{
  if (j < 4)
    {
      q[j] = ls;
      q[j + 4] = lm;
    }
  else
    {
      q[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      q[j - 4] |= (ls >> 4) << 6;
      q[j] |= (lm >> 4) << 6;
    }
}

/* Signed 6-bit group scales of Q3_K, stored as l + 32 in 12 bytes. */
QB_INLINE void
put_scales_q3 (const int *l32, guint8 *scales)
{
  memset (scales, 0, 12);
  for (int j = 0; j < 16; j++)
    {
      int l = l32[j];
      if (j < 8)
        scales[j] = l & 0xf;
      else
        scales[j - 8] |= (l & 0xf) << 4;
      scales[j % 4 + 8] |= (l >> 4) << (2 * (j / 4));
    }
}

static int
get_scale_q3 (const guint8 *scales, int j)
{
  int sc = j < 8 ? scales[j] & 0xf : scales[j - 8] >> 4;
  return (sc | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

/* Non-negative codes 0..nmax for n group scales (or minimums) x with
 * weights w, returning their scale (llama.cpp's make_qp_quants): try
 * iscale = (nmax + 0.1 k) / max for k = -4..4, then improve the codes one at
 * a time for up to five rounds.  Sixteen values at most: plain scalar code. */
static float
qp_quants (int n, int nmax, const float *x, guint8 *L, const float *w)
{
  float max = 0, iscale, scale, best_mse = 0, sumlx = 0, suml2 = 0;

  for (int i = 0; i < n; i++)
    max = max > x[i] ? max : x[i];
  if (max == 0)
    {
      memset (L, 0, n);
      return 0.f;
    }
  iscale = nmax / max;
  for (int i = 0; i < n; i++)
    L[i] = (guint8) qb_nearest_int (iscale * x[i]);
  scale = 1 / iscale;
  for (int i = 0; i < n; i++)
    {
      float diff = x[i] - scale * L[i];
      best_mse += w[i] * diff * diff;
    }
  for (int is = -4; is <= 4; is++)
    {
      float iscale_is, scale_is, mse = 0;
      if (is == 0)
        continue;
      iscale_is = (0.1f * is + nmax) / max;
      scale_is = 1 / iscale_is;
      for (int i = 0; i < n; i++)
        {
          int l = MIN (nmax, qb_nearest_int (iscale_is * x[i]));
          float diff = x[i] - scale_is * l;
          mse += w[i] * diff * diff;
        }
      if (mse < best_mse)
        {
          best_mse = mse;
          iscale = iscale_is;
        }
    }
  for (int i = 0; i < n; i++)
    {
      int l = MIN (nmax, qb_nearest_int (iscale * x[i]));
      L[i] = (guint8) l;
      sumlx += w[i] * x[i] * l;
      suml2 += w[i] * l * l;
    }
  for (int itry = 0; itry < 5; itry++)
    {
      int n_changed = 0;
      for (int i = 0; i < n; i++)
        {
          float slx = sumlx - w[i] * x[i] * L[i];
          float sl2 = suml2 - w[i] * L[i] * L[i];
          if (slx > 0 && sl2 > 0)
            {
              int new_l = MIN (nmax, qb_nearest_int (x[i] * sl2 / slx));
              if (new_l != L[i])
                {
                  slx += w[i] * x[i] * new_l;
                  sl2 += w[i] * new_l * new_l;
                  if (slx * slx * suml2 > sumlx * sumlx * sl2)
                    {
                      L[i] = (guint8) new_l;
                      sumlx = slx;
                      suml2 = sl2;
                      n_changed++;
                    }
                }
            }
        }
      if (n_changed == 0)
        break;
    }
  return sumlx / suml2;
}

/* Q3_K's fit without importance (llama.cpp's make_q3_quants, rmse on):
 * codes l in [-4, 3] from iscale = -4 / max with weights x², then up to five
 * rounds of moving single codes while that improves the fit.  A lane stops
 * after a round that changes nothing in it, as ggml's loop does.  Each
 * step depends on the previous one, so the two halves of the super-block
 * (xt[h][i], 16 groups) go through the loop together, two independent
 * chains for the CPU to overlap.  Lt[h][i] gets l + 4; returns the scales. */
QB_INLINE void
lanes_q3_quants (QbLanes (*xt)[16], QbLanesI (*Lt)[16], QbLanes *scale)
{
  enum { N = 16, NMAX = 4 };
  QbLanes amax[2], max[2], sumlx[2] = { { 0 } }, suml2[2] = { { 0 } };
  QbLanesI L[2][N], zero[2], active[2] = { ~(QbLanesI) { 0 }, ~(QbLanesI) { 0 } };

  for (int h = 0; h < 2; h++)
    {
      QbLanes iscale;
      qb_lanes_signed_max (xt[h], N, &amax[h], &max[h]);
      zero[h] = amax[h] < QB_GROUP_MAX_EPS;
      iscale = (float) -NMAX / max[h];
      for (int i = 0; i < N; i++)
        {
          QbLanes w = xt[h][i] * xt[h][i], l;
          L[h][i] = qb_lanes_qx_code (iscale, xt[h][i], NMAX);
          l = qb_lanes_float (L[h][i]);
          sumlx[h] += w * xt[h][i] * l;
          suml2[h] += w * l * l;
        }
    }
  for (int itry = 0; itry < 5; itry++)
    {
      QbLanesI changed[2] = { { 0 } };
      gboolean any = FALSE;

      for (int i = 0; i < N; i++)
        for (int h = 0; h < 2; h++)
          {
            QbLanes x = xt[h][i], w = x * x, l = qb_lanes_float (L[h][i]);
            QbLanes slx = sumlx[h] - w * x * l;
            QbLanes sl2 = suml2[h] - w * l * l;
            QbLanesI new_l = qb_lanes_clamp (qb_lanes_nearest_int (x * sl2 / slx), -NMAX, NMAX - 1);
            QbLanes nl = qb_lanes_float (new_l);
            QbLanes slx2 = slx + w * x * nl;
            QbLanes sl22 = sl2 + w * nl * nl;
            QbLanesI take = active[h] & (slx > 0.0f) & (new_l != L[h][i]) & (sl22 > 0.0f)
                            & (slx2 * slx2 * suml2[h] > sumlx[h] * sumlx[h] * sl22);
            L[h][i] = qb_lanes_selecti (take, new_l, L[h][i]);
            sumlx[h] = qb_lanes_select (take, slx2, sumlx[h]);
            suml2[h] = qb_lanes_select (take, sl22, suml2[h]);
            changed[h] |= take;
          }
      for (int h = 0; h < 2; h++)
        {
          active[h] &= changed[h];
          for (int b = 0; b < QB_LANES; b++)
            any |= active[h][b] != 0;
        }
      if (!any)
        break;
    }
  for (int h = 0; h < 2; h++)
    {
      for (int i = 0; i < N; i++)
        Lt[h][i] = ~zero[h] & (L[h][i] + NMAX);
      scale[h] = qb_lanes_select (zero[h], (QbLanes) { 0 }, sumlx[h] / suml2[h]);
    }
}

/* Fits the 16 groups of 16 of a super-block, eight at a time: fit (8
 * groups in lanes, their weights) -> scales, codes.  Weights are the
 * importance (Q6_K), qw · sqrt(σ² + x²) (sigma2 >= 0), or x² (qw NULL). */
typedef enum { FIT_QX, FIT_Q3, FIT_QKX_MAD, FIT_QKX3 } Fit16;

QB_INLINE void
fit_groups16 (const float *x, const float *qw, float sigma2, Fit16 fit, int nmax,
              float *scales, float *mins, float *sw, guint8 *L)
{
  if (fit == FIT_Q3)
    {
      QbLanes xt[2][16], scale[2];
      QbLanesI Lt[2][16];

      for (int h = 0; h < 2; h++)
        qb_lanes_load (x + 128 * h, 16, 16, QB_LANES, xt[h]);
      lanes_q3_quants (xt, Lt, scale);
      for (int h = 0; h < 2; h++)
        {
          for (int b = 0; b < QB_LANES; b++)
            scales[8 * h + b] = scale[h][b];
          qb_lanes_store_codes (Lt[h], 16, QB_LANES, L + 128 * h);
        }
      return;
    }
  for (int h = 0; h < 2; h++)
    {
      QbLanes xt[16], wt[16], scale, the_min = { 0 }, sum;
      QbLanesI Lt[16];

      qb_lanes_load (x + 128 * h, 16, 16, QB_LANES, xt);
      if (qw != NULL && sigma2 < 0)
        qb_lanes_load (qw + 128 * h, 16, 16, QB_LANES, wt);
      else if (qw != NULL)
        lanes_weights_imatrix (xt, qw + 128 * h, 16, 16, sigma2, wt);
      else
        for (int i = 0; i < 16; i++)
          wt[i] = fit == FIT_QKX_MAD ? qb_lanes_abs (xt[i]) : xt[i] * xt[i];

      switch (fit)
        {
        case FIT_QX:
          scale = qb_lanes_qx_quants (xt, wt, 16, nmax, Lt);
          break;
        case FIT_QKX_MAD:
          scale = qb_lanes_qkx_quants (xt, wt, 16, 3, -0.5f, 0.1f, 15, TRUE, Lt, &the_min);
          break;
        case FIT_QKX3:
        default:
          scale = qb_lanes_qkx_quants (xt, wt, 16, 3, -0.9f, 0.05f, 36, FALSE, Lt, &the_min);
          break;
        }
      sum = qb_lanes_sum (wt, 16);
      for (int b = 0; b < QB_LANES; b++)
        {
          scales[8 * h + b] = scale[b];
          if (mins)
            mins[8 * h + b] = the_min[b];
          if (sw)
            sw[8 * h + b] = sum[b];
        }
      qb_lanes_store_codes (Lt, 16, QB_LANES, L + 128 * h);
    }
}

/* ---- Q2_K ---------------------------------------------------------------- */

/* Requantizes with the stored scales and packs.  Groups whose scale is 0
 * keep the codes of the fit. */
QB_INLINE void
finish_q2_K (const float *x, QbBlockQ2_K *y, guint8 *L)
{
  float d_all = qb_get_f16 (y->d), m_all = qb_get_f16 (y->dmin);

  for (int j = 0; j < 16; j++)
    {
      float d = d_all * (y->scales[j] & 0xf), m;
      if (d == 0)
        continue;
      m = m_all * (y->scales[j] >> 4);
      for (int ii = 0; ii < 16; ii++)
        L[16 * j + ii] = (guint8) qb_clampi (qb_nearest_int ((x[16 * j + ii] + m) / d), 0, 3);
    }
  pack_2bit (L, y->qs);
}

QB_KERNEL static void
q2_K_ref (const float *x, QbBlockQ2_K *y, gint64 nb)
{
  for (gint64 i = 0; i < nb; i++, x += QB_QK_K)
    {
      float scales[16], mins[16], max_scale = 0, max_min = 0;
      guint8 L[QB_QK_K];

      fit_groups16 (x, NULL, 0, FIT_QKX_MAD, 3, scales, mins, NULL, L);

      for (int j = 0; j < 16; j++)
        {
          max_scale = scales[j] > max_scale ? scales[j] : max_scale;
          max_min = mins[j] > max_min ? mins[j] : max_min;
        }
      if (max_scale > 0)
        {
          float iscale = 15.f / max_scale;
          for (int j = 0; j < 16; j++)
            y[i].scales[j] = (guint8) qb_nearest_int (iscale * scales[j]);
          qb_put_f16 (y[i].d, max_scale / 15.f);
        }
      else
        {
          memset (y[i].scales, 0, 16);
          qb_put_f16 (y[i].d, 0.f);
        }
      if (max_min > 0)
        {
          float iscale = 15.f / max_min;
          for (int j = 0; j < 16; j++)
            y[i].scales[j] |= (guint8) (qb_nearest_int (iscale * mins[j]) << 4);
          qb_put_f16 (y[i].dmin, max_min / 15.f);
        }
      else
        qb_put_f16 (y[i].dmin, 0.f);
      finish_q2_K (x, &y[i], L);
    }
}

QB_KERNEL static void
q2_K_imatrix (const float *x, QbBlockQ2_K *y, gint64 nb, const float *qw)
{
  for (gint64 i = 0; i < nb; i++, x += QB_QK_K, qw += QB_QK_K)
    {
      float sigma2 = qb_sum_squares (x, QB_QK_K) / QB_QK_K;
      float scales[16], mins[16], sw[16], dm, mm;
      guint8 L[QB_QK_K], Ls[16], Lm[16];

      fit_groups16 (x, qw, sigma2, FIT_QKX3, 3, scales, mins, sw, L);

      dm = qp_quants (16, 15, scales, Ls, sw);
      mm = qp_quants (16, 15, mins, Lm, sw);
      qb_put_f16 (y[i].d, dm);
      qb_put_f16 (y[i].dmin, mm);
      for (int j = 0; j < 16; j++)
        y[i].scales[j] = Ls[j] | Lm[j] << 4;
      finish_q2_K (x, &y[i], L);
    }
}

/* ---- Q3_K ---------------------------------------------------------------- */

/* Requantizes with the stored scales; high bits into hmask, the low two
 * into qs. */
QB_INLINE void
finish_q3_K (const float *x, QbBlockQ3_K *y, guint8 *L)
{
  float d_all = qb_get_f16 (y->d);

  for (int j = 0; j < 16; j++)
    {
      float d = d_all * get_scale_q3 (y->scales, j);
      if (d == 0)
        continue;
      for (int ii = 0; ii < 16; ii++)
        L[16 * j + ii] = (guint8) (qb_clampi (qb_nearest_int (x[16 * j + ii] / d), -4, 3) + 4);
    }
  /* High bit of value j into bit j / 32 of hmask[j % 32]. */
  memset (y->hmask, 0, sizeof y->hmask);
  for (int bit = 0; bit < 8; bit++)
    for (int m = 0; m < 32; m++)
      {
        int high = L[32 * bit + m] > 3;
        y->hmask[m] |= high << bit;
        L[32 * bit + m] -= 4 * high;
      }
  pack_2bit (L, y->qs);
}

QB_KERNEL static void
q3_K_ref (const float *x, QbBlockQ3_K *y, gint64 nb)
{
  for (gint64 i = 0; i < nb; i++, x += QB_QK_K)
    {
      float scales[16], max_scale = 0, amax = 0;
      guint8 L[QB_QK_K];

      fit_groups16 (x, NULL, 0, FIT_Q3, 4, scales, NULL, NULL, L);

      for (int j = 0; j < 16; j++)
        if (fabsf (scales[j]) > amax)
          {
            amax = fabsf (scales[j]);
            max_scale = scales[j];
          }
      if (max_scale != 0)
        {
          float iscale = -32.f / max_scale;
          int l32[16];
          for (int j = 0; j < 16; j++)
            {
              gint8 l = (gint8) qb_nearest_int (iscale * scales[j]);
              l32[j] = qb_clampi (l, -32, 31) + 32;
            }
          put_scales_q3 (l32, y[i].scales);
          qb_put_f16 (y[i].d, 1 / iscale);
        }
      else
        {
          memset (y[i].scales, 0, 12);
          qb_put_f16 (y[i].d, 0.f);
        }
      finish_q3_K (x, &y[i], L);
    }
}

QB_KERNEL static void
q3_K_imatrix (const float *x, QbBlockQ3_K *y, gint64 nb, const float *qw)
{
  for (gint64 i = 0; i < nb; i++, x += QB_QK_K, qw += QB_QK_K)
    {
      float sigma2 = 2 * qb_sum_squares (x, QB_QK_K) / QB_QK_K;
      float scales[16], sw[16];
      QbLanes st[16], swt[16], d_block;
      QbLanesI Ls[16];
      guint8 L[QB_QK_K];
      int l32[16];

      fit_groups16 (x, qw, sigma2, FIT_QX, 4, scales, NULL, sw, L);

      /* The 16 group scales are one more group of 16, weighted by Σ w. */
      qb_lanes_load (scales, 0, 16, 1, st);
      qb_lanes_load (sw, 0, 16, 1, swt);
      d_block = qb_lanes_qx_quants (st, swt, 16, 32, Ls);
      for (int j = 0; j < 16; j++)
        l32[j] = Ls[j][0];
      put_scales_q3 (l32, y[i].scales);
      qb_put_f16 (y[i].d, d_block[0]);
      finish_q3_K (x, &y[i], L);
    }
}

/* ---- Q4_K and Q5_K ------------------------------------------------------- */

/* Without importance each group of 32 is weighted by its RMS plus |x|. */
QB_INLINE void
lanes_weights_rms_abs (const QbLanes *xt, QbLanes *wt)
{
  QbLanes sum_x2 = { 0 }, av_x = { 0 };
  for (int i = 0; i < 32; i++)
    sum_x2 += xt[i] * xt[i];
  sum_x2 = sum_x2 / 32.0f;
  for (int b = 0; b < QB_LANES; b++)
    av_x[b] = sqrtf (sum_x2[b]);
  for (int i = 0; i < 32; i++)
    wt[i] = av_x + qb_lanes_abs (xt[i]);
}

/* Group scales and minimums of Q4_K/Q5_K without importance: both
 * quantized to 6 bits against their maximum. */
QB_INLINE void
put_scales_k4_max (const float *scales, const float *mins, guint8 *packed, guint8 *d, guint8 *dmin)
{
  float max_scale = 0, max_min = 0, inv_scale, inv_min;

  for (int j = 0; j < 8; j++)
    {
      max_scale = scales[j] > max_scale ? scales[j] : max_scale;
      max_min = mins[j] > max_min ? mins[j] : max_min;
    }
  inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < 8; j++)
    {
      guint8 ls = (guint8) qb_nearest_int (inv_scale * scales[j]);
      guint8 lm = (guint8) qb_nearest_int (inv_min * mins[j]);
      put_scale_min_k4 (j, MIN (63, ls), MIN (63, lm), packed);
    }
  qb_put_f16 (d, max_scale / 63.f);
  qb_put_f16 (dmin, max_min / 63.f);
}

/* With importance: scales and minimums fitted by qp_quants. */
QB_INLINE void
put_scales_k4_fit (const float *scales, const float *mins, const float *sw,
                   gboolean cut, guint8 *packed, guint8 *d, guint8 *dmin)
{
  guint8 Ls[8], Lm[8];
  float d_block = qp_quants (8, 63, scales, Ls, sw);
  float m_block = qp_quants (8, 63, mins, Lm, sw);

  for (int j = 0; j < 8; j++)
    put_scale_min_k4 (j, cut ? MIN (63, Ls[j]) : Ls[j], cut ? MIN (63, Lm[j]) : Lm[j], packed);
  qb_put_f16 (d, d_block);
  qb_put_f16 (dmin, m_block);
}

/* Codes 0..nmax from the stored 6-bit scales and minimums. */
QB_INLINE void
requantize_k4 (const float *x, const guint8 *packed, const guint8 *d16, const guint8 *dmin16,
               int nmax, guint8 *L)
{
  float d_all = qb_get_f16 (d16), m_all = qb_get_f16 (dmin16);

  for (int j = 0; j < 8; j++)
    {
      guint8 sc, m;
      float d, dm;
      get_scale_min_k4 (j, packed, &sc, &m);
      d = d_all * sc;
      if (d == 0)
        continue;
      dm = m_all * m;
      for (int ii = 0; ii < 32; ii++)
        L[32 * j + ii] = (guint8) qb_clampi (qb_nearest_int ((x[32 * j + ii] + dm) / d), 0, nmax);
    }
}

QB_INLINE void
pack_q4_K (const guint8 *L, guint8 *q)
{
  for (int j = 0; j < QB_QK_K; j += 64, q += 32)
    for (int l = 0; l < 32; l++)
      q[l] = L[j + l] | L[j + l + 32] << 4;
}

QB_INLINE void
pack_q5_K (const guint8 *L, guint8 *ql, guint8 *qh)
{
  memset (qh, 0, 32);
  for (int n = 0, s = 0; n < QB_QK_K; n += 64, s += 2, ql += 32)
    for (int j = 0; j < 32; j++)
      {
        int l1 = L[n + j], l2 = L[n + j + 32];
        if (l1 > 15)
          {
            l1 -= 16;
            qh[j] |= 1 << s;
          }
        if (l2 > 15)
          {
            l2 -= 16;
            qh[j] |= 2 << s;
          }
        ql[j] = l1 | l2 << 4;
      }
}

/* Fits the 8 groups of a Q4_K/Q5_K super-block: codes in L, group scales
 * and minimums, and Σ w per group for the imatrix path. */
QB_INLINE void
fit_groups_k4 (const float *x, const float *qw, int nmax, guint8 *L,
               float *scales, float *mins, float *sw)
{
  QbLanes xt[32], wt[32], scale, the_min, sum;
  QbLanesI Lt[32];

  qb_lanes_load (x, 32, 32, QB_LANES, xt);
  if (qw == NULL)
    {
      lanes_weights_rms_abs (xt, wt);
      if (nmax == 15)
        scale = qb_lanes_qkx_quants (xt, wt, 32, 15, -1.f, 0.1f, 20, FALSE, Lt, &the_min);
      else
        scale = qb_lanes_qkx_quants (xt, wt, 32, 31, -0.5f, 0.1f, 15, FALSE, Lt, &the_min);
    }
  else
    {
      float sigma2 = 2 * qb_sum_squares (x, QB_QK_K) / QB_QK_K;
      lanes_weights_imatrix (xt, qw, 32, 32, sigma2, wt);
      if (nmax == 15)
        scale = qb_lanes_qkx_quants (xt, wt, 32, 15, -0.9f, 0.05f, 36, FALSE, Lt, &the_min);
      else
        scale = qb_lanes_qkx_quants (xt, wt, 32, 31, -0.9f, 0.05f, 36, FALSE, Lt, &the_min);
    }
  sum = qb_lanes_sum (wt, 32);
  for (int b = 0; b < QB_LANES; b++)
    {
      scales[b] = scale[b];
      mins[b] = the_min[b];
      sw[b] = sum[b];
    }
  qb_lanes_store_codes (Lt, 32, QB_LANES, L);
}

QB_KERNEL static void
q4_K_quantize (const float *x, QbBlockQ4_K *y, gint64 nb, const float *qw)
{
  for (gint64 i = 0; i < nb; i++, x += QB_QK_K, qw = qw ? qw + QB_QK_K : NULL)
    {
      float scales[8], mins[8], sw[8];
      guint8 L[QB_QK_K];

      fit_groups_k4 (x, qw, 15, L, scales, mins, sw);
      memset (y[i].scales, 0, 12);
      if (qw == NULL)
        put_scales_k4_max (scales, mins, y[i].scales, y[i].d, y[i].dmin);
      else
        put_scales_k4_fit (scales, mins, sw, FALSE, y[i].scales, y[i].d, y[i].dmin);
      requantize_k4 (x, y[i].scales, y[i].d, y[i].dmin, 15, L);
      pack_q4_K (L, y[i].qs);
    }
}

QB_KERNEL static void
q5_K_quantize (const float *x, QbBlockQ5_K *y, gint64 nb, const float *qw)
{
  for (gint64 i = 0; i < nb; i++, x += QB_QK_K, qw = qw ? qw + QB_QK_K : NULL)
    {
      float scales[8], mins[8], sw[8];
      guint8 L[QB_QK_K];

      fit_groups_k4 (x, qw, 31, L, scales, mins, sw);
      memset (y[i].scales, 0, 12);
      if (qw == NULL)
        put_scales_k4_max (scales, mins, y[i].scales, y[i].d, y[i].dmin);
      else
        put_scales_k4_fit (scales, mins, sw, TRUE, y[i].scales, y[i].d, y[i].dmin);
      requantize_k4 (x, y[i].scales, y[i].d, y[i].dmin, 31, L);
      pack_q5_K (L, y[i].qs, y[i].qh);
    }
}

/* ---- Q6_K ---------------------------------------------------------------- */

/* Groups of 16 fitted with make_qx_quants (nmax 32), weights x² or the
 * importance itself (ggml's Q6_K does not mix in σ²). */
QB_KERNEL static void
q6_K_quantize (const float *x, QbBlockQ6_K *y, gint64 nb, const float *qw)
{
  for (gint64 i = 0; i < nb; i++, x += QB_QK_K, qw = qw ? qw + QB_QK_K : NULL)
    {
      float scales[16], max_scale = 0, max_abs_scale = 0, iscale, d_all;
      guint8 L[QB_QK_K];
      guint8 *ql = y[i].ql, *qh = y[i].qh;

      /* Weights x², or the importance itself (sigma2 < 0). */
      fit_groups16 (x, qw, -1, FIT_QX, 32, scales, NULL, NULL, L);

      for (int ib = 0; ib < 16; ib++)
        if (fabsf (scales[ib]) > max_abs_scale)
          {
            max_abs_scale = fabsf (scales[ib]);
            max_scale = scales[ib];
          }
      if (max_abs_scale < QB_GROUP_MAX_EPS)
        {
          memset (&y[i], 0, sizeof y[i]);
          continue;
        }

      iscale = -128.f / max_scale;
      qb_put_f16 (y[i].d, 1 / iscale);
      for (int ib = 0; ib < 16; ib++)
        y[i].scales[ib] = (gint8) MIN (127, qb_nearest_int (iscale * scales[ib]));

      d_all = qb_get_f16 (y[i].d);
      for (int j = 0; j < 16; j++)
        {
          float d = d_all * y[i].scales[j];
          if (d == 0)
            continue;
          for (int ii = 0; ii < 16; ii++)
            L[16 * j + ii] = (guint8) (qb_clampi (qb_nearest_int (x[16 * j + ii] / d), -32, 31) + 32);
        }

      for (int j = 0; j < QB_QK_K; j += 128, ql += 64, qh += 32)
        for (int l = 0; l < 32; l++)
          {
            ql[l] = (L[j + l] & 0xf) | (L[j + l + 64] & 0xf) << 4;
            ql[l + 32] = (L[j + l + 32] & 0xf) | (L[j + l + 96] & 0xf) << 4;
            qh[l] = (L[j + l] >> 4) | (L[j + l + 32] >> 4) << 2
                    | (L[j + l + 64] >> 4) << 4 | (L[j + l + 96] >> 4) << 6;
          }
    }
}

/* ---- entry points -------------------------------------------------------- */

#define ROW_LOOP(block_type, call)                                       \
  G_STMT_START {                                                         \
    gint64 nb = n_per_row / QB_QK_K;                                     \
    g_return_val_if_fail (n_per_row % QB_QK_K == 0, 0);                  \
    for (gint64 r = 0; r < n_rows; r++)                                  \
      {                                                                  \
        const float *x = src + r * n_per_row;                            \
        block_type *y = (block_type *) dst + r * nb;                     \
        call;                                                            \
      }                                                                  \
    return (gsize) (n_rows * nb) * sizeof (block_type);                  \
  } G_STMT_END

gsize
qb_quantize_q2_K (const float *src, void *dst, gint64 n_rows, gint64 n_per_row, const float *imatrix)
{
  if (imatrix == NULL)
    ROW_LOOP (QbBlockQ2_K, q2_K_ref (x, y, nb));
  ROW_LOOP (QbBlockQ2_K, q2_K_imatrix (x, y, nb, imatrix));
}

gsize
qb_quantize_q3_K (const float *src, void *dst, gint64 n_rows, gint64 n_per_row, const float *imatrix)
{
  if (imatrix == NULL)
    ROW_LOOP (QbBlockQ3_K, q3_K_ref (x, y, nb));
  ROW_LOOP (QbBlockQ3_K, q3_K_imatrix (x, y, nb, imatrix));
}

gsize
qb_quantize_q4_K (const float *src, void *dst, gint64 n_rows, gint64 n_per_row, const float *imatrix)
{
  ROW_LOOP (QbBlockQ4_K, q4_K_quantize (x, y, nb, imatrix));
}

gsize
qb_quantize_q5_K (const float *src, void *dst, gint64 n_rows, gint64 n_per_row, const float *imatrix)
{
  ROW_LOOP (QbBlockQ5_K, q5_K_quantize (x, y, nb, imatrix));
}

gsize
qb_quantize_q6_K (const float *src, void *dst, gint64 n_rows, gint64 n_per_row, const float *imatrix)
{
  ROW_LOOP (QbBlockQ6_K, q6_K_quantize (x, y, nb, imatrix));
}

/* ---- dequantization ------------------------------------------------------ */

QB_KERNEL void
qb_dequantize_row_q2_K (const void *restrict src, float *restrict y, gint64 n)
{
  const QbBlockQ2_K *x = src;
  for (gint64 i = 0; i < n / QB_QK_K; i++)
    {
      float d = qb_get_f16 (x[i].d), min = qb_get_f16 (x[i].dmin);
      const guint8 *q = x[i].qs;
      int is = 0;
      for (int k = 0; k < QB_QK_K; k += 128, q += 32)
        for (int shift = 0; shift < 8; shift += 2)
          for (int half = 0; half < 2; half++)
            {
              guint8 sc = x[i].scales[is++];
              float dl = d * (sc & 0xf), ml = min * (sc >> 4);
              for (int l = 0; l < 16; l++)
                *y++ = dl * ((q[l + 16 * half] >> shift) & 3) - ml;
            }
    }
}

QB_KERNEL void
qb_dequantize_row_q3_K (const void *restrict src, float *restrict y, gint64 n)
{
  const QbBlockQ3_K *x = src;
  for (gint64 i = 0; i < n / QB_QK_K; i++)
    {
      float d_all = qb_get_f16 (x[i].d);
      const guint8 *q = x[i].qs;
      int is = 0;
      for (int k = 0, bit = 0; k < QB_QK_K; k += 128, q += 32)
        for (int shift = 0; shift < 8; shift += 2, bit++)
          for (int half = 0; half < 2; half++)
            {
              float dl = d_all * get_scale_q3 (x[i].scales, is++);
              for (int l = 0; l < 16; l++)
                {
                  int hi = x[i].hmask[l + 16 * half] >> bit & 1;
                  *y++ = dl * (((q[l + 16 * half] >> shift) & 3) - (hi ? 0 : 4));
                }
            }
    }
}

QB_KERNEL void
qb_dequantize_row_q4_K (const void *restrict src, float *restrict y, gint64 n)
{
  const QbBlockQ4_K *x = src;
  for (gint64 i = 0; i < n / QB_QK_K; i++)
    {
      float d = qb_get_f16 (x[i].d), min = qb_get_f16 (x[i].dmin);
      const guint8 *q = x[i].qs;
      for (int is = 0; is < 8; is += 2, q += 32)
        {
          guint8 sc, m;
          float d1, m1, d2, m2;
          get_scale_min_k4 (is, x[i].scales, &sc, &m);
          d1 = d * sc;
          m1 = min * m;
          get_scale_min_k4 (is + 1, x[i].scales, &sc, &m);
          d2 = d * sc;
          m2 = min * m;
          for (int l = 0; l < 32; l++)
            *y++ = d1 * (q[l] & 0xf) - m1;
          for (int l = 0; l < 32; l++)
            *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

QB_KERNEL void
qb_dequantize_row_q5_K (const void *restrict src, float *restrict y, gint64 n)
{
  const QbBlockQ5_K *x = src;
  for (gint64 i = 0; i < n / QB_QK_K; i++)
    {
      float d = qb_get_f16 (x[i].d), min = qb_get_f16 (x[i].dmin);
      const guint8 *ql = x[i].qs, *qh = x[i].qh;
      for (int is = 0; is < 8; is += 2, ql += 32)
        {
          guint8 sc, m;
          float d1, m1, d2, m2;
          get_scale_min_k4 (is, x[i].scales, &sc, &m);
          d1 = d * sc;
          m1 = min * m;
          get_scale_min_k4 (is + 1, x[i].scales, &sc, &m);
          d2 = d * sc;
          m2 = min * m;
          for (int l = 0; l < 32; l++)
            *y++ = d1 * ((ql[l] & 0xf) + (qh[l] >> is & 1 ? 16 : 0)) - m1;
          for (int l = 0; l < 32; l++)
            *y++ = d2 * ((ql[l] >> 4) + (qh[l] >> (is + 1) & 1 ? 16 : 0)) - m2;
        }
    }
}

QB_KERNEL void
qb_dequantize_row_q6_K (const void *restrict src, float *restrict y, gint64 n)
{
  const QbBlockQ6_K *x = src;
  for (gint64 i = 0; i < n / QB_QK_K; i++)
    {
      float d = qb_get_f16 (x[i].d);
      const guint8 *ql = x[i].ql, *qh = x[i].qh;
      const gint8 *sc = x[i].scales;
      for (int k = 0; k < QB_QK_K; k += 128, y += 128, ql += 64, qh += 32, sc += 8)
        /* Each half of 16 shares its four scales: hoisted, the loop
         * vectorizes (the products are the same, d * sc first). */
        for (int is = 0; is < 2; is++)
          {
            const float s1 = d * sc[is], s2 = d * sc[is + 2];
            const float s3 = d * sc[is + 4], s4 = d * sc[is + 6];
            for (int l = 16 * is; l < 16 * is + 16; l++)
              {
                int q1 = ((ql[l] & 0xf) | ((qh[l] >> 0) & 3) << 4) - 32;
                int q2 = ((ql[l + 32] & 0xf) | ((qh[l] >> 2) & 3) << 4) - 32;
                int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                y[l] = s1 * q1;
                y[l + 32] = s2 * q2;
                y[l + 64] = s3 * q3;
                y[l + 96] = s4 * q4;
              }
          }
    }
}
