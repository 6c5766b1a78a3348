/* SPDX-License-Identifier: MIT */
/* qb-metric-cell.h — a number with a small bar under it, for table cells.
 *
 * One widget that draws both (a label and a GtkLevelBar would be five
 * widgets, and a table keeps a few hundred rows of cells alive).  The bar
 * shows quality from 0 (empty) to 1 (full); the text is the exact value.
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define QB_TYPE_METRIC_CELL (qb_metric_cell_get_type ())
G_DECLARE_FINAL_TYPE (QbMetricCell, qb_metric_cell, QB, METRIC_CELL, GtkWidget)

GtkWidget  *qb_metric_cell_new       (void);
/* text NULL or "" shows nothing; fraction NAN hides the bar. */
void        qb_metric_cell_set_value (QbMetricCell *self,
                                      const char   *text,
                                      double        fraction);
const char *qb_metric_cell_get_text  (QbMetricCell *self);

G_END_DECLS
