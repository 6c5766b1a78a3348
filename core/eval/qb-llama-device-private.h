/* SPDX-License-Identifier: MIT */
/* qb-llama-device-private.h — the forward pass on the default OpenCL
 * device (qb-llama-device.c), for qb-llama-forward.c. */
#pragma once

#include "qb-llama-private.h"

G_BEGIN_DECLS

typedef enum {
  QB_LLAMA_DEVICE_DECLINED,   /* no device, or it cannot: run on the CPU */
  QB_LLAMA_DEVICE_DONE,
  QB_LLAMA_DEVICE_FAILED,     /* cancelled (error set) */
} QbLlamaDeviceOutcome;

/* One chunk on the default device, as qb_llama_forward; *state holds the
 * uploaded weights between calls (created here, freed with the llama).
 * rope_table: n_tokens × n_rot cos/sin as the CPU pass computed them.  A
 * device that fails prints why and is not tried again for this llama. */
QbLlamaDeviceOutcome qb_llama_device_forward (QbLlama              *llama,
                                              QbLlamaDevice       **state,
                                              const gint32         *tokens,
                                              guint                 n_tokens,
                                              guint                 first_output,
                                              float                *logits,
                                              const float          *rope_table,
                                              QbLlamaProgressFunc   progress,
                                              gpointer              progress_data,
                                              GCancellable         *cancellable,
                                              GError              **error);
void                 qb_llama_device_free    (QbLlamaDevice        *state);
/* "opencl:N (name)" when the last pass of llama ran on a device, else "cpu". */
const char          *qb_llama_device_label   (QbLlama              *llama);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbLlamaDevice, qb_llama_device_free)

/* Forward passes done on any device since the process started: lets tests
 * tell the device path from a silent CPU fallback. */
guint64              qb_llama_device_passes  (void);

G_END_DECLS
