/* SPDX-License-Identifier: MIT */
/* qb-job.c — a plan run over a model, tensor by tensor. */
#include "qb-job.h"
#include "qb-export-private.h"
#include "qb-imatrix.h"
#include "qb-tensor-quantizer.h"
#include "qb-workers.h"

#include <math.h>
#include <string.h>

G_DEFINE_QUARK (qb-job-error-quark, qb_job_error)

struct _QbJob {
  QbModel            *model;
  QbPlan             *plan;          /* a private copy, so edits during a run cannot race */
  guint               n_threads;
  guint               n_threads_run;   /* what the last run got */
  QbImatrix          *imatrix;
  QbExportKind        export_kind;
  char               *export_path;
  QbJobProgressFunc   progress;
  gpointer            progress_data;
  QbJobTensorDoneFunc tensor_done;
  gpointer            tensor_done_data;
  QbJobGramFunc       gram;
  gpointer            gram_data;
  gboolean            keep_data;
  gboolean            no_metrics;

  /* Results, indexed by model tensor. */
  guint               n_tensors;
  QbTensorResult    **results;
  GBytes            **data;
  const QbFormat    **data_format;
  QbPlanResolution   *resolution;
  guint               n_done;
  double              seconds;
  guint64             original_bytes;
  guint64             quantized_bytes;
  char               *export_summary;

  /* During a run. */
  QbJobProgress       state;
  gint64              start_time;
  guint64             current_bytes;
};

QbJob *
qb_job_new (QbModel *model, QbPlan *plan)
{
  QbJob *job;

  g_return_val_if_fail (QB_IS_MODEL (model), NULL);
  g_return_val_if_fail (QB_IS_PLAN (plan), NULL);
  job = g_new0 (QbJob, 1);
  job->model = g_object_ref (model);
  job->plan = qb_plan_copy (plan);
  job->n_tensors = qb_model_get_n_tensors (model);
  job->results = g_new0 (QbTensorResult *, MAX (job->n_tensors, 1));
  job->data = g_new0 (GBytes *, MAX (job->n_tensors, 1));
  job->data_format = g_new0 (const QbFormat *, MAX (job->n_tensors, 1));
  return job;
}

static void
clear_results (QbJob *job)
{
  for (guint i = 0; i < job->n_tensors; i++)
    {
      g_clear_pointer (&job->results[i], qb_tensor_result_free);
      g_clear_pointer (&job->data[i], g_bytes_unref);
      job->data_format[i] = NULL;
    }
  g_clear_pointer (&job->resolution, qb_plan_resolution_free);
  g_clear_pointer (&job->export_summary, g_free);
  job->n_done = 0;
  job->original_bytes = 0;
  job->quantized_bytes = 0;
  job->seconds = 0;
}

void
qb_job_free (QbJob *job)
{
  if (job == NULL)
    return;
  clear_results (job);
  g_free (job->results);
  g_free (job->data);
  g_free (job->data_format);
  g_object_unref (job->model);
  g_object_unref (job->plan);
  g_clear_pointer (&job->imatrix, qb_imatrix_unref);
  g_free (job->export_path);
  g_free (job);
}

void
qb_job_set_threads (QbJob *job, guint n_threads)
{
  job->n_threads = n_threads;
}

void
qb_job_set_imatrix (QbJob *job, QbImatrix *imatrix)
{
  g_clear_pointer (&job->imatrix, qb_imatrix_unref);
  job->imatrix = imatrix ? qb_imatrix_ref (imatrix) : NULL;
}

void
qb_job_set_export (QbJob *job, QbExportKind kind, const char *path)
{
  job->export_kind = path != NULL ? kind : QB_EXPORT_NONE;
  g_free (job->export_path);
  job->export_path = g_strdup (path);
}

void
qb_job_set_progress_func (QbJob *job, QbJobProgressFunc func, gpointer user_data)
{
  job->progress = func;
  job->progress_data = user_data;
}

void
qb_job_set_tensor_func (QbJob *job, QbJobTensorDoneFunc func, gpointer user_data)
{
  job->tensor_done = func;
  job->tensor_done_data = user_data;
}

void
qb_job_set_gram_func (QbJob *job, QbJobGramFunc func, gpointer user_data)
{
  job->gram = func;
  job->gram_data = user_data;
}

