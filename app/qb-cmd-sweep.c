/* SPDX-License-Identifier: MIT */
/* qb-cmd-sweep.c — `quantbench sweep MODEL --study ID --eval-text FILE
 * --budgets 4,4.5,5,6`: the automatic plan for each budget, the uniform
 * formats and presets beside it, each quantized, stored and evaluated end
 * to end; prints predicted against measured KLD and, per budget, the
 * automatic plan's KLD against the best baseline at or below its size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "qb-cli.h"
#include "qb-cli-calib.h"
#include "qb-cli-progress.h"
#include "qb-json.h"
#include "qb-method.h"
#include "qb-sweep.h"
#include "qb-tokenizer.h"

typedef struct {
  gint64    study;
  char     *eval_text;
  char     *budgets;
  gboolean  no_uniform;
  gboolean  no_presets;
  double    nearby;
  int       swaps;
  double    refine;
  int       threads;
  gboolean  json;
  char     *db;
  char     *cache_dir;
} SweepOptions;

static const char *
kind_name (QbSweepKind kind)
{
  switch (kind)
    {
    case QB_SWEEP_AUTO:    return "auto";
    case QB_SWEEP_UNIFORM: return "uniform";
    case QB_SWEEP_PRESET:  return "preset";
    case QB_SWEEP_SWAP:    return "swap";
    case QB_SWEEP_REFINED: return "refined";
    default:               return "?";
    }
}

/* The best uniform format or preset at or below bpw (NULL: none). */
static const QbSweepPoint *
best_baseline (GPtrArray *points, double bpw)
{
  const QbSweepPoint *best = NULL;

  for (guint i = 0; i < points->len; i++)
    {
      const QbSweepPoint *p = g_ptr_array_index (points, i);
      if ((p->kind == QB_SWEEP_UNIFORM || p->kind == QB_SWEEP_PRESET) && p->bpw <= bpw + 1e-9
          && isfinite (p->kld) && (best == NULL || p->kld < best->kld))
        best = p;
    }
  return best;
}

static void
print_text (GPtrArray *points)
{
  guint plans = (1u << QB_SWEEP_AUTO) | (1u << QB_SWEEP_UNIFORM) | (1u << QB_SWEEP_PRESET);

  printf ("%-44s %7s %12s %12s %10s %9s %7s %6s\n", "plan", "bpw", "predicted", "KLD", "±",
          "PPL", "top-1", "exp");
  for (guint i = 0; i < points->len; i++)
    {
      const QbSweepPoint *p = g_ptr_array_index (points, i);
      printf ("%-44.44s %7.3f %11.4e%s %12.4e %10.2e %9.4f %6.2f%% %6" G_GINT64_FORMAT "\n",
              p->label, p->bpw, p->predicted_kld, p->n_estimated ? "~" : " ", p->kld, p->kld_err,
              p->ppl, 100 * p->top1, p->experiment_id);
    }
  printf ("~: some tensors fell back to a format the study has no cost for (costed as the\n"
          "   candidate nearest in bits)\n");
  printf ("\nSpearman, predicted vs measured KLD: %.3f over the plans, %.3f over the swaps\n",
          qb_sweep_spearman (points, plans), qb_sweep_spearman (points, 1u << QB_SWEEP_SWAP));
  printf ("\n%-8s %12s %-30s %12s %8s\n", "budget", "auto KLD", "best baseline at or below",
          "its KLD", "ratio");
  for (guint i = 0; i < points->len; i++)
    {
      const QbSweepPoint *p = g_ptr_array_index (points, i);
      const QbSweepPoint *b;

      if (p->kind != QB_SWEEP_AUTO)
        continue;
      b = best_baseline (points, p->target_bpw);
      if (b == NULL)
        printf ("%-8.2f %12.4e %-30s\n", p->target_bpw, p->kld, "(none)");
      else
        printf ("%-8.2f %12.4e %-30.30s %12.4e %8.3f\n", p->target_bpw, p->kld, b->label, b->kld,
                p->kld / b->kld);
    }
}

