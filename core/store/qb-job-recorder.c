/* SPDX-License-Identifier: MIT */
/* qb-job-recorder.c — a run written to the store as it proceeds. */
#include "qb-job-recorder.h"
#include "qb-device.h"

struct _QbJobRecorder
{
  QbStore *store;    /* not owned */
  QbModel *model;    /* for the tensors' original sizes */
  gint64   id;
  GError  *error;    /* the first tensor that could not be saved */
};

QbJobRecorder *
qb_job_recorder_begin (QbStore                *store,
                       QbModel                *model,
                       QbPlan                 *plan,
                       guint                   n_threads,
                       const QbExperimentSpec *given,
                       GError                **error)
{
  g_autoptr(QbModelRecord) record = qb_model_record_new_from_model (model);
  g_autofree char *plan_json = qb_plan_to_json (plan);
  g_autofree char *name = NULL;
  g_autofree char *device = qb_device_dup_default_label ();
  QbExperimentSpec spec = { 0 };
  QbJobRecorder *self;
  gint64 id;

  if (given != NULL)
    spec = *given;
  if (spec.name == NULL)
    spec.name = name = qb_experiment_name_for_plan (plan);
  spec.plan_json = plan_json;
  spec.threads = n_threads;
  /* The device the ported work runs on ("cpu" or "opencl:N (name)"). */
  if (spec.backend == NULL)
    spec.backend = device;
  spec.n_tensors = qb_model_get_n_tensors (model);
  id = qb_store_begin_experiment (store, record, &spec, error);
  if (id == 0)
    return NULL;
  self = g_new0 (QbJobRecorder, 1);
  self->store = store;
  self->model = g_object_ref (model);
  self->id = id;
  return self;
}

static void
on_tensor_done (guint                 index,
                const QbTensorResult *result,
                gpointer              data)
{
  qb_job_recorder_tensor_done (data, index, result);
}

void
qb_job_recorder_attach (QbJobRecorder *self,
                        QbJob         *job)
{
  qb_job_set_tensor_func (job, on_tensor_done, self);
}

void
qb_job_recorder_tensor_done (QbJobRecorder        *self,
                             guint                 index,
                             const QbTensorResult *result)
{
  const QbTensor *t = qb_model_get_tensor (self->model, index);
  GError *local = NULL;

  if (!qb_store_add_tensor_result (self->store, self->id, index, t ? t->n_bytes : 0, result, &local))
    {
      if (self->error == NULL)
        self->error = local;
      else
        g_error_free (local);
    }
}

gboolean
qb_job_recorder_finish (QbJobRecorder      *self,
                        QbJob              *job,
                        QbExperimentStatus  status,
                        const char         *error_message,
                        GError            **error)
{
  return qb_store_finish_experiment (self->store, self->id, status, qb_job_get_seconds (job),
                                     error_message, error);
}

gint64
qb_job_recorder_get_id (QbJobRecorder *self)
{
  return self->id;
}

const GError *
qb_job_recorder_get_error (QbJobRecorder *self)
{
  return self->error;
}

void
qb_job_recorder_free (QbJobRecorder *self)
{
  if (self == NULL)
    return;
  g_clear_object (&self->model);
  g_clear_error (&self->error);
  g_free (self);
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
