/* SPDX-License-Identifier: MIT */
/* qb-run.c — a quantization job on a worker thread, reported to the main loop. */
#include "qb-run.h"

#include <math.h>

#include "qb-activation-stats.h"
#include "qb-relay.h"
#include "qb-ui.h"

/* Results and progress reach the main loop at most this often. */
#define DISPATCH_INTERVAL_MS 100

typedef struct {
  guint           index;
  QbTensorResult *result;
} Finished;

struct _QbRun
{
  GObject           parent_instance;

  QbDocument       *document;
  QbModel          *model;
  QbPlan           *plan;           /* a copy: edits during the run do not reach it */
  guint             n_threads;
  GCancellable     *cancellable;
  QbRunStatus       status;
  GError           *error;
  GTimer           *timer;
  guint             n_dispatches;

  const QbRunRecorder *recorder;
  gpointer          recorder_data;
  GDestroyNotify    recorder_destroy;

  /* Written by the worker, read by the main loop, under lock. */
  GMutex            lock;
  QbJobProgress     progress;       /* current_name points into current_name */
  char             *current_name;
  GArray           *finished;       /* Finished */
  QbRelay          *dispatch;       /* the worker's news to the main loop */
  char             *stage;          /* "Calibrating: …", or NULL once the job runs */

  /* Calibration (copied from the document when the run is made). */
  char            **calib_paths;
  QbCalibrationOptions calib_opts;

  /* An export (qb_run_set_export): the document's rows are left alone. */
  QbExportKind      export_kind;
  char             *export_path;
  char             *export_summary;

  /* Main-thread view of the progress. */
  QbJobProgress     shown;
  char             *shown_name;
  char             *shown_stage;
  int               running_row;    /* index of the row marked running, or -1 */
};

G_DEFINE_FINAL_TYPE (QbRun, qb_run, G_TYPE_OBJECT)

enum {
  PROGRESS,
  FINISHED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
clear_finished (Finished *f)
{
  qb_tensor_result_free (f->result);
}

static void
qb_run_dispose (GObject *object)
{
  QbRun *self = QB_RUN (object);

  if (self->cancellable)
    g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->document);
  G_OBJECT_CLASS (qb_run_parent_class)->dispose (object);
}

static void
qb_run_finalize (GObject *object)
{
  QbRun *self = QB_RUN (object);

  if (self->recorder_destroy)
    self->recorder_destroy (self->recorder_data);
  g_clear_object (&self->model);
  g_clear_object (&self->plan);
  g_clear_object (&self->cancellable);
  g_clear_error (&self->error);
  g_clear_pointer (&self->timer, g_timer_destroy);
  g_clear_pointer (&self->finished, g_array_unref);
  g_free (self->current_name);
  g_free (self->shown_name);
  g_free (self->stage);
  g_free (self->shown_stage);
  g_strfreev (self->calib_paths);
  g_free (self->export_path);
  g_free (self->export_summary);
  qb_relay_free (self->dispatch);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (qb_run_parent_class)->finalize (object);
}

