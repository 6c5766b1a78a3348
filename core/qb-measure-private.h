/* qb-measure-private.h — the per-element loops behind the tensor metrics.
 *
 * Every loop here runs once per weight, so each is written for the
 * vectorizer: sums go into 16 independent float lanes over a stripe of at
 * most QB_MEASURE_STRIPE values and are then added, in a fixed order, into
 * double.  The order of every addition depends only on the data, never on
 * threads, so results are reproducible; the clones for AVX2 do the same
 * arithmetic in the same order (no FMA contraction), so results are the
 * same on every x86-64 machine too.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QB_MEASURE_STRIPE 256

/* Moments of a run of values, centered on their own mean (merge with
 * qb_measure_moments_merge, which is exact in the order it is called). */
typedef struct {
  gint64 n;
  double mean;
  double m2;       /* sum of (x - mean)^2 */
  double m3;
  double m4;
  float  min;
  float  max;
} QbMoments;

void   qb_measure_moments        (const float *x, gint64 n, QbMoments *m);
void   qb_measure_moments_merge  (QbMoments *into, const QbMoments *m);
void   qb_measure_moments_init   (QbMoments *m);

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

void   qb_measure_error_row      (const float *x, const float *y, const float *w,
                                  gint64 n, float out_lo, float out_hi,
                                  QbErrorSums *s);
void   qb_measure_error_merge    (QbErrorSums *into, const QbErrorSums *s);
/* max |x - y| only (for sizing the error histogram). */
float  qb_measure_max_err        (const float *x, const float *y, gint64 n);
void   qb_measure_range          (const float *x, gint64 n, float *min, float *max);

/* Histogram binning as QbHistogram defines it (values outside the range
 * and NaN land in the end bins), in float arithmetic.  counts holds
 * QB_MEASURE_SUBHIST copies of n_bins counters, summed by _hist_collect:
 * spreading increments over copies keeps a run of equal bins (a coarse
 * quantization grid) from serializing on one counter. */
#define QB_MEASURE_SUBHIST 2

typedef struct {
  guint    n_bins;
  float    lo;
  float    scale;    /* n_bins / (hi - lo) */
  guint64 *counts;   /* QB_MEASURE_SUBHIST * n_bins */
} QbHistAcc;

void   qb_hist_acc_init          (QbHistAcc *acc, guint n_bins, double lo, double hi);
void   qb_hist_acc_clear         (QbHistAcc *acc);
/* Adds x, or x - y when y is not NULL.  bins: scratch of n values. */
void   qb_hist_acc_add           (QbHistAcc *acc, const float *x, const float *y,
                                  gint64 n, guint32 *bins);
/* Adds the counts into h (same n_bins). */
void   qb_hist_acc_collect       (const QbHistAcc *acc, guint64 *counts);

/* F32 -> F16 for a run of values (round to nearest even). */
void   qb_measure_to_f16         (const float *x, guint16 *dst, gint64 n);

G_END_DECLS
