/* SPDX-License-Identifier: MIT */
/* qb-llama-accum-private.h — activation statistics kept on the device
 * (qb-llama-accum.c), for the device pass (qb-llama-device.c) that feeds
 * them; the API is qb_llama_stats_* in qb-llama.h. */
#pragma once

#include "qb-device-private.h"
#include "qb-llama-private.h"

G_BEGIN_DECLS

/* The statistics' spec (the arrays are copies owned by a). */
const QbLlamaStatsSpec *qb_llama_accum_get_spec (QbLlamaAccum     *a);
/* The device the statistics live on (transfer none). */
QbDevice               *qb_llama_accum_get_device (QbLlamaAccum   *a);
/* A new pass starts: inputs shared by several tensors count once in it. */
void                    qb_llama_accum_new_pass (QbLlamaAccum     *a);
/* x (rows × the tensor's columns, floats on the device) is about to be
 * multiplied by model tensor tensor_index: added to its input's
 * statistics on queue (nothing when the tensor reads no input of the
 * spec, or its input was counted in this pass already). */
gboolean                qb_llama_accum_see      (QbLlamaAccum     *a,
                                                 cl_command_queue  queue,
                                                 guint             tensor_index,
                                                 cl_mem            x,
                                                 guint             rows,
                                                 GError          **error);
void                    qb_llama_accum_free     (QbLlamaAccum     *a);

G_END_DECLS
