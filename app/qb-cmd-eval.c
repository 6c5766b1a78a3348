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
#include "qb-experiment-eval.h"
#include "qb-imatrix.h"
#include "qb-job.h"
#include "qb-json.h"
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
  gboolean  ggml_activations;
  char     *imatrix;
  gint64    experiment;
  char     *db;
  QbCliCalibOptions calib;   /* --calib: statistics for the plan's methods */
  JsonNode *fallbacks;       /* the plan's fallbacks (an array), once quantized */
} EvalOptions;

/* Why tensor i fell back: the run's result says it when there is a job
 * (the plan's reason and the run's own, such as expert tensors rounded
 * without XᵀX per expert), else the plan. */
static const char *
fallback_reason (const QbPlanResolution *res, QbJob *job, guint i)
{
  const QbTensorResult *r = job != NULL ? qb_job_get_result (job, i) : NULL;

  return r != NULL ? r->fallback_reason : res->choices[i].fallback_reason;
}

/* What the evaluated weights really are: tensors the plan could not hold
 * in the format it asked for (a Q4_K plan on rows of 64 is a Q5_0/F16 mix),
 * or that the run rounded instead of its method. */
static JsonNode *
fallbacks_json (QbModel *model, const QbPlanResolution *res, QbJob *job)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_array (b);
  for (guint i = 0; i < res->n_tensors; i++)
    {
      const QbTensorChoice *c = &res->choices[i];
      if (fallback_reason (res, job, i) == NULL)
        continue;
      json_builder_begin_object (b);
      qb_json_builder_add_string (b, "tensor", qb_model_get_tensor (model, i)->name);
      qb_json_builder_add_string (b, "requested", c->requested ? c->requested->name : NULL);
      qb_json_builder_add_string (b, "format", c->format ? c->format->name : NULL);
      qb_json_builder_add_string (b, "reason", fallback_reason (res, job, i));
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  return json_builder_get_root (b);
}

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
  if (r->device[0] != '\0' && strcmp (r->device, "cpu") != 0)
    printf ("speed:  %.0f tokens/s (%.2f s on %s)\n", r->tokens_per_second, r->seconds, r->device);
  else
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

/* The result, and what the evaluated weights were (the plan's fallbacks,
 * when a plan was run). */
static void
print_json (const QbEvalResult *r, JsonNode *fallbacks)
{
  g_autofree char *json = qb_eval_result_to_json (r);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *text = NULL;
  JsonObject *o;

  if (fallbacks != NULL && json_parser_load_from_data (parser, json, -1, NULL)
      && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      o = json_node_get_object (json_parser_get_root (parser));
      json_object_set_int_member (o, "n_fallbacks", json_array_get_length (json_node_get_array (fallbacks)));
      json_object_set_member (o, "fallbacks", json_node_copy (fallbacks));
      text = qb_json_to_string (json_parser_get_root (parser));
    }
  printf ("%s\n", text ? text : json);
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
          GCancellable *cancellable, GError **error)
{
  g_autoptr(QbJob) job = NULL;
  g_autoptr(QbImatrix) imatrix = NULL;
  QbCliProgress bar = { 0 };
  guint n_taken = 0;

  if (eo->imatrix != NULL && (imatrix = qb_imatrix_load (eo->imatrix, error)) == NULL)
    return FALSE;
  job = qb_quantize_for_eval (model, llama, plan, stats, eo->calib.process_output, imatrix,
                              eo->threads > 0 ? (guint) eo->threads : 0,
                              isatty (2) ? draw_job_progress : NULL, &bar, cancellable, &n_taken,
                              error);
  qb_cli_progress_end (&bar);
  if (job == NULL)
    return FALSE;
  eo->fallbacks = fallbacks_json (model, qb_job_get_resolution (job), job);
  if (!eo->json)
    {
      const QbPlanResolution *res = qb_job_get_resolution (job);
      guint n = json_array_get_length (json_node_get_array (eo->fallbacks));

      printf ("plan:   %u tensors quantized, %.3f bits per weight, %.2f s, %u fallback%s\n",
              n_taken, res->bpw, qb_job_get_seconds (job), n, n == 1 ? "" : "s");
      for (guint i = 0; i < res->n_tensors; i++)
        if (fallback_reason (res, job, i) != NULL)
          printf ("  fallback: %s: %s\n", qb_model_get_tensor (model, i)->name,
                  fallback_reason (res, job, i));
    }
  return TRUE;
}

/* The plan the options describe, or none (*plan NULL: the model as it is). */
static gboolean
choose_plan (QbModel *model, const QbCliPlanOptions *po, const EvalOptions *eo, QbPlan **plan,
             GError **error)
{
  QbCliPlanOptions target = *po;   /* --study is read from eval's --db */
  target.study_db = eo->db;
  *plan = has_plan (po) ? qb_cli_plan_build (po, error) : NULL;
  return (*plan != NULL || !has_plan (po))
         && (*plan == NULL || qb_cli_plan_apply_target (&target, model, *plan, eo->json, error))
         && (*plan == NULL || qb_cli_calib_apply_options (&eo->calib, *plan, error));
}