static void
print_json (GPtrArray *points)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;
  guint plans = (1u << QB_SWEEP_AUTO) | (1u << QB_SWEEP_UNIFORM) | (1u << QB_SWEEP_PRESET);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "points");
  json_builder_begin_array (b);
  for (guint i = 0; i < points->len; i++)
    {
      const QbSweepPoint *p = g_ptr_array_index (points, i);
      const QbSweepPoint *base = p->kind == QB_SWEEP_AUTO ? best_baseline (points, p->target_bpw)
                                                          : NULL;
      json_builder_begin_object (b);
      qb_json_builder_add_string (b, "kind", kind_name (p->kind));
      qb_json_builder_add_string (b, "label", p->label);
      qb_json_builder_add_number (b, "target_bpw", p->target_bpw);
      qb_json_builder_add_number (b, "bpw", p->bpw);
      json_builder_set_member_name (b, "bytes");
      json_builder_add_int_value (b, (gint64) p->bytes);
      qb_json_builder_add_number (b, "predicted_kld", p->predicted_kld);
      json_builder_set_member_name (b, "n_estimated");
      json_builder_add_int_value (b, p->n_estimated);
      qb_json_builder_add_number (b, "kld", p->kld);
      qb_json_builder_add_number (b, "kld_err", p->kld_err);
      qb_json_builder_add_number (b, "ppl", p->ppl);
      qb_json_builder_add_number (b, "top1", p->top1);
      json_builder_set_member_name (b, "experiment");
      json_builder_add_int_value (b, p->experiment_id);
      if (p->kind == QB_SWEEP_REFINED)
        {
          json_builder_set_member_name (b, "swaps_tried");
          json_builder_add_int_value (b, p->n_tried);
          json_builder_set_member_name (b, "swaps_kept");
          json_builder_add_int_value (b, p->n_kept);
        }
      if (base != NULL)
        {
          qb_json_builder_add_string (b, "best_baseline", base->label);
          qb_json_builder_add_number (b, "best_baseline_kld", base->kld);
          qb_json_builder_add_number (b, "ratio", p->kld / base->kld);
        }
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  qb_json_builder_add_number (b, "spearman_plans", qb_sweep_spearman (points, plans));
  qb_json_builder_add_number (b, "spearman_swaps", qb_sweep_spearman (points, 1u << QB_SWEEP_SWAP));
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  text = qb_json_to_string (root);
  printf ("%s\n", text);
}

static gboolean
parse_budgets (const char *text, GArray *out, GError **error)
{
  g_auto(GStrv) parts = g_strsplit (text ? text : "4,4.5,5,6", ",", -1);

  for (guint i = 0; parts[i]; i++)
    {
      char *end = NULL;
      double v = g_ascii_strtod (g_strstrip (parts[i]), &end);
      if (end == parts[i] || *end != '\0' || !(v > 0 && v < 64))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "--budgets: '%s' is not a number of bits per weight", parts[i]);
          return FALSE;
        }
      g_array_append_val (out, v);
    }
  return TRUE;
}

/* A calibrated method needs the study's statistics again: from its stored
 * calibration set (the cache answers without another pass). */
static QbActivationStats *
study_stats (QbModel *model, QbStore *store, gint64 study_id, const SweepOptions *so,
             gboolean *needed, GError **error)
{
  g_autoptr(QbStudyRecord) rec = qb_store_get_study (store, study_id, error);
  g_autoptr(QbCalibrationSet) set = NULL;
  const QbMethod *method;
  QbCliCalibOptions co = { 0 };
  QbCalibrationOptions from;

  *needed = FALSE;
  if (rec == NULL)
    return NULL;
  method = qb_method_find (rec->method);
  if (method == NULL || !(method->needs_gram || method->needs_importance))
    return NULL;
  *needed = TRUE;
  if (rec->calibration_set_id == 0
      || (set = qb_store_get_calibration_set (store, rec->calibration_set_id, error)) == NULL)
    {
      if (rec->calibration_set_id == 0)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                     "study %" G_GINT64_FORMAT " has no calibration set for %s", study_id,
                     rec->method);
      return NULL;
    }
  qb_calibration_options_for_record (&from, set);
  co.calib = set->sources;
  co.ctx = (int) from.n_ctx;
  co.chunks = (int) from.n_chunks;
  co.skip = (int) from.skip_chunks;
  co.random = from.random;
  co.seed = (gint64) from.seed;
  co.expect_hash = from.expect_hash;
  co.gram_all = TRUE;
  co.process_output = TRUE;
  return qb_cli_calib_compute (model, NULL, &co, so->threads, so->json, NULL, error);
}

static void
draw_progress (const QbSweepProgress *p, gpointer data)
{
  qb_cli_progress_draw (data, p->total ? (double) p->done / p->total : 0, FALSE,
                        "plan %u/%u  %-40.40s", p->done + 1, p->total, p->label ? p->label : "");
}

