/* SPDX-License-Identifier: MIT */
/* qb-cli-plan.c — plan options shared by `quantize` and `plan`, and the
 * table printing both use. */
#include "qb-cli.h"
#include "qb-cli-plan.h"

#include <stdio.h>
#include <string.h>

void
qb_cli_plan_options_clear (QbCliPlanOptions *o)
{
  g_clear_pointer (&o->plan_file, g_free);
  g_clear_pointer (&o->preset, g_free);
  g_clear_pointer (&o->default_format, g_free);
  g_clear_pointer (&o->method, g_free);
  g_clear_pointer (&o->rules, g_strfreev);
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
      if (!g_file_get_contents (o->plan_file, &json, NULL, error))
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
  g_autofree char *orig = qb_cli_format_size (res->original_bytes);
  g_autofree char *quant = qb_cli_format_size (res->quantized_bytes);

  printf ("total: %u tensors, %" G_GINT64_FORMAT " parameters, %s -> %s, %.3f bits per weight, "
          "%.2fx smaller, %u fallback%s\n",
          res->n_tensors, res->n_params, orig, quant, res->bpw,
          res->quantized_bytes ? (double) res->original_bytes / res->quantized_bytes : 0.0,
          res->n_fallbacks, res->n_fallbacks == 1 ? "" : "s");
}

void
qb_cli_print_fallbacks (QbModel *model, const QbPlanResolution *res)
{
  for (guint i = 0; i < res->n_tensors; i++)
    if (res->choices[i].fallback_reason != NULL)
      printf ("  fallback: %s: %s\n", qb_model_get_tensor (model, i)->name,
              res->choices[i].fallback_reason);
}