/* The statistics the plan's methods need, from --calib; NULL in *stats
 * without it. */
static gboolean
calibrate (QbModel *model, QbPlan *plan, EvalOptions *eo, QbActivationStats **stats,
           GCancellable *cancellable, GError **error)
{
  *stats = NULL;
  if (plan == NULL || eo->calib.calib == NULL)
    return TRUE;
  *stats = qb_cli_calib_compute (model, plan, &eo->calib, eo->threads, eo->json, cancellable,
                                 error);
  return *stats != NULL;
}

/* ---- --experiment: qb_experiment_evaluate, with the command's output -- */

typedef struct {
  QbCliProgress bar;
  int           stage;   /* 0 calibrating, 1 quantizing, 2 evaluating */
} StagedProgress;

/* A new stage starts on a new line. */
static QbCliProgress *
stage_bar (StagedProgress *p, int stage)
{
  if (p->stage != stage)
    qb_cli_progress_end (&p->bar);
  p->stage = stage;
  return &p->bar;
}

static void
draw_experiment_stats (const QbStatsProgress *p, gpointer data)
{
  qb_cli_calib_draw_progress (p, stage_bar (data, 0));
}

static void
draw_experiment_job (const QbJobProgress *p, gpointer data)
{
  draw_job_progress (p, stage_bar (data, 1));
}

static void
draw_experiment_eval (const QbEvalProgress *p, gpointer data)
{
  draw_progress (p, stage_bar (data, 2));
}

static void
print_calibration (const QbExperimentEvalReport *report, const EvalOptions *eo)
{
  const QbCalibrationSet *c = report->calibration;

  if (eo->json || !report->calibrated)
    return;
  if (eo->calib.calib == NULL && c != NULL)
    fprintf (stderr, "calibration: %s, %u chunks of %u tokens (%s), the experiment's set\n",
             c->name, c->n_chunks, c->chunk_len, c->seeded ? "random" : "in order");
  fprintf (stderr, "calibration: %u forward passes%s\n", report->n_forward,
           report->n_forward == 0 ? " (statistics cached)" : "");
}

static int
run_experiment (QbModel *model, EvalOptions *eo, GCancellable *cancellable)
{
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbImatrix) imatrix = NULL;
  g_autoptr(QbEvaluation) evaluation = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) fallbacks = NULL;
  QbExperimentEvalOptions o;
  QbExperimentEvalReport report = { 0 };
  StagedProgress progress = { .stage = -1 };

  if ((store = qb_store_open (eo->db, &error)) == NULL)
    return qb_cli_fail (error);
  if (eo->imatrix != NULL && (imatrix = qb_imatrix_load (eo->imatrix, &error)) == NULL)
    return qb_cli_fail (error);
  qb_experiment_eval_options_init (&o);
  o.text_path = eo->text;
  o.eval.n_ctx = (guint) MAX (eo->ctx, 0);
  o.eval.n_chunks = (guint) MAX (eo->chunks, 0);
  o.eval.kld = eo->kld;
  o.eval.cache_dir = eo->cache_dir;
  o.eval.no_cache = eo->no_cache;
  o.n_threads = eo->threads > 0 ? (guint) eo->threads : 0;
  o.dequant = g_strcmp0 (eo->dequant, "matrix") == 0 ? QB_DEQUANT_MATRIX : QB_DEQUANT_ROWS;
  /* --calib in place of the experiment's set, with its chunking. */
  o.calib_sources = (const char * const *) eo->calib.calib;
  o.calib.n_ctx = (guint) MAX (eo->calib.ctx, 0);
  o.calib.n_chunks = (guint) MAX (eo->calib.chunks, 0);
  o.calib.skip_chunks = (guint) MAX (eo->calib.skip, 0);
  o.calib.random = eo->calib.random;
  o.calib.seed = (guint64) eo->calib.seed;
  o.calib.cache_dir = eo->calib.cache_dir;
  o.calib.no_cache = eo->calib.no_cache;
  o.stats_output = eo->calib.process_output;
  o.imatrix = imatrix;
  if (isatty (2))
    {
      if (!eo->json)
        o.stats_progress = draw_experiment_stats;
      o.job_progress = draw_experiment_job;
      o.eval_progress = draw_experiment_eval;
      o.progress_data = &progress;
    }
  evaluation = qb_experiment_evaluate (store, eo->experiment, model, &o, &report, cancellable,
                                       &error);
  qb_cli_progress_end (&progress.bar);
  print_calibration (&report, eo);
  if (evaluation == NULL)
    {
      qb_experiment_eval_report_clear (&report);
      return qb_cli_fail_or_cancelled (error);
    }
  fallbacks = report.resolution ? fallbacks_json (model, report.resolution, NULL) : NULL;
  if (eo->json)
    print_json (&report.result, fallbacks);
  else
    {
      guint n_fallbacks = report.resolution ? report.resolution->n_fallbacks : 0;

      printf ("plan:   %u tensors quantized, %.3f bits per weight, %.2f s, %u fallback%s\n",
              report.n_quantized, report.bpw, report.quantize_seconds, n_fallbacks,
              n_fallbacks == 1 ? "" : "s");
      if (report.resolution != NULL)
        qb_cli_print_fallbacks (model, report.resolution);
      print_result (model, &report.result, eo->text);
      printf ("\nstored with experiment %" G_GINT64_FORMAT " in %s\n", eo->experiment,
              qb_store_get_path (store));
    }
  qb_experiment_eval_report_clear (&report);
  return 0;
}

