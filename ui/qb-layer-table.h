/* SPDX-License-Identifier: MIT */
/* qb-layer-table.h — the model's tensors in a sortable, filterable table.
 *
 * A GtkColumnView over the document's rows: filtered by a search text, a
 * layer and a role; sorted by any column; optionally grouped by layer or
 * role.  Grouping is a primary sort key plus a group column that names each
 * group on its first row, rather than a GtkTreeListModel: one flat list
 * keeps column sorting, filtering and multi-selection working the same way
 * in every mode, and GTK 4.8's column view has no section headers.
 *
 * Each row's format is a drop-down that writes a plan override.
 */
#pragma once

#include <gtk/gtk.h>

#include "qb-document.h"

G_BEGIN_DECLS

typedef enum {
  QB_GROUP_NONE,
  QB_GROUP_LAYER,
  QB_GROUP_ROLE,
} QbGroupBy;

/* Layer filter values besides layer numbers. */
#define QB_LAYER_FILTER_ALL   (-2)
#define QB_LAYER_FILTER_NONE  (-1)   /* tensors outside the repeated blocks */
#define QB_ROLE_FILTER_ALL    (-1)

#define QB_TYPE_LAYER_TABLE (qb_layer_table_get_type ())
G_DECLARE_FINAL_TYPE (QbLayerTable, qb_layer_table, QB, LAYER_TABLE, GtkWidget)

GtkWidget   *qb_layer_table_new               (void);
void         qb_layer_table_set_document      (QbLayerTable *self,
                                               QbDocument   *document);
/* The row the details pane shows: the selected one, or the last clicked of
 * several.  NULL when nothing is selected.  Property "focused-row". */
QbTensorRow *qb_layer_table_get_focused_row   (QbLayerTable *self);
/* The selected rows that pass the filters, in table order. */
GPtrArray   *qb_layer_table_get_selected_rows (QbLayerTable *self);
/* Selects only this row and scrolls to it; FALSE when it is filtered out. */
gboolean     qb_layer_table_select_row        (QbLayerTable *self,
                                               QbTensorRow  *row);
/* Selects one expert's row of a 3-D expert tensor (row: the tensor's),
 * unfolding its group and showing its experts; FALSE when there is none. */
gboolean     qb_layer_table_select_expert     (QbLayerTable *self,
                                               QbTensorRow  *row,
                                               guint         expert);
void         qb_layer_table_select_all        (QbLayerTable *self);
void         qb_layer_table_focus_search      (QbLayerTable *self);
void         qb_layer_table_set_search        (QbLayerTable *self,
                                               const char   *text);
void         qb_layer_table_set_layer_filter  (QbLayerTable *self,
                                               int           layer);
void         qb_layer_table_set_role_filter   (QbLayerTable *self,
                                               int           role);
void         qb_layer_table_set_group_by      (QbLayerTable *self,
                                               QbGroupBy     group);
QbGroupBy    qb_layer_table_get_group_by      (QbLayerTable *self);
/* Sorts by the column with this id ("name", "bpw", "sqnr", ...). */
gboolean     qb_layer_table_sort_by           (QbLayerTable *self,
                                               const char   *column_id,
                                               GtkSortType   order);
/* Sorts again after row values changed (results of a run); keeps the
 * selection. */
void         qb_layer_table_refresh_sort      (QbLayerTable *self);
/* Shows the output-error column when a row's result has one. */
void         qb_layer_table_update_columns    (QbLayerTable *self);
gboolean     qb_layer_table_get_column_visible (QbLayerTable *self,
                                               const char   *column_id);
/* The rows as shown (filtered and sorted; experts' rows under their
 * tensor's when expanded), for tests and export. */
GListModel  *qb_layer_table_get_visible_rows  (QbLayerTable *self);
/* The group label shown before this row, or NULL inside a group. */
char        *qb_layer_table_get_group_label   (QbLayerTable *self,
                                               guint         position);
/* What the group's first row shows: "▾ layer 3 · 9 tensors · 1.2 MB ·
 * 4.52 bpw" (▸ when folded), or NULL inside a group. */
char        *qb_layer_table_get_group_summary (QbLayerTable *self,
                                               guint         position);
/* A folded group shows its first row only (clicking the summary folds
 * and unfolds); regrouping unfolds every group. */
void         qb_layer_table_set_group_collapsed (QbLayerTable *self,
                                               QbTensorRow  *row,
                                               gboolean      collapsed);
gboolean     qb_layer_table_get_group_collapsed (QbLayerTable *self,
                                               QbTensorRow  *row);
/* A 3-D expert tensor's row shows its experts' rows right under it (its
 * expert rows or its own row may be given). */
void         qb_layer_table_set_experts_expanded (QbLayerTable *self,
                                                QbTensorRow  *row,
                                                gboolean      expanded);
gboolean     qb_layer_table_get_experts_expanded (QbLayerTable *self,
                                                QbTensorRow  *row);
/* TRUE while the view is still letting go of the previous model's rows
 * or being given the rows of a model just set (a few each frame, see
 * qb-layer-table.c); property "filling".  The table's models, counts and
 * selection functions work on every row meanwhile (a row selected before
 * the view has it is the focused row at once, selected once shown). */
gboolean     qb_layer_table_is_filling        (QbLayerTable *self);
/* How many rows of cells the table has made and freed so far (GTK keeps
 * up to ~200 around the visible ones, and makes and frees them as the
 * rows shown change). */
guint        qb_layer_table_get_n_rows_built  (QbLayerTable *self);
guint        qb_layer_table_get_n_rows_freed  (QbLayerTable *self);
/* How many times a row of cells was given a row to show, on cells made
 * for it or kept from another row (GTK 4.8 reuses the cells of the rows
 * it lets go of when the view jumps far); not when GTK binds cells again
 * to the row they show (their position or selection changed), which
 * costs nothing. */
guint        qb_layer_table_get_n_rows_bound  (QbLayerTable *self);

G_END_DECLS