void
qb_job_set_keep_data (QbJob *job, gboolean keep)
{
  job->keep_data = keep;
}

void
qb_job_set_metrics (QbJob *job, gboolean metrics)
{
  job->no_metrics = !metrics;
}

/* ---- progress ----------------------------------------------------------- */

static void
report (QbJob *job)
{
  if (job->progress == NULL)
    return;
  job->state.elapsed = (g_get_monotonic_time () - job->start_time) / 1e6;
  job->progress (&job->state, job->progress_data);
}

/* Called by the tensor quantizer, one call at a time. */
static void
tensor_progress (double fraction, gpointer user_data)
{
  QbJob *job = user_data;
  guint64 base = job->state.bytes_done;

  job->state.current_fraction = fraction;
  job->state.bytes_done = base + (guint64) (fraction * job->current_bytes);
  report (job);
  job->state.bytes_done = base;
}

/* ---- the finisher ---------------------------------------------------------
 *
 * A tensor's bytes are written and its result handed on (tensor_done: the
 * store, the window) on a thread of its own, in tensor order, while the
 * workers quantize the next tensor: the writing and the saving then no
 * longer leave the workers idle between tensors.  At most FINISH_QUEUED
 * tensors wait, so memory stays at a few tensors' output. */

#define FINISH_QUEUED 2

typedef struct {
  guint   index;
  GBytes *bytes;       /* what the exporter writes, or NULL */
} Finished;

typedef struct {
  QbJob      *job;
  QbExporter *ex;
  GThread    *thread;
  GMutex      lock;
  GCond       cond;
  GQueue      queue;   /* of Finished */
  guint       queued;  /* pushed, not yet done */
  gboolean    closed;
  GError     *error;   /* the first write that failed */
} Finisher;

static void
finished_free (Finished *f)
{
  g_clear_pointer (&f->bytes, g_bytes_unref);
  g_free (f);
}

static gboolean
export_bytes (QbExporter *ex, guint index, GBytes *bytes, GError **error)
{
  gsize n;
  gconstpointer p = g_bytes_get_data (bytes, &n);

  return qb_exporter_write (ex, index, p, n, error);
}

/* After a failed write nothing more is written or handed on, as when the
 * run stopped there. */
static void
finish_one (Finisher *fin, Finished *f)
{
  QbJob *job = fin->job;
  GError *local = NULL;
  gboolean failed;

  g_mutex_lock (&fin->lock);
  failed = fin->error != NULL;
  g_mutex_unlock (&fin->lock);
  if (failed)
    return;
  if (f->bytes != NULL && !export_bytes (fin->ex, f->index, f->bytes, &local))
    {
      g_mutex_lock (&fin->lock);
      fin->error = local;
      g_mutex_unlock (&fin->lock);
      return;
    }
  if (job->tensor_done)
    job->tensor_done (f->index, job->results[f->index], job->tensor_done_data);
}

static gpointer
finisher_thread (gpointer data)
{
  Finisher *fin = data;

  for (;;)
    {
      Finished *f;

      g_mutex_lock (&fin->lock);
      while (g_queue_is_empty (&fin->queue) && !fin->closed)
        g_cond_wait (&fin->cond, &fin->lock);
      f = g_queue_pop_head (&fin->queue);
      g_mutex_unlock (&fin->lock);
      if (f == NULL)
        return NULL;
      finish_one (fin, f);
      finished_free (f);
      g_mutex_lock (&fin->lock);
      fin->queued--;
      g_cond_broadcast (&fin->cond);
      g_mutex_unlock (&fin->lock);
    }
}

static void
finisher_start (Finisher *fin, QbJob *job, QbExporter *ex)
{
  memset (fin, 0, sizeof *fin);
  fin->job = job;
  fin->ex = ex;
  g_mutex_init (&fin->lock);
  g_cond_init (&fin->cond);
  g_queue_init (&fin->queue);
  /* Under a process limit there may be no thread for it: the job's own
   * thread then finishes each tensor itself, as it is pushed. */
  fin->thread = g_thread_try_new ("qb-finisher", finisher_thread, fin, NULL);
}

/* Hands tensor index on (bytes: taken), once fewer than FINISH_QUEUED
 * wait.  FALSE, with the write's error, when an earlier write failed. */
