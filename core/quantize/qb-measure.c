/* SPDX-License-Identifier: MIT */
/* qb-measure.c — per-element loops for the tensor metrics (see the header). */
#include "qb-measure-private.h"
#include "qb-dtype.h"
#include "qb-moments.h"

#include <math.h>
#include <string.h>

#define LANES 16

/* AVX-512 and AVX2 clones for the hot loops; baseline x86-64 keeps the
 * SSE2 default.  Core builds with -ffp-contract=off, so no clone fuses a
 * multiply-add and all round identically (the 16 lanes are one zmm
 * register in the AVX-512 clone, which is 10% faster on a measured run;
 * the three builds gave the same bits on the same data). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define QB_HOT __attribute__ ((target_clones ("arch=x86-64-v4", "avx2", "default")))
#else
#define QB_HOT
#endif

static inline double
lanes_sum (const float *l)
{
  double s = 0;

  for (int i = 0; i < LANES; i++)
    s += l[i];
  return s;
}

static inline __attribute__ ((always_inline)) double
stripe_sum (const float *restrict x, gint64 n)
{
  float acc[LANES] = { 0 };
  gint64 i = 0;

  for (; i + LANES <= n; i += LANES)
    for (int l = 0; l < LANES; l++)
      acc[l] += x[i + l];
  for (; i < n; i++)
    acc[0] += x[i];
  return lanes_sum (acc);
}

/* Central moments of a block in float lanes (sums flushed to double every
 * stripe), about the block's own mean: the hot loop of the pre-pass.  A
 * block holding NaN or infinities goes to qb_moments_add(), which leaves
 * them out. */
QB_HOT void
qb_measure_moments (const float *restrict x, gint64 n, QbMoments *m)
{
  float mn[LANES], mx[LANES];
  double sum = 0, s2 = 0, s3 = 0, s4 = 0, delta, d1;
  float mean;

  qb_moments_init (m);
  if (n <= 0)
    return;
  for (gint64 i0 = 0; i0 < n; i0 += QB_MEASURE_STRIPE)
    sum += stripe_sum (x + i0, MIN (QB_MEASURE_STRIPE, n - i0));
  if (!isfinite (sum))
    {
      qb_moments_add (m, x, n);
      return;
    }
  mean = (float) (sum / n);

  for (int l = 0; l < LANES; l++)
    {
      mn[l] = INFINITY;
      mx[l] = -INFINITY;
    }
  for (gint64 i0 = 0; i0 < n; i0 += QB_MEASURE_STRIPE)
    {
      const float *p = x + i0;
      gint64 len = MIN (QB_MEASURE_STRIPE, n - i0);
      float a2[LANES] = { 0 }, a3[LANES] = { 0 }, a4[LANES] = { 0 };
      gint64 i = 0;

      for (; i + LANES <= len; i += LANES)
        for (int l = 0; l < LANES; l++)
          {
            float v = p[i + l];
            float d = v - mean;
            float d2 = d * d;
            a2[l] += d2;
            a3[l] += d2 * d;
            a4[l] += d2 * d2;
            mn[l] = v < mn[l] ? v : mn[l];
            mx[l] = v > mx[l] ? v : mx[l];
          }
      for (; i < len; i++)
        {
          float v = p[i];
          float d = v - mean;
          float d2 = d * d;
          a2[0] += d2;
          a3[0] += d2 * d;
          a4[0] += d2 * d2;
          mn[0] = v < mn[0] ? v : mn[0];
          mx[0] = v > mx[0] ? v : mx[0];
        }
      s2 += lanes_sum (a2);
      s3 += lanes_sum (a3);
      s4 += lanes_sum (a4);
    }

  /* The sums are about the float-rounded mean; shift them to the exact
   * one (d = x - mean_f; exact mean = mean_f + delta). */
  delta = sum / n - mean;
  d1 = sum - (double) mean * n;
  m->n = (guint64) n;
  m->mean = sum / n;
  m->m2 = MAX (s2 - 2 * delta * d1 + n * delta * delta, 0.0);
  m->m3 = s3 - 3 * delta * s2 + 3 * delta * delta * d1 - n * delta * delta * delta;
  m->m4 = MAX (s4 - 4 * delta * s3 + 6 * delta * delta * s2
               - 4 * delta * delta * delta * d1 + n * delta * delta * delta * delta, 0.0);
  for (int l = 0; l < LANES; l++)
    {
      m->min = MIN (m->min, mn[l]);
      m->max = MAX (m->max, mx[l]);
    }
}

