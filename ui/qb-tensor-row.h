/* SPDX-License-Identifier: MIT */
/* qb-tensor-row.h — one tensor of the open model, as the layer table shows it.
 *
 * Facts from the model (name, layer, role, shape, dtype, size) are fixed at
 * creation.  The plan's choice (format, bpw, bytes, where it came from) and
 * the last run's result change over time and are announced as properties,
 * so table cells follow them.  The original weights' statistics (histogram,
 * channel ranges), computed in the background on first view, are cached here.
 */
#pragma once

#include <glib-object.h>

#include "qb-model.h"
#include "qb-plan.h"
#include "qb-tensor-result.h"

G_BEGIN_DECLS

typedef enum {
  QB_TENSOR_ROW_IDLE,
  QB_TENSOR_ROW_QUEUED,     /* part of a run, not started */
  QB_TENSOR_ROW_RUNNING,
  QB_TENSOR_ROW_DONE,       /* has a result from the last run */
} QbTensorRowState;

#define QB_TYPE_TENSOR_ROW (qb_tensor_row_get_type ())
G_DECLARE_FINAL_TYPE (QbTensorRow, qb_tensor_row, QB, TENSOR_ROW, GObject)

QbTensorRow          *qb_tensor_row_new              (guint                  index,
                                                      const QbTensor        *tensor);

/* One expert of a 3-D expert tensor's row: its own index, size and
 * metrics (from its tensor's result), everything else its tensor's. */
QbTensorRow          *qb_tensor_row_new_expert       (QbTensorRow           *parent,
                                                      guint                  expert);
/* The tensor's row of an expert's row; NULL for a tensor's. */
QbTensorRow          *qb_tensor_row_get_parent       (QbTensorRow           *self);
/* The expert an expert's row stands for; -1 for a tensor's. */
int                   qb_tensor_row_get_expert       (QbTensorRow           *self);
/* Experts of a 3-D expert tensor (of its row and its experts'); 0 otherwise. */
guint                 qb_tensor_row_get_n_experts    (QbTensorRow           *self);

guint                 qb_tensor_row_get_index        (QbTensorRow           *self);
const char           *qb_tensor_row_get_name         (QbTensorRow           *self);
int                   qb_tensor_row_get_layer        (QbTensorRow           *self);
QbTensorRole          qb_tensor_row_get_role         (QbTensorRow           *self);
const char           *qb_tensor_row_get_role_name    (QbTensorRow           *self);
const char           *qb_tensor_row_get_shape        (QbTensorRow           *self);
const char           *qb_tensor_row_get_dtype        (QbTensorRow           *self);
gint64                qb_tensor_row_get_n_params     (QbTensorRow           *self);
gint64                qb_tensor_row_get_row_length   (QbTensorRow           *self);
guint64               qb_tensor_row_get_original_bytes (QbTensorRow         *self);

/* The plan's choice.  requested is what rules, overrides or the default
 * ask for, format what the tensor gets after any fallback; both are format
 * names or QB_FORMAT_KEEP. */
void                  qb_tensor_row_set_choice       (QbTensorRow           *self,
                                                      const QbTensorChoice  *choice,
                                                      gboolean               overridden);
const char           *qb_tensor_row_get_requested    (QbTensorRow           *self);
const char           *qb_tensor_row_get_format       (QbTensorRow           *self);
/* What the table shows: the format, "F32 (kept)", "Q5_0 ← Q4_K" after a fallback. */
const char           *qb_tensor_row_get_format_label (QbTensorRow           *self);
const char           *qb_tensor_row_get_source       (QbTensorRow           *self);
const char           *qb_tensor_row_get_fallback     (QbTensorRow           *self);
gboolean              qb_tensor_row_get_overridden   (QbTensorRow           *self);
double                qb_tensor_row_get_bpw          (QbTensorRow           *self);
guint64               qb_tensor_row_get_bytes        (QbTensorRow           *self);

/* The last run's result (owned by the row; NULL clears). */
void                  qb_tensor_row_set_result       (QbTensorRow           *self,
                                                      QbTensorResult        *result);
const QbTensorResult *qb_tensor_row_get_result       (QbTensorRow           *self);
/* Metrics of the result; NAN without one. */
double                qb_tensor_row_get_sqnr         (QbTensorRow           *self);
/* NaN and infinite weights the last run found (0 without a result). */
gint64                qb_tensor_row_get_n_nonfinite  (QbTensorRow           *self);
double                qb_tensor_row_get_rmse_rel     (QbTensorRow           *self);
double                qb_tensor_row_get_cosine       (QbTensorRow           *self);
/* ‖WX − ŴX‖² / ‖WX‖² on the calibration inputs; NAN without calibration. */
double                qb_tensor_row_get_out_rel_err  (QbTensorRow           *self);
/* TRUE when the plan now asks for another format than the result used. */
gboolean              qb_tensor_row_get_stale        (QbTensorRow           *self);

void                  qb_tensor_row_set_state        (QbTensorRow           *self,
                                                      QbTensorRowState       state);
QbTensorRowState      qb_tensor_row_get_state        (QbTensorRow           *self);
void                  qb_tensor_row_set_progress     (QbTensorRow           *self,
                                                      double                 fraction);
double                qb_tensor_row_get_progress     (QbTensorRow           *self);

/* Matched by the rule being edited. */
void                  qb_tensor_row_set_highlighted  (QbTensorRow           *self,
                                                      gboolean               highlighted);
gboolean              qb_tensor_row_get_highlighted  (QbTensorRow           *self);

/* Statistics of the original weights (hist_original, channel ranges and the
 * original's moments of a QbTensorResult), owned by the row; an expert's
 * row has its tensor's (of all experts). */
void                  qb_tensor_row_set_stats        (QbTensorRow           *self,
                                                      QbTensorResult        *stats);
const QbTensorResult *qb_tensor_row_get_stats        (QbTensorRow           *self);

G_END_DECLS
