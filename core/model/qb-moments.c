/* SPDX-License-Identifier: MIT */
/* qb-moments.c — mergeable central moments.
 *
 * The loops keep LANES independent partial sums so that GCC can vectorize
 * them without reassociating a single floating-point sum (which it may not
 * do without -ffast-math); the lane order is fixed, so results are too.
 */
#include "qb-moments.h"

#include <math.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#define LANES 8

/* The hot loops are also compiled for AVX2 and picked at run time (four
 * doubles per instruction instead of two).  Both versions do the same
 * operations in the same order (AVX2 brings no fused multiply-add), so
 * they give the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang_analyzer__)
#define HOT_LOOP __attribute__ ((target_clones ("avx2", "default")))
#else
#define HOT_LOOP
#endif

void
qb_moments_init (QbMoments *m)
{
  *m = (QbMoments) { .min = INFINITY, .max = -INFINITY };
}

void
qb_moments_merge (QbMoments *a, const QbMoments *b)
{
  double na, nb, n, delta, d_n, d2, t;

  a->n_nonfinite += b->n_nonfinite;
  if (b->n == 0)
    return;
  if (a->n == 0)
    {
      guint64 nonfinite = a->n_nonfinite;
      *a = *b;
      a->n_nonfinite = nonfinite;
      return;
    }

  na = (double) a->n;
  nb = (double) b->n;
  n = na + nb;
  delta = b->mean - a->mean;
  d_n = delta / n;
  d2 = delta * d_n;            /* delta^2 / n */
  t = d2 * na * nb;            /* delta^2 na nb / n */

  a->m4 += b->m4 + t * d_n * d_n * (na * na - na * nb + nb * nb)
           + 6.0 * d_n * d_n * (na * na * b->m2 + nb * nb * a->m2)
           + 4.0 * d_n * (na * b->m3 - nb * a->m3);
  a->m3 += b->m3 + t * d_n * (na - nb) + 3.0 * d_n * (na * b->m2 - nb * a->m2);
  a->m2 += b->m2 + t;
  a->mean += d_n * nb;
  a->n += b->n;
  a->min = MIN (a->min, b->min);
  a->max = MAX (a->max, b->max);
}

/* Extremes of finite values.  GCC does not turn `a < b ? a : b` on floats
 * into minps without -ffinite-math-only, so on x86 it is spelled out (SSE
 * is part of the x86-64 baseline). */
static void
finite_min_max (const float *x, gint64 n, double *min, double *max)
{
  float lo = x[0], hi = x[0];
  gint64 i = 0;

#if defined(__SSE__)
  __m128 vlo0 = _mm_set1_ps (lo), vlo1 = vlo0, vhi0 = vlo0, vhi1 = vlo0;

  for (; i + 8 <= n; i += 8)
    {
      __m128 a = _mm_loadu_ps (x + i), b = _mm_loadu_ps (x + i + 4);
      vlo0 = _mm_min_ps (vlo0, a);
      vlo1 = _mm_min_ps (vlo1, b);
      vhi0 = _mm_max_ps (vhi0, a);
      vhi1 = _mm_max_ps (vhi1, b);
    }
  {
    float l[4], h[4];
    _mm_storeu_ps (l, _mm_min_ps (vlo0, vlo1));
    _mm_storeu_ps (h, _mm_max_ps (vhi0, vhi1));
    for (int k = 0; k < 4; k++)
      {
        lo = MIN (lo, l[k]);
        hi = MAX (hi, h[k]);
      }
  }
#endif
  for (; i < n; i++)
    {
      lo = MIN (lo, x[i]);
      hi = MAX (hi, x[i]);
    }
  *min = lo;
  *max = hi;
}

/* Moments of a block known to hold only finite values: the sum first
 * (which also detects NaN and infinities), then the central moments
 * around the block's mean, with the extremes.  Each loop does one simple
 * thing so that it vectorizes. */
