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

/* An automatic name no other experiment of the model has: "Q4_K", then
 * "Q4_K (2)", "Q4_K (3)"... so that two runs never share a legend entry. */
static char *
unique_name (QbStore    *store,
             QbModel    *model,
             const char *base)
{
  g_autoptr(GHashTable) used = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GPtrArray) list = NULL;
  QbExperimentQuery query;

  qb_experiment_query_init (&query);
  /* A model not stored yet has no experiments: the name is free. */
  query.model_id = qb_store_find_model (store, qb_model_get_fingerprint (model), NULL);
  query.text = base;
  if (query.model_id != 0)
    list = qb_store_list_experiments (store, &query, NULL);
  for (guint i = 0; list != NULL && i < list->len; i++)
    {
      QbExperiment *e = g_ptr_array_index (list, i);
      if (e->name != NULL)
        g_hash_table_add (used, g_strdup (e->name));
    }
  if (!g_hash_table_contains (used, base))
    return g_strdup (base);
  for (guint n = 2;; n++)
    {
      g_autofree char *candidate = g_strdup_printf ("%s (%u)", base, n);
      if (!g_hash_table_contains (used, candidate))
        return g_steal_pointer (&candidate);
    }
}

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
    {
      g_autofree char *base = qb_experiment_name_for_plan (plan);
      spec.name = name = unique_name (store, model, base);
    }
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

/* Appends " + 2 rules (Q6_K, Q8_0)": how many, and the formats they set. */
static void
append_choices (GString    *s,
                guint       n,
                const char *what,
                GPtrArray  *formats)
{
  if (n == 0)
    return;
  g_string_append_printf (s, " + %u %s%s", n, what, n == 1 ? "" : "s");
  for (guint i = 0; i < formats->len; i++)
    g_string_append_printf (s, "%s%s", i == 0 ? " (" : ", ", (char *) formats->pdata[i]);
  if (formats->len > 0)
    g_string_append_c (s, ')');
}

static void
add_format (GPtrArray  *formats,
            const char *format)
{
  for (guint i = 0; i < formats->len; i++)
    if (g_strcmp0 (formats->pdata[i], format) == 0)
      return;
  g_ptr_array_add (formats, (gpointer) format);
}

char *
qb_experiment_name_for_plan (QbPlan *plan)
{
  GString *s = g_string_new (qb_plan_get_preset (plan) ? qb_plan_get_preset (plan)
                                                       : qb_plan_get_default_format (plan));
  guint rules = qb_plan_get_n_rules (plan);
  guint overrides = qb_plan_get_n_overrides (plan);
  g_autoptr(GPtrArray) rule_formats = g_ptr_array_new ();
  g_autoptr(GPtrArray) override_formats = g_ptr_array_new ();

  for (guint i = 0; i < rules; i++)
    add_format (rule_formats, qb_plan_get_rule (plan, i)->format);
  for (guint i = 0; i < overrides; i++)
    {
      const char *format = NULL;
      qb_plan_get_override_at (plan, i, &format, NULL);
      add_format (override_formats, format);
    }
  if (g_strcmp0 (qb_plan_get_default_method (plan), "rtn") != 0)
    g_string_append_printf (s, " %s", qb_plan_get_default_method (plan));
  if (!qb_plan_get_keep_1d (plan))
    g_string_append (s, ", 1-D quantized");
  append_choices (s, rules, "rule", rule_formats);
  append_choices (s, overrides, "override", override_formats);
  return g_string_free (s, FALSE);
}