QB_HOT void
qb_measure_error_row (const float *x, const float *y, const float *w,
                      gint64 n, float out_lo, float out_hi, QbErrorSums *s,
                      float *row_min, float *row_max)
{
  float me[LANES] = { 0 }, mn[LANES], mx[LANES];
  gint32 no[LANES] = { 0 };

  for (int l = 0; l < LANES; l++)
    {
      mn[l] = INFINITY;
      mx[l] = -INFINITY;
    }
  for (gint64 i0 = 0; i0 < n; i0 += QB_MEASURE_STRIPE)
    {
      const float *px = x + i0, *py = y + i0;
      gint64 len = MIN (QB_MEASURE_STRIPE, n - i0);
      float xx[LANES] = { 0 }, yy[LANES] = { 0 }, xy[LANES] = { 0 };
      float ee[LANES] = { 0 }, wee[LANES] = { 0 };
      gint64 i = 0;

      for (; i + LANES <= len; i += LANES)
        for (int l = 0; l < LANES; l++)
          {
            float a = px[i + l], b = py[i + l], e = a - b;
            float ae = fabsf (e);
            xx[l] += a * a;
            yy[l] += b * b;
            xy[l] += a * b;
            ee[l] += e * e;
            me[l] = ae > me[l] ? ae : me[l];
            mn[l] = a < mn[l] ? a : mn[l];
            mx[l] = a > mx[l] ? a : mx[l];
            no[l] += (a < out_lo) | (a > out_hi);
          }
      for (; i < len; i++)
        {
          float a = px[i], b = py[i], e = a - b;
          float ae = fabsf (e);
          xx[0] += a * a;
          yy[0] += b * b;
          xy[0] += a * b;
          ee[0] += e * e;
          me[0] = ae > me[0] ? ae : me[0];
          mn[0] = a < mn[0] ? a : mn[0];
          mx[0] = a > mx[0] ? a : mx[0];
          no[0] += (a < out_lo) | (a > out_hi);
        }
      if (w != NULL)
        {
          const float *pw = w + i0;
          for (i = 0; i + LANES <= len; i += LANES)
            for (int l = 0; l < LANES; l++)
              {
                float e = px[i + l] - py[i + l];
                wee[l] += pw[i + l] * (e * e);
              }
          for (; i < len; i++)
            {
              float e = px[i] - py[i];
              wee[0] += pw[i] * (e * e);
            }
          s->s_wee += lanes_sum (wee);
        }
      s->s_xx += lanes_sum (xx);
      s->s_yy += lanes_sum (yy);
      s->s_xy += lanes_sum (xy);
      s->s_ee += lanes_sum (ee);
    }
  *row_min = INFINITY;
  *row_max = -INFINITY;
  for (int l = 0; l < LANES; l++)
    {
      s->max_err = MAX (s->max_err, me[l]);
      s->n_out += no[l];
      *row_min = MIN (*row_min, mn[l]);
      *row_max = MAX (*row_max, mx[l]);
    }
}

void
qb_measure_error_merge (QbErrorSums *a, const QbErrorSums *b)
{
  a->s_xx += b->s_xx;
  a->s_yy += b->s_yy;
  a->s_xy += b->s_xy;
  a->s_ee += b->s_ee;
  a->s_wee += b->s_wee;
  a->max_err = MAX (a->max_err, b->max_err);
  a->n_out += b->n_out;
}