static gboolean
finisher_push (Finisher *fin, guint index, GBytes *bytes, GError **error)
{
  Finished *f = g_new0 (Finished, 1);
  gboolean ok;

  f->index = index;
  f->bytes = bytes;
  if (fin->thread == NULL)
    {
      finish_one (fin, f);
      g_clear_pointer (&f, finished_free);
    }
  g_mutex_lock (&fin->lock);
  while (f != NULL && fin->queued >= FINISH_QUEUED && fin->error == NULL)
    g_cond_wait (&fin->cond, &fin->lock);
  ok = fin->error == NULL;
  if (ok && f != NULL)
    {
      g_queue_push_tail (&fin->queue, g_steal_pointer (&f));
      fin->queued++;
      g_cond_broadcast (&fin->cond);
    }
  if (!ok)
    g_set_error_literal (error, fin->error->domain, fin->error->code, fin->error->message);
  g_mutex_unlock (&fin->lock);
  g_clear_pointer (&f, finished_free);
  return ok;
}

/* Waits until every tensor pushed is written and handed on.  FALSE, with
 * the error, when a write failed. */
static gboolean
finisher_stop (Finisher *fin, GError **error)
{
  gboolean ok;

  g_mutex_lock (&fin->lock);
  fin->closed = TRUE;
  g_cond_broadcast (&fin->cond);
  g_mutex_unlock (&fin->lock);
  if (fin->thread != NULL)
    g_thread_join (fin->thread);
  ok = fin->error == NULL;
  if (!ok)
    g_propagate_error (error, fin->error);
  g_mutex_clear (&fin->lock);
  g_cond_clear (&fin->cond);
  return ok;
}

/* ---- one tensor ------------------------------------------------------------ */

/* The importance entry of a tensor: by its own name, else (a Hugging Face
 * model with an imatrix from llama.cpp) by the GGUF name of its role. */
static const float *
lookup_importance (QbImatrix *im, const QbTensor *t, guint *n)
{
  const float *imp = qb_imatrix_get (im, t->name, n);
  g_autofree char *gguf_name = NULL;

  if (imp != NULL || t->role == QB_ROLE_OTHER || t->is_bias)
    return imp;
  if (t->layer >= 0)
    gguf_name = g_strdup_printf ("blk.%d.%s.weight", t->layer, qb_tensor_role_name (t->role));
  else
    gguf_name = g_strdup_printf ("%s.weight", qb_tensor_role_name (t->role));
  return qb_imatrix_get (im, gguf_name, n);
}

/* A 3-D expert tensor takes one set of ne[0] values per expert, as
 * llama-imatrix writes them (and llama-quantize reads them). */
static gboolean
find_importance (QbJob *job, const QbTensor *t, const float **importance, guint *sets,
                 GError **error)
{
  const float *imp;
  guint n = 0;
  gint64 experts = qb_tensor_n_experts (t);

  *importance = NULL;
  *sets = 0;
  if (job->imatrix == NULL)
    return TRUE;
  imp = lookup_importance (job->imatrix, t, &n);
  if (imp == NULL)
    return TRUE;
  if ((gint64) n == t->ne[0] || (experts > 1 && (gint64) n == t->ne[0] * experts))
    {
      *importance = imp;
      *sets = (gint64) n == t->ne[0] ? 1 : (guint) experts;
      return TRUE;
    }
  /* As llama-quantize: a mismatch is an error, but embeddings (looked up,
   * not multiplied) are quantized without. */
  if (t->role == QB_ROLE_TOKEN_EMBD)
    return TRUE;
  g_set_error (error, QB_JOB_ERROR, QB_JOB_ERROR_IMATRIX,
               "%s: the importance matrix has %u values for this tensor, which has rows of %"
               G_GINT64_FORMAT "%s", t->name, n, t->ne[0],
               experts > 1 ? " (one set per expert expected)" : "");
  return FALSE;
}

