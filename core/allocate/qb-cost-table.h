/* SPDX-License-Identifier: MIT */
/* qb-cost-table.h — what each quantizable tensor costs in each candidate
 * format: the table an allocation chooses from.
 *
 * The model is additive: the predicted end-to-end KLD of a plan is the sum
 * of the costs of its tensors' chosen candidates.  A sensitivity study
 * (core/sensitivity) fills the table from end-to-end measurements; without
 * one, qb_cost_table_new_proxy() fills it from the weights alone (sampled
 * rows, round to nearest, relative weight MSE, importance-weighted when an
 * importance matrix is given), mapped to KLD units by one fixed factor, so
 * allocation works before any study has run.
 *
 * Tensors outside the table (1-D tensors, tensors no candidate can hold
 * while kept as stored) count only in fixed_bytes and fixed_weights.
 */
#pragma once

#include <gio/gio.h>

#include "qb-format.h"
#include "qb-imatrix.h"
#include "qb-model.h"
#include "qb-workers.h"

G_BEGIN_DECLS

typedef struct {
  const QbFormat *format;
  guint64         bytes;     /* the tensor's bytes in this format */
  double          cost;      /* predicted end-to-end KLD added by this tensor
                              * alone in this format (additive model) */
  double          proxy;     /* the instant proxy it was derived from, e.g.
                              * relative (weighted) weight or output error */
  gboolean        measured;  /* cost from an end-to-end measurement, not only
                              * the mapped proxy */
} QbCostCandidate;

typedef struct {
  char            *name;
  guint            tensor_index;   /* in the model */
  gint64           n_weights;
  gint64           row_length;     /* ne[0]: a format whose blocks do not fit
                                    * it is never a candidate */
  guint            n_candidates;
  QbCostCandidate *candidates;
} QbCostTensor;

typedef struct {
  guint         n_tensors;
  QbCostTensor *tensors;
  guint64       fixed_bytes;     /* tensors not in the table */
  gint64        fixed_weights;
} QbCostTable;

/* Relative weight MSE 1.0 (the whole tensor replaced by noise of its own
 * energy) maps to this much KLD, divided by the number of tensors in the
 * table: a proxy-only table predicts KLD ≈ factor × mean relative error.
 * Fitted once on stories260K (uniform Q4_0 / Q5_0 / Q8_0 with ffn_down in
 * INT8_CH, 20 chunks of 256 tokens of tinystories-val: measured KLD
 * 0.101 / 0.0249 / 0.00042, predicted 0.096 / 0.024 / 0.00056); only a
 * study measures it for another model. */
#define QB_COST_PROXY_KLD_FACTOR 15.0

QbCostTable     *qb_cost_table_new            (void);
void             qb_cost_table_free           (QbCostTable     *table);
/* Appends a tensor without candidates; the pointer is valid until the next
 * tensor is added. */
QbCostTensor    *qb_cost_table_add_tensor     (QbCostTable     *table,
                                               const char      *name,
                                               guint            tensor_index,
                                               gint64           n_weights,
                                               gint64           row_length);
/* Appends a candidate; the pointer is valid until the next one is added.
 * NULL (nothing added) when the format's blocks do not fit the tensor's
 * rows, or the tensor already has this format. */
QbCostCandidate *qb_cost_tensor_add_candidate (QbCostTensor    *tensor,
                                               const QbFormat  *format,
                                               guint64          bytes,
                                               double           cost,
                                               double           proxy,
                                               gboolean         measured);
void             qb_cost_table_add_fixed      (QbCostTable     *table,
                                               guint64          bytes,
                                               gint64           n_weights);
/* By tensor name; NULL when absent. */
const QbCostTensor    *qb_cost_table_find     (const QbCostTable *table,
                                               const char        *name);
/* The tensor's candidate in this format; NULL when it has none. */
const QbCostCandidate *qb_cost_tensor_find    (const QbCostTensor *tensor,
                                               const QbFormat     *format);
/* All weights: the table's tensors plus the fixed ones. */
gint64           qb_cost_table_n_weights      (const QbCostTable *table);

/* The default candidate ladder for a model's tensors: K-quants Q2_K…Q6_K
 * and Q8_0, the 32-block Q4_0 and Q5_0 where 256-blocks do not fit,
 * per-channel INT4/INT8 where 32-blocks do not fit either, and F16.
 * Each tensor takes the candidates that fit its rows.  NULL-terminated,
 * static. */
const char * const *qb_cost_default_candidates (void);
/* Parses "Q2_K,Q3_K,…" into formats (a new array, n_out entries);
 * unknown names or duplicates are an error. */
const QbFormat **qb_cost_parse_candidates     (const char        *list,
                                               guint             *n_out,
                                               GError           **error);

/* Rows sampled per tensor by the proxy (spread evenly over the tensor). */
#define QB_COST_PROXY_ROWS 64

/* A proxy-only table: every tensor with at least two dimensions and a
 * readable stored type, each with the candidates whose blocks fit its
 * rows (a candidate a tensor cannot take is skipped, never replaced; a
 * tensor no candidate fits gets F16 alone).  Costs are relative errors of
 * QB_COST_PROXY_ROWS sampled rows quantized by round to nearest (the
 * formats' own search where they always search), weighted per column by
 * the importance matrix when one is given.  Deterministic for any thread
 * count.  FALSE (NULL) with G_IO_ERROR_CANCELLED when cancelled. */
QbCostTable     *qb_cost_table_new_proxy      (QbModel          *model,
                                               const QbFormat  **candidates,
                                               guint             n_candidates,
                                               QbImatrix        *importance,
                                               QbWorkers        *workers,
                                               GCancellable     *cancellable,
                                               GError          **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbCostTable, qb_cost_table_free)

G_END_DECLS
