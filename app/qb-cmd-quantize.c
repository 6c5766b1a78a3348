/* SPDX-License-Identifier: MIT */
/* qb-cmd-quantize.c — `quantbench quantize MODEL`: quantize with a plan, measure, export, save. */
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "qb-activation-stats.h"
#include "qb-json.h"
#include "qb-cli.h"
#include "qb-cli-progress.h"
#include "qb-cli-calib.h"
#include "qb-cli-plan.h"
#include "qb-format.h"
#include "qb-imatrix.h"
#include "qb-job.h"
#include "qb-job-recorder.h"
#include "qb-workers.h"

/* ---- quantize ---------------------------------------------------------- */

static void
draw_progress (const QbJobProgress *p, gpointer data)
{
  qb_cli_progress_draw (data, p->bytes_total ? (double) p->bytes_done / p->bytes_total : 1,
                        p->tensors_done == p->n_tensors, "%u/%u  %-40.40s %6.1fs", p->tensors_done,
                        p->n_tensors, p->current_name ? p->current_name : "", p->elapsed);
}

static void
print_table (QbModel *model, QbJob *job)
{
  guint n = qb_model_get_n_tensors (model);

  gboolean out_err = FALSE, diag = FALSE;
  gint64 nonfinite = 0;
  guint nonfinite_tensors = 0;

  for (guint i = 0; i < n; i++)
    {
      const QbTensorResult *r = qb_job_get_result (job, i);
      if (r != NULL && !isnan (r->metrics.out_rel_err))
        {
          out_err = TRUE;
          diag |= r->metrics.out_rel_err_diag;
        }
      if (r != NULL && r->n_nonfinite > 0)
        {
          nonfinite += r->n_nonfinite;
          nonfinite_tensors++;
        }
    }
  printf ("%-34s %-10s %-9s %-6s %7s %10s %8s %9s %9s %9s", "tensor", "format", "fallback",
          "method", "bpw", "size", "SQNR dB", "rel RMSE", "cosine", "max err");
  printf (out_err ? " %10s" : "", "out err");
  printf (nonfinite ? " %10s\n" : "\n", "non-finite");
  for (guint i = 0; i < n; i++)
    {
      const QbTensorResult *r = qb_job_get_result (job, i);
      g_autofree char *size = NULL, *format = NULL;
      g_autofree char *sqnr = NULL, *rmse = NULL, *cosine = NULL, *max_err = NULL, *out = NULL;
      gboolean kept;

      if (r == NULL)
        continue;
      kept = g_strcmp0 (r->method, "keep") == 0;
      size = qb_cli_format_size (r->bytes);
      format = kept ? g_strdup_printf ("keep:%s", r->format) : g_strdup (r->format);
      /* A kept tensor has no error: its metrics read "-". */
      sqnr = qb_cli_number (kept ? NAN : r->metrics.sqnr_db, 2, 'f');
      rmse = qb_cli_number (kept ? NAN : r->metrics.rmse_rel, 5, 'f');
      cosine = qb_cli_number (kept ? NAN : r->metrics.cosine, 6, 'f');
      max_err = qb_cli_number (kept ? NAN : r->metrics.max_abs_err, 3, 'g');
      out = qb_cli_number (kept ? NAN : r->metrics.out_rel_err, 3, 'g');
      printf ("%-34s %-10s %-9s %-6s %7.3f %10s %8s %9s %9s %9s", r->tensor_name, format,
              r->fallback_reason ? r->requested_format : "-", kept ? "-" : r->method, r->bpw, size,
              sqnr, rmse, cosine, max_err);
      if (out_err)
        printf (" %9s%s", out,
                r->metrics.out_rel_err_diag && !kept && !isnan (r->metrics.out_rel_err) ? "~" : " ");
      if (nonfinite)
        printf (" %10" G_GINT64_FORMAT, MAX (r->n_nonfinite, 0));
      printf ("\n");
    }
  if (nonfinite)
    g_printerr ("warning: %u tensor(s) hold NaN or infinite weights (%" G_GINT64_FORMAT
                " values): their error metrics are undefined (-), and so are the totals\n",
                nonfinite_tensors, nonfinite);
  if (out_err)
    printf ("out err: ‖WX − ŴX‖² / ‖WX‖² on the calibration inputs, through XᵀX%s\n",
            diag ? "; ~: estimated from the importance alone (the diagonal of XᵀX)" : "");
}

