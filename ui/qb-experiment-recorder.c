/* qb-experiment-recorder.c — a run written to the store as it proceeds. */
#include "qb-experiment-recorder.h"

struct _QbExperimentRecorder
{
  QbStoreHandle *store;
  char          *name;
  QbModel       *model;    /* for the tensors' original sizes */
  QbStore       *conn;     /* the run's own connection, worker thread only */
  gint64         id;
  GError        *error;    /* the first thing that went wrong saving */
};

static void
recorder_free (gpointer data)
{
  QbExperimentRecorder *self = data;

  g_clear_pointer (&self->conn, qb_store_close);
  g_clear_pointer (&self->store, qb_store_handle_unref);
  g_clear_object (&self->model);
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
                GError   **error)
{
  QbExperimentRecorder *self = data;
  g_autoptr(QbModelRecord) record = NULL;
  g_autofree char *plan_json = qb_plan_to_json (plan);
  g_autofree char *name = self->name ? g_strdup (self->name) : qb_experiment_name_for_plan (plan);
  GError *local = NULL;
  QbExperimentSpec spec = { 0 };

  self->model = g_object_ref (model);
  self->conn = qb_store_open_connection (qb_store_handle_get (self->store), &local);
  if (self->conn == NULL)
    {
      note_error (self, local);
      return TRUE;
    }
  record = qb_model_record_new_from_model (model);
  spec.name = name;
  spec.plan_json = plan_json;
  spec.threads = n_threads;
  spec.n_tensors = qb_model_get_n_tensors (model);
  self->id = qb_store_begin_experiment (self->conn, record, &spec, &local);
  if (self->id == 0)
    note_error (self, local);
  return TRUE;
}

static void
recorder_tensor_done (gpointer              data,
                      guint                 index,
                      const QbTensorResult *result)
{
  QbExperimentRecorder *self = data;
  const QbTensor *t = qb_model_get_tensor (self->model, index);
  GError *local = NULL;

  if (self->id == 0)
    return;
  if (!qb_store_add_tensor_result (self->conn, self->id, index, t ? t->n_bytes : 0, result, &local))
    note_error (self, local);
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
  GError *local = NULL;

  if (self->id != 0
      && !qb_store_finish_experiment (self->conn, self->id, experiment_status (status),
                                      qb_job_get_seconds (job),
                                      status == QB_RUN_FAILED && job_error ? job_error->message : NULL,
                                      &local))
    note_error (self, local);
  /* The connection is not needed any more; the main thread reads the id. */
  g_clear_pointer (&self->conn, qb_store_close);
}

static const QbRunRecorder recorder_vtable = {
  recorder_begin,
  recorder_tensor_done,
  recorder_finish,
};

QbExperimentRecorder *
qb_experiment_recorder_new (QbStoreHandle *store,
                            const char    *name)
{
  QbExperimentRecorder *self = g_new0 (QbExperimentRecorder, 1);

  self->store = qb_store_handle_ref (store);
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

char *
qb_experiment_name_for_plan (QbPlan *plan)
{
  GString *s = g_string_new (qb_plan_get_preset (plan) ? qb_plan_get_preset (plan)
                                                       : qb_plan_get_default_format (plan));
  guint rules = qb_plan_get_n_rules (plan);
  guint overrides = qb_plan_get_n_overrides (plan);

  if (g_strcmp0 (qb_plan_get_default_method (plan), "rtn") != 0)
    g_string_append_printf (s, " %s", qb_plan_get_default_method (plan));
  if (rules)
    g_string_append_printf (s, " + %u rule%s", rules, rules == 1 ? "" : "s");
  if (overrides)
    g_string_append_printf (s, " + %u override%s", overrides, overrides == 1 ? "" : "s");
  return g_string_free (s, FALSE);
}
