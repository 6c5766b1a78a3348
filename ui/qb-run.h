/* SPDX-License-Identifier: MIT */
/* qb-run.h — one quantization run of the document's plan, in the background.
 *
 * When the document has calibration texts, the run first computes their
 * statistics (importance, and XᵀX for the tensors whose method needs it;
 * from the cache when they were computed before), with progress and
 * Cancel, and hands them to the job.
 *
 * A GTask thread calls qb_job_run() on a copy of the plan.  The job's
 * progress and per-tensor results arrive on worker threads; they are queued
 * and handed to the main loop at most once per frame, so a job finishing
 * thousands of small tensors a second cannot flood it.  On the main thread
 * the run fills the document's rows and announces progress; "finished"
 * comes once, after the last result.
 */
#pragma once

#include <gio/gio.h>

#include "qb-document.h"
#include "qb-experiment.h"
#include "qb-job.h"

G_BEGIN_DECLS

typedef enum {
  QB_RUN_READY,
  QB_RUN_RUNNING,
  QB_RUN_DONE,
  QB_RUN_CANCELLED,
  QB_RUN_FAILED,
} QbRunStatus;

/* Saves a run as it goes; called on the run's worker thread. */
typedef struct {
  /* Before the first tensor.  Returns FALSE (and error) to refuse the run. */
  /* calibration: the set the run's statistics came from, or NULL. */
  gboolean (*begin)       (gpointer data, QbModel *model, QbPlan *plan, guint n_threads,
                           const QbCalibrationSet *calibration, GError **error);
  void     (*tensor_done) (gpointer data, guint index, const QbTensorResult *result);
  /* After the job; status is DONE, CANCELLED or FAILED. */
  void     (*finish)      (gpointer data, QbJob *job, QbRunStatus status, const GError *job_error);
} QbRunRecorder;

#define QB_TYPE_RUN (qb_run_get_type ())
G_DECLARE_FINAL_TYPE (QbRun, qb_run, QB, RUN, GObject)

QbRun        *qb_run_new                  (QbDocument          *document,
                                           guint                n_threads);
/* Optional; data is freed with destroy when the run is finalized. */
void          qb_run_set_recorder         (QbRun               *self,
                                           const QbRunRecorder *recorder,
                                           gpointer             data,
                                           GDestroyNotify       destroy);
/* Before start: instead of measuring into the document, quantize (no
 * metrics) and write the model to path with the core's exporter (kind
 * GGUF or safetensors; a temporary name renamed when complete, removed on
 * cancel or failure; refused when path is the model itself).  The
 * document's rows and results are left as they are. */
void          qb_run_set_export           (QbRun               *self,
                                           QbExportKind         kind,
                                           const char          *path);
/* Before start: run this plan and these calibration texts (a saved
 * experiment's) instead of the document's. */
void          qb_run_set_plan             (QbRun               *self,
                                           QbPlan              *plan,
                                           const char * const  *calib_paths,
                                           const QbCalibrationOptions *calib_opts);
/* The export's path (NULL for a measuring run) and, once done, what it
 * wrote ("201 tensors: 150 Q4_K, …"). */
const char   *qb_run_get_export_path      (QbRun               *self);
const char   *qb_run_get_export_summary   (QbRun               *self);
void          qb_run_start                (QbRun               *self);
void          qb_run_cancel               (QbRun               *self);

QbRunStatus   qb_run_get_status           (QbRun               *self);
gboolean      qb_run_is_running           (QbRun               *self);
guint         qb_run_get_n_tensors        (QbRun               *self);
guint         qb_run_get_tensors_done     (QbRun               *self);
/* Overall progress by input bytes, 0..1. */
double        qb_run_get_fraction         (QbRun               *self);
double        qb_run_get_current_fraction (QbRun               *self);
const char   *qb_run_get_current_name     (QbRun               *self);
double        qb_run_get_elapsed          (QbRun               *self);
/* Seconds left, estimated from the bytes done; NAN before any. */
double        qb_run_get_remaining        (QbRun               *self);
const GError *qb_run_get_error            (QbRun               *self);
/* "Calibrating: chunk 3 of 128" while statistics are computed, else NULL. */
const char   *qb_run_get_stage            (QbRun               *self);
/* How many main-loop dispatches carried progress (for tests of coalescing). */
guint         qb_run_get_n_dispatches     (QbRun               *self);

G_END_DECLS
