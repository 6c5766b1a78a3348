/* SPDX-License-Identifier: MIT */
/* qb-stored-tensor-item.h — one stored tensor result, or one expert of a
 * stored 3-D expert tensor, as a row of the Experiments page's tensor
 * table.  An expert's item shares its tensor's item (and so its result,
 * histograms included once they are loaded). */
#pragma once

#include <gio/gio.h>

#include "qb-experiment.h"

G_BEGIN_DECLS

#define QB_TYPE_STORED_TENSOR_ITEM (qb_stored_tensor_item_get_type ())
G_DECLARE_FINAL_TYPE (QbStoredTensorItem, qb_stored_tensor_item, QB, STORED_TENSOR_ITEM, GObject)

/* Takes ownership of tensor. */
QbStoredTensorItem    *qb_stored_tensor_item_new         (QbStoredTensor     *tensor);
QbStoredTensorItem    *qb_stored_tensor_item_new_expert  (QbStoredTensorItem *parent,
                                                          guint               expert);
/* The tensor's item of an expert's; NULL for a tensor's. */
QbStoredTensorItem    *qb_stored_tensor_item_get_parent  (QbStoredTensorItem *self);
/* -1 for a tensor's item. */
int                    qb_stored_tensor_item_get_expert  (QbStoredTensorItem *self);
/* What the row shows: the tensor's name, or "expert 5". Property "name". */
const char            *qb_stored_tensor_item_get_name    (QbStoredTensorItem *self);
const char            *qb_stored_tensor_item_get_tensor_name (QbStoredTensorItem *self);
const QbStoredTensor  *qb_stored_tensor_item_get_stored  (QbStoredTensorItem *self);
/* The tensor's experts (0 for a dense tensor), also from an expert's item. */
guint                  qb_stored_tensor_item_get_n_experts (QbStoredTensorItem *self);
/* The tensor's metrics, or the expert's own. */
const QbTensorMetrics *qb_stored_tensor_item_get_metrics (QbStoredTensorItem *self);
/* Histogram k (0 original, 1 quantized, 2 error) of the tensor or the
 * expert; NULL until loaded (qb_stored_tensor_item_set_stored). */
const QbHistogram     *qb_stored_tensor_item_get_histogram (QbStoredTensorItem *self,
                                                          guint               k);
/* TRUE once the tensor's histograms were read (a tensor stored without
 * them has none even then). */
gboolean               qb_stored_tensor_item_has_data    (QbStoredTensorItem *self);
/* Replaces the tensor's stored result (taken) with one of the same tensor
 * read with its histograms; on the tensor's item. */
void                   qb_stored_tensor_item_set_stored  (QbStoredTensorItem *self,
                                                          QbStoredTensor     *tensor);
/* A tensor's experts as new items, or NULL for a dense tensor or an
 * expert. (transfer full) */
GListModel            *qb_stored_tensor_item_get_experts (QbStoredTensorItem *self);

G_END_DECLS
