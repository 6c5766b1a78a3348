/* SPDX-License-Identifier: MIT */
/* qb-cmd-demo.c — `quantbench demo`: what a newcomer sees without a display.
 *
 * The built-in demo model (generated into the user's cache on first use),
 * inspected, then quantized with the Q4_K_M preset: the same output as
 * `quantbench inspect` and `quantbench quantize --preset Q4_K_M` on it.
 */
#include <stdio.h>

#include "qb-cli.h"
#include "qb-cli-plan.h"
#include "qb-demo-model.h"

int
qb_cmd_demo (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- inspect and quantize the built-in demo model");
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autofree char *path = NULL;
  QbCliQuantizeOptions options = { 0 };
  char *inspect_argv[3] = { (char *) "inspect", NULL, NULL };

  if (argv != NULL && !qb_cli_parse (context, &argc, &argv))
    return 2;

  path = qb_demo_model_get_default (NULL, &error);
  if (path == NULL)
    return qb_cli_fail (error);
  model = qb_model_open (path, &error);
  if (model == NULL)
    return qb_cli_fail (error);

  printf ("Quantbench demo: the built-in demo model, inspected and quantized.\n"
          "(Open the workbench on a display for the same, interactively.)\n\n"
          "$ quantbench inspect %s\n", path);
  fflush (stdout);
  inspect_argv[1] = path;
  if (qb_cmd_inspect (2, inspect_argv) != 0)
    return 1;
  fflush (stdout);

  printf ("\n$ quantbench quantize %s --preset Q4_K_M --no-save\n", path);
  qb_plan_set_preset (plan, "Q4_K_M");
  return qb_cli_quantize_and_print (model, plan, &options);
}
