/* SPDX-License-Identifier: MIT */
/* qb-cmd-eval.c — `quantbench eval MODEL [plan options | --experiment ID]
 * --text FILE`: perplexity and KL divergence with llama.cpp's protocol.
 * With plan options, or a stored experiment's plan, the model is quantized
 * first (in memory) and the quantized model is evaluated; --kld then
 * compares it with the float model.  With --experiment the result is also
 * stored with that experiment. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "qb-activation-stats.h"
#include "qb-blas.h"
#include "qb-cli.h"
#include "qb-cli-progress.h"
#include "qb-cli-calib.h"
#include "qb-cli-plan.h"
#include "qb-eval.h"
#include "qb-imatrix.h"
#include "qb-job.h"
#include "qb-llama.h"
#include "qb-model.h"
#include "qb-store.h"
#include "qb-tokenizer.h"

typedef struct {
  char     *text;
  int       ctx;
  int       chunks;
  gboolean  kld;
  char     *kld_base;
  int       threads;
  gboolean  json;
  gboolean  no_cache;
  char     *cache_dir;
  char     *dequant;
  char     *imatrix;
  gint64    experiment;
  char     *db;
  QbCliCalibOptions calib;   /* --calib: statistics for the plan's methods */
} EvalOptions;

static void
draw_progress (const QbEvalProgress *p, gpointer data)
{
  if (p->ppl > 0)
    qb_cli_progress_draw (data, p->fraction, p->fraction >= 1, "chunk %u/%u  PPL %.4f  %.0f tokens/s   ",
                          p->chunk, p->n_chunks, p->ppl, p->tokens_per_second);
  else
    qb_cli_progress_draw (data, p->fraction, p->fraction >= 1, "%s   ", p->stage);
}

static void
print_result (QbModel *model, const QbEvalResult *r, const char *text)
{
  const QbArchInfo *a = qb_model_get_arch (model);

  printf ("model:  %s (%s, %u layers)\n", qb_model_get_path (model), a->family, a->n_layer);
  if (text != NULL)
    printf ("text:   %s\n", text);
  printf ("chunks: %u of %u tokens, %" G_GUINT64_FORMAT " scored\n", r->n_chunks, r->n_ctx, r->n_scored);
  printf ("PPL = %.4f +/- %.5f\n", r->ppl, r->ppl_err);
  printf ("speed:  %.0f tokens/s (%.2f s, OpenBLAS %s kernels)\n", r->tokens_per_second, r->seconds,
          qb_blas_get_core_name ());
  if (!r->has_kld)
    return;
  printf ("\nagainst the %s:\n", r->base_from_cache ? "float model (cached)" : "base");
  printf ("  PPL(base)            %10.4f +/- %.5f\n", r->base_ppl, r->base_ppl_err);
  printf ("  PPL(Q)/PPL(base)     %10.6f +/- %.6f\n", r->ppl_ratio, r->ppl_ratio_err);
  printf ("  ln(PPL(Q)/PPL(base)) %10.6f +/- %.6f\n", r->ln_ppl_ratio, r->ln_ppl_ratio_err);
  printf ("  mean KLD             %10.6f +/- %.6f\n", r->kld_mean, r->kld_mean_err);
  printf ("  median KLD           %10.6f\n", r->kld_median);
  printf ("  KLD p90 / p95 / p99  %10.6f / %.6f / %.6f\n", r->kld_p90, r->kld_p95, r->kld_p99);
  printf ("  max KLD              %10.6f\n", r->kld_max);
  printf ("  same top token       %9.3f%% +/- %.3f%%\n", 100 * r->same_top, 100 * r->same_top_err);
  printf ("  mean dp              %9.3f%% +/- %.3f%%\n", 100 * r->dp_mean, 100 * r->dp_mean_err);
  printf ("  RMS dp               %9.3f%% +/- %.3f%%\n", 100 * r->dp_rms, 100 * r->dp_rms_err);
}

