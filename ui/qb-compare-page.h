/* SPDX-License-Identifier: MIT */
/* qb-compare-page.h — two or more experiments side by side.
 *
 * (a) a scatter of size or bits per weight against an error measure
 * (perplexity and KLD when evaluated) with the Pareto front, points
 * labelled; (b) a per-layer measure as bars, one per experiment; (c) the
 * tensors whose formats differ, one column per experiment.  The comparison
 * is read from the store on a worker thread.
 */
#pragma once

#include <gtk/gtk.h>

#include "qb-chart.h"
#include "qb-layer-bars-view.h"
#include "qb-scatter-view.h"
#include "qb-store.h"

G_BEGIN_DECLS

#define QB_TYPE_COMPARE_PAGE (qb_compare_page_get_type ())
G_DECLARE_FINAL_TYPE (QbComparePage, qb_compare_page, QB, COMPARE_PAGE, GtkWidget)

GtkWidget          *qb_compare_page_new                (void);
void                qb_compare_page_set_store          (QbComparePage   *self,
                                                        QbStore         *store);
/* Reads and shows the comparison of these experiments. */
void                qb_compare_page_compare            (QbComparePage   *self,
                                                        const gint64    *ids,
                                                        guint            n);
/* Forgets the comparison shown (another model was opened). */
void                qb_compare_page_clear              (QbComparePage   *self);
gboolean            qb_compare_page_is_busy            (QbComparePage   *self);
/* NULL before the first comparison. */
const QbComparison *qb_compare_page_get_comparison     (QbComparePage   *self);
/* "scatter", "layers" or "formats". */
void                qb_compare_page_show_view          (QbComparePage   *self,
                                                        const char      *name);
void                qb_compare_page_set_metric         (QbComparePage   *self,
                                                        QbMetric         metric);
/* The chart on screen, NULL for the formats table. */
QbChart            *qb_compare_page_get_visible_chart  (QbComparePage   *self);
QbScatterView      *qb_compare_page_get_scatter        (QbComparePage   *self);
QbLayerBarsView    *qb_compare_page_get_layer_bars     (QbComparePage   *self);
/* Tensors whose formats differ between the experiments, as listed. */
GListModel         *qb_compare_page_get_format_rows    (QbComparePage   *self);

G_END_DECLS
