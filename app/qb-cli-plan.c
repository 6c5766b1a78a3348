/* SPDX-License-Identifier: MIT */
/* qb-cli-plan.c — plan options shared by `quantize` and `plan`, and the
 * table printing both use. */
#include "qb-cli.h"
#include "qb-cli-plan.h"
#include "qb-file.h"

#include <stdio.h>
#include <string.h>

#include "qb-allocation-plan.h"
#include "qb-sensitivity-table.h"
#include "qb-store.h"

void
qb_cli_plan_options_clear (QbCliPlanOptions *o)
{
  g_clear_pointer (&o->plan_file, g_free);
  g_clear_pointer (&o->preset, g_free);
  g_clear_pointer (&o->default_format, g_free);
  g_clear_pointer (&o->method, g_free);
  g_clear_pointer (&o->rules, g_strfreev);
  g_clear_pointer (&o->target_bpw, g_free);
  g_clear_pointer (&o->target_size, g_free);
  g_clear_pointer (&o->target_kld, g_free);
  g_clear_pointer (&o->candidates, g_free);
  g_clear_pointer (&o->allow, g_strfreev);
  g_clear_pointer (&o->embedding_floor, g_free);
}

void
qb_cli_plan_add_entries (GOptionContext *context, QbCliPlanOptions *o)
{
  GOptionEntry entries[] = {
    { "plan", 0, 0, G_OPTION_ARG_FILENAME, &o->plan_file, "Start from a plan saved as JSON", "FILE.json" },
    { "preset", 0, 0, G_OPTION_ARG_STRING, &o->preset, "A llama.cpp-like mix (see `quantbench plan --list-presets`)", "NAME" },
    { "default", 0, 0, G_OPTION_ARG_STRING, &o->default_format, "Format for tensors no rule or preset decides", "TYPE" },
    { "rule", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->rules,
      "PATTERN=TYPE[:METHOD] (glob) or re:PATTERN=TYPE[:METHOD] (regex); first match wins; TYPE may be 'keep'", "RULE" },
    { "method", 0, 0, G_OPTION_ARG_STRING, &o->method, "Default method: rtn, search or gptq (needs --calib)", "NAME" },
    { "quantize-1d", 0, 0, G_OPTION_ARG_NONE, &o->quantize_1d, "Quantize 1-D tensors (norms, biases) too", NULL },
    { "list-presets", 0, 0, G_OPTION_ARG_NONE, &o->list_presets, "List the presets and exit", NULL },
    { "target-bpw", 0, 0, G_OPTION_ARG_STRING, &o->target_bpw,
      "Automatic plan: the least predicted KLD within N bits per weight", "N" },
    { "target-size", 0, 0, G_OPTION_ARG_STRING, &o->target_size,
      "Automatic plan: the least predicted KLD within a size (bytes, or 120M, 3.5G)", "BYTES" },
    { "target-kld", 0, 0, G_OPTION_ARG_STRING, &o->target_kld,
      "Automatic plan: the smallest plan with predicted KLD <= X", "X" },
    { "study", 0, 0, G_OPTION_ARG_INT64, &o->study,
      "Costs from this stored sensitivity study (default: weight proxies)", "ID" },
    { "candidates", 0, 0, G_OPTION_ARG_STRING, &o->candidates,
      "Formats an automatic plan chooses from (default Q2_K,Q3_K,Q4_K,Q5_K,Q6_K,Q8_0,Q4_0,Q5_0,INT4_CH,INT8_CH,F16)",
      "LIST" },
    { "allow", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->allow,
      "Automatic plan: tensors of ROLE (attn_v, ffn_down, token_embd, output, ...) take only these formats (repeatable)",
      "ROLE=TYPE,TYPE" },
    { "embedding-floor", 0, 0, G_OPTION_ARG_STRING, &o->embedding_floor,
      "Automatic plan: token_embd and output get at least N bits per weight", "N" },
    { NULL }
  };
  GOptionGroup *group = g_option_group_new ("plan", "Plan options:", "Show plan options", NULL, NULL);

  g_option_group_add_entries (group, entries);
  g_option_context_add_group (context, group);
}

void
qb_cli_print_presets (void)
{
  const char * const *names = qb_plan_list_presets ();

  for (guint i = 0; names[i] != NULL; i++)
    printf ("  %-8s %s\n", names[i], qb_plan_preset_summary (names[i]));
}

