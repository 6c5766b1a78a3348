/* SPDX-License-Identifier: MIT */
/* qb-cmd-sensitivity.c — `quantbench sensitivity MODEL --calib FILE
 * --eval-text FILE [--candidates LIST] [--json]`: runs a sensitivity study
 * (every tensor alone in every candidate format, its end-to-end KLD),
 * stores it and prints the table; `--show ID` prints a stored study,
 * `--resume ID` finishes a cancelled one, `--list` lists them. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "qb-cli.h"
#include "qb-cli-calib.h"
#include "qb-cli-progress.h"
#include "qb-cost-table.h"
#include "qb-json.h"
#include "qb-sensitivity.h"
#include "qb-store.h"
#include "qb-tokenizer.h"

typedef struct {
  char     *eval_text;
  int       eval_ctx;
  int       eval_chunks;
  char     *candidates;
  char     *method;
  int       measure;
  gboolean  no_gram;
  int       threads;
  gboolean  json;
  char     *db;
  gint64    show;
  gint64    resume;
  gboolean  list;
  gboolean  per_expert;
  QbCliCalibOptions calib;
} SensOptions;

/* ---- printing --------------------------------------------------------- */

/* A study run per expert: each expert alone in each measured candidate. */
static void
print_experts (QbSensitivityStudy *st)
{
  if (st->expert_costs->len == 0)
    return;
  printf ("\nexperts: mean KLD with that expert alone quantized (the tensor's other experts "
          "float); the plan keeps one format per tensor\n\n");
  printf ("%-32s %-8s %11s %11s %11s\n", "tensor #expert", "format", "kld", "± err", "mse");
  for (guint i = 0; i < st->expert_costs->len; i++)
    {
      const QbStudyCost *c = g_ptr_array_index (st->expert_costs, i);
      g_autofree char *name = g_strdup_printf ("%s #%d", c->tensor, c->expert);

      printf ("%-32s %-8s %11.3e %11.1e %11.3e\n", name, c->format, c->kld, c->kld_err, c->mse);
    }
}

static void
print_table (QbSensitivityStudy *st)
{
  const QbStudyRecord *r = st->record;

  printf ("study %" G_GINT64_FORMAT ": %s, method %s, %u tensors × %u candidates, %u measured "
          "end to end (%s)\n", r->id, r->model_name ? r->model_name : "?", r->method, st->n_tensors,
          st->n_candidates, st->n_measured, qb_experiment_status_name (r->status));
  printf ("evaluation: %s, %u chunks of %u tokens from the start, float PPL %.4f\n",
          r->eval_text_name ? r->eval_text_name : "?", r->eval_n_chunks, r->eval_n_ctx, r->base_ppl);
  printf ("fit: kld ≈ S_t · %s^α, α = %.3f, leave-one-out Spearman %.3f\n", r->proxy, st->alpha,
          st->loo_spearman);
  printf ("costs: mean KLD of the whole model with that tensor alone quantized; "
          "* measured, others from the fit, - does not fit\n\n");
  printf ("%-28s", "tensor");
  for (guint k = 0; k < st->n_candidates; k++)
    printf (" %11s", st->candidates[k]);
  printf ("\n");
  for (guint t = 0; t < st->n_tensors; t++)
    {
      const QbSensitivityEntry *first = NULL;
      for (guint k = 0; k < st->n_candidates && first == NULL; k++)
        if (qb_sensitivity_study_get (st, t, k)->cost != NULL)
          first = qb_sensitivity_study_get (st, t, k);
      printf ("%-28s", first ? first->cost->tensor : "?");
      for (guint k = 0; k < st->n_candidates; k++)
        {
          const QbSensitivityEntry *e = qb_sensitivity_study_get (st, t, k);
          if (e->cost == NULL)
            printf (" %11s", "…");
          else if (e->cost->skipped)
            printf (" %11s", "-");
          else
            printf (" %10.3e%s", e->value, isfinite (e->cost->kld) ? "*" : " ");
        }
      printf ("\n");
    }
  print_experts (st);
}