/* A tensor's metrics, or an expert's. */
static void
add_metrics (JsonBuilder *b, const QbTensorMetrics *m)
{
  qb_json_builder_add_number (b, "mse", m->mse);
  qb_json_builder_add_number (b, "rmse_rel", m->rmse_rel);
  qb_json_builder_add_number (b, "sqnr_db", m->sqnr_db);
  qb_json_builder_add_number (b, "cosine", m->cosine);
  qb_json_builder_add_number (b, "max_abs_err", m->max_abs_err);
  qb_json_builder_add_number (b, "wmse", m->wmse);
  qb_json_builder_add_number (b, "out_rel_err", m->out_rel_err);
  json_builder_set_member_name (b, "out_rel_err_diag");
  json_builder_add_boolean_value (b, m->out_rel_err_diag);
  qb_json_builder_add_number (b, "mean", m->mean);
  qb_json_builder_add_number (b, "std", m->std);
  qb_json_builder_add_number (b, "kurtosis", m->kurtosis);
  qb_json_builder_add_number (b, "outlier_share", m->outlier_share);
}

static void
add_result (JsonBuilder *b, const QbTensorResult *r)
{
  json_builder_begin_object (b);
  qb_json_builder_add_string (b, "name", r->tensor_name);
  qb_json_builder_add_string (b, "format", r->format);
  qb_json_builder_add_string (b, "requested_format", r->requested_format);
  qb_json_builder_add_string (b, "fallback_reason", r->fallback_reason);
  qb_json_builder_add_string (b, "method", r->method);
  json_builder_set_member_name (b, "n_params");
  json_builder_add_int_value (b, r->n_params);
  json_builder_set_member_name (b, "n_nonfinite");
  if (r->n_nonfinite >= 0)
    json_builder_add_int_value (b, r->n_nonfinite);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "bytes");
  json_builder_add_int_value (b, (gint64) r->bytes);
  qb_json_builder_add_number (b, "bpw", r->bpw);
  qb_json_builder_add_number (b, "seconds", r->seconds);
  add_metrics (b, &r->metrics);
  if (r->n_experts > 0)
    {
      /* A 3-D expert tensor: each expert's own figures. */
      json_builder_set_member_name (b, "experts");
      json_builder_begin_array (b);
      for (guint e = 0; e < r->n_experts; e++)
        {
          json_builder_begin_object (b);
          add_metrics (b, &r->expert_metrics[e]);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
    }
  json_builder_end_object (b);
}

/* The plan's fallbacks and the run's own (each result carries both). */
static guint
run_fallbacks (QbJob *job)
{
  const QbPlanResolution *res = qb_job_get_resolution (job);
  guint n = 0;

  for (guint i = 0; i < res->n_tensors; i++)
    n += qb_job_get_result (job, i) != NULL && qb_job_get_result (job, i)->fallback_reason != NULL;
  return n;
}

static void
print_json (QbModel *model, QbPlan *plan, QbJob *job, guint requested)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *plan_json = qb_plan_to_json (plan);
  g_autofree char *text = NULL;
  const QbPlanResolution *res = qb_job_get_resolution (job);
  guint n = qb_model_get_n_tensors (model);

  json_builder_begin_object (b);
  qb_json_builder_add_string (b, "model", qb_model_get_path (model));
  json_builder_set_member_name (b, "plan");
  json_builder_add_value (b, json_from_string (plan_json, NULL));
  /* The threads the run had; the requested count too when the system
   * gave fewer (a process limit). */
  json_builder_set_member_name (b, "threads");
  json_builder_add_int_value (b, qb_job_get_n_threads_run (job));
  if (requested != qb_job_get_n_threads_run (job))
    {
      json_builder_set_member_name (b, "threads_requested");
      json_builder_add_int_value (b, requested);
    }
  qb_json_builder_add_number (b, "seconds", qb_job_get_seconds (job));
  json_builder_set_member_name (b, "tensors");
  json_builder_begin_array (b);
  for (guint i = 0; i < n; i++)
    if (qb_job_get_result (job, i))
      add_result (b, qb_job_get_result (job, i));
  json_builder_end_array (b);
  json_builder_set_member_name (b, "totals");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "original_bytes");
  json_builder_add_int_value (b, (gint64) qb_job_get_original_bytes (job));
  json_builder_set_member_name (b, "quantized_bytes");
  json_builder_add_int_value (b, (gint64) qb_job_get_quantized_bytes (job));
  json_builder_set_member_name (b, "n_params");
  json_builder_add_int_value (b, res->n_params);
  qb_json_builder_add_number (b, "bpw", res->bpw);
  json_builder_set_member_name (b, "n_fallbacks");
  json_builder_add_int_value (b, run_fallbacks (job));
  json_builder_end_object (b);
  qb_json_builder_add_string (b, "export", qb_job_get_export_summary (job));
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  /* qb-json writes every double as valid JSON (json-glib 1.6 may not). */
  text = qb_json_to_string (root);
  printf ("%s\n", text);
}