static gboolean
add_rule (QbPlan *plan, const char *spec, GError **error)
{
  QbRuleKind kind = QB_RULE_GLOB;
  const char *eq = strrchr (spec, '=');
  g_autofree char *pattern = NULL, *format = NULL;
  char *colon;
  const char *method = NULL;

  if (g_str_has_prefix (spec, "re:"))
    {
      kind = QB_RULE_REGEX;
      spec += 3;
    }
  if (eq == NULL || eq <= spec || eq[1] == '\0')
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--rule '%s': expected PATTERN=TYPE", spec);
      return FALSE;
    }
  pattern = g_strndup (spec, eq - spec);
  /* TYPE or TYPE:METHOD */
  format = g_strdup (eq + 1);
  if ((colon = strchr (format, ':')) != NULL)
    {
      *colon = '\0';
      method = colon + 1;
      if (qb_method_find (method) == NULL)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "--rule '%s': unknown method '%s' (see `quantbench formats`)", spec, method);
          return FALSE;
        }
    }
  if (strcmp (format, QB_FORMAT_KEEP) != 0 && qb_format_find (format) == NULL)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--rule '%s': unknown format '%s' (see `quantbench formats`)", spec, format);
      return FALSE;
    }
  return qb_plan_insert_rule (plan, -1, pattern, kind, format, method, error);
}

QbPlan *
qb_cli_plan_build (const QbCliPlanOptions *o, GError **error)
{
  g_autoptr(QbPlan) plan = NULL;

  if (o->plan_file != NULL)
    {
      g_autofree char *json = NULL;
      /* A plan is a few KiB; 16 MiB is far more than any model needs. */
      if (!qb_file_read (o->plan_file, 16 << 20, &json, NULL, error))
        return NULL;
      plan = qb_plan_new_from_json (json, error);
      if (plan == NULL)
        {
          g_prefix_error (error, "%s: ", o->plan_file);
          return NULL;
        }
    }
  else
    plan = qb_plan_new ();

  if (o->preset != NULL)
    {
      const char * const *names = qb_plan_list_presets ();
      gboolean known = FALSE;
      for (guint i = 0; names[i] != NULL; i++)
        known |= g_ascii_strcasecmp (names[i], o->preset) == 0;
      if (!known)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "unknown preset '%s' (see --list-presets)", o->preset);
          return NULL;
        }
      qb_plan_set_preset (plan, o->preset);
    }
  if (o->default_format != NULL)
    {
      if (qb_format_find (o->default_format) == NULL && strcmp (o->default_format, QB_FORMAT_KEEP) != 0)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "--default: unknown format '%s' (see `quantbench formats`)", o->default_format);
          return NULL;
        }
      qb_plan_set_default_format (plan, o->default_format);
    }
  if (o->method != NULL)
    {
      if (qb_method_find (o->method) == NULL)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "--method: unknown method '%s'", o->method);
          return NULL;
        }
      qb_plan_set_default_method (plan, o->method);
    }
  if (o->quantize_1d)
    qb_plan_set_keep_1d (plan, FALSE);
  for (guint i = 0; o->rules && o->rules[i]; i++)
    if (!add_rule (plan, o->rules[i], error))
      return NULL;
  return g_steal_pointer (&plan);
}

void
qb_cli_print_totals (const QbPlanResolution *res)
{
  qb_cli_print_run_totals (res, res->n_fallbacks);
}

void
qb_cli_print_run_totals (const QbPlanResolution *res, guint n_fallbacks)
{
  g_autofree char *orig = qb_cli_format_size (res->original_bytes);
  g_autofree char *quant = qb_cli_format_size (res->quantized_bytes);

  printf ("total: %u tensors, %" G_GINT64_FORMAT " parameters, %s -> %s, %.3f bits per weight, "
          "%.2fx smaller, %u fallback%s\n",
          res->n_tensors, res->n_params, orig, quant, res->bpw,
          res->quantized_bytes ? (double) res->original_bytes / res->quantized_bytes : 0.0,
          n_fallbacks, n_fallbacks == 1 ? "" : "s");
}

void
qb_cli_print_fallbacks (QbModel *model, const QbPlanResolution *res)
{
  for (guint i = 0; i < res->n_tensors; i++)
    if (res->choices[i].fallback_reason != NULL)
      printf ("  fallback: %s: %s\n", qb_model_get_tensor (model, i)->name,
              res->choices[i].fallback_reason);
}

/* ---- automatic plans --------------------------------------------------- */

gboolean
qb_cli_plan_has_target (const QbCliPlanOptions *o)
{
  return o->target_bpw || o->target_size || o->target_kld;
}

