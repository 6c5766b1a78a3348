/* SPDX-License-Identifier: MIT */
/* qb-cmd-plan.c — `quantbench plan MODEL`: what a plan does to a model, without quantizing. */
#include <stdio.h>

#include "qb-cli.h"
#include "qb-cli-plan.h"
#include "qb-format.h"

/* Resolves the plan and prints it with its totals. */
static int
print_plan (QbModel *model, QbPlan *plan)
{
  g_autoptr(QbPlanResolution) res = NULL;
  g_autoptr(GError) error = NULL;

  res = qb_plan_resolve (plan, model, &error);
  if (res == NULL)
    return qb_cli_fail (error);
  printf ("%-34s %-14s %-6s %-10s %-9s %-12s %7s %10s\n", "tensor", "shape", "stored",
          "format", "fallback", "decided by", "bpw", "size");
  for (guint i = 0; i < res->n_tensors; i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      const QbTensorChoice *c = &res->choices[i];
      g_autofree char *shape = qb_cli_shape (t, "x");
      g_autofree char *size = qb_cli_format_size (c->bytes);

      printf ("%-34s %-14s %-6s %-10s %-9s %-12s %7.3f %10s\n", t->name, shape,
              qb_dtype_name (t->dtype), c->format ? c->format->name : "keep",
              c->fallback_reason && c->requested ? c->requested->name : "-",
              c->source, c->bpw, size);
    }
  qb_cli_print_fallbacks (model, res);
  qb_cli_print_totals (res);
  return 0;
}

int
qb_cmd_plan (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("MODEL - show what a plan does to a model, without quantizing");
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbPlan) plan = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *save = NULL;
  g_autofree char *db = NULL;
  QbCliPlanOptions po = { 0 };
  GOptionEntry entries[] = {
    { "save", 0, 0, G_OPTION_ARG_FILENAME, &save, "Also save the plan as JSON", "FILE.json" },
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "Experiment database holding --study (default: $XDG_DATA_HOME/quantbench/experiments.db)", "FILE" },
    { NULL }
  };
  int status;

  g_option_context_add_main_entries (context, entries, NULL);
  qb_cli_plan_add_entries (context, &po);
  if (!qb_cli_parse (context, &argc, &argv))
    return 2;
  if (po.list_presets)
    {
      qb_cli_print_presets ();
      return 0;
    }
  if (argc != 2)
    {
      fprintf (stderr, "quantbench plan: expected one MODEL (see --help)\n");
      return 2;
    }
  if (save != NULL && !g_str_has_suffix (save, ".json"))
    {
      fprintf (stderr, "quantbench plan: --save %s: the name must end in .json\n", save);
      return 2;
    }
  {
    const char *inputs[] = { argv[1], po.plan_file };
    if (!qb_cli_check_output (save, "--save", inputs, G_N_ELEMENTS (inputs), NULL, &error))
      return qb_cli_fail (error);
  }
  plan = qb_cli_plan_build (&po, &error);
  if (plan == NULL)
    return qb_cli_fail (error);
  po.study_db = db;
  model = qb_model_open (argv[1], &error);
  if (model == NULL || !qb_cli_plan_apply_target (&po, model, plan, FALSE, &error))
    return qb_cli_fail (error);
  qb_cli_plan_options_clear (&po);
  status = print_plan (model, plan);
  if (status == 0 && save != NULL)
    {
      g_autofree char *json = qb_plan_to_json (plan);
      if (!g_file_set_contents (save, json, -1, &error))
        return qb_cli_fail (error);
    }
  return status;
}
