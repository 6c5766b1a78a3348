/* SPDX-License-Identifier: MIT */
/* qb-measure-private.h — the per-element loops behind the tensor metrics.
 *
 * Every loop here runs once per weight, so each is written for the
 * vectorizer: sums go into 16 independent float lanes over a stripe of at
 * most QB_MEASURE_STRIPE values and are then added, in a fixed order, into
 * double.  The order of every addition depends only on the data, never on
 * threads, so results are reproducible; the clones for AVX2 and AVX-512
 * do the same arithmetic in the same order (no FMA contraction), so
 * results are the same on every x86-64 machine too.
 */
#pragma once

#include <glib.h>

#include "qb-moments.h"
#include "qb-tensor-result.h"

G_BEGIN_DECLS

#define QB_MEASURE_STRIPE 256

/* Moments of a block of values into m (initialized here), as
 * qb_moments_add() would compute them but in float lanes: merge blocks
 * with qb_moments_merge(). */
void   qb_measure_moments        (const float *x, gint64 n, QbMoments *m);

/* Error sums of one row; w is NULL or one weight per value. */
typedef struct {
  double s_xx;     /* sum x^2 */
  double s_yy;
  double s_xy;
  double s_ee;     /* sum (x - y)^2 */
  double s_wee;    /* sum w (x - y)^2 */
  float  max_err;  /* max |x - y| */
  gint64 n_out;    /* values of x outside [out_lo, out_hi] */
} QbErrorSums;

/* Adds one row to s, and gives the row's min and max of x. */
void   qb_measure_error_row      (const float *x, const float *y, const float *w,
                                  gint64 n, float out_lo, float out_hi,
                                  QbErrorSums *s, float *row_min, float *row_max);
void   qb_measure_error_merge    (QbErrorSums *into, const QbErrorSums *s);
/* max |x - y| only (for sizing the error histogram). */
float  qb_measure_max_err        (const float *x, const float *y, gint64 n);

/* Histograms as QbHistogram bins them (values outside the range and NaN
 * land in the end bins), in float arithmetic: one histogram of x, two of
 * y and x - y (when x's own histogram is counted elsewhere), or three at
 * once of x, y and x - y.  Bins are computed for a whole row first (a
 * vectorized loop), then counted; counts are kept in 32 bits (a small,
 * cache-resident table) and flushed into 64-bit totals. */
#define QB_HIST_MAX 3

typedef struct {
  guint     n_hist;
  guint     n_bins;
  float     lo[QB_HIST_MAX];
  float     scale[QB_HIST_MAX];   /* n_bins / (hi - lo) */
  guint32  *counts;               /* n_hist * n_bins */
  guint64  *totals;               /* n_hist * n_bins */
  guint16  *bins;                 /* n_hist * bins_cap scratch */
  gint64    bins_cap;
  gint64    pending;              /* values since the last flush */
} QbHistSet;

void   qb_hist_set_init          (QbHistSet *set, guint n_hist, QbHistogram * const *edges);
/* The float origin and bins-per-unit a QbHistSet bins histogram h with. */
void   qb_hist_edges             (const QbHistogram *h, float *lo, float *scale);
void   qb_hist_set_clear         (QbHistSet *set);
/* n_hist == 1: adds x.  n_hist == 2: adds y and x - y.  n_hist == 3:
 * adds x, y and x - y. */
void   qb_hist_set_add           (QbHistSet *set, const float *x, const float *y, gint64 n);
/* n_hist == 1: adds counts[i] values equal to values[i], for i < n (the
 * histogram of a 16-bit source from its pattern counts). */
void   qb_hist_set_add_counts    (QbHistSet *set, const float *values, const guint32 *counts,
                                  gint64 n);
/* Adds the counts into the histograms (same bins as at init). */
void   qb_hist_set_collect       (QbHistSet *set, QbHistogram * const *into);

/* counts[p[i]]++ for i < n: the raw 16-bit patterns of an F16 or BF16
 * source, from which its moments and histogram follow exactly. */
void   qb_measure_count_u16      (const guint16 *p, gint64 n, guint32 *counts);

/* F32 -> F16 for a run of values (round to nearest even). */
void   qb_measure_to_f16         (const float *x, guint16 *dst, gint64 n);

G_END_DECLS