static int
run (const char *model_path, const QbCliPlanOptions *po, EvalOptions *eo, GCancellable *cancellable)
{
  g_autoptr(QbPlan) plan = NULL;
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
  if (eo->experiment > 0)
    return run_experiment (model, eo, cancellable);
  if (!choose_plan (model, po, eo, &plan, &error))
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
  qb_llama_set_ggml_activations (llama, eo->ggml_activations);
  if (plan != NULL)
    {
      QbActivationStats *stats = NULL;

      ok = calibrate (model, plan, eo, &stats, cancellable, &error)
           && quantize (model, llama, plan, stats, eo, cancellable, &error);
      qb_activation_stats_free (stats);
      if (!ok)
        return qb_cli_fail_or_cancelled (error);
    }

  /* Positions past the trained context are extrapolation: PPL 910 at 8192
   * on a 128-context model says nothing about the quantization. */
  if (eo->ctx > 0 && qb_model_get_arch (model)->n_ctx > 0
      && (guint) eo->ctx > qb_model_get_arch (model)->n_ctx)
    fprintf (stderr, "quantbench: warning: --ctx %d is above the model's trained context (%u); "
             "its perplexity measures extrapolation, not the quantization\n",
             eo->ctx, qb_model_get_arch (model)->n_ctx);
  qb_eval_options_init (&o);
  o.n_ctx = (guint) MAX (eo->ctx, 0);
  o.n_chunks = (guint) MAX (eo->chunks, 0);
  o.kld = eo->kld;
  o.kld_base = eo->kld_base;
  o.cache_dir = eo->cache_dir;
  o.no_cache = eo->no_cache;
  ok = qb_eval_run (llama, tok, eo->text, &o, isatty (2) ? draw_progress : NULL, &bar, cancellable,
                    &r, &error);
  qb_cli_progress_end (&bar);
  if (!ok)
    return qb_cli_fail_or_cancelled (error);

  if (eo->json)
    print_json (&r, eo->fallbacks);
  else
    print_result (model, &r, eo->kld_base ? NULL : eo->text);
  return 0;
}

/* The command's work, on a thread of its own: a signal cancels it (the
 * float model's cache being written is removed, nothing is stored) and
 * the command exits 130. */
typedef struct {
  const char             *model_path;
  const QbCliPlanOptions *po;
  EvalOptions            *eo;
} EvalCommand;

static int
run_command (gpointer data, GCancellable *cancellable)
{
  EvalCommand *c = data;

  return run (c->model_path, c->po, c->eo, cancellable);
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
    { "ggml-activations", 0, 0, G_OPTION_ARG_NONE, &eo.ggml_activations, "Round each product's input as llama.cpp's CPU kernels do (8-bit blocks for quantized weights), to reproduce llama-perplexity", NULL },
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
  if (!qb_cli_parse (context, &argc, &argv) || !qb_cli_check_threads (eo.threads))
    return 2;
  if (po.list_presets)
    {
      qb_cli_print_presets ();
      return 0;
    }
  if (eo.ctx < 0 || eo.ctx > 1 << 20 || eo.chunks < 0)
    {
      fprintf (stderr, "quantbench: --ctx takes 1 to %d tokens, --chunks a count\n", 1 << 20);
      return 2;
    }
  if (argc != 2 || (eo.text == NULL && eo.kld_base == NULL)
      || (eo.dequant != NULL && strcmp (eo.dequant, "rows") != 0 && strcmp (eo.dequant, "matrix") != 0)
      || (eo.experiment != 0 && (has_plan (&po) || eo.kld_base != NULL || eo.experiment < 0)))
    {
      g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);
      fprintf (stderr, "%s", help);
      return 2;
    }
  {
    EvalCommand command = { argv[1], &po, &eo };
    status = qb_cli_run_interruptible (run_command, &command);
  }
  qb_cli_plan_options_clear (&po);
  g_clear_pointer (&eo.fallbacks, json_node_unref);
  g_free (eo.imatrix);
  g_free (eo.text);
  g_free (eo.kld_base);
  g_free (eo.cache_dir);
  g_free (eo.dequant);
  g_free (eo.db);
  qb_cli_calib_options_clear (&eo.calib);
  return status;
}
