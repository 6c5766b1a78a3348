/* SPDX-License-Identifier: MIT */
/* qb-experiment-recorder.c — a run written to the store as it proceeds. */
#include "qb-experiment-recorder.h"

struct _QbExperimentRecorder
{
  QbStore       *store;
  char          *name;
  QbStore       *conn;     /* the run's own connection, worker thread only */
  QbJobRecorder *job_recorder;
  gint64         id;
  GError        *error;    /* the first thing that went wrong saving */
  gboolean       end_stored;
  QbExperimentStatus end_status;
};

static void
recorder_free (gpointer data)
{
  QbExperimentRecorder *self = data;

  g_clear_pointer (&self->job_recorder, qb_job_recorder_free);
  g_clear_pointer (&self->conn, qb_store_unref);
  g_clear_pointer (&self->store, qb_store_unref);
  g_clear_error (&self->error);
  g_free (self->name);
  g_free (self);
}

/* Saving trouble never stops the run: it is noted and shown afterwards. */
static void
note_error (QbExperimentRecorder *self,
            GError               *error)
{
  if (self->error == NULL)
    self->error = error;
  else
    g_error_free (error);
}

static gboolean
recorder_begin (gpointer   data,
                QbModel   *model,
                QbPlan    *plan,
                guint      n_threads,
                const QbCalibrationSet *calibration,
                GError   **error)
{
  QbExperimentRecorder *self = data;
  QbExperimentSpec spec = { 0 };
  GError *local = NULL;

  self->conn = qb_store_open_connection (self->store, &local);
  if (self->conn == NULL)
    {
      note_error (self, local);
      return TRUE;
    }
  /* The calibration set is stored once (found again by its hash). */
  if (calibration != NULL
      && !qb_store_add_calibration_set (self->conn, calibration, &spec.calibration_set_id, &local))
    note_error (self, local);
  spec.name = self->name;
  self->job_recorder = qb_job_recorder_begin (self->conn, model, plan, n_threads, &spec, &local);
  if (self->job_recorder == NULL)
    note_error (self, local);
  else
    self->id = qb_job_recorder_get_id (self->job_recorder);
  return TRUE;
}

static void
recorder_tensor_done (gpointer              data,
                      guint                 index,
                      const QbTensorResult *result)
{
  QbExperimentRecorder *self = data;

  if (self->job_recorder != NULL)
    qb_job_recorder_tensor_done (self->job_recorder, index, result);
}

static QbExperimentStatus
experiment_status (QbRunStatus status)
{
  switch (status)
    {
    case QB_RUN_DONE:
      return QB_EXPERIMENT_DONE;
    case QB_RUN_CANCELLED:
      return QB_EXPERIMENT_CANCELLED;
    case QB_RUN_FAILED:
    case QB_RUN_READY:
    case QB_RUN_RUNNING:
    default:
      return QB_EXPERIMENT_FAILED;
    }
}

static void
recorder_finish (gpointer      data,
                 QbJob        *job,
                 QbRunStatus   status,
                 const GError *job_error)
{
  QbExperimentRecorder *self = data;
  const GError *lost;
  QbExperimentStatus stored;
  const char *message;
  GError *local = NULL;

  if (self->job_recorder == NULL)
    return;
  lost = qb_job_recorder_get_error (self->job_recorder);
  stored = experiment_status (status);
  message = status == QB_RUN_FAILED && job_error ? job_error->message : NULL;
  if (lost != NULL)
    {
      note_error (self, g_error_copy (lost));
      /* Not every result reached the store (a full disk): not done. */
      if (stored == QB_EXPERIMENT_DONE)
        {
          stored = QB_EXPERIMENT_FAILED;
          message = lost->message;
        }
    }
  if (qb_job_recorder_finish (self->job_recorder, job, stored, message, &local))
    {
      self->end_stored = TRUE;
      self->end_status = stored;
    }
  else
    note_error (self, local);
  /* The connection is not needed any more; the main thread reads the id. */
  g_clear_pointer (&self->job_recorder, qb_job_recorder_free);
  g_clear_pointer (&self->conn, qb_store_unref);
}

static const QbRunRecorder recorder_vtable = {
  recorder_begin,
  recorder_tensor_done,
  recorder_finish,
};

QbExperimentRecorder *
qb_experiment_recorder_new (QbStore       *store,
                            const char    *name)
{
  QbExperimentRecorder *self = g_new0 (QbExperimentRecorder, 1);

  self->store = qb_store_ref (store);
  self->name = g_strdup (name);
  return self;
}

void
qb_experiment_recorder_attach (QbExperimentRecorder *self,
                               QbRun                *run)
{
  qb_run_set_recorder (run, &recorder_vtable, self, recorder_free);
}

gint64
qb_experiment_recorder_get_id (QbExperimentRecorder *self)
{
  return self->id;
}

const GError *
qb_experiment_recorder_get_error (QbExperimentRecorder *self)
{
  return self->error;
}

gboolean
qb_experiment_recorder_get_end (QbExperimentRecorder *self,
                                QbExperimentStatus   *status)
{
  *status = self->end_status;
  return self->end_stored;
}