/* The bytes a kept tensor goes out with: stored as is, or as F32. */
static GBytes *
kept_bytes (QbJob *job, guint index, gboolean as_f32, GError **error)
{
  const QbTensor *t = qb_model_get_tensor (job->model, index);
  float *f32;

  if (!as_f32)
    return g_bytes_new_with_free_func (t->data, t->n_bytes, g_object_unref,
                                       g_object_ref (job->model));
  f32 = g_try_new (float, MAX (t->n_params, 1));
  if (f32 == NULL)
    {
      g_set_error (error, QB_JOB_ERROR, QB_JOB_ERROR_NO_MEMORY, "%s: out of memory", t->name);
      return NULL;
    }
  if (!qb_model_read_rows (job->model, index, 0, qb_tensor_n_rows (t), f32, error))
    {
      g_free (f32);
      return NULL;
    }
  return g_bytes_new_take (f32, sizeof (float) * t->n_params);
}

/* A kept tensor: measured, then handed on as stored (or as F32 when the
 * file cannot hold its type); *out: what the exporter writes. */
static gboolean
finish_kept (QbJob *job, QbExporter *ex, guint index, GBytes **out, GError **error)
{
  const QbTensor *t = qb_model_get_tensor (job->model, index);

  if (ex != NULL)
    {
      gboolean as_f32 = qb_exporter_tensor_kind (ex, index) == QB_EXPORT_CONVERT_F32;
      *out = kept_bytes (job, index, as_f32, error);
      if (*out == NULL)
        return FALSE;
    }
  if (job->keep_data)
    {
      job->data[index] = kept_bytes (job, index, FALSE, NULL);
      job->data_format[index] = qb_format_for_dtype (t->dtype);
    }
  return TRUE;
}

/* Each expert's XᵀX of a 3-D expert tensor: the number of experts, or 0
 * when any is missing. */
static guint
job_expert_grams (QbJob *job, const QbTensor *t, gint64 n_experts, const double ***grams,
                  guint64 **samples)
{
  *grams = g_new0 (const double *, n_experts);
  *samples = g_new0 (guint64, n_experts);
  for (gint64 e = 0; e < n_experts; e++)
    if (((*grams)[e] = job->gram (t->name, t->ne[0], (guint) e, &(*samples)[e], job->gram_data)) == NULL)
      return 0;
  return (guint) n_experts;
}

/* Quantizes and measures tensor index; *out: the bytes the exporter is to
 * write for it (NULL without an export). */
