/* SPDX-License-Identifier: MIT */
/* qb-llama-device-private.h — the forward pass on the default OpenCL
 * device (qb-llama-device.c), for qb-llama-forward.c. */
#pragma once

#include "qb-llama-private.h"

G_BEGIN_DECLS

/* One scored position, as the device reduces its logits (qb-eval.c's
 * score_position). */
typedef struct {
  double nll;        /* of the next token */
  double nll_base;   /* of the next token under the base record */
  double kld;        /* KL divergence from the base record */
  gint32 top;        /* the first largest logit */
  gint32 top_base;   /* the base record's */
  gint32 n_bad;      /* logits that are NaN or infinite (then nothing else is set) */
  float  bad;        /* the first of them */
} QbLlamaScore;

/* Asked of a pass by qb-eval.c (QbLlama.scoring): when the pass runs on
 * the device it scores the positions from first_output there and the
 * logits never come back; on the CPU done stays FALSE and the logits are
 * returned as usual. */
struct _QbLlamaScoring {
  guint          n_positions;   /* from first_output */
  const gint32  *targets;       /* n_positions next tokens */
  const guint16 *base;          /* n_positions records to compare with, or NULL */
  guint16       *records;       /* out: these logits' records, or NULL */
  guint          record_len;    /* of a record, in uint16 */
  QbLlamaScore  *scores;        /* out: n_positions */
  gboolean       done;          /* the device scored */
};

typedef enum {
  QB_LLAMA_DEVICE_DECLINED,   /* no device, or it cannot: run on the CPU */
  QB_LLAMA_DEVICE_DONE,
  QB_LLAMA_DEVICE_FAILED,     /* cancelled (error set) */
} QbLlamaDeviceOutcome;

/* One chunk on the default device, as qb_llama_forward (from layer
 * first_layer with hidden_in the stream entering it instead of tokens, and
 * the stream entering each layer, then the last one's output, into
 * hidden_out when given: qb_llama_forward_from and _keep); *state holds the
 * uploaded weights between calls (created here, freed with the llama).
 * rope_table: n_tokens × n_rot cos/sin as the CPU pass computed them.  A
 * device that fails prints why and is not tried again for this llama. */
QbLlamaDeviceOutcome qb_llama_device_forward (QbLlama              *llama,
                                              QbLlamaDevice       **state,
                                              const gint32         *tokens,
                                              guint                 first_layer,
                                              const float          *hidden_in,
                                              float                *hidden_out,
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
/* Positions scored on a device, and rows of logits read back from one,
 * since the process started. */
guint64              qb_llama_device_scored  (void);
guint64              qb_llama_device_logit_rows (void);
/* Layers (and output heads) uploaded into the streaming slot since the
 * process started: the device held too few of the model's layers. */
guint64              qb_llama_device_streamed (void);
/* Weight products whose weight was dequantized on a device (in slabs:
 * once per slab) since the process started. */
guint64              qb_llama_device_dequantized (void);
/* Caps the device memory the forward pass may use at bytes (0: no cap
 * but QB_DEVICE_MEM_LIMIT's); for tests, which cannot set the variable
 * once threads run. */
void                 qb_llama_device_set_mem_limit (guint64 bytes);
/* The device memory a pass of n_tokens with n_out logit rows needs:
 * activations and scratch (fixed), the largest unit (a layer's matrices,
 * or the output head) and all units, as the device holds them. */
void                 qb_llama_device_needs    (QbLlama  *llama,
                                               guint     n_tokens,
                                               guint     n_out,
                                               guint64  *fixed,
                                               guint64  *largest_unit,
                                               guint64  *all_units);

G_END_DECLS