static gboolean
parse_target (const QbCliPlanOptions *o, QbAllocBudget *budget, GError **error)
{
  guint n = (o->target_bpw != NULL) + (o->target_size != NULL) + (o->target_kld != NULL);
  if (n > 1)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "give one of --target-bpw, --target-size and --target-kld");
      return FALSE;
    }
  gboolean ok = o->target_bpw ? qb_alloc_budget_parse (QB_ALLOC_TARGET_BPW, o->target_bpw, budget, error)
              : o->target_size ? qb_alloc_budget_parse (QB_ALLOC_TARGET_BYTES, o->target_size, budget, error)
              : qb_alloc_budget_parse (QB_ALLOC_TARGET_KLD, o->target_kld, budget, error);
  if (!ok)
    g_prefix_error (error, "%s: ", o->target_bpw ? "--target-bpw"
                                   : o->target_size ? "--target-size" : "--target-kld");
  return ok;
}

/* The costs of a stored sensitivity study: measured KLD where measured,
 * else the study's fitted mapping of its proxies. */
static QbCostTable *
cost_table_from_study (const QbCliPlanOptions *o, QbModel *model, char **source, GError **error)
{
  if (o->candidates != NULL)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--candidates: a study's candidates are the ones it measured; "
                   "leave --candidates out with --study");
      return NULL;
    }
  g_autoptr(QbStore) store = qb_store_open_readonly (o->study_db, error);
  if (store == NULL)
    return NULL;
  QbSensitivityStudy *study = qb_sensitivity_study_load (store, o->study, error);
  if (study == NULL)
    {
      g_prefix_error (error, "--study %" G_GINT64_FORMAT ": ", o->study);
      return NULL;
    }
  QbCostTable *table = qb_sensitivity_study_to_cost_table (study, model, error);
  if (table == NULL)
    g_prefix_error (error, "--study %" G_GINT64_FORMAT ": ", o->study);
  else
    *source = g_strdup_printf ("sensitivity study %" G_GINT64_FORMAT " (%u of its costs measured "
                               "end to end, the rest from its fitted proxy mapping)",
                               o->study, study->n_measured);
  qb_sensitivity_study_free (study);
  return table;
}

static gboolean
is_ggml_format (const QbFormat *f)
{
  const QbDTypeInfo *info = f->dtype != QB_DTYPE_INVALID ? qb_dtype_info (f->dtype) : NULL;
  return info != NULL && info->is_ggml;
}

/* Written to GGUF, a format with no ggml type is stored as F16, so the
 * file would not keep the budget: a tensor that some quantized ggml type
 * fits takes only ggml types.  (Rows no ggml block fits, e.g. 172 wide,
 * keep INTn_CH, stored as F16.) */
static void
keep_ggml_candidates (QbCostTable *table)
{
  for (guint i = 0; i < table->n_tensors; i++)
    {
      QbCostTensor *t = &table->tensors[i];
      gboolean quantized_ggml = FALSE;
      for (guint k = 0; k < t->n_candidates; k++)
        quantized_ggml |= is_ggml_format (t->candidates[k].format)
                          && qb_format_bpw (t->candidates[k].format, t->row_length) < 16;
      if (!quantized_ggml)
        continue;
      guint kept = 0;
      for (guint k = 0; k < t->n_candidates; k++)
        if (is_ggml_format (t->candidates[k].format))
          t->candidates[kept++] = t->candidates[k];
      t->n_candidates = kept;
    }
}

static QbCostTable *
cost_table_for (const QbCliPlanOptions *o, QbModel *model, char **source, GError **error)
{
  g_autofree const QbFormat **candidates = NULL;
  guint n = 0;

  if (o->study != 0)
    return cost_table_from_study (o, model, source, error);
  if (o->candidates != NULL)
    candidates = qb_cost_parse_candidates (o->candidates, &n, error);
  else
    {
      g_autofree char *list = g_strjoinv (",", (char **) qb_cost_default_candidates ());
      candidates = qb_cost_parse_candidates (list, &n, error);
    }
  if (candidates == NULL)
    {
      g_prefix_error (error, "--candidates: ");
      return NULL;
    }
  *source = g_strdup ("weight proxies");
  QbCostTable *table = qb_cost_table_new_proxy (model, candidates, n, NULL, NULL, NULL, error);
  if (table != NULL && o->ggml_only && o->candidates == NULL)
    keep_ggml_candidates (table);
  return table;
}

