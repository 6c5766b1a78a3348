/* SPDX-License-Identifier: MIT */
/* qb-job.h — running a plan over a model.
 *
 * qb_job_run() blocks: call it from a worker thread (GTask) in the UI.  It
 * goes tensor by tensor, each spread over the worker threads in fixed row
 * chunks, so the bytes and metrics are identical for any thread count.
 * Memory stays bounded by one tensor's output plus a few row chunks.
 * Cancelling stops within one chunk; an output file is then removed and
 * nothing half-written is left.
 *
 * Progress and tensor-done callbacks come one at a time, from the thread
 * that called qb_job_run or from a worker thread.
 */
#pragma once

#include <gio/gio.h>

#include "qb-model.h"
#include "qb-plan.h"
#include "qb-tensor-result.h"

G_BEGIN_DECLS

/* A job's own failures; a cancelled job fails with G_IO_ERROR_CANCELLED,
 * and the model reader, exporter and methods with their own domains. */
#define QB_JOB_ERROR (qb_job_error_quark ())
GQuark qb_job_error_quark (void);

typedef enum {
  QB_JOB_ERROR_IMATRIX,     /* an importance matrix entry that does not fit its tensor */
  QB_JOB_ERROR_NO_MEMORY,   /* a tensor's buffers could not be allocated */
} QbJobError;

typedef struct _QbImatrix QbImatrix;   /* qb-imatrix.h */

typedef enum {
  QB_EXPORT_NONE,
  QB_EXPORT_GGUF,          /* native ggml types; other formats fake-quantized to F16 */
  QB_EXPORT_SAFETENSORS,   /* fake-quantized (quantized, then dequantized) F16 */
} QbExportKind;

/* The export a file name asks for: ".gguf" or ".safetensors" (any case);
 * FALSE for any other name. */
gboolean qb_export_kind_for_path (const char *path, QbExportKind *kind);

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

/* Calibration statistics: returns the n_cols x n_cols XᵀX of the tensor's
 * input (row-major, both triangles, valid until the tensor is done) and the
 * number of activation rows in *n_samples, or NULL when there are none.
 * Asked for every quantized tensor: methods that need it (GPTQ) get it (and
 * fail with a clear error without it), and each tensor's output error
 * (QbTensorMetrics.out_rel_err) is measured through it when it is there,
 * else estimated from the importance.  A 3-D expert tensor is asked for
 * each expert's (expert 0..n-1: over the tokens routed to it, valid
 * together until the tensor is done); a dense one for expert 0.  An expert
 * tensor whose method needs XᵀX and has none is rounded (rtn), its result
 * a fallback that says why. */
typedef const double *(*QbJobGramFunc) (const char *tensor_name,
                                        gint64      n_cols,
                                        guint       expert,
                                        guint64    *n_samples,
                                        gpointer    user_data);

typedef struct _QbJob QbJob;

/* Takes a copy of the plan: later edits do not affect the job. (transfer full) */
QbJob          *qb_job_new               (QbModel *model, QbPlan *plan);
void            qb_job_free              (QbJob *job);
void            qb_job_set_threads       (QbJob *job, guint n_threads);   /* 0 = cores */
/* Importance by tensor name (for Hugging Face names, also by the GGUF name
 * of the tensor's layer and role, as llama.cpp's imatrix names them); a
 * tensor whose entry has another length than its rows is an error (except
 * token embeddings, quantized without). */
void            qb_job_set_imatrix       (QbJob *job, QbImatrix *imatrix);
void            qb_job_set_gram_func     (QbJob *job, QbJobGramFunc func, gpointer user_data);
void            qb_job_set_export        (QbJob *job, QbExportKind kind, const char *path);
void            qb_job_set_progress_func (QbJob *job, QbJobProgressFunc func, gpointer user_data);
void            qb_job_set_tensor_func   (QbJob *job, QbJobTensorDoneFunc func, gpointer user_data);
/* Keep every tensor's bytes after the run (memory: the whole quantized
 * model), for qb_job_get_tensor_data. */
void            qb_job_set_keep_data     (QbJob *job, gboolean keep);
/* FALSE: produce the quantized tensors (to keep or export) without
 * measuring them: no metrics (NAN), no histograms.  TRUE by default. */
void            qb_job_set_metrics       (QbJob *job, gboolean metrics);

gboolean        qb_job_run               (QbJob *job, GCancellable *cancellable, GError **error);

/* After run (also after a cancel: what finished).  Results are indexed by
 * model tensor; n_results counts the finished ones. */
guint           qb_job_get_n_results     (QbJob *job);
const QbTensorResult *qb_job_get_result  (QbJob *job, guint tensor_index);  /* NULL if not done */
/* The plan as resolved for this run (NULL before a run or when it failed
 * to resolve): requested formats, fallbacks and where each choice came from. */
const QbPlanResolution *qb_job_get_resolution (QbJob *job);
/* With keep_data: the tensor's bytes in *format (the plan's format; for a
 * kept tensor its stored type's format, NULL when the registry has none),
 * exactly what a GGUF export writes for native types.  Formats with no
 * ggml type are exported as these values dequantized and rounded to F16.
 * NULL when not kept or not done.  Free with g_bytes_unref. (transfer full) */
GBytes         *qb_job_get_tensor_data   (QbJob *job, guint tensor_index,
                                          const QbFormat **format);
/* What the format's dequantize_row needs for that data: the format and,
 * for per-tensor formats, the tensor absmax the run used.  FALSE when the
 * tensor's data is not kept or has no format. */
gboolean        qb_job_get_dequant_params (QbJob *job, guint tensor_index,
                                           QbQuantParams *params);
double          qb_job_get_seconds       (QbJob *job);
/* The worker threads the last run had: fewer than set under a process
 * limit (qb_workers_new); 0 before a run. */
guint           qb_job_get_n_threads_run (QbJob *job);
/* Totals over finished tensors. */
guint64         qb_job_get_original_bytes  (QbJob *job);
guint64         qb_job_get_quantized_bytes (QbJob *job);
/* What the export wrote, for the user: how many tensors went out in their
 * own type, kept, or fake-quantized to F16, and which (NULL without a
 * successful export). */
const char     *qb_job_get_export_summary  (QbJob *job);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbJob, qb_job_free)

G_END_DECLS
