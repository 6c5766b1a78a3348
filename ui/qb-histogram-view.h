/* SPDX-License-Identifier: MIT */
/* qb-histogram-view.h — a weight or error histogram, drawn with Cairo.
 *
 * Shows an original distribution (filled) and optionally a quantized one
 * (outline) over the same bin edges, the quantization grid as marks on the
 * value axis, linear or log counts.  Scroll zooms the value axis around the
 * pointer, drag pans, double-click resets; hovering reads out the bin.
 */
#pragma once

#include <gtk/gtk.h>

#include "qb-tensor-result.h"

G_BEGIN_DECLS

typedef enum {
  QB_HISTOGRAM_KIND_WEIGHTS,   /* original filled, quantized outline */
  QB_HISTOGRAM_KIND_ERROR,     /* one series: dequantized − original */
} QbHistogramKind;

#define QB_TYPE_HISTOGRAM_VIEW (qb_histogram_view_get_type ())
G_DECLARE_FINAL_TYPE (QbHistogramView, qb_histogram_view, QB, HISTOGRAM_VIEW, GtkWidget)

GtkWidget  *qb_histogram_view_new             (QbHistogramKind     kind);
/* The histograms are copied; NULL clears a series. */
void        qb_histogram_view_set_histograms  (QbHistogramView    *self,
                                               const QbHistogram  *original,
                                               const QbHistogram  *quantized);
/* Values on the value axis where the format can land (already scaled). */
void        qb_histogram_view_set_grid        (QbHistogramView    *self,
                                               const double       *levels,
                                               guint               n_levels,
                                               const char         *label);
/* Shown in the middle when there is nothing to draw ("Computing…"). */
void        qb_histogram_view_set_placeholder (QbHistogramView    *self,
                                               const char         *text);
void        qb_histogram_view_set_log_scale   (QbHistogramView    *self,
                                               gboolean            log_scale);
gboolean    qb_histogram_view_get_log_scale   (QbHistogramView    *self);
/* The original histogram shown (a copy of the one given), or NULL. */
const QbHistogram *qb_histogram_view_get_histogram (QbHistogramView *self);
/* The visible part of the value axis. */
void        qb_histogram_view_set_range       (QbHistogramView    *self,
                                               double              lo,
                                               double              hi);
void        qb_histogram_view_get_range       (QbHistogramView    *self,
                                               double             *lo,
                                               double             *hi);
void        qb_histogram_view_reset_zoom      (QbHistogramView    *self);
/* Zooms by factor (> 1 zooms in) around the value at `value`. */
void        qb_histogram_view_zoom            (QbHistogramView    *self,
                                               double              value,
                                               double              factor);
/* The read-out for the bin holding value ("bin [a, b): ..."), or NULL when
 * there is no data; the hover read-out shows the same text. */
char       *qb_histogram_view_describe_value  (QbHistogramView    *self,
                                               double              value);
gboolean    qb_histogram_view_has_data        (QbHistogramView    *self);

/* The height the chart asks for when there is room (0: the default, 240
 * pixels; never below its minimum): a chart under a table asks for less,
 * so that the table gets the height. */
void        qb_histogram_view_set_natural_height (QbHistogramView *self,
                                               int              height);

/* The tensor's name, drawn at the top of exported images. */
void        qb_histogram_view_set_title       (QbHistogramView    *self,
                                               const char         *title);
/* Quantized − original counts per bin instead of the two curves: shows
 * what moved where the curves lie on each other. */
void        qb_histogram_view_set_difference  (QbHistogramView    *self,
                                               gboolean            difference);
gboolean    qb_histogram_view_get_difference  (QbHistogramView    *self);
/* Counts beyond the visible range on each side (marked on the chart). */
void        qb_histogram_view_get_hidden      (QbHistogramView    *self,
                                               guint64            *left,
                                               guint64            *right);
/* TRUE when the quantized curve lies on the original (within 5 %). */
gboolean    qb_histogram_view_curves_coincide (QbHistogramView    *self);

G_END_DECLS