static void
draw_job_progress (const QbJobProgress *p, gpointer data)
{
  qb_cli_progress_draw (data, p->bytes_total ? (double) p->bytes_done / p->bytes_total : 1,
                        p->tensors_done == p->n_tensors, "quantizing %u/%u  %-40.40s", p->tensors_done,
                        p->n_tensors, p->current_name ? p->current_name : "");
}

/* Any plan option given: quantize with the plan and run its bytes. */
static gboolean
has_plan (const QbCliPlanOptions *po)
{
  return po->plan_file || po->preset || po->default_format || po->method || po->rules
         || po->quantize_1d || qb_cli_plan_has_target (po);
}

static gboolean
quantize (QbModel *model, QbLlama *llama, QbPlan *plan, QbActivationStats *stats, EvalOptions *eo,
          GError **error)
{
  g_autoptr(QbJob) job = NULL;
  g_autoptr(QbImatrix) imatrix = NULL;
  QbCliProgress bar = { 0 };
  guint n_taken = 0;
  gboolean ok;

  job = qb_job_new (model, plan);
  qb_job_set_keep_data (job, TRUE);
  qb_job_set_threads (job, eo->threads > 0 ? (guint) eo->threads : 0);
  if (stats != NULL)
    qb_activation_stats_attach (stats, job, eo->calib.process_output);
  if (eo->imatrix != NULL)
    {
      imatrix = qb_imatrix_load (eo->imatrix, error);
      if (imatrix == NULL)
        return FALSE;
      qb_job_set_imatrix (job, imatrix);
    }
  if (isatty (2))
    qb_job_set_progress_func (job, draw_job_progress, &bar);
  ok = qb_job_run (job, NULL, error);
  qb_cli_progress_end (&bar);
  if (!ok || !qb_llama_use_job (llama, job, &n_taken, error))
    return FALSE;
  if (!eo->json)
    printf ("plan:   %u tensors quantized, %.3f bits per weight, %.2f s\n", n_taken,
            qb_job_get_resolution (job)->bpw, qb_job_get_seconds (job));
  return TRUE;
}

/* The plan to evaluate: the experiment's, the plan options', or none
 * (*plan NULL: the model as it is); *calib_set: the experiment's
 * calibration set, or NULL. */
static gboolean
choose_plan (QbModel *model, QbStore *store, const QbCliPlanOptions *po, const EvalOptions *eo,
             QbPlan **plan, QbCalibrationSet **calib_set, GError **error)
{
  g_autoptr(QbExperiment) experiment = NULL;

  *plan = NULL;
  *calib_set = NULL;
  if (store == NULL)
    {
      *plan = has_plan (po) ? qb_cli_plan_build (po, error) : NULL;
      return (*plan != NULL || !has_plan (po))
             && (*plan == NULL || qb_cli_plan_apply_target (po, model, *plan, eo->json, error))
             && (*plan == NULL || qb_cli_calib_apply_options (&eo->calib, *plan, error));
    }
  experiment = qb_store_get_experiment (store, eo->experiment, error);
  if (experiment == NULL)
    return FALSE;
  if (experiment->calibration_set_id != 0
      && (*calib_set = qb_store_get_calibration_set (store, experiment->calibration_set_id,
                                                      error)) == NULL)
    return FALSE;
  *plan = qb_eval_plan_of_experiment (experiment, model, error);
  return *plan != NULL;
}

/* The statistics the plan's methods need: from --calib, or from the
 * experiment's calibration set (its texts and chunking, checked against
 * its hash); NULL in *stats when there is neither. */