HOT_LOOP static gboolean
block_moments_finite (const float *x, gint64 n, QbMoments *b)
{
  double sum[LANES] = { 0 }, s2[LANES] = { 0 }, s3[LANES] = { 0 }, s4[LANES] = { 0 };
  double total = 0, mean;
  gint64 i, body = n - n % LANES;

  for (i = 0; i < body; i += LANES)
    for (int j = 0; j < LANES; j++)
      sum[j] += x[i + j];
  for (; i < n; i++)
    sum[0] += x[i];
  for (int j = 0; j < LANES; j++)
    total += sum[j];
  /* A NaN or infinity anywhere makes the sum non-finite (and finite floats
   * cannot overflow a double sum). */
  if (!isfinite (total))
    return FALSE;

  mean = total / (double) n;
  for (i = 0; i < body; i += LANES)
    for (int j = 0; j < LANES; j++)
      {
        double d = (double) x[i + j] - mean, d2 = d * d;
        s2[j] += d2;
        s3[j] += d2 * d;
        s4[j] += d2 * d2;
      }
  for (; i < n; i++)
    {
      double d = (double) x[i] - mean, d2 = d * d;
      s2[0] += d2;
      s3[0] += d2 * d;
      s4[0] += d2 * d2;
    }

  *b = (QbMoments) { .n = (guint64) n, .mean = mean };
  for (int j = 0; j < LANES; j++)
    {
      b->m2 += s2[j];
      b->m3 += s3[j];
      b->m4 += s4[j];
    }
  finite_min_max (x, n, &b->min, &b->max);
  return TRUE;
}

/* The rare block with NaN or infinities: one value at a time. */
static void
block_moments_filtered (const float *x, gint64 n, QbMoments *b)
{
  qb_moments_init (b);
  for (gint64 i = 0; i < n; i++)
    {
      QbMoments one = { .n = 1, .mean = x[i], .min = x[i], .max = x[i] };

      if (!isfinite (x[i]))
        {
          b->n_nonfinite++;
          continue;
        }
      qb_moments_merge (b, &one);
    }
}

void
qb_moments_add (QbMoments *m, const float *x, gint64 n)
{
  QbMoments b;

  if (n <= 0)
    return;
  if (!block_moments_finite (x, n, &b))
    block_moments_filtered (x, n, &b);
  qb_moments_merge (m, &b);
}

double
qb_moments_variance (const QbMoments *m)
{
  return m->n > 0 ? m->m2 / (double) m->n : 0.0;
}

double
qb_moments_std (const QbMoments *m)
{
  return sqrt (qb_moments_variance (m));
}

double
qb_moments_kurtosis (const QbMoments *m)
{
  if (m->n == 0 || m->m2 <= 0.0)
    return NAN;
  return (double) m->n * m->m4 / (m->m2 * m->m2) - 3.0;
}

double
qb_moments_outlier_radius (const QbMoments *m)
{
  return QB_OUTLIER_SIGMAS * qb_moments_std (m);
}

/* The float thresholds equivalent to |x − center| > radius computed in
 * double: x > radius side exactly when x >= *hi, and likewise for *lo. */
static void
outlier_thresholds (double center, double radius, float *lo, float *hi)
{
  float t = (float) (center + radius);

  while (isfinite (t) && (double) t - center > radius)
    t = nextafterf (t, -INFINITY);
  while (!((double) t - center > radius) && t < INFINITY)
    t = nextafterf (t, INFINITY);
  *hi = t;

  t = (float) (center - radius);
  while (isfinite (t) && center - (double) t > radius)
    t = nextafterf (t, INFINITY);
  while (!(center - (double) t > radius) && t > -INFINITY)
    t = nextafterf (t, -INFINITY);
  *lo = t;
}

HOT_LOOP static guint64
count_outside (const float *x, gint64 n, float lo, float hi)
{
  guint64 total = 0;

  /* 32-bit lane counters, flushed every block so they cannot overflow.
   * Comparisons with NaN are false; infinities are excluded. */
  for (gint64 start = 0; start < n; start += 1 << 20)
    {
      gint64 end = MIN (n, start + (1 << 20)), i = start;
      guint32 count[LANES] = { 0 };

      for (; i + LANES <= end; i += LANES)
        for (int j = 0; j < LANES; j++)
          {
            float v = x[i + j];
            count[j] += ((v >= hi) & (v < INFINITY)) | ((v <= lo) & (v > -INFINITY));
          }
      for (; i < end; i++)
        count[0] += ((x[i] >= hi) & (x[i] < INFINITY)) | ((x[i] <= lo) & (x[i] > -INFINITY));
      for (int j = 0; j < LANES; j++)
        total += count[j];
    }
  return total;
}

guint64
qb_moments_count_outliers (const float *x, gint64 n, double center, double radius)
{
  float lo, hi;

  if (n <= 0 || !(radius >= 0) || !isfinite (center))
    return 0;
  outlier_thresholds (center, radius, &lo, &hi);
  return count_outside (x, n, lo, hi);
}