static int
run (const char *model_path, SweepOptions *so)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  g_autoptr(QbStore) store = NULL;
  g_autoptr(GArray) budgets = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GPtrArray) points = NULL;
  QbActivationStats *stats = NULL;
  QbSweepOptions o;
  QbCliProgress bar = { 0 };
  gboolean needed = FALSE;

  if (!parse_budgets (so->budgets, budgets, &error)
      || (store = qb_store_open (so->db, &error)) == NULL
      || (model = qb_model_open (model_path, &error)) == NULL
      || (tok = qb_tokenizer_new_for_model (model, &error)) == NULL)
    return qb_cli_fail (error);
  stats = study_stats (model, store, so->study, so, &needed, &error);
  if (needed && stats == NULL)
    return qb_cli_fail (error);
  g_clear_error (&error);

  qb_sweep_options_init (&o);
  o.budgets = (const double *) (void *) budgets->data;
  o.n_budgets = budgets->len;
  o.uniform = !so->no_uniform;
  o.presets = !so->no_presets;
  o.nearby = so->nearby;
  o.n_swaps = (guint) MAX (so->swaps, 0);
  o.refine_seconds = MAX (so->refine, 0);
  o.stats = stats;
  o.eval_text = so->eval_text;
  o.cache_dir = so->cache_dir;
  o.n_threads = (guint) MAX (so->threads, 0);
  points = qb_sweep_run (model, tok, store, so->study, &o,
                         isatty (2) && !so->json ? draw_progress : NULL, &bar, NULL, &error);
  qb_cli_progress_end (&bar);
  qb_activation_stats_free (stats);
  if (points == NULL)
    return qb_cli_fail (error);
  if (so->json)
    print_json (points);
  else
    print_text (points);
  return 0;
}

int
qb_cmd_sweep (int argc, char **argv)
{
  SweepOptions so = { 0 };
  GOptionEntry entries[] = {
    { "study", 0, 0, G_OPTION_ARG_INT64, &so.study, "The sensitivity study whose costs the plans use", "ID" },
    { "eval-text", 0, 0, G_OPTION_ARG_FILENAME, &so.eval_text, "The study's evaluation text", "FILE" },
    { "budgets", 0, 0, G_OPTION_ARG_STRING, &so.budgets, "Bits per weight, comma-separated (default 4,4.5,5,6)", "LIST" },
    { "no-uniform", 0, 0, G_OPTION_ARG_NONE, &so.no_uniform, "Leave out the uniform formats", NULL },
    { "no-presets", 0, 0, G_OPTION_ARG_NONE, &so.no_presets, "Leave out the llama.cpp presets", NULL },
    { "nearby", 0, 0, G_OPTION_ARG_DOUBLE, &so.nearby, "Only baselines within this many bpw of the budgets (default: all)", "BPW" },
    { "swaps", 0, 0, G_OPTION_ARG_INT, &so.swaps, "Single-tensor swaps of the middle budget's plan, to test the additive model", "N" },
    { "refine", 0, 0, G_OPTION_ARG_DOUBLE, &so.refine, "Refine the middle budget's plan with measured budget-neutral swaps for this many seconds", "SECONDS" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &so.threads, "Threads (default: all cores)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &so.json, "Print the points as JSON", NULL },
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &so.db, "Experiment database (default: $XDG_DATA_HOME/quantbench/experiments.db)", "FILE" },
    { "cache-dir", 0, 0, G_OPTION_ARG_FILENAME, &so.cache_dir, "Cache of the float model's log-probabilities", "DIR" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("MODEL - automatic plans for a list of budgets, measured");
  int status;

  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_description (context,
    "For each budget, the allocator's plan over the study's costs; beside them every candidate\n"
    "format of the study applied uniformly and every llama.cpp preset.  Each plan is quantized\n"
    "with the study's method, stored as an experiment tagged sweep and study:ID, and evaluated\n"
    "on the study's evaluation chunks (PPL, KLD, top-1 agreement).  Prints predicted against\n"
    "measured KLD (Spearman) and, per budget, the automatic plan's KLD against the best uniform\n"
    "format or preset at or below the same bits per weight.");
  if (!qb_cli_parse (context, &argc, &argv))
    return 2;
  if (argc != 2 || so.study <= 0 || so.eval_text == NULL || so.swaps < 0 || so.nearby < 0 || so.refine < 0)
    {
      g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);
      fprintf (stderr, "%s", help);
      return 2;
    }
  status = run (argv[1], &so);
  g_free (so.eval_text);
  g_free (so.budgets);
  g_free (so.db);
  g_free (so.cache_dir);
  return status;
}
