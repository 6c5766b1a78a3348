/* qb-job.h — running a plan over a model.
 *
 * qb_job_run() blocks: call it from a worker thread (GTask) in the UI.  It
 * goes tensor by tensor, each spread over the worker threads in fixed row
 * chunks, so the bytes and metrics are identical for any thread count.
 * Memory stays bounded by one tensor's output plus a few row chunks.
 * Cancelling stops within one chunk; an output file is then removed and
 * nothing half-written is left.
 */
#pragma once

#include <gio/gio.h>

#include "qb-model.h"
#include "qb-plan.h"
#include "qb-tensor-result.h"

G_BEGIN_DECLS

typedef struct _QbImatrix QbImatrix;   /* qb-imatrix.h */

typedef enum {
  QB_EXPORT_NONE,
  QB_EXPORT_GGUF,          /* native ggml types; other formats fake-quantized to F16 */
  QB_EXPORT_SAFETENSORS,   /* fake-quantized (quantized, then dequantized) F16 */
} QbExportKind;

typedef struct {
  guint        n_tensors;
  guint        tensors_done;
  guint        current;          /* index in the model of the tensor being worked on */
  const char  *current_name;
  double       current_fraction; /* 0..1 within the current tensor */
  guint64      bytes_total;      /* input bytes of the tensors to process */
  guint64      bytes_done;
  double       elapsed;          /* seconds */
} QbJobProgress;

/* Called on a worker thread; forward to the main loop yourself. */
typedef void (*QbJobProgressFunc)   (const QbJobProgress  *progress,
                                     gpointer              user_data);
/* Called on a worker thread when a tensor is done; r is owned by the job. */
typedef void (*QbJobTensorDoneFunc) (guint                 tensor_index,
                                     const QbTensorResult *result,
                                     gpointer              user_data);

typedef struct _QbJob QbJob;

QbJob          *qb_job_new               (QbModel *model, QbPlan *plan);
void            qb_job_free              (QbJob *job);
void            qb_job_set_threads       (QbJob *job, guint n_threads);   /* 0 = cores */
void            qb_job_set_imatrix       (QbJob *job, QbImatrix *imatrix);
void            qb_job_set_export        (QbJob *job, QbExportKind kind, const char *path);
void            qb_job_set_progress_func (QbJob *job, QbJobProgressFunc func, gpointer user_data);
void            qb_job_set_tensor_func   (QbJob *job, QbJobTensorDoneFunc func, gpointer user_data);
/* Only these tensors (model indices); default all. */
void            qb_job_set_tensors       (QbJob *job, const guint *indices, guint n);

gboolean        qb_job_run               (QbJob *job, GCancellable *cancellable, GError **error);

/* After run (also after a cancel: what finished). */
guint           qb_job_get_n_results     (QbJob *job);
const QbTensorResult *qb_job_get_result  (QbJob *job, guint tensor_index);  /* NULL if not done */
double          qb_job_get_seconds       (QbJob *job);
/* Totals over finished tensors. */
guint64         qb_job_get_original_bytes  (QbJob *job);
guint64         qb_job_get_quantized_bytes (QbJob *job);
/* What the export wrote, for the user ("GGUF with native types", ...). */
const char     *qb_job_get_export_summary  (QbJob *job);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbJob, qb_job_free)

G_END_DECLS