static void
print_json (QbSensitivityStudy *st)
{
  const QbStudyRecord *r = st->record;
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_int_value (b, r->id);
  json_builder_set_member_name (b, "model");
  json_builder_add_string_value (b, r->model_name ? r->model_name : "");
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, qb_experiment_status_name (r->status));
  json_builder_set_member_name (b, "method");
  json_builder_add_string_value (b, r->method);
  json_builder_set_member_name (b, "proxy");
  json_builder_add_string_value (b, r->proxy);
  json_builder_set_member_name (b, "eval_text");
  json_builder_add_string_value (b, r->eval_text_name ? r->eval_text_name : "");
  json_builder_set_member_name (b, "eval_n_ctx");
  json_builder_add_int_value (b, r->eval_n_ctx);
  json_builder_set_member_name (b, "eval_n_chunks");
  json_builder_add_int_value (b, r->eval_n_chunks);
  json_builder_set_member_name (b, "calibration_set_id");
  json_builder_add_int_value (b, r->calibration_set_id);
  qb_json_builder_add_number (b, "base_ppl", r->base_ppl);
  qb_json_builder_add_number (b, "alpha", st->alpha);
  qb_json_builder_add_number (b, "loo_spearman", st->loo_spearman);
  qb_json_builder_add_number (b, "seconds", r->seconds);
  json_builder_set_member_name (b, "candidates");
  json_builder_begin_array (b);
  for (guint k = 0; k < st->n_candidates; k++)
    json_builder_add_string_value (b, st->candidates[k]);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "costs");
  json_builder_begin_array (b);
  for (guint t = 0; t < st->n_tensors; t++)
    for (guint k = 0; k < st->n_candidates; k++)
      {
        const QbSensitivityEntry *e = qb_sensitivity_study_get (st, t, k);
        if (e->cost == NULL)
          continue;
        json_builder_begin_object (b);
        json_builder_set_member_name (b, "tensor");
        json_builder_add_string_value (b, e->cost->tensor);
        json_builder_set_member_name (b, "format");
        json_builder_add_string_value (b, e->cost->format);
        json_builder_set_member_name (b, "skipped");
        json_builder_add_boolean_value (b, e->cost->skipped);
        if (e->cost->note)
          {
            json_builder_set_member_name (b, "note");
            json_builder_add_string_value (b, e->cost->note);
          }
        json_builder_set_member_name (b, "bytes");
        json_builder_add_int_value (b, (gint64) e->cost->bytes);
        qb_json_builder_add_number (b, "mse", e->cost->mse);
        qb_json_builder_add_number (b, "wmse", e->cost->wmse);
        qb_json_builder_add_number (b, "out_err", e->cost->out_err);
        qb_json_builder_add_number (b, "kld", e->cost->kld);
        qb_json_builder_add_number (b, "kld_err", e->cost->kld_err);
        qb_json_builder_add_number (b, "predicted", e->predicted);
        qb_json_builder_add_number (b, "cost", e->value);
        json_builder_end_object (b);
      }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "expert_costs");
  json_builder_begin_array (b);
  for (guint i = 0; i < st->expert_costs->len; i++)
    {
      const QbStudyCost *c = g_ptr_array_index (st->expert_costs, i);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "tensor");
      json_builder_add_string_value (b, c->tensor);
      json_builder_set_member_name (b, "expert");
      json_builder_add_int_value (b, c->expert);
      json_builder_set_member_name (b, "format");
      json_builder_add_string_value (b, c->format);
      json_builder_set_member_name (b, "bytes");
      json_builder_add_int_value (b, (gint64) c->bytes);
      qb_json_builder_add_number (b, "mse", c->mse);
      qb_json_builder_add_number (b, "kld", c->kld);
      qb_json_builder_add_number (b, "kld_err", c->kld_err);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  text = qb_json_to_string (root);
  printf ("%s\n", text);
}

static int
show (QbStore *store, gint64 id, gboolean json)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbSensitivityStudy) st = qb_sensitivity_study_load (store, id, &error);

  if (st == NULL)
    return qb_cli_fail (error);
  if (json)
    print_json (st);
  else
    print_table (st);
  return 0;
}

static int
list (QbStore *store)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) studies = qb_store_list_studies (store, 0, &error);

  if (studies == NULL)
    return qb_cli_fail (error);
  printf ("%5s  %-20s %-11s %-6s %-8s %s\n", "id", "model", "status", "method", "seconds", "candidates");
  for (guint i = 0; i < studies->len; i++)
    {
      const QbStudyRecord *r = g_ptr_array_index (studies, i);
      printf ("%5" G_GINT64_FORMAT "  %-20.20s %-11s %-6s %8.1f %s\n", r->id,
              r->model_name ? r->model_name : "?", qb_experiment_status_name (r->status), r->method,
              isfinite (r->seconds) ? r->seconds : 0, r->candidates);
    }
  return 0;
}

/* ---- running ---------------------------------------------------------- */