static gboolean
calibrate (QbModel *model, QbPlan *plan, const QbCalibrationSet *set, EvalOptions *eo,
           QbActivationStats **stats, GError **error)
{
  QbCliCalibOptions co = eo->calib;

  *stats = NULL;
  if (plan == NULL || (co.calib == NULL && set == NULL))
    return TRUE;
  if (co.calib == NULL)
    {
      QbCalibrationOptions from;

      qb_calibration_options_for_record (&from, set);
      co.calib = set->sources;
      co.ctx = (int) from.n_ctx;
      co.chunks = (int) from.n_chunks;
      co.skip = (int) from.skip_chunks;
      co.random = from.random;
      co.seed = (gint64) from.seed;
      co.expect_hash = from.expect_hash;
    }
  *stats = qb_cli_calib_compute (model, plan, &co, eo->threads, eo->json, error);
  if (*stats == NULL && co.expect_hash != NULL
      && g_error_matches (*error, QB_CALIBRATION_ERROR, QB_CALIBRATION_ERROR_CHANGED))
    g_prefix_error (error, "experiment %" G_GINT64_FORMAT ": its calibration texts changed since "
                    "it ran: ", eo->experiment);
  return *stats != NULL;
}

/* Attaches the result to the experiment it evaluated. */
static gboolean
store_result (QbStore *store, const EvalOptions *eo, const QbEvalResult *r, GError **error)
{
  g_autoptr(QbEvaluation) evaluation = qb_eval_result_to_evaluation (r, eo->text);

  if (!qb_store_set_evaluation (store, eo->experiment, evaluation, NULL, error))
    return FALSE;
  if (!eo->json)
    printf ("\nstored with experiment %" G_GINT64_FORMAT " in %s\n", eo->experiment,
            qb_store_get_path (store));
  return TRUE;
}

static int
run (const char *model_path, const QbCliPlanOptions *po, EvalOptions *eo)
{
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbPlan) plan = NULL;
  g_autoptr(QbCalibrationSet) calib_set = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbLlama) llama = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  QbEvalOptions o;
  QbEvalResult r;
  QbCliProgress bar = { 0 };
  gboolean ok;

  model = qb_model_open (model_path, &error);
  if (model == NULL)
    return qb_cli_fail (error);
  if (eo->experiment > 0 && (store = qb_store_open (eo->db, &error)) == NULL)
    return qb_cli_fail (error);
  if (!choose_plan (model, store, po, eo, &plan, &calib_set, &error))
    return qb_cli_fail (error);
  llama = qb_llama_new (model, &error);
  if (llama == NULL)
    return qb_cli_fail (error);
  tok = qb_tokenizer_new_for_model (model, &error);
  if (tok == NULL)
    return qb_cli_fail (error);
  qb_llama_set_threads (llama, eo->threads > 0 ? (guint) eo->threads : 0);
  if (g_strcmp0 (eo->dequant, "matrix") == 0)
    qb_llama_set_dequant_mode (llama, QB_DEQUANT_MATRIX);
  if (plan != NULL)
    {
      QbActivationStats *stats = NULL;

      ok = calibrate (model, plan, calib_set, eo, &stats, &error)
           && quantize (model, llama, plan, stats, eo, &error);
      qb_activation_stats_free (stats);
      if (!ok)
        return qb_cli_fail (error);
    }

  qb_eval_options_init (&o);
  o.n_ctx = (guint) MAX (eo->ctx, 0);
  o.n_chunks = (guint) MAX (eo->chunks, 0);
  o.kld = eo->kld;
  o.kld_base = eo->kld_base;
  o.cache_dir = eo->cache_dir;
  o.no_cache = eo->no_cache;
  ok = qb_eval_run (llama, tok, eo->text, &o, isatty (2) ? draw_progress : NULL, &bar, NULL, &r,
                    &error);
  qb_cli_progress_end (&bar);
  if (!ok)
    return qb_cli_fail (error);

  if (eo->json)
    {
      g_autofree char *json = qb_eval_result_to_json (&r);
      printf ("%s\n", json);
    }
  else
    print_result (model, &r, eo->kld_base ? NULL : eo->text);
  if (store != NULL && !store_result (store, eo, &r, &error))
    return qb_cli_fail (error);
  return 0;
}

