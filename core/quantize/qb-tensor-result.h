/* SPDX-License-Identifier: MIT */
/* qb-tensor-result.h — what quantizing one tensor measured. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QB_HISTOGRAM_BINS 512

/* Counts over n_bins equal bins from lo to hi; values outside land in the
 * end bins.  Original and dequantized histograms of a tensor share lo/hi,
 * so they overlay. */
typedef struct {
  guint    n_bins;
  double   lo;
  double   hi;
  guint64 *counts;          /* n_bins */
} QbHistogram;

/* (transfer full) */
QbHistogram *qb_histogram_new   (guint n_bins, double lo, double hi);
QbHistogram *qb_histogram_copy  (const QbHistogram *h);
void         qb_histogram_free  (QbHistogram *h);
void         qb_histogram_add   (QbHistogram *h, const float *x, gint64 n);
guint64      qb_histogram_total (const QbHistogram *h);
/* The value below which a fraction q of the histogram's values lie (bin
 * centres); of |x| when absolute. */
double       qb_histogram_quantile (const QbHistogram *h, double q, gboolean absolute);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbHistogram, qb_histogram_free)

typedef struct {
  double mse;              /* mean squared error */
  double rmse_rel;         /* RMSE / RMS of the original */
  double sqnr_db;          /* 10 log10(signal power / noise power) */
  double cosine;           /* cosine similarity of the flattened tensors */
  double max_abs_err;
  double wmse;             /* importance-weighted MSE; NAN without importance */
  double out_rel_err;      /* ‖WX − ŴX‖² / ‖WX‖² from calibration stats; NAN without */
  gboolean out_rel_err_diag; /* TRUE: estimated from the importance alone (the diagonal
                              * of XᵀX: Σ imp·ΔW² / Σ imp·W²); FALSE: through XᵀX */
  /* Of the original weights: */
  double mean;
  double std;
  double min;
  double max;
  double kurtosis;         /* excess kurtosis */
  double outlier_share;    /* share of |w − mean| > 6 std */
} QbTensorMetrics;

/* Everything stored for one tensor of one run. */
typedef struct {
  char            *tensor_name;
  char            *format;          /* the format used */
  char            *requested_format;/* what the plan asked for; equal unless a fallback */
  char            *fallback_reason; /* NULL unless a fallback happened */
  char            *method;          /* "rtn", "search", "gptq", "keep" */
  gint64           n_params;
  gint64           n_nonfinite;     /* NaN and ±inf among the original weights; -1: not
                                     * counted.  When > 0 the error metrics are NAN:
                                     * undefined, never a perfect score. */
  guint64          bytes;
  double           bpw;
  double           seconds;
  QbTensorMetrics  metrics;
  QbHistogram     *hist_original;
  QbHistogram     *hist_quantized;  /* same edges as hist_original */
  QbHistogram     *hist_error;
  guint            n_channels;      /* per-output-channel ranges, in buckets of
                                     * qb_channel_rows_per_bucket() rows */
  float           *channel_min;
  float           *channel_max;
  /* A 3-D expert tensor's experts, each a row set of its own (n_experts 0
   * otherwise, or without metrics): their metrics, measured as the
   * tensor's over the expert's rows in the same pass (the error metrics,
   * the importance-weighted MSE and output error with the expert's own
   * importance, min, max, outlier share against the tensor's bounds, and
   * mean, std and kurtosis from each row's moments merged in row order —
   * the rows the pass reads anyway, so no extra read of the weights),
   * and their histograms: expert_hists[3 e + k], k = 0 original,
   * 1 quantized, 2 error, over the tensor's own ranges in
   * QB_EXPERT_HISTOGRAM_BINS bins (NULL when not measured, or not loaded
   * from the store yet). */
  guint            n_experts;
  QbTensorMetrics *expert_metrics;
  QbHistogram    **expert_hists;
} QbTensorResult;

/* An expert's histograms are the tensor's bins four at a time: 128 of
 * them keep 3 histograms of 128 experts of 48 layers near 60 MB. */
#define QB_EXPERT_HISTOGRAM_BINS (QB_HISTOGRAM_BINS / 4)

/* The histogram k (0 original, 1 quantized, 2 error) of expert e, or NULL. */
const QbHistogram *qb_tensor_result_expert_histogram (const QbTensorResult *r, guint e, guint k);
/* Every metric NAN (not measured), out_rel_err_diag FALSE. */
void            qb_tensor_metrics_init_nan     (QbTensorMetrics *m);
/* Gives r room for n experts' metrics (NAN) and no histograms. */
void            qb_tensor_result_set_n_experts (QbTensorResult *r, guint n);
/* Empty histogram slots for r's experts (the old ones freed). */
void            qb_tensor_result_set_n_experts_hists (QbTensorResult *r);
/* h with its bins summed `factor` at a time over the same range. (transfer full) */
QbHistogram    *qb_histogram_coarsen (const QbHistogram *h, guint factor);

/* Channel ranges: one bucket per row (output channel) up to
 * QB_CHANNEL_MAX_BUCKETS rows; a taller tensor gets buckets of the same
 * number of consecutive rows, the last one possibly shorter.  A 32,000-row
 * tensor: 4,000 buckets of 8 rows.  The one bucketing, before and after a
 * run. */
#define QB_CHANNEL_MAX_BUCKETS 4096
gint64          qb_channel_rows_per_bucket (gint64 n_rows);
guint           qb_channel_n_buckets       (gint64 n_rows);

/* (transfer full) */
QbTensorResult *qb_tensor_result_new  (void);
QbTensorResult *qb_tensor_result_copy (const QbTensorResult *r);
void            qb_tensor_result_free (QbTensorResult *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbTensorResult, qb_tensor_result_free)

G_END_DECLS
