/* SPDX-License-Identifier: MIT */
/* qb-export-private.h — writing a quantized model while a job runs.
 *
 * The exporter declares every tensor up front (name, shape, the type it
 * will be stored as), then takes each tensor's bytes as the job produces
 * them, in any order, from any thread; finish() makes the file appear
 * atomically, abort() leaves nothing behind.
 */
#pragma once

#include "qb-job.h"

G_BEGIN_DECLS

/* How one tensor is written. */
typedef enum {
  QB_EXPORT_COPY,        /* kept: the stored bytes as they are */
  QB_EXPORT_CONVERT_F32, /* kept, but the stored type has no place in the file */
  QB_EXPORT_NATIVE,      /* the format's own bytes (a ggml type, or F32/F16/BF16) */
  QB_EXPORT_FAKE_F16,    /* quantized, dequantized, rounded to F16 */
  QB_EXPORT_FAKE_F32,    /* GGUF 1-D tensors: quantized, dequantized, as F32
                          * (llama.cpp multiplies norms and biases in F32) */
} QbExportTensorKind;

typedef struct _QbExporter QbExporter;

QbExporter         *qb_exporter_begin        (QbExportKind             kind,
                                              const char              *path,
                                              QbModel                 *model,
                                              QbPlan                  *plan,
                                              const QbPlanResolution  *res,
                                              GError                 **error);
QbExportTensorKind  qb_exporter_tensor_kind  (QbExporter              *ex,
                                              guint                    index);
gboolean            qb_exporter_write        (QbExporter              *ex,
                                              guint                    index,
                                              gconstpointer            data,
                                              guint64                  n_bytes,
                                              GError                 **error);
gboolean            qb_exporter_finish       (QbExporter              *ex,
                                              GError                 **error);
void                qb_exporter_abort        (QbExporter              *ex);
/* "GGUF: 40 tensors in native ggml types, ..." (valid while ex lives). */
const char         *qb_exporter_summary      (QbExporter              *ex);
void                qb_exporter_free         (QbExporter              *ex);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbExporter, qb_exporter_free)

G_END_DECLS
