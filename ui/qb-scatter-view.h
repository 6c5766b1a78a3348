/* SPDX-License-Identifier: MIT */
/* qb-scatter-view.h — experiments as points: size (or bpw) against an
 * error measure, with the Pareto front drawn and every point labelled.
 *
 * A point is on the front when no other point is at least as small and at
 * least as good (qb_pareto_mark(), the store's definition).  Hovering reads out
 * the nearest point.
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define QB_TYPE_SCATTER_VIEW (qb_scatter_view_get_type ())
G_DECLARE_FINAL_TYPE (QbScatterView, qb_scatter_view, QB, SCATTER_VIEW, GtkWidget)

GtkWidget *qb_scatter_view_new          (void);
/* n points; labels, x and y are copied.  Points with a NAN coordinate are
 * left out (an experiment without that measure). */
void       qb_scatter_view_set_points   (QbScatterView      *self,
                                         const char * const *labels,
                                         const double       *x,
                                         const double       *y,
                                         guint               n);
/* y_higher_is_better: SQNR and cosine; error measures are lower-better. */
void       qb_scatter_view_set_axes     (QbScatterView      *self,
                                         const char         *x_title,
                                         const char         *y_title,
                                         gboolean            y_higher_is_better);
void       qb_scatter_view_set_placeholder (QbScatterView   *self,
                                         const char         *text);
/* Whether point i is on the front; points are counted in the order given,
 * skipping those left out for a NAN coordinate. */
gboolean   qb_scatter_view_is_on_front  (QbScatterView      *self,
                                         guint               index);
guint      qb_scatter_view_get_n_points (QbScatterView      *self);
/* The read-out for the point nearest (x, y) in data units, or NULL. */
char      *qb_scatter_view_describe_point (QbScatterView    *self,
                                         guint               index);

/* A line under the chart (and in its exports): what the points are and
 * which experiments were left out, and why.  NULL: none. */
void        qb_scatter_view_set_note     (QbScatterView    *self,
                                          const char       *note);
const char *qb_scatter_view_get_note     (QbScatterView    *self);

G_END_DECLS