int
qb_cmd_eval (int argc, char **argv)
{
  EvalOptions eo = { 0 };
  QbCliPlanOptions po = { 0 };
  GOptionEntry entries[] = {
    { "text", 0, 0, G_OPTION_ARG_FILENAME, &eo.text, "Evaluation text (UTF-8)", "FILE" },
    { "ctx", 0, 0, G_OPTION_ARG_INT, &eo.ctx, "Tokens per chunk (default 512, or the model's context if shorter)", "N" },
    { "chunks", 0, 0, G_OPTION_ARG_INT, &eo.chunks, "Chunks to evaluate (default: all)", "N" },
    { "kld", 0, 0, G_OPTION_ARG_NONE, &eo.kld, "KL divergence against the float model (cached)", NULL },
    { "kld-base", 0, 0, G_OPTION_ARG_FILENAME, &eo.kld_base, "KL divergence against a llama.cpp --kl-divergence-base file (its tokens are used)", "FILE" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &eo.threads, "Threads (default: all cores)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &eo.json, "Print the result as JSON", NULL },
    { "no-cache", 0, 0, G_OPTION_ARG_NONE, &eo.no_cache, "Do not read or write the float model's cache", NULL },
    { "cache-dir", 0, 0, G_OPTION_ARG_FILENAME, &eo.cache_dir, "Cache folder (default $XDG_CACHE_HOME/quantbench/logprobs)", "DIR" },
    { "dequant", 0, 0, G_OPTION_ARG_STRING, &eo.dequant, "Dequantize per row block (rows, default) or whole matrix (matrix)", "MODE" },
    { "imatrix", 0, 0, G_OPTION_ARG_FILENAME, &eo.imatrix, "Importance matrix for the plan (llama.cpp .dat or GGUF)", "FILE" },
    { "experiment", 0, 0, G_OPTION_ARG_INT64, &eo.experiment, "Evaluate this stored experiment's plan and store the result with it", "ID" },
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &eo.db, "Experiment database (default: $XDG_DATA_HOME/quantbench/experiments.db)", "FILE" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("MODEL - perplexity and KL divergence");
  int status;

  g_option_context_add_main_entries (context, entries, NULL);
  qb_cli_plan_add_entries (context, &po);
  qb_cli_calib_add_entries (context, &eo.calib);
  g_option_context_set_description (context,
    "Perplexity as llama-perplexity computes it: the text is cut into chunks of --ctx tokens,\n"
    "each evaluated from scratch with BOS first, and the second half of each is scored.\n"
    "--kld adds the KL divergence against the float model, whose log-probabilities are\n"
    "computed once and cached.  Plan options (--plan, --preset, --default, --rule, ...)\n"
    "quantize the model in memory first and evaluate exactly the quantized weights;\n"
    "--experiment ID does the same with a stored experiment's plan and stores the\n"
    "result with the experiment (`quantbench experiments show ID`).  A plan whose methods\n"
    "use calibration (GPTQ, importance) needs --calib; an experiment that was calibrated\n"
    "is calibrated again on its stored set (statistics come from the cache).");
  if (!qb_cli_parse (context, &argc, &argv))
    return 2;
  if (po.list_presets)
    {
      qb_cli_print_presets ();
      return 0;
    }
  if (argc != 2 || (eo.text == NULL && eo.kld_base == NULL)
      || (eo.dequant != NULL && strcmp (eo.dequant, "rows") != 0 && strcmp (eo.dequant, "matrix") != 0)
      || (eo.experiment != 0 && (has_plan (&po) || eo.kld_base != NULL || eo.experiment < 0)))
    {
      g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);
      fprintf (stderr, "%s", help);
      return 2;
    }
  status = run (argv[1], &po, &eo);
  qb_cli_plan_options_clear (&po);
  g_free (eo.imatrix);
  g_free (eo.text);
  g_free (eo.kld_base);
  g_free (eo.cache_dir);
  g_free (eo.dequant);
  g_free (eo.db);
  qb_cli_calib_options_clear (&eo.calib);
  return status;
}