static gboolean
export_kind_for (const char *path, QbExportKind *kind, GError **error)
{
  if (path == NULL)
    *kind = QB_EXPORT_NONE;
  else if (!qb_export_kind_for_path (path, kind))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--out %s: the name must end in .gguf or .safetensors", path);
      return FALSE;
    }
  return TRUE;
}

/* The job runs on a thread of its own (qb_cli_run_interruptible), so
 * Ctrl-C, SIGTERM or a closed terminal (SIGHUP) cancel it cleanly: no
 * temporary output left behind, the experiment saved as cancelled with
 * the tensors it finished. */
typedef struct {
  QbJob         *job;
  GCancellable **cancellable;   /* the run's, for whoever must stop it */
  GError        *error;
} JobRun;

static int
run_job (gpointer data, GCancellable *cancellable)
{
  JobRun *w = data;

  *w->cancellable = cancellable;
  return qb_job_run (w->job, cancellable, &w->error) ? 0 : 1;
}

static gboolean
run_interruptible (QbJob *job, GCancellable **cancellable, GError **error)
{
  JobRun w = { job, cancellable, NULL };

  if (qb_cli_run_interruptible (run_job, &w) == 0)
    return TRUE;
  if (w.error == NULL)   /* no thread for the run: said already */
    g_set_error (&w.error, G_IO_ERROR, G_IO_ERROR_FAILED, "could not start the run");
  g_propagate_error (error, w.error);
  return FALSE;
}

