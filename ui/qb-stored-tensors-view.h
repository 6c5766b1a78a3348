/* SPDX-License-Identifier: MIT */
/* qb-stored-tensors-view.h — the tensors of one stored experiment, as
 * the Experiments page shows them.
 *
 * A table of every stored tensor result (format, bpw, error metrics and
 * the weights' moments); a 3-D expert tensor has an expander that opens a
 * row per expert under it, with the expert's own figures, and sorting any
 * column sorts the experts among themselves under their tensor.  The
 * selected row's histograms (the tensor's or the expert's: original and
 * quantized, and the error) are shown below the table, read from the
 * store when first selected.  Everything is read on a worker thread; the
 * table is given its rows a few per frame.
 *
 * Actions (prefix "tensors."): expand-experts, collapse-experts (every
 * expert tensor shown), select ((si): a tensor's name and an expert, -1
 * for the tensor itself), select-worst-expert (the expert of lowest SQNR
 * of the experiment), experts-only (stateful: only expert tensors),
 * difference (stateful: the weights chart as quantized − original).
 */
#pragma once

#include <gtk/gtk.h>

#include "qb-histogram-view.h"
#include "qb-store.h"
#include "qb-stored-tensor-item.h"

G_BEGIN_DECLS

#define QB_TYPE_STORED_TENSORS_VIEW (qb_stored_tensors_view_get_type ())
G_DECLARE_FINAL_TYPE (QbStoredTensorsView, qb_stored_tensors_view, QB, STORED_TENSORS_VIEW, GtkWidget)

GtkWidget          *qb_stored_tensors_view_new           (void);
void                qb_stored_tensors_view_set_store     (QbStoredTensorsView *self,
                                                          QbStore             *store);
/* Shows experiment id (0: none) with its name; reads it again only when
 * the id or its count of stored tensors changed. */
void                qb_stored_tensors_view_show          (QbStoredTensorsView *self,
                                                          gint64               id,
                                                          const char          *name,
                                                          guint                n_tensors_done);
gint64              qb_stored_tensors_view_get_experiment (QbStoredTensorsView *self);
/* TRUE while reading from the store, letting go of the rows shown before,
 * or, on screen, still giving the table its rows. */
gboolean            qb_stored_tensors_view_is_busy       (QbStoredTensorsView *self);
/* How many rows of cells the table has freed so far. */
guint               qb_stored_tensors_view_get_n_rows_freed (QbStoredTensorsView *self);
/* The rows as shown (GtkTreeListRow items, experts under their tensor
 * when expanded, filtered and sorted). */
GListModel         *qb_stored_tensors_view_get_rows      (QbStoredTensorsView *self);
/* The item of a shown row. */
QbStoredTensorItem *qb_stored_tensors_view_get_item      (QbStoredTensorsView *self,
                                                          guint                position);
/* The selected row's item, or NULL. */
QbStoredTensorItem *qb_stored_tensors_view_get_selected  (QbStoredTensorsView *self);
/* The text of a shown row's cell in the column with this id ("name",
 * "format", "bpw", "sqnr", "rmse", "cosine", "maxerr", "mean", "std",
 * "kurtosis", "outliers"). (transfer full) */
char               *qb_stored_tensors_view_get_cell      (QbStoredTensorsView *self,
                                                          guint                position,
                                                          const char          *column_id);
/* The line of figures above the charts, for the selected row. */
const char         *qb_stored_tensors_view_get_facts     (QbStoredTensorsView *self);
/* "1,023 tensors · 180 expert tensors of 4 experts · …". */
const char         *qb_stored_tensors_view_get_summary   (QbStoredTensorsView *self);
QbHistogramView    *qb_stored_tensors_view_get_histogram (QbStoredTensorsView *self);
QbHistogramView    *qb_stored_tensors_view_get_error_histogram (QbStoredTensorsView *self);
/* Sorts by a column (ids as above). */
gboolean            qb_stored_tensors_view_sort_by       (QbStoredTensorsView *self,
                                                          const char          *column_id,
                                                          GtkSortType          order);

G_END_DECLS
