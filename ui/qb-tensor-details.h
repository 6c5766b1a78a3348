/* SPDX-License-Identifier: MIT */
/* qb-tensor-details.h — the selected tensor: facts, metrics and charts.
 *
 * Shows the weight histogram (original, and quantized once a run has
 * measured the tensor) with the format's grid, the error histogram and the
 * per-channel ranges.  The original histogram is requested from the
 * document as soon as a row is shown, so it appears before any run.
 */
#pragma once

#include <gtk/gtk.h>

#include "qb-channel-range-view.h"
#include "qb-chart.h"
#include "qb-document.h"
#include "qb-histogram-view.h"

G_BEGIN_DECLS

#define QB_TYPE_TENSOR_DETAILS (qb_tensor_details_get_type ())
G_DECLARE_FINAL_TYPE (QbTensorDetails, qb_tensor_details, QB, TENSOR_DETAILS, GtkWidget)

GtkWidget          *qb_tensor_details_new               (void);
void                qb_tensor_details_set_document      (QbTensorDetails *self,
                                                         QbDocument      *document);
void                qb_tensor_details_set_row           (QbTensorDetails *self,
                                                         QbTensorRow     *row);
QbTensorRow        *qb_tensor_details_get_row           (QbTensorDetails *self);
/* "histogram", "error" or "channels". */
void                qb_tensor_details_show_chart        (QbTensorDetails *self,
                                                         const char      *name);
const char         *qb_tensor_details_get_chart_name    (QbTensorDetails *self);
QbChart            *qb_tensor_details_get_visible_chart (QbTensorDetails *self);
QbHistogramView    *qb_tensor_details_get_histogram     (QbTensorDetails *self);
QbHistogramView    *qb_tensor_details_get_error_view    (QbTensorDetails *self);
QbChannelRangeView *qb_tensor_details_get_channel_view  (QbTensorDetails *self);
void                qb_tensor_details_set_log_scale     (QbTensorDetails *self,
                                                         gboolean         log_scale);
void                qb_tensor_details_set_difference (QbTensorDetails *self,
                                                      gboolean         difference);
void                qb_tensor_details_reset_zoom        (QbTensorDetails *self);
/* The value shown for a fact ("sqnr", "format", "kurtosis", ...). */
const char         *qb_tensor_details_get_fact          (QbTensorDetails *self,
                                                         const char      *id);

G_END_DECLS
