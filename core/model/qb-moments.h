/* SPDX-License-Identifier: MIT */
/* qb-moments.h — streaming statistics of float data: count, min, max, mean,
 * variance and excess kurtosis, in bounded memory.
 *
 * Feed data in blocks with qb_moments_add(); combine accumulators from
 * separate blocks (threads, row chunks) with qb_moments_merge().  Each
 * block's central moments are computed in double around the block's own
 * mean and merged with Pébay's pairwise formulas, so precision holds for
 * billions of values.  Merging is exact algebra but floating point is not
 * associative: to get results that do not depend on the thread count,
 * split the data into the same blocks every time and merge them in block
 * order (see qb-model-stats.c).
 *
 * NaN and infinities are counted in n_nonfinite and left out of every
 * other figure.
 *
 * The outlier share (values farther than QB_OUTLIER_SIGMAS standard
 * deviations from the mean) needs the final mean and deviation, so it is a
 * second pass: qb_moments_count_outliers() over the same blocks.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QB_OUTLIER_SIGMAS 6.0

typedef struct {
  guint64 n;              /* finite values */
  guint64 n_nonfinite;    /* NaN and ±inf seen (not in the figures below) */
  double  min;            /* +inf while n == 0 */
  double  max;            /* -inf while n == 0 */
  double  mean;
  double  m2;             /* sum of (x − mean)^2 */
  double  m3;             /* sum of (x − mean)^3 */
  double  m4;             /* sum of (x − mean)^4 */
} QbMoments;

void     qb_moments_init           (QbMoments       *m);
/* Adds n values. */
void     qb_moments_add            (QbMoments       *m,
                                    const float     *x,
                                    gint64           n);
/* dst += src (src is unchanged). */
void     qb_moments_merge          (QbMoments       *dst,
                                    const QbMoments *src);

/* Population variance and deviation; 0 when n < 1. */
double   qb_moments_variance       (const QbMoments *m);
double   qb_moments_std            (const QbMoments *m);
/* Excess kurtosis (0 for a normal distribution); NAN when the variance is 0. */
double   qb_moments_kurtosis       (const QbMoments *m);

/* Number of finite x with |x − center| > radius. */
guint64  qb_moments_count_outliers (const float     *x,
                                    gint64           n,
                                    double           center,
                                    double           radius);
/* The radius that defines an outlier for these moments: QB_OUTLIER_SIGMAS
 * standard deviations. */
double   qb_moments_outlier_radius (const QbMoments *m);

G_END_DECLS
