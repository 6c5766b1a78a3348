/* SPDX-License-Identifier: MIT */
/* qb-document.h — an open model with the plan being edited for it.
 *
 * Holds the QbModel, the QbPlan, and one QbTensorRow per tensor.  When the
 * plan changes the document resolves it again (instant: no tensor data is
 * read), updates every row's format, bpw and size, and announces new totals.
 * Loading and the original weights' statistics run on worker threads.
 */
#pragma once

#include <gio/gio.h>

#include "qb-allocator.h"
#include "qb-calibration.h"
#include "qb-cost-table.h"
#include "qb-model.h"
#include "qb-plan.h"
#include "qb-tensor-row.h"
#include "qb-workers.h"

G_BEGIN_DECLS

#define QB_TYPE_DOCUMENT (qb_document_get_type ())
G_DECLARE_FINAL_TYPE (QbDocument, qb_document, QB, DOCUMENT, GObject)

/* Opens a model file on a worker thread; path NULL opens the built-in
 * demo model (generated into the user's cache on first use). */
void              qb_document_load_async        (const char           *path,
                                                 const char           *default_format,
                                                 GCancellable         *cancellable,
                                                 GAsyncReadyCallback   callback,
                                                 gpointer              user_data);
QbDocument       *qb_document_load_finish       (GAsyncResult         *result,
                                                 GError              **error);
QbDocument       *qb_document_new               (QbModel              *model,
                                                 const char           *default_format);

QbModel          *qb_document_get_model         (QbDocument           *self);
QbPlan           *qb_document_get_plan          (QbDocument           *self);
/* Replaces the plan (an experiment's, loaded back into the editor). */
void              qb_document_set_plan          (QbDocument           *self,
                                                 QbPlan               *plan);
/* A GListModel of QbTensorRow, in model order. */
GListModel       *qb_document_get_rows          (QbDocument           *self);
QbTensorRow      *qb_document_get_row           (QbDocument           *self,
                                                 guint                 index);
QbTensorRow      *qb_document_find_row          (QbDocument           *self,
                                                 const char           *name);
/* NULL when the plan could not be resolved (see get_plan_error). */
const QbPlanResolution *qb_document_get_resolution (QbDocument        *self);
const GError     *qb_document_get_plan_error    (QbDocument           *self);
/* "Llama · 5 layers · 64 hidden · 8 heads (4 KV) · 512 vocab" */
char             *qb_document_describe_arch     (QbDocument           *self);
/* "260K params · 1.0 MB → 0.3 MB · 4.9 bpw · 3.4× smaller" */
char             *qb_document_describe_totals   (QbDocument           *self);

/* Where the predicted KLD in the totals comes from, in a sentence. */
char             *qb_document_describe_prediction (QbDocument         *self);

/* Plan edits that go through overrides.  format may be QB_FORMAT_KEEP. */
void              qb_document_set_formats       (QbDocument           *self,
                                                 QbTensorRow         **rows,
                                                 guint                 n_rows,
                                                 const char           *format);
void              qb_document_clear_overrides   (QbDocument           *self,
                                                 QbTensorRow         **rows,
                                                 guint                 n_rows);
/* Runs several plan edits with one re-resolve at the end. */
void              qb_document_begin_bulk_edit   (QbDocument           *self);
void              qb_document_end_bulk_edit     (QbDocument           *self);

/* Predicted KLD.  A document computes a proxy-only cost table for its
 * model in the background when it opens ("totals-changed" follows); a
 * study's table may replace it (set_cost_table takes it; NULL goes back
 * to the proxies' table).  NULL while none is ready. */
const QbCostTable *qb_document_get_cost_table  (QbDocument           *self);
/* "weight proxies", "study 3", ... */
const char       *qb_document_get_cost_source   (QbDocument           *self);
gboolean          qb_document_costs_are_proxies (QbDocument           *self);
void              qb_document_set_cost_table    (QbDocument           *self,
                                                 QbCostTable          *table,
                                                 const char           *source);
/* The current plan's predicted KLD, and how much the last edit changed
 * it; FALSE when no cost table is ready or the plan has an error. */
gboolean          qb_document_get_predicted_kld (QbDocument           *self,
                                                 double               *kld,
                                                 double               *delta);
/* Fills the plan from the cost table: the least predicted KLD within the
 * budget and the plan's constraints (pins, formats allowed per role,
 * embedding floor).  The allocation runs on a worker thread over a copy
 * of the table; finish writes it into the plan as one edit. */
void              qb_document_allocate_async    (QbDocument           *self,
                                                 const QbAllocBudget  *budget,
                                                 GCancellable         *cancellable,
                                                 GAsyncReadyCallback   callback,
                                                 gpointer              user_data);
gboolean          qb_document_allocate_finish   (QbDocument           *self,
                                                 GAsyncResult         *result,
                                                 GError              **error);
gboolean          qb_document_is_allocating     (QbDocument           *self);
void              qb_document_set_pinned        (QbDocument           *self,
                                                 QbTensorRow         **rows,
                                                 guint                 n_rows,
                                                 gboolean              pinned);
/* An evaluation's measured KLD of a plan (its JSON): shown beside the
 * prediction while the plan being edited is that plan. */
void              qb_document_set_measured_kld  (QbDocument           *self,
                                                 const char           *plan_json,
                                                 double                kld);

/* Marks the rows the plan's rule `index` matches (-1: none). */
void              qb_document_highlight_rule    (QbDocument           *self,
                                                 int                   index);
guint             qb_document_count_highlighted (QbDocument           *self);

/* Results of a run, by model index (transfer full); NULL clears. */
void              qb_document_set_result        (QbDocument           *self,
                                                 guint                 index,
                                                 QbTensorResult       *result);
void              qb_document_clear_results     (QbDocument           *self);

/* Starts computing the row's original statistics in the background unless
 * they are cached or on their way; the row's "has-stats" announces them.
 * Only the latest request is kept: earlier pending ones are cancelled. */
void              qb_document_request_stats     (QbDocument           *self,
                                                 QbTensorRow          *row);

/* The calibration texts the next runs compute statistics on (importance,
 * and XᵀX for GPTQ), and their chunking; paths NULL or empty: none. */
void              qb_document_set_calibration   (QbDocument                 *self,
                                                 const char * const         *paths,
                                                 const QbCalibrationOptions *opts);
/* The paths (NULL: none); *opts (may be NULL) gets the chunking. */
const char * const *qb_document_get_calibration (QbDocument                 *self,
                                                 QbCalibrationOptions       *opts);

G_END_DECLS