QB_HOT float
qb_measure_max_err (const float *x, const float *y, gint64 n)
{
  float me[LANES] = { 0 };
  float m = 0;
  gint64 i = 0;

  for (; i + LANES <= n; i += LANES)
    for (int l = 0; l < LANES; l++)
      {
        float ae = fabsf (x[i + l] - y[i + l]);
        me[l] = ae > me[l] ? ae : me[l];
      }
  for (; i < n; i++)
    {
      float ae = fabsf (x[i] - y[i]);
      me[0] = ae > me[0] ? ae : me[0];
    }
  for (int l = 0; l < LANES; l++)
    m = MAX (m, me[l]);
  return m;
}

#define FLUSH_AT ((gint64) 1 << 30)
/* Each histogram is counted in COPIES tables, value i into table
 * i % COPIES: runs of values in the same bin (common in the dequantized
 * and error histograms) then do not wait on each other's increment. */
#define COPIES 4

void
qb_hist_set_init (QbHistSet *set, guint n_hist, QbHistogram * const *edges)
{
  g_return_if_fail (n_hist >= 1 && n_hist <= QB_HIST_MAX);
  memset (set, 0, sizeof *set);
  set->n_hist = n_hist;
  set->n_bins = edges[0]->n_bins;
  g_return_if_fail (set->n_bins > 0 && set->n_bins <= 65536);
  for (guint h = 0; h < n_hist; h++)
    {
      g_return_if_fail (edges[h]->n_bins == set->n_bins);
      qb_hist_edges (edges[h], &set->lo[h], &set->scale[h]);
    }
  set->counts = g_new0 (guint32, (gsize) COPIES * n_hist * set->n_bins);
  set->totals = g_new0 (guint64, (gsize) n_hist * set->n_bins);
}

void
qb_hist_edges (const QbHistogram *h, float *lo, float *scale)
{
  *lo = (float) h->lo;
  *scale = (float) (h->n_bins / (h->hi - h->lo));
}

void
qb_hist_set_clear (QbHistSet *set)
{
  g_clear_pointer (&set->counts, g_free);
  g_clear_pointer (&set->totals, g_free);
  g_clear_pointer (&set->bins, g_free);
}

static void
hist_flush (QbHistSet *set)
{
  gsize n = (gsize) set->n_hist * set->n_bins;

  for (gsize b = 0; b < n; b++)
    for (int k = 0; k < COPIES; k++)
      set->totals[b] += set->counts[COPIES * b + k];
  memset (set->counts, 0, sizeof (guint32) * COPIES * n);
  set->pending = 0;
}

/* p > 0 fails for NaN, which therefore lands in bin 0, as in
 * qb_histogram_add. */
static inline guint16
bin_of (float v, float lo, float scale, float last)
{
  float p = (v - lo) * scale;
  p = p > 0.0f ? p : 0.0f;
  p = p < last ? p : last;
  return (guint16) (gint32) p;
}

/* restrict: the project builds with -fno-strict-aliasing, so without it
 * GCC must assume the bin stores may change the inputs, and will not
 * vectorize. */
QB_HOT static void
bins_x (const float *restrict x, gint64 n, float lo, float scale, float last,
        guint16 *restrict b)
{
  for (gint64 i = 0; i < n; i++)
    b[i] = bin_of (x[i], lo, scale, last);
}

QB_HOT static void
bins_ye (const float *restrict x, const float *restrict y, gint64 n,
         const float *lo, const float *scale, float last,
         guint16 *restrict by, guint16 *restrict be)
{
  const float lo0 = lo[0], lo1 = lo[1];
  const float s0 = scale[0], s1 = scale[1];

  for (gint64 i = 0; i < n; i++)
    {
      by[i] = bin_of (y[i], lo0, s0, last);
      be[i] = bin_of (x[i] - y[i], lo1, s1, last);
    }
}