static void
qb_run_class_init (QbRunClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = qb_run_dispose;
  object_class->finalize = qb_run_finalize;

  /* New progress and/or results reached the rows. */
  signals[PROGRESS] = g_signal_new ("progress", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                    0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  /* The run ended (done, cancelled or failed); every result is in. */
  signals[FINISHED] = g_signal_new ("finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                    0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static gboolean dispatch (gpointer data);

static void
qb_run_init (QbRun *self)
{
  g_mutex_init (&self->lock);
  self->dispatch = qb_relay_new (NULL, DISPATCH_INTERVAL_MS, "[quantbench] run progress", dispatch,
                                 self, g_object_ref, g_object_unref);
  self->finished = g_array_new (FALSE, FALSE, sizeof (Finished));
  g_array_set_clear_func (self->finished, (GDestroyNotify) clear_finished);
  self->running_row = -1;
}

QbRun *
qb_run_new (QbDocument *document,
            guint       n_threads)
{
  QbRun *self = g_object_new (QB_TYPE_RUN, NULL);

  self->document = g_object_ref (document);
  self->model = g_object_ref (qb_document_get_model (document));
  self->plan = qb_plan_copy (qb_document_get_plan (document));
  self->n_threads = n_threads;
  self->cancellable = g_cancellable_new ();
  self->calib_paths = g_strdupv ((char **) qb_document_get_calibration (document, &self->calib_opts));
  return self;
}

void
qb_run_set_recorder (QbRun               *self,
                     const QbRunRecorder *recorder,
                     gpointer             data,
                     GDestroyNotify       destroy)
{
  g_return_if_fail (QB_IS_RUN (self));
  g_return_if_fail (self->status == QB_RUN_READY);

  self->recorder = recorder;
  self->recorder_data = data;
  self->recorder_destroy = destroy;
}

/* -- main thread ---------------------------------------------------------- */

static void
mark_running (QbRun *self,
              int    index,
              double fraction)
{
  QbTensorRow *row;

  if (self->running_row != index && self->running_row >= 0)
    {
      row = qb_document_get_row (self->document, self->running_row);
      if (row && qb_tensor_row_get_state (row) == QB_TENSOR_ROW_RUNNING)
        qb_tensor_row_set_state (row, QB_TENSOR_ROW_QUEUED);
    }
  self->running_row = index;
  row = index >= 0 ? qb_document_get_row (self->document, index) : NULL;
  if (row && qb_tensor_row_get_state (row) != QB_TENSOR_ROW_DONE)
    {
      qb_tensor_row_set_state (row, QB_TENSOR_ROW_RUNNING);
      qb_tensor_row_set_progress (row, fraction);
    }
}

/* Moves what the worker queued onto the rows. */
static void
drain (QbRun *self)
{
  g_autoptr(GArray) finished = NULL;

  g_mutex_lock (&self->lock);
  finished = self->finished;
  self->finished = g_array_new (FALSE, FALSE, sizeof (Finished));
  g_array_set_clear_func (self->finished, (GDestroyNotify) clear_finished);
  self->shown = self->progress;
  if (self->current_name)
    {
      g_free (self->shown_name);
      self->shown_name = g_steal_pointer (&self->current_name);
    }
  self->shown.current_name = self->shown_name;
  g_free (self->shown_stage);
  self->shown_stage = g_strdup (self->stage);
  g_mutex_unlock (&self->lock);

  for (guint i = 0; i < finished->len && self->export_kind == QB_EXPORT_NONE; i++)
    {
      Finished *f = &g_array_index (finished, Finished, i);
      qb_document_set_result (self->document, f->index, g_steal_pointer (&f->result));
    }
  if (self->status == QB_RUN_RUNNING && self->shown.n_tensors > 0 && self->export_kind == QB_EXPORT_NONE)
    mark_running (self, self->shown.current, self->shown.current_fraction);
}

static gboolean
dispatch (gpointer data)
{
  QbRun *self = data;

  self->n_dispatches++;
  drain (self);
  g_signal_emit (self, signals[PROGRESS], 0);
  return G_SOURCE_REMOVE;
}

/* -- worker thread -------------------------------------------------------- */

/* Called with the lock held. */
static void
schedule_dispatch_locked (QbRun *self)
{
  qb_relay_schedule (self->dispatch);
}

static void
on_job_progress (const QbJobProgress *progress,
                 gpointer             user_data)
{
  QbRun *self = user_data;

  g_mutex_lock (&self->lock);
  self->progress = *progress;
  self->progress.current_name = NULL;
  /* Copy the name only when it changes: progress comes many times per tensor. */
  if (progress->current_name
      && g_strcmp0 (self->current_name ? self->current_name : self->shown_name,
                    progress->current_name) != 0)
    {
      g_free (self->current_name);
      self->current_name = g_strdup (progress->current_name);
    }
  schedule_dispatch_locked (self);
  g_mutex_unlock (&self->lock);
}

static void
on_job_tensor_done (guint                 index,
                    const QbTensorResult *result,
                    gpointer              user_data)
{
  QbRun *self = user_data;
  Finished f = { index, qb_tensor_result_copy (result) };

  if (self->recorder && self->recorder->tensor_done)
    self->recorder->tensor_done (self->recorder_data, index, result);

  g_mutex_lock (&self->lock);
  g_array_append_val (self->finished, f);
  schedule_dispatch_locked (self);
  g_mutex_unlock (&self->lock);
}

/* The job runs at a lower CPU priority than the UI (qb-ui.h). */
typedef struct {
  QbJob        *job;
  GCancellable *cancellable;
  GError       *error;
  gboolean      ok;
} JobCall;

static gpointer
job_call (gpointer data)
{
  JobCall *call = data;

  call->ok = qb_job_run (call->job, call->cancellable, &call->error);
  return NULL;
}

static QbRunStatus
run_job (QbJob         *job,
         GCancellable  *cancellable,
         GError       **error)
{
  JobCall call = { job, cancellable, NULL, FALSE };

  qb_ui_call_at_low_priority (job_call, &call);
  if (call.ok)
    return QB_RUN_DONE;
  g_propagate_error (error, call.error);
  return g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ? QB_RUN_CANCELLED : QB_RUN_FAILED;
}

/* -- calibration statistics, before the job ---------------------------------- */

static void
on_stats_progress (const QbStatsProgress *p,
                   gpointer               user_data)
{
  QbRun *self = user_data;

  g_mutex_lock (&self->lock);
  g_free (self->stage);
  if (p->n_passes > 1)
    self->stage = g_strdup_printf ("Calibrating: pass %u of %u, chunk %u of %u", p->pass + 1,
                                   p->n_passes, MIN (p->chunk + 1, p->n_chunks), p->n_chunks);
  else
    self->stage = g_strdup_printf ("Calibrating: chunk %u of %u", MIN (p->chunk + 1, p->n_chunks),
                                   p->n_chunks);
  schedule_dispatch_locked (self);
  g_mutex_unlock (&self->lock);
}

typedef struct {
  QbRun              *run;
  GCancellable       *cancellable;
  QbActivationStats  *stats;
  GError             *error;
} StatsCall;

static gpointer
stats_call (gpointer data)
{
  StatsCall *call = data;
  QbRun *self = call->run;

  call->stats = qb_activation_stats_compute_for_plan (self->model, self->plan,
                                                      (const char * const *) self->calib_paths,
                                                      &self->calib_opts, self->n_threads,
                                                      on_stats_progress, self, call->cancellable,
                                                      &call->error);
  return NULL;
}

/* The statistics of the document's calibration texts, or NULL (and
 * error) when they could not be computed or the run was cancelled. */
static QbActivationStats *
compute_stats (QbRun         *self,
               GCancellable  *cancellable,
               GError       **error)
{
  StatsCall call = { self, cancellable, NULL, NULL };

  qb_ui_call_at_low_priority (stats_call, &call);
  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->stage, g_free);
  g_mutex_unlock (&self->lock);
  if (call.stats == NULL)
    g_propagate_error (error, call.error);
  return call.stats;
}

static void
run_thread (GTask        *task,
            gpointer      source_object,
            gpointer      task_data,
            GCancellable *cancellable)
{
  QbRun *self = source_object;
  g_autoptr(QbJob) job = qb_job_new (self->model, self->plan);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbCalibrationSet) calib_record = NULL;
  QbActivationStats *stats = NULL;
  QbRunStatus status;

  qb_job_set_threads (job, self->n_threads);
  qb_job_set_progress_func (job, on_job_progress, self);
  if (self->export_kind == QB_EXPORT_NONE)
    qb_job_set_tensor_func (job, on_job_tensor_done, self);
  else
    {
      /* As `quantbench quantize --no-metrics --out`: the core's exporter. */
      qb_job_set_export (job, self->export_kind, self->export_path);
      qb_job_set_metrics (job, FALSE);
    }

  if (self->calib_paths != NULL)
    {
      stats = compute_stats (self, cancellable, &error);
      if (stats == NULL)
        {
          g_task_return_error (task, g_steal_pointer (&error));
          return;
        }
      qb_activation_stats_attach (stats, job, FALSE);
      calib_record = qb_calibration_to_record (qb_activation_stats_get_calibration (stats));
    }

  if (self->recorder && self->recorder->begin
      && !self->recorder->begin (self->recorder_data, self->model, self->plan, self->n_threads,
                                 calib_record, &error))
    {
      qb_activation_stats_free (stats);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  status = run_job (job, cancellable, &error);
  if (status == QB_RUN_DONE && qb_job_get_export_summary (job) != NULL)
    self->export_summary = g_strdup (qb_job_get_export_summary (job));   /* read after run_done */

  if (self->recorder && self->recorder->finish)
    self->recorder->finish (self->recorder_data, job, status, error);
  /* The job used the statistics; the results it keeps are copies. */
  g_clear_pointer (&job, qb_job_free);
  qb_activation_stats_free (stats);

  if (status == QB_RUN_DONE)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, g_steal_pointer (&error));
}

static void
run_done (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  QbRun *self = QB_RUN (object);
  g_autoptr(GError) error = NULL;
  guint n_rows;

  g_timer_stop (self->timer);
  if (g_task_propagate_boolean (G_TASK (result), &error))
    self->status = QB_RUN_DONE;
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    self->status = QB_RUN_CANCELLED;
  else
    self->status = QB_RUN_FAILED;
  self->error = g_steal_pointer (&error);

  /* Results still queued belong to this run. */
  qb_relay_cancel (self->dispatch);
  drain (self);

  n_rows = self->export_kind == QB_EXPORT_NONE ? g_list_model_get_n_items (qb_document_get_rows (self->document)) : 0;
  for (guint i = 0; i < n_rows; i++)
    {
      QbTensorRow *row = qb_document_get_row (self->document, i);
      if (qb_tensor_row_get_state (row) != QB_TENSOR_ROW_DONE)
        qb_tensor_row_set_state (row, QB_TENSOR_ROW_IDLE);
      qb_tensor_row_set_progress (row, 0);
    }
  self->running_row = -1;
  g_signal_emit (self, signals[PROGRESS], 0);
  g_signal_emit (self, signals[FINISHED], 0);
}

void
qb_run_set_export (QbRun        *self,
                   QbExportKind  kind,
                   const char   *path)
{
  g_return_if_fail (QB_IS_RUN (self));
  g_return_if_fail (self->status == QB_RUN_READY);

  self->export_kind = kind;
  g_free (self->export_path);
  self->export_path = g_strdup (path);
}

void
qb_run_set_plan (QbRun                      *self,
                 QbPlan                     *plan,
                 const char * const         *calib_paths,
                 const QbCalibrationOptions *calib_opts)
{
  g_return_if_fail (QB_IS_RUN (self));
  g_return_if_fail (self->status == QB_RUN_READY);

  g_clear_object (&self->plan);
  self->plan = qb_plan_copy (plan);
  g_strfreev (self->calib_paths);
  self->calib_paths = calib_paths && calib_paths[0] ? g_strdupv ((char **) calib_paths) : NULL;
  if (calib_opts != NULL)
    self->calib_opts = *calib_opts;
}

const char *
qb_run_get_export_path (QbRun *self)
{
  g_return_val_if_fail (QB_IS_RUN (self), NULL);
  return self->export_kind == QB_EXPORT_NONE ? NULL : self->export_path;
}

const char *
qb_run_get_export_summary (QbRun *self)
{
  g_return_val_if_fail (QB_IS_RUN (self), NULL);
  return self->status == QB_RUN_DONE ? self->export_summary : NULL;
}

void
qb_run_start (QbRun *self)
{
  g_autoptr(GTask) task = NULL;
  guint n_rows;

  g_return_if_fail (QB_IS_RUN (self));
  g_return_if_fail (self->status == QB_RUN_READY);

  self->status = QB_RUN_RUNNING;
  self->timer = g_timer_new ();
  n_rows = 0;
  if (self->export_kind == QB_EXPORT_NONE)
    {
      qb_document_clear_results (self->document);
      n_rows = g_list_model_get_n_items (qb_document_get_rows (self->document));
    }
  for (guint i = 0; i < n_rows; i++)
    qb_tensor_row_set_state (qb_document_get_row (self->document, i), QB_TENSOR_ROW_QUEUED);

  task = g_task_new (self, self->cancellable, run_done, NULL);
  g_task_set_source_tag (task, qb_run_start);
  g_task_run_in_thread (task, run_thread);
}

void
qb_run_cancel (QbRun *self)
{
  g_return_if_fail (QB_IS_RUN (self));
  g_cancellable_cancel (self->cancellable);
}

QbRunStatus
qb_run_get_status (QbRun *self)
{
  g_return_val_if_fail (QB_IS_RUN (self), QB_RUN_FAILED);
  return self->status;
}

gboolean
qb_run_is_running (QbRun *self)
{
  g_return_val_if_fail (QB_IS_RUN (self), FALSE);
  return self->status == QB_RUN_RUNNING;
}

guint
qb_run_get_n_tensors (QbRun *self)
{
  return self->shown.n_tensors;
}

guint
qb_run_get_tensors_done (QbRun *self)
{
  return self->shown.tensors_done;
}

double
qb_run_get_fraction (QbRun *self)
{
  if (self->status == QB_RUN_DONE)
    return 1.0;
  if (self->shown.bytes_total == 0)
    return 0.0;
  return CLAMP ((double) self->shown.bytes_done / self->shown.bytes_total, 0, 1);
}

double
qb_run_get_current_fraction (QbRun *self)
{
  return self->shown.current_fraction;
}

const char *
qb_run_get_stage (QbRun *self)
{
  return self->shown_stage;
}

const char *
qb_run_get_current_name (QbRun *self)
{
  return self->shown_name;
}

double
qb_run_get_elapsed (QbRun *self)
{
  return self->timer ? g_timer_elapsed (self->timer, NULL) : 0.0;
}

double
qb_run_get_remaining (QbRun *self)
{
  double fraction = qb_run_get_fraction (self);

  if (self->status != QB_RUN_RUNNING)
    return 0.0;
  if (fraction <= 0.0)
    return NAN;
  return qb_run_get_elapsed (self) * (1.0 - fraction) / fraction;
}

const GError *
qb_run_get_error (QbRun *self)
{
  return self->error;
}

guint
qb_run_get_n_dispatches (QbRun *self)
{
  return self->n_dispatches;
}