static const char *
target_text (const QbAllocBudget *b, char *buf, gsize size)
{
  if (b->target == QB_ALLOC_TARGET_BPW)
    g_snprintf (buf, size, "%.3g bits per weight", b->value);
  else if (b->target == QB_ALLOC_TARGET_BYTES)
    {
      g_autofree char *s = qb_cli_format_size ((guint64) b->value);
      g_snprintf (buf, size, "%s", s);
    }
  else
    g_snprintf (buf, size, "predicted KLD <= %g", b->value);
  return buf;
}

/* --allow ROLE=TYPE,TYPE and --embedding-floor N on top of the plan's pins. */
static gboolean
add_cli_constraints (const QbCliPlanOptions *o, QbAllocConstraints *c, GError **error)
{
  for (guint i = 0; o->allow && o->allow[i]; i++)
    {
      const char *eq = strchr (o->allow[i], '=');
      g_autofree char *role_name = eq ? g_strndup (o->allow[i], eq - o->allow[i]) : NULL;
      QbTensorRole role = role_name ? qb_tensor_role_from_name (role_name) : QB_ROLE_OTHER;
      if (role == QB_ROLE_OTHER || role == QB_ROLE_N_ROLES)
        {
          g_autoptr(GString) roles = g_string_new (NULL);
          for (guint r = QB_ROLE_OTHER + 1; r < QB_ROLE_N_ROLES; r++)
            g_string_append_printf (roles, "%s%s", roles->len ? ", " : "", qb_tensor_role_name (r));
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       eq ? "--allow '%s': unknown role (one of %s)"
                          : "--allow '%s': expected ROLE=TYPE,TYPE (roles: %s)", o->allow[i], roles->str);
          return FALSE;
        }
      guint n = 0;
      g_autofree const QbFormat **formats = qb_cost_parse_candidates (eq + 1, &n, error);
      if (formats == NULL)
        {
          g_prefix_error (error, "--allow '%s': ", o->allow[i]);
          return FALSE;
        }
      qb_alloc_constraints_allow (c, role, formats, n);
    }
  if (o->embedding_floor != NULL)
    {
      char *end = NULL;
      double bpw = g_ascii_strtod (o->embedding_floor, &end);
      if (end == o->embedding_floor || *end != '\0' || !(bpw > 0 && bpw <= 32))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "--embedding-floor '%s': expected bits per weight between 0 and 32",
                       o->embedding_floor);
          return FALSE;
        }
      qb_alloc_constraints_set_embedding_floor (c, bpw);
    }
  return TRUE;
}

gboolean
qb_cli_plan_apply_target (const QbCliPlanOptions *o, QbModel *model, QbPlan *plan,
                          gboolean to_stderr, GError **error)
{
  QbAllocBudget budget;
  g_autofree char *source = NULL;
  char buf[64];

  if (!qb_cli_plan_has_target (o))
    {
      if (o->study != 0 || o->candidates != NULL || o->allow != NULL || o->embedding_floor != NULL)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "--study, --candidates, --allow and --embedding-floor need --target-bpw, "
                       "--target-size or --target-kld");
          return FALSE;
        }
      return TRUE;
    }
  if (!parse_target (o, &budget, error))
    return FALSE;
  g_autoptr(QbCostTable) table = cost_table_for (o, model, &source, error);
  if (table == NULL)
    return FALSE;
  g_autoptr(QbAllocConstraints) constraints = qb_alloc_constraints_from_plan (plan, model, table, error);
  if (constraints == NULL || !add_cli_constraints (o, constraints, error))
    return FALSE;
  double t0 = g_get_monotonic_time ();
  g_autoptr(QbAllocation) a = qb_allocate (table, &budget, constraints, error);
  if (a == NULL)
    return FALSE;
  double ms = (g_get_monotonic_time () - t0) / 1e3;
  qb_allocation_apply (table, a, source, plan);

  g_autofree char *size = qb_cli_format_size (a->bytes);
  FILE *out = to_stderr ? stderr : stdout;
  fprintf (out, "automatic plan: target %s -> %s, %.3f bits per weight, predicted KLD %.4g "
           "(%u tensors chosen in %.1f ms%s)\n", target_text (&budget, buf, sizeof buf), size,
           a->bpw, a->predicted_kld, table->n_tensors, ms, a->exact ? "" : ", not proven optimal");
  if (g_str_equal (source, "weight proxies"))
    fprintf (out, "  costs from weight proxies (no --study): relative weight error of sampled rows, "
             "mapped to KLD by one fixed factor, not measured on this model\n");
  if (o->ggml_only && o->candidates == NULL && o->study == 0)
    fprintf (out, "  candidates: formats with a ggml type wherever a quantized one fits the rows (the output is GGUF)\n");
  else
    fprintf (out, "  costs from %s\n", source);
  return TRUE;
}
