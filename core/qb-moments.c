/* qb-moments.c — mergeable central moments.
 *
 * The loops keep LANES independent partial sums so that GCC can vectorize
 * them without reassociating a single floating-point sum (which it may not
 * do without -ffast-math); the lane order is fixed, so results are too.
 */
#include "qb-moments.h"

#include <math.h>

#define LANES 8

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

/* Moments of a block known to hold only finite values. */
static gboolean
block_moments_finite (const float *x, gint64 n, QbMoments *b)
{
  double sum[LANES] = { 0 }, s2[LANES] = { 0 }, s3[LANES] = { 0 }, s4[LANES] = { 0 };
  float lo[LANES], hi[LANES];
  double total = 0, mean;
  gint64 i, body = n - n % LANES;

  for (int j = 0; j < LANES; j++)
    lo[j] = hi[j] = x[0];
  for (i = 0; i < body; i += LANES)
    for (int j = 0; j < LANES; j++)
      {
        float v = x[i + j];
        sum[j] += v;
        lo[j] = v < lo[j] ? v : lo[j];
        hi[j] = v > hi[j] ? v : hi[j];
      }
  for (; i < n; i++)
    {
      sum[0] += x[i];
      lo[0] = x[i] < lo[0] ? x[i] : lo[0];
      hi[0] = x[i] > hi[0] ? x[i] : hi[0];
    }
  for (int j = 0; j < LANES; j++)
    total += sum[j];
  /* A NaN or infinity anywhere makes the sum non-finite (and an overflow of
   * finite values in double is impossible for float input). */
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
      b->min = j == 0 || lo[j] < b->min ? lo[j] : b->min;
      b->max = j == 0 || hi[j] > b->max ? hi[j] : b->max;
    }
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

guint64
qb_moments_count_outliers (const float *x, gint64 n, double center, double radius)
{
  /* Distances in double; NaN compares false and infinite distances are
   * excluded, so only finite values count, as in qb_moments_add(). */
  guint64 count[LANES] = { 0 }, total = 0;
  gint64 i, body = n - n % LANES;

  for (i = 0; i < body; i += LANES)
    for (int j = 0; j < LANES; j++)
      {
        double d = fabs ((double) x[i + j] - center);
        count[j] += (d > radius) & (d < INFINITY);
      }
  for (; i < n; i++)
    {
      double d = fabs ((double) x[i] - center);
      count[0] += (d > radius) & (d < INFINITY);
    }
  for (int j = 0; j < LANES; j++)
    total += count[j];
  return total;
}
