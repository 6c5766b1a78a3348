/* SPDX-License-Identifier: MIT */
/* qb-layer-bars-view.h — a per-layer measure of several experiments, as
 * bars side by side: one group per layer, one bar (and colour) per
 * experiment.  Hovering reads out the bar. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define QB_TYPE_LAYER_BARS_VIEW (qb_layer_bars_view_get_type ())
G_DECLARE_FINAL_TYPE (QbLayerBarsView, qb_layer_bars_view, QB, LAYER_BARS_VIEW, GtkWidget)

GtkWidget *qb_layer_bars_view_new          (void);
/* values[s * n_groups + g] is series s in group g (NAN: no bar).  All
 * arrays are copied. */
void       qb_layer_bars_view_set_data     (QbLayerBarsView     *self,
                                            guint                n_series,
                                            const char * const  *series,
                                            guint                n_groups,
                                            const char * const  *groups,
                                            const double        *values,
                                            const char          *measure);
void       qb_layer_bars_view_set_placeholder (QbLayerBarsView  *self,
                                            const char          *text);
/* "layer 3 · exp: 31.2 dB" style read-out, or NULL. */
char      *qb_layer_bars_view_describe     (QbLayerBarsView     *self,
                                            guint                series,
                                            guint                group);

G_END_DECLS