static gboolean
run_tensor (QbJob *job, QbWorkers *workers, QbExporter *ex, guint index, GBytes **out,
            GCancellable *cancellable, GError **error)
{
  const QbTensor *t = qb_model_get_tensor (job->model, index);
  const QbTensorChoice *c = &job->resolution->choices[index];
  QbExportTensorKind kind = ex ? qb_exporter_tensor_kind (ex, index) : QB_EXPORT_COPY;
  g_autofree guint8 *data = NULL;
  g_autofree guint16 *f16 = NULL;
  g_autofree float *f32 = NULL;
  g_autoptr(GBytes) bytes = NULL;
  QbQuantizeSpec spec = { 0 };
  QbQuantizeOutput output = { 0 };
  QbTensorResult *r;
  gint64 n_experts = qb_tensor_n_experts (t);
  g_autofree const double **expert_grams = NULL;
  g_autofree guint64 *expert_samples = NULL;
  g_autofree char *no_grams = NULL;

  spec.format = c->format;
  spec.method = c->method;
  spec.options = qb_plan_get_options (job->plan);
  spec.no_metrics = job->no_metrics;
  if (c->format != NULL)
    {
      if (!find_importance (job, t, &spec.importance, &spec.importance_sets, error))
        return FALSE;
      /* Every quantized tensor: methods that need XᵀX get it, and the
       * output error is measured through it wherever it is at hand. */
      if (job->gram != NULL && n_experts > 1)
        spec.n_expert_grams = job_expert_grams (job, t, n_experts, &expert_grams, &expert_samples);
      else if (job->gram != NULL)
        spec.gram = job->gram (t->name, t->ne[0], 0, &spec.gram_samples, job->gram_data);
      spec.expert_grams = (const double * const *) expert_grams;
      spec.expert_gram_samples = expert_samples;
      /* Embeddings are looked up, not multiplied: no input, nothing for a
       * calibration method to work with, so they are rounded (as
       * llama-quantize leaves them without importance). */
      if (c->method->needs_gram && spec.gram == NULL && t->role == QB_ROLE_TOKEN_EMBD)
        spec.method = qb_method_find ("rtn");
      /* An expert tensor without an XᵀX per expert (calibration did not
       * collect them: it said why) is rounded, and says so. */
      if (c->method->needs_gram && n_experts > 1 && spec.n_expert_grams == 0)
        {
          spec.method = qb_method_find ("rtn");
          no_grams = g_strdup_printf ("%s needs one XᵀX per expert, which calibration did not "
                                      "collect: rounded (rtn)", c->method->name);
        }
      /* Output buffers only when someone needs the bytes: memory stays at
       * one tensor's output. */
      if ((job->keep_data || kind == QB_EXPORT_NATIVE)
          && (data = g_try_malloc (MAX (c->bytes, 1))) == NULL)
        goto oom;
      if (kind == QB_EXPORT_FAKE_F16 && (f16 = g_try_new (guint16, MAX (t->n_params, 1))) == NULL)
        goto oom;
      if (kind == QB_EXPORT_FAKE_F32 && (f32 = g_try_new (float, MAX (t->n_params, 1))) == NULL)
        goto oom;
      output.data = data;
      output.f16 = f16;
      output.f32 = f32;
    }

  r = qb_tensor_quantize (job->model, index, &spec, workers, &output,
                          tensor_progress, job, cancellable, error);
  if (r == NULL)
    return FALSE;
  job->results[index] = r;
  if (c->requested != NULL)
    {
      g_free (r->requested_format);
      r->requested_format = g_strdup (c->requested->name);
    }
  /* The plan's fallback, then what the run itself fell back on (an
   * expert tensor without XᵀX per expert, experts rounded). */
  {
    g_autofree char *run = r->fallback_reason;
    const char *parts[] = { c->fallback_reason, no_grams, run };
    g_autoptr(GString) why = NULL;

    for (gsize k = 0; k < G_N_ELEMENTS (parts); k++)
      if (parts[k] != NULL)
        {
          why = why ? g_string_append (why, "; ") : g_string_new (NULL);
          g_string_append (why, parts[k]);
        }
    r->fallback_reason = why ? g_string_free (g_steal_pointer (&why), FALSE) : NULL;
  }

  if (c->format == NULL)
    return finish_kept (job, ex, index, out, error);

  if (data != NULL)
    bytes = g_bytes_new_take (g_steal_pointer (&data), c->bytes);
  if (kind == QB_EXPORT_FAKE_F16)
    *out = g_bytes_new_take (g_steal_pointer (&f16), sizeof (guint16) * t->n_params);
  if (kind == QB_EXPORT_FAKE_F32)
    *out = g_bytes_new_take (g_steal_pointer (&f32), sizeof (float) * t->n_params);
  if (kind == QB_EXPORT_NATIVE)
    *out = g_bytes_ref (bytes);
  if (job->keep_data)
    {
      job->data[index] = g_steal_pointer (&bytes);
      job->data_format[index] = c->format;
    }
  return TRUE;

oom:
  g_set_error (error, QB_JOB_ERROR, QB_JOB_ERROR_NO_MEMORY,
               "%s: out of memory for the quantized tensor", t->name);
  return FALSE;
}

/* ---- the run -------------------------------------------------------------- */

