/* SPDX-License-Identifier: MIT */
/* qb-tensor-quantizer.h — quantizing one tensor and measuring it.
 *
 * One tensor, one (format, method, importance).  A cheap pre-pass reads
 * the tensor once for its range and moments (the shared histogram edges,
 * the absmax of per-tensor formats, kurtosis); 32 rows spread over the
 * tensor are quantized to size the error histogram; the main pass then
 * goes over fixed chunks of rows on the worker threads: read as float32,
 * quantize through the method, dequantize, and accumulate every metric and
 * histogram in the same sweep.
 *
 * Chunks have a fixed number of rows that does not depend on the thread
 * count; each chunk's sums are kept in double and merged in chunk order,
 * and counts are integers, so the bytes and every metric are identical
 * for 1 and N threads.  Memory: the output buffers the caller passes, plus
 * a few chunks of scratch per thread.
 */
#pragma once

#include <gio/gio.h>

#include "qb-format.h"
#include "qb-method.h"
#include "qb-model.h"
#include "qb-tensor-result.h"
#include "qb-workers.h"

G_BEGIN_DECLS

/* What to do with the tensor. */
typedef struct {
  const QbFormat *format;       /* NULL: keep the stored values, measure only */
  const QbMethod *method;       /* NULL: rtn */
  const float    *importance;   /* ne[0] per-column weights, or NULL */
  /* 0 or 1: the importance applies to every row; n > 1: a 3-D expert
   * tensor's rows split into n equal sets (its experts), each with its own
   * ne[0] weights, n × ne[0] in all (llama-imatrix's layout). */
  guint           importance_sets;
  const double   *gram;         /* ne[0] x ne[0] XᵀX for methods that need it, or NULL */
  guint64         gram_samples;
  /* A 3-D expert tensor's XᵀX per expert, instead of gram: n_expert_grams
   * (its experts) matrices of ne[0] x ne[0], each over the tokens routed to
   * that expert.  Each expert's rows go through the method with their own
   * (prepared when its first rows come up, released when its last are
   * done, so a few experts' states are held at once); an expert with 0
   * samples, or whose preparation fails, is rounded (rtn) instead, and
   * the result's fallback_reason lists it.  The output error is measured
   * through each expert's own. */
  const double * const *expert_grams;
  const guint64        *expert_gram_samples;
  guint                 n_expert_grams;
  GHashTable     *options;      /* method options (char* -> char*), or NULL */
  gboolean        no_metrics;   /* only produce the output: no metrics, no
                                 * histograms (and no pre-pass unless the
                                 * format has a per-tensor scale) */
} QbQuantizeSpec;

/* Where the results go; any may be NULL.  data holds the rows in the
 * format, then (per-tensor formats) the tensor's scale as qb-format.h lays
 * it out. */
typedef struct {
  guint8  *data;   /* qb_format_tensor_bytes() bytes: the tensor in the format */
  guint16 *f16;    /* n_params halves: the dequantized tensor rounded to F16 */
  float   *f32;    /* n_params floats: the dequantized tensor */
} QbQuantizeOutput;

/* Called from worker threads, one call at a time, with the share of the
 * tensor done (0..1). */
typedef void (*QbQuantizeProgressFunc) (double fraction, gpointer user_data);

/* The pre-pass: facts of the stored values (finite ones; qb-moments). */
typedef struct {
  guint64 n;
  guint64 n_nonfinite;
  double  min;
  double  max;
  double  absmax;
  double  mean;
  double  std;             /* population standard deviation */
  double  kurtosis;        /* excess kurtosis; NAN for a constant tensor */
  double  outlier_radius;  /* |w - mean| beyond this is an outlier (6 std) */
} QbTensorScan;

/* Rows per work item for a tensor of rows of n_cols values: fixed by the
 * shape alone, so results never depend on the thread count. */
gint64           qb_tensor_chunk_rows           (gint64 n_cols);

/* Reads the tensor once (on the workers) for its range and moments. */
gboolean         qb_tensor_scan                (QbModel        *model,
                                                 guint           index,
                                                 QbWorkers      *workers,
                                                 GCancellable   *cancellable,
                                                 QbTensorScan  *stats,
                                                 GError        **error);

/* The stored values before any run: their moments, range and outlier
 * share, their histogram over the same edges a quantization run of this
 * tensor uses, and their channel ranges in the run's buckets (so both can
 * be shown before any run and overlaid later).  Two reads of the tensor;
 * the quality metrics are NAN. (transfer full) */
QbTensorResult  *qb_tensor_describe_original    (QbModel        *model,
                                                 guint           index,
                                                 QbWorkers      *workers,
                                                 GCancellable   *cancellable,
                                                 GError        **error);
/* Its histogram alone. (transfer full) */
QbHistogram     *qb_tensor_original_histogram   (QbModel        *model,
                                                 guint           index,
                                                 QbWorkers      *workers,
                                                 GCancellable   *cancellable,
                                                 GError        **error);

/* Quantizes and measures one tensor.  Fills everything in the result but
 * requested_format and fallback_reason (the plan's business; set here
 * only to list the experts a method with expert_grams rounded); with
 * no_metrics the metrics are NAN and the histograms and channel ranges
 * absent.  Returns NULL with G_IO_ERROR_CANCELLED when cancelled; output
 * buffers are then only partly written. (transfer full) */
QbTensorResult  *qb_tensor_quantize             (QbModel                 *model,
                                                 guint                    index,
                                                 const QbQuantizeSpec    *spec,
                                                 QbWorkers               *workers,
                                                 const QbQuantizeOutput  *output,
                                                 QbQuantizeProgressFunc   progress,
                                                 gpointer                 progress_data,
                                                 GCancellable            *cancellable,
                                                 GError                 **error);

G_END_DECLS