static void
draw_progress (const QbSensitivityProgress *p, gpointer data)
{
  qb_cli_progress_draw (data, p->fraction, FALSE, "%s %u/%u (%u measured)  %-32.32s", p->stage,
                        p->done, p->total, p->measured, p->tensor ? p->tensor : "");
}

static char *
sha_of (const char *path)
{
  g_autofree char *text = NULL;
  gsize len = 0;

  return g_file_get_contents (path, &text, &len, NULL)
         ? g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) text, len) : NULL;
}

/* When the first calibration text is the evaluation text and no skip was
 * given, calibration starts after the evaluated chunks. */
static void
default_skip (QbModel *model, SensOptions *so)
{
  guint train = qb_model_get_arch (model)->n_ctx;
  guint ctx_default = train > 0 && train < 512 ? train : 512;
  guint64 eval_tokens, calib_ctx;
  g_autofree char *a = NULL, *b = NULL;

  if (so->calib.skip != 0 || so->calib.calib == NULL || so->calib.calib[0] == NULL)
    return;
  a = sha_of (so->calib.calib[0]);
  b = sha_of (so->eval_text);
  if (a == NULL || g_strcmp0 (a, b) != 0)
    return;
  eval_tokens = (guint64) (so->eval_ctx > 0 ? (guint) so->eval_ctx : ctx_default)
                * (so->eval_chunks > 0 ? (guint) so->eval_chunks : QB_SENSITIVITY_DEFAULT_CHUNKS);
  calib_ctx = so->calib.ctx > 0 ? (guint) so->calib.ctx : ctx_default;
  so->calib.skip = (int) ((eval_tokens + calib_ctx - 1) / calib_ctx);
  if (!so->json)
    fprintf (stderr, "calibration: skipping its first %d chunks (the evaluation tokens)\n",
             so->calib.skip);
}

static int
run (const char *model_path, SensOptions *so)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbPlan) options_plan = qb_plan_new ();
  g_autofree const QbFormat **cands = NULL;
  QbActivationStats *stats = NULL;
  QbSensitivityOptions o;
  QbCliProgress bar = { 0 };
  gint64 id = 0, set_id = 0;
  guint n_cands = 0;
  gboolean ok;

  if ((store = qb_store_open (so->db, &error)) == NULL)
    return qb_cli_fail (error);
  if (so->list)
    return list (store);
  if (so->show > 0)
    return show (store, so->show, so->json);
  if ((model = qb_model_open (model_path, &error)) == NULL
      || (tok = qb_tokenizer_new_for_model (model, &error)) == NULL)
    return qb_cli_fail (error);
  if (so->candidates != NULL)
    cands = qb_cost_parse_candidates (so->candidates, &n_cands, &error);
  else
    {
      g_autofree char *list = g_strjoinv (",", (char **) qb_cost_default_candidates ());
      cands = qb_cost_parse_candidates (list, &n_cands, &error);
    }
  if (cands == NULL || !qb_cli_calib_apply_options (&so->calib, options_plan, &error))
    return qb_cli_fail (error);

  if (so->calib.calib != NULL)
    {
      g_autoptr(QbCalibrationSet) record = NULL;

      default_skip (model, so);
      so->calib.gram_all = !so->no_gram;
      so->calib.process_output = TRUE;
      stats = qb_cli_calib_compute (model, NULL, &so->calib, so->threads, so->json, NULL, &error);
      if (stats == NULL)
        return qb_cli_fail (error);
      record = qb_calibration_to_record (qb_activation_stats_get_calibration (stats));
      if (!qb_store_add_calibration_set (store, record, &set_id, &error))
        {
          qb_activation_stats_free (stats);
          return qb_cli_fail (error);
        }
    }

  qb_sensitivity_options_init (&o);
  o.candidates = cands;
  o.n_candidates = n_cands;
  o.method = so->method;
  o.method_options = qb_plan_get_options (options_plan);
  o.eval_text = so->eval_text;
  o.eval_n_ctx = (guint) MAX (so->eval_ctx, 0);
  o.eval_n_chunks = (guint) MAX (so->eval_chunks, 0);
  o.stats = stats;
  o.calibration_set_id = set_id;
  o.measure = (guint) MAX (so->measure, 0);
  o.n_threads = (guint) MAX (so->threads, 0);
  o.resume_id = so->resume;
  o.per_expert = so->per_expert;
  ok = qb_sensitivity_run (model, tok, store, &o, isatty (2) && !so->json ? draw_progress : NULL,
                           &bar, NULL, &id, &error);
  qb_cli_progress_end (&bar);
  qb_activation_stats_free (stats);
  if (!ok)
    {
      if (id > 0)
        g_prefix_error (&error, "study %" G_GINT64_FORMAT " (kept, resume with --resume %"
                        G_GINT64_FORMAT "): ", id, id);
      return qb_cli_fail (error);
    }
  if (!so->json)
    printf ("stored as study %" G_GINT64_FORMAT " in %s\n\n", id, qb_store_get_path (store));
  return show (store, id, so->json);
}