gboolean
qb_job_run (QbJob *job, GCancellable *cancellable, GError **error)
{
  g_autoptr(QbWorkers) workers = NULL;
  g_autoptr(QbExporter) ex = NULL;
  guint n = job->n_tensors;
  gboolean ok = TRUE;
  Finisher fin;

  g_return_val_if_fail (job != NULL, FALSE);
  clear_results (job);
  job->start_time = g_get_monotonic_time ();
  job->resolution = qb_plan_resolve (job->plan, job->model, error);
  if (job->resolution == NULL)
    return FALSE;

  memset (&job->state, 0, sizeof job->state);
  job->state.n_tensors = n;
  for (guint k = 0; k < n; k++)
    job->state.bytes_total += qb_model_get_tensor (job->model, k)->n_bytes;

  if (job->export_kind != QB_EXPORT_NONE)
    {
      ex = qb_exporter_begin (job->export_kind, job->export_path, job->model, job->plan,
                              job->resolution, error);
      if (ex == NULL)
        return FALSE;
      job->export_summary = g_strdup (qb_exporter_summary (ex));
    }

  workers = qb_workers_new (job->n_threads);
  job->n_threads_run = qb_workers_get_n_threads (workers);
  finisher_start (&fin, job, ex);
  for (guint k = 0; k < n && ok; k++)
    {
      guint index = k;
      const QbTensor *t = qb_model_get_tensor (job->model, index);
      GBytes *bytes = NULL;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        {
          ok = FALSE;
          break;
        }
      job->state.current = index;
      job->state.current_name = t->name;
      job->state.current_fraction = 0;
      job->current_bytes = t->n_bytes;
      report (job);

      ok = run_tensor (job, workers, ex, index, &bytes, cancellable, error);
      if (!ok)
        {
          g_clear_pointer (&bytes, g_bytes_unref);
          break;
        }
      job->n_done++;
      job->original_bytes += t->n_bytes;
      job->quantized_bytes += job->results[index]->bytes;
      job->state.tensors_done++;
      job->state.bytes_done += t->n_bytes;
      job->state.current_fraction = 1;
      report (job);
      ok = finisher_push (&fin, index, bytes, error);
    }
  /* The run's own error first; a failed write otherwise. */
  if (!finisher_stop (&fin, ok ? error : NULL))
    ok = FALSE;
  /* Cancelled from a finished tensor's callback after the last tensor
   * was handed over (the command line's store failing to open): no
   * output then either. */
  if (ok && g_cancellable_set_error_if_cancelled (cancellable, error))
    ok = FALSE;

  if (ok && ex != NULL)
    ok = qb_exporter_finish (ex, error);
  else if (ex != NULL)
    qb_exporter_abort (ex);
  job->seconds = (g_get_monotonic_time () - job->start_time) / 1e6;
  if (!ok)
    g_clear_pointer (&job->export_summary, g_free);
  return ok;
}

/* ---- results ---------------------------------------------------------------- */

guint
qb_job_get_n_threads_run (QbJob *job)
{
  return job->n_threads_run;
}

guint
qb_job_get_n_results (QbJob *job)
{
  return job->n_done;
}

const QbTensorResult *
qb_job_get_result (QbJob *job, guint tensor_index)
{
  g_return_val_if_fail (tensor_index < job->n_tensors, NULL);
  return job->results[tensor_index];
}

const QbPlanResolution *
qb_job_get_resolution (QbJob *job)
{
  return job->resolution;
}

double
qb_job_get_seconds (QbJob *job)
{
  return job->seconds;
}

guint64
qb_job_get_original_bytes (QbJob *job)
{
  return job->original_bytes;
}

guint64
qb_job_get_quantized_bytes (QbJob *job)
{
  return job->quantized_bytes;
}

const char *
qb_job_get_export_summary (QbJob *job)
{
  return job->export_summary;
}

GBytes *
qb_job_get_tensor_data (QbJob *job, guint tensor_index, const QbFormat **format)
{
  g_return_val_if_fail (tensor_index < job->n_tensors, NULL);
  if (format)
    *format = job->data_format[tensor_index];
  return job->data[tensor_index] ? g_bytes_ref (job->data[tensor_index]) : NULL;
}

gboolean
qb_job_get_dequant_params (QbJob *job, guint tensor_index, QbQuantParams *params)
{
  const QbTensorResult *r;

  g_return_val_if_fail (tensor_index < job->n_tensors, FALSE);
  memset (params, 0, sizeof *params);
  r = job->results[tensor_index];
  if (job->data[tensor_index] == NULL || job->data_format[tensor_index] == NULL || r == NULL)
    return FALSE;
  params->format = job->data_format[tensor_index];
  /* The run quantized against the absmax of the stored values, which the
   * result keeps as min and max. */
  params->tensor_absmax = (float) MAX (fabs (r->metrics.min), fabs (r->metrics.max));
  return TRUE;
}

gboolean
qb_export_kind_for_path (const char *path, QbExportKind *kind)
{
  g_autofree char *lower = g_ascii_strdown (path, -1);

  if (g_str_has_suffix (lower, ".gguf"))
    *kind = QB_EXPORT_GGUF;
  else if (g_str_has_suffix (lower, ".safetensors"))
    *kind = QB_EXPORT_SAFETENSORS;
  else
    return FALSE;
  return TRUE;
}