/* Ends the saved experiment the way the run ended, and says where it is. */
static gboolean
finish_record (QbJobRecorder *rec, QbStore *store, QbJob *job, const GError *job_error,
               gboolean quiet)
{
  g_autoptr(GError) error = NULL;
  const GError *lost = qb_job_recorder_get_error (rec);
  QbExperimentStatus status = job_error == NULL ? QB_EXPERIMENT_DONE
                              : g_error_matches (job_error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                                ? QB_EXPERIMENT_CANCELLED : QB_EXPERIMENT_FAILED;
  g_autofree char *message = lost ? g_strdup_printf ("could not save every tensor result: %s",
                                                     lost->message) : NULL;

  /* A run whose results did not all reach the store (a full disk) is not
   * done: it is stored as failed, and the command fails. */
  if (lost != NULL)
    {
      fprintf (stderr, "quantbench: %s\n", message);
      if (status == QB_EXPERIMENT_DONE)
        status = QB_EXPERIMENT_FAILED;
    }
  if (!qb_job_recorder_finish (rec, job, status,
                               status != QB_EXPERIMENT_FAILED ? NULL
                               : job_error ? job_error->message : message, &error))
    {
      fprintf (stderr, "quantbench: could not save the experiment: %s\n", error->message);
      return FALSE;
    }
  if (!quiet || status != QB_EXPERIMENT_DONE)
    fprintf (status == QB_EXPERIMENT_DONE ? stdout : stderr,
             "saved as experiment %" G_GINT64_FORMAT "%s in %s\n", qb_job_recorder_get_id (rec),
             status == QB_EXPERIMENT_DONE ? "" : status == QB_EXPERIMENT_CANCELLED
                                                ? " (cancelled)" : " (failed)",
             qb_store_get_path (store));
  return lost == NULL;
}

/* The calibration set goes into the store (or is found there by its
 * hash) and the experiment refers to it. */
static gboolean
store_calibration_set (QbStore *store, QbActivationStats *stats, QbExperimentSpec *spec,
                       GError **error)
{
  QbCalibration *calib = qb_activation_stats_get_calibration (stats);
  g_autoptr(QbCalibrationSet) record = qb_calibration_to_record (calib);

  return qb_store_add_calibration_set (store, record, &spec->calibration_set_id, error);
}

static int
print_results (QbModel *model, QbPlan *plan, QbJob *job, guint requested, gboolean json)
{
  const QbPlanResolution *res = qb_job_get_resolution (job);
  double s = qb_job_get_seconds (job);
  guint threads = qb_job_get_n_threads_run (job);

  if (json)
    {
      print_json (model, plan, job, requested);
      return 0;
    }
  print_table (model, job);
  for (guint i = 0; i < res->n_tensors; i++)
    {
      const QbTensorResult *r = qb_job_get_result (job, i);
      if (r != NULL && r->fallback_reason != NULL)
        printf ("  fallback: %s: %s\n", r->tensor_name, r->fallback_reason);
    }
  qb_cli_print_run_totals (res, run_fallbacks (job));
  printf ("time: %.2f s on %u thread%s (%.2f GB/s of input weights)\n", s, threads,
          threads == 1 ? "" : "s", s > 0 ? qb_job_get_original_bytes (job) / s / 1e9 : 0.0);
  if (threads != requested)
    printf ("threads: %u requested; the system gave %u (a process limit)\n", requested, threads);
  if (qb_job_get_export_summary (job))
    printf ("wrote %s\n", qb_job_get_export_summary (job));
  return 0;
}

/* The experiment store is opened, and the experiment begun, on a thread
 * of their own while the first tensor is quantized: opening checks the
 * whole database (PRAGMA quick_check, tens of ms per 100 MB, more as
 * experiments accumulate).  The first finished tensor waits for it; when
 * it failed, the run is cancelled (no output is left) and the store's
 * error is the command's, as when it was opened before the run. */
typedef struct {
  const QbCliQuantizeOptions *o;
  QbModel       *model;
  QbPlan        *plan;        /* the job runs a copy */
  guint          threads;
  GThread       *thread;      /* until joined */
  QbStore       *store;
  QbJobRecorder *rec;
  GError        *error;
  GCancellable  *cancellable; /* the run's, set as it starts */
} Saver;

static gpointer
saver_open (gpointer data)
{
  Saver *s = data;
  QbExperimentSpec spec = { .name = s->o->name };

  s->store = qb_store_open (s->o->db, &s->error);
  if (s->store != NULL
      && (s->o->stats == NULL || store_calibration_set (s->store, s->o->stats, &spec, &s->error)))
    s->rec = qb_job_recorder_begin (s->store, s->model, s->plan, s->threads, &spec, &s->error);
  return NULL;
}

/* TRUE once the store is open and the experiment begun. */
static gboolean
saver_wait (Saver *s)
{
  if (s->thread != NULL)
    g_thread_join (g_steal_pointer (&s->thread));
  return s->rec != NULL;
}

static void
saver_clear (Saver *s)
{
  saver_wait (s);
  g_clear_pointer (&s->rec, qb_job_recorder_free);
  g_clear_pointer (&s->store, qb_store_unref);
  g_clear_error (&s->error);
}

/* The store's error as the command's. */
static int
saver_fail (Saver *s)
{
  int status = qb_cli_fail (s->error);

  saver_clear (s);
  return status;
}

/* On the job's finishing thread, in tensor order. */
static void
saver_tensor_done (guint index, const QbTensorResult *result, gpointer data)
{
  Saver *s = data;

  if (saver_wait (s))
    qb_job_recorder_tensor_done (s->rec, index, result);
  else
    g_cancellable_cancel (s->cancellable);
}

int
qb_cli_quantize_and_print (QbModel *model, QbPlan *plan, const QbCliQuantizeOptions *o)
{
  g_autoptr(QbJob) job = qb_job_new (model, plan);
  g_autoptr(QbImatrix) imatrix = NULL;
  g_autoptr(GError) error = NULL;
  Saver saver = { o, model, plan };
  QbCliProgress bar = { 0 };
  QbExportKind kind;
  guint threads = o->threads > 0 ? (guint) o->threads : qb_cpu_count ();
  gboolean ok;

  if (!export_kind_for (o->out, &kind, &error))
    return qb_cli_fail (error);
  if (o->imatrix != NULL)
    {
      imatrix = qb_imatrix_load (o->imatrix, &error);
      if (imatrix == NULL)
        return qb_cli_fail (error);
    }
  if (o->stats != NULL)
    qb_activation_stats_attach (o->stats, job, o->stats_output);
  /* An importance matrix file takes the place of the calibration's. */
  if (imatrix != NULL)
    qb_job_set_imatrix (job, imatrix);
  qb_job_set_threads (job, threads);
  qb_job_set_export (job, kind, o->out);
  qb_job_set_metrics (job, !o->no_metrics);
  if (!o->json && isatty (fileno (stderr)))
    qb_job_set_progress_func (job, draw_progress, &bar);
  if (o->save)
    {
      saver.threads = threads;
      /* A calibration set is recorded from the statistics the run reads:
       * that store is opened here, as when no thread is to be had. */
      if (o->stats == NULL)
        saver.thread = g_thread_try_new ("qb-store-open", saver_open, &saver, NULL);
      if (saver.thread == NULL)
        saver_open (&saver);
      if (saver.thread == NULL && saver.rec == NULL)
        return saver_fail (&saver);
      qb_job_set_tensor_func (job, saver_tensor_done, &saver);
    }

  ok = run_interruptible (job, &saver.cancellable, &error);
  qb_cli_progress_end (&bar);
  if (o->save && !saver_wait (&saver))
    return saver_fail (&saver);
  if (saver.rec != NULL && !finish_record (saver.rec, saver.store, job, error, o->json))
    {
      saver_clear (&saver);
      return 1;
    }
  saver_clear (&saver);
  if (!ok)
    return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ? 130 : qb_cli_fail (error);
  return print_results (model, plan, job, threads, o->json);
}

int
qb_cmd_quantize (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("MODEL - quantize a model and measure the error");
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbPlan) plan = NULL;
  g_autoptr(GError) error = NULL;
  QbCliPlanOptions po = { 0 };
  QbCliQuantizeOptions qo = { 0 };
  QbCliCalibOptions co = { 0 };
  gboolean no_save = FALSE;
  GOptionEntry entries[] = {
    { "imatrix", 0, 0, G_OPTION_ARG_FILENAME, &qo.imatrix, "Importance matrix (llama.cpp .dat or GGUF)", "FILE" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &qo.threads, "Worker threads (default: all cores)", "N" },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &qo.out, "Write the quantized model (.gguf or .safetensors)", "FILE" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &qo.json, "Print the results as JSON", NULL },
    { "no-metrics", 0, 0, G_OPTION_ARG_NONE, &qo.no_metrics,
      "Only quantize (and export): skip the metrics and histograms", NULL },
    { "no-save", 0, 0, G_OPTION_ARG_NONE, &no_save, "Do not save the run as an experiment", NULL },
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &qo.db,
      "Experiment database (default: $XDG_DATA_HOME/quantbench/experiments.db)", "FILE" },
    { "name", 0, 0, G_OPTION_ARG_STRING, &qo.name, "The experiment's name (default: from the plan)", "NAME" },
    { NULL }
  };
  int status;

  g_option_context_add_main_entries (context, entries, NULL);
  qb_cli_plan_add_entries (context, &po);
  qb_cli_calib_add_entries (context, &co);
  if (!qb_cli_parse (context, &argc, &argv) || !qb_cli_check_threads (qo.threads))
    return 2;
  if (po.list_presets)
    {
      qb_cli_print_presets ();
      return 0;
    }
  if (argc != 2)
    {
      fprintf (stderr, "quantbench quantize: expected one MODEL (see --help)\n");
      return 2;
    }
  {
    const char *inputs[] = { argv[1], qo.imatrix, po.plan_file, qo.db };
    if (!qb_cli_check_output (qo.out, "--out", inputs, G_N_ELEMENTS (inputs), co.calib, &error))
      return qb_cli_fail (error);
  }
  plan = qb_cli_plan_build (&po, &error);
  if (plan == NULL || !qb_cli_calib_apply_options (&co, plan, &error))
    return qb_cli_fail (error);
  po.study_db = qo.db;
  {
    QbExportKind kind = QB_EXPORT_NONE;
    po.ggml_only = qo.out != NULL && qb_export_kind_for_path (qo.out, &kind) && kind == QB_EXPORT_GGUF;
  }
  model = qb_model_open (argv[1], &error);
  if (model == NULL || !qb_cli_plan_apply_target (&po, model, plan, qo.json, &error))
    return qb_cli_fail (error);
  if (co.calib != NULL)
    {
      qo.stats = qb_cli_calib_compute (model, plan, &co, qo.threads, qo.json, NULL, &error);
      if (qo.stats == NULL)
        return qb_cli_fail (error);
      qo.stats_output = co.process_output;
    }
  qo.save = !no_save;
  status = qb_cli_quantize_and_print (model, plan, &qo);
  qb_activation_stats_free (qo.stats);
  qb_cli_calib_options_clear (&co);
  qb_cli_plan_options_clear (&po);
  g_free (qo.imatrix);
  g_free (qo.out);
  g_free (qo.db);
  g_free (qo.name);
  return status;
}