int
qb_cmd_sensitivity (int argc, char **argv)
{
  SensOptions so = { 0 };
  GOptionEntry entries[] = {
    { "eval-text", 0, 0, G_OPTION_ARG_FILENAME, &so.eval_text, "Held-out text the KLD is measured on (its first chunks)", "FILE" },
    { "eval-ctx", 0, 0, G_OPTION_ARG_INT, &so.eval_ctx, "Tokens per evaluation chunk (default: the model's context, at most 512)", "N" },
    { "eval-chunks", 0, 0, G_OPTION_ARG_INT, &so.eval_chunks, "Evaluation chunks (default 8)", "N" },
    { "candidates", 0, 0, G_OPTION_ARG_STRING, &so.candidates, "Candidate formats, comma-separated (default: the allocator's ladder)", "LIST" },
    { "method", 0, 0, G_OPTION_ARG_STRING, &so.method, "Quantization method (rtn, search, gptq; default rtn)", "NAME" },
    { "measure", 0, 0, G_OPTION_ARG_INT, &so.measure, "Candidates measured end to end per tensor (default: all; others from the fit)", "N" },
    { "no-gram", 0, 0, G_OPTION_ARG_NONE, &so.no_gram, "No XᵀX (less memory): the proxy is the importance-weighted MSE", NULL },
    { "threads", 't', 0, G_OPTION_ARG_INT, &so.threads, "Threads (default: all cores)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &so.json, "Print the study as JSON", NULL },
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &so.db, "Experiment database (default: $XDG_DATA_HOME/quantbench/experiments.db)", "FILE" },
    { "show", 0, 0, G_OPTION_ARG_INT64, &so.show, "Print a stored study (no MODEL needed)", "ID" },
    { "resume", 0, 0, G_OPTION_ARG_INT64, &so.resume, "Resume a cancelled or failed study with the same inputs", "ID" },
    { "list", 0, 0, G_OPTION_ARG_NONE, &so.list, "List the stored studies", NULL },
    { "per-expert", 0, 0, G_OPTION_ARG_NONE, &so.per_expert, "Mixtures of experts: also measure each expert alone (KLD passes × experts for expert tensors)", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("MODEL - per-tensor sensitivity study");
  int status;

  g_option_context_add_main_entries (context, entries, NULL);
  qb_cli_calib_add_entries (context, &so.calib);
  g_option_context_set_description (context,
    "Quantizes every tensor alone in every candidate format and measures the KL divergence of\n"
    "the whole model against the float model on the first chunks of --eval-text, running only\n"
    "the layers from the tensor's own on.  Instant proxies (weight MSE, importance-weighted MSE,\n"
    "output error through the calibration XᵀX) are stored beside; candidates not measured\n"
    "(--measure N) get kld ≈ S_t · proxy^α fitted per tensor.  --calib texts give the proxies and\n"
    "the statistics GPTQ needs; when the first is the evaluation text its first chunks are\n"
    "skipped, so calibration and evaluation never overlap.  A candidate a tensor's rows do not\n"
    "fit is recorded as skipped.  --per-expert also measures each expert of a 3-D expert tensor\n"
    "alone (its rows in the candidate, the other experts float), shown as \"tensor #expert\" rows;\n"
    "the plan still gives the whole tensor one format.  The study is stored (Ctrl-C keeps what was measured: --resume\n"
    "ID) and serves `plan --target-bpw N --study ID` and `sweep`.");
  if (!qb_cli_parse (context, &argc, &argv))
    return 2;
  if ((so.show <= 0 && !so.list && (argc != 2 || so.eval_text == NULL)) || so.measure < 0)
    {
      g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);
      fprintf (stderr, "%s", help);
      return 2;
    }
  status = run (argc >= 2 ? argv[1] : NULL, &so);
  g_free (so.eval_text);
  g_free (so.candidates);
  g_free (so.method);
  g_free (so.db);
  qb_cli_calib_options_clear (&so.calib);
  return status;
}
