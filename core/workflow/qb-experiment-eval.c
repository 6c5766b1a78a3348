/* SPDX-License-Identifier: MIT */
/* qb-experiment-eval.c — evaluating a stored experiment (qb-experiment-eval.h). */
#include "qb-experiment-eval.h"

#include <string.h>

void
qb_experiment_eval_options_init (QbExperimentEvalOptions *o)
{
  memset (o, 0, sizeof *o);
  qb_eval_options_init (&o->eval);
  qb_calibration_options_init (&o->calib);
  o->dequant = QB_DEQUANT_ROWS;
}

void
qb_experiment_eval_report_clear (QbExperimentEvalReport *report)
{
  g_clear_pointer (&report->calibration, qb_calibration_set_free);
  g_clear_pointer (&report->resolution, qb_plan_resolution_free);
}

/* The statistics the plan's methods need: from the experiment's stored
 * set (its texts and chunking, checked against its hash) or the texts the
 * options name; NULL in *stats when there is neither. */
static gboolean
calibrate (QbModel *model, QbPlan *plan, gint64 id, const QbCalibrationSet *set,
           const QbExperimentEvalOptions *o, QbActivationStats **stats,
           GCancellable *cancellable, GError **error)
{
  QbCalibrationOptions calib = o->calib;
  const char * const *sources = o->calib_sources;

  *stats = NULL;
  if (sources == NULL && set == NULL)
    return TRUE;
  if (sources == NULL)
    {
      qb_calibration_options_for_record (&calib, set);
      calib.cache_dir = o->calib.cache_dir;
      calib.no_cache = o->calib.no_cache;
      sources = (const char * const *) set->sources;
    }
  *stats = qb_activation_stats_compute_for_plan (model, plan, sources, &calib, o->n_threads,
                                                 o->stats_progress, o->progress_data,
                                                 cancellable, error);
  if (*stats == NULL && calib.expect_hash != NULL
      && g_error_matches (*error, QB_CALIBRATION_ERROR, QB_CALIBRATION_ERROR_CHANGED))
    g_prefix_error (error, "experiment %" G_GINT64_FORMAT ": its calibration texts changed "
                    "since it ran: ", id);
  return *stats != NULL;
}

QbJob *
qb_quantize_for_eval (QbModel *model, QbLlama *llama, QbPlan *plan, QbActivationStats *stats,
                      gboolean stats_output, QbImatrix *imatrix, guint n_threads,
                      QbJobProgressFunc progress, gpointer progress_data,
                      GCancellable *cancellable, guint *n_quantized, GError **error)
{
  g_autoptr(QbJob) job = qb_job_new (model, plan);
  guint n_taken = 0;

  qb_job_set_keep_data (job, TRUE);
  qb_job_set_threads (job, n_threads);
  if (stats != NULL)
    qb_activation_stats_attach (stats, job, stats_output);
  if (imatrix != NULL)
    qb_job_set_imatrix (job, imatrix);
  if (progress != NULL)
    qb_job_set_progress_func (job, progress, progress_data);
  if (!qb_job_run (job, cancellable, error)
      || !qb_llama_use_job (llama, job, &n_taken, error))
    return NULL;
  if (n_quantized != NULL)
    *n_quantized = n_taken;
  return g_steal_pointer (&job);
}

/* The plan run again, its bytes kept in memory and handed to llama. */
static gboolean
quantize (QbModel *model, QbLlama *llama, QbPlan *plan, QbActivationStats *stats,
          const QbExperimentEvalOptions *o, QbExperimentEvalReport *report,
          GCancellable *cancellable, GError **error)
{
  g_autoptr(QbJob) job = qb_quantize_for_eval (model, llama, plan, stats, o->stats_output,
                                               o->imatrix, o->n_threads, o->job_progress,
                                               o->progress_data, cancellable,
                                               &report->n_quantized, error);
  if (job == NULL)
    return FALSE;
  report->bpw = qb_job_get_resolution (job)->bpw;
  report->quantize_seconds = qb_job_get_seconds (job);
  /* The evaluated weights may not be what the plan asked for (a Q4_K plan
   * on rows of 64 is a Q5_0/F16 mix): the caller reports the fallbacks. */
  report->resolution = qb_plan_resolve (plan, model, NULL);
  return TRUE;
}

static QbEvaluation *
evaluate (QbStore *store, gint64 id, QbModel *model, const QbExperimentEvalOptions *o,
          QbExperimentEvalReport *report, GCancellable *cancellable, GError **error)
{
  g_autoptr(QbExperiment) experiment = qb_store_get_experiment (store, id, error);
  g_autoptr(QbPlan) plan = NULL;
  g_autoptr(QbLlama) llama = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  g_autoptr(QbEvaluation) evaluation = NULL;
  QbActivationStats *stats = NULL;
  gboolean ok;

  if (experiment == NULL)
    return NULL;
  if (experiment->calibration_set_id != 0
      && (report->calibration = qb_store_get_calibration_set (store, experiment->calibration_set_id,
                                                              error)) == NULL)
    return NULL;
  if ((plan = qb_eval_plan_of_experiment (experiment, model, error)) == NULL
      || (llama = qb_llama_new (model, error)) == NULL
      || (tok = qb_tokenizer_new_for_model (model, error)) == NULL)
    return NULL;
  qb_llama_set_threads (llama, o->n_threads);
  qb_llama_set_dequant_mode (llama, o->dequant);

  ok = calibrate (model, plan, id, report->calibration, o, &stats, cancellable, error);
  if (ok && stats != NULL)
    {
      report->calibrated = TRUE;
      report->n_forward = qb_activation_stats_get_n_forward (stats);
    }
  /* The job keeps its own copies of what it uses: the statistics can go after it. */
  ok = ok && quantize (model, llama, plan, stats, o, report, cancellable, error);
  qb_activation_stats_free (stats);
  if (!ok || !qb_eval_run (llama, tok, o->text_path, &o->eval, o->eval_progress, o->progress_data,
                           cancellable, &report->result, error))
    return NULL;
  evaluation = qb_eval_result_to_evaluation (&report->result, o->text_path);
  if (!qb_store_set_evaluation (store, id, evaluation, &evaluation->id, error))
    return NULL;
  return g_steal_pointer (&evaluation);
}

QbEvaluation *
qb_experiment_evaluate (QbStore *store, gint64 id, QbModel *model,
                        const QbExperimentEvalOptions *o, QbExperimentEvalReport *report,
                        GCancellable *cancellable, GError **error)
{
  QbExperimentEvalReport local = { 0 };
  QbEvaluation *evaluation;

  if (report == NULL)
    report = &local;
  memset (report, 0, sizeof *report);
  evaluation = evaluate (store, id, model, o, report, cancellable, error);
  qb_experiment_eval_report_clear (&local);
  return evaluation;
}