QB_HOT static void
bins_xye (const float *restrict x, const float *restrict y, gint64 n,
          const float *lo, const float *scale, float last,
          guint16 *restrict bx, guint16 *restrict by, guint16 *restrict be)
{
  const float lo0 = lo[0], lo1 = lo[1], lo2 = lo[2];
  const float s0 = scale[0], s1 = scale[1], s2 = scale[2];

  for (gint64 i = 0; i < n; i++)
    {
      bx[i] = bin_of (x[i], lo0, s0, last);
      by[i] = bin_of (y[i], lo1, s1, last);
      be[i] = bin_of (x[i] - y[i], lo2, s2, last);
    }
}

/* Counts bins b[0..n) into the tables of one histogram (c holds bin k's
 * counts at COPIES * k). */
static inline void
count_bins (guint32 *restrict c, const guint16 *restrict b, gint64 n)
{
  gint64 i = 0;

  for (; i + COPIES <= n; i += COPIES)
    for (int k = 0; k < COPIES; k++)
      c[COPIES * b[i + k] + k]++;
  for (; i < n; i++)
    c[COPIES * b[i]]++;
}

/* Two histograms in one loop: twice the independent increments in
 * flight. */
static inline void
count_bins2 (guint32 *restrict c0, const guint16 *restrict b0,
             guint32 *restrict c1, const guint16 *restrict b1, gint64 n)
{
  gint64 i = 0;

  for (; i + COPIES <= n; i += COPIES)
    for (int k = 0; k < COPIES; k++)
      {
        c0[COPIES * b0[i + k] + k]++;
        c1[COPIES * b1[i + k] + k]++;
      }
  for (; i < n; i++)
    {
      c0[COPIES * b0[i]]++;
      c1[COPIES * b1[i]]++;
    }
}

void
qb_hist_set_add (QbHistSet *set, const float *x, const float *y, gint64 n)
{
  gsize stride = (gsize) COPIES * set->n_bins;
  float last = (float) (set->n_bins - 1);
  guint16 *b0, *b1, *b2;

  if (n <= 0)
    return;
  if (set->bins_cap < n)
    {
      g_free (set->bins);
      set->bins = g_new (guint16, (gsize) set->n_hist * n);
      set->bins_cap = n;
    }
  if (set->pending + n >= FLUSH_AT)
    hist_flush (set);
  set->pending += n;

  b0 = set->bins;
  b1 = b0 + set->bins_cap;
  b2 = b1 + set->bins_cap;
  if (set->n_hist == 1)
    bins_x (x, n, set->lo[0], set->scale[0], last, b0);
  else if (set->n_hist == 2)
    bins_ye (x, y, n, set->lo, set->scale, last, b0, b1);
  else
    bins_xye (x, y, n, set->lo, set->scale, last, b0, b1, b2);
  if (set->n_hist == 1)
    count_bins (set->counts, b0, n);
  else
    count_bins2 (set->counts, b0, set->counts + stride, b1, n);
  if (set->n_hist == 3)
    count_bins (set->counts + 2 * stride, b2, n);
}

void
qb_hist_set_add_counts (QbHistSet *set, const float *values, const guint32 *counts, gint64 n)
{
  float last = (float) (set->n_bins - 1);

  g_return_if_fail (set->n_hist == 1);
  /* Flushed first, so that the 32-bit table cannot overflow. */
  hist_flush (set);
  for (gint64 i = 0; i < n; i++)
    if (counts[i] != 0)
      set->totals[bin_of (values[i], set->lo[0], set->scale[0], last)] += counts[i];
}

void
qb_hist_set_collect (QbHistSet *set, QbHistogram * const *into)
{
  hist_flush (set);
  for (guint h = 0; h < set->n_hist; h++)
    for (guint b = 0; b < set->n_bins; b++)
      into[h]->counts[b] += set->totals[(gsize) h * set->n_bins + b];
}

void
qb_measure_count_u16 (const guint16 *restrict p, gint64 n, guint32 *restrict counts)
{
  for (gint64 i = 0; i < n; i++)
    counts[p[i]]++;
}

void
qb_measure_to_f16 (const float *x, guint16 *dst, gint64 n)
{
  for (gint64 i = 0; i < n; i++)
    dst[i] = qb_fp32_to_fp16 (x[i]);
}
