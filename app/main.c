/* SPDX-License-Identifier: MIT */
/* main.c — `quantbench`: the GUI without a subcommand, else a command. */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "qb-blas.h"
#include "qb-cli.h"
#ifdef QB_HAVE_GUI
#include "qb-application.h"
#endif

static const QbCliEntry commands[] = {
  { "demo",        qb_cmd_demo,        "Run the headless demo on the built-in model" },
  { "demo-model",  qb_cmd_demo_model,  "Write a LLaMA-architecture demo model (GGUF)" },
  { "eval",        qb_cmd_eval,        "Perplexity and KL divergence of a model on a text" },
  { "inspect",     qb_cmd_inspect,     "Show a model's architecture and tensors" },
  { "quantize",    qb_cmd_quantize,    "Quantize a model with a plan, measure the error, export" },
  { "plan",        qb_cmd_plan,        "Show a plan's format per tensor and its size, instantly" },
  { "formats",     qb_cmd_formats,     "List the quantization formats and methods" },
  { "imatrix",     qb_cmd_imatrix,     "Compute an importance matrix on calibration text (llama.cpp formats)" },
  { "sensitivity", qb_cmd_sensitivity, "Measure each tensor's end-to-end cost in each candidate format (a study)" },
  { "sweep",       qb_cmd_sweep,       "Automatic plans from a study for a list of budgets, measured beside uniform formats and presets" },
  { "experiments", qb_cmd_experiments, "List, compare, export and import stored experiments" },
  { "devices",     qb_cmd_devices,     "List the OpenCL devices (--device selects one on any command)" },
};

static void
print_help (void)
{
  printf ("Usage: quantbench [FILE]              open the workbench (the demo model if no FILE)\n"
          "       quantbench COMMAND [OPTIONS]   run a command; COMMAND --help for its options\n\n"
          "Commands:\n");
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    printf ("  %-14s %s\n", commands[i].name, commands[i].summary);
}

int
qb_cli_fail (GError *error)
{
  fprintf (stderr, "quantbench: %s\n", error ? error->message : "failed");
  return 1;
}

int
qb_cli_fail_or_cancelled (GError *error)
{
  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return qb_cli_fail (error);
  fprintf (stderr, "quantbench: cancelled\n");
  return 130;
}

gboolean
qb_cli_parse (GOptionContext *context, int *argc, char ***argv)
{
  g_autoptr(GError) error = NULL;

  if (!g_option_context_parse (context, argc, argv, &error))
    {
      fprintf (stderr, "quantbench: %s\n", error->message);
      return FALSE;
    }
  return TRUE;
}

static gboolean
has_display (void)
{
  return g_getenv ("DISPLAY") != NULL || g_getenv ("WAYLAND_DISPLAY") != NULL;
}

int
main (int argc, char **argv)
{
  /* May start the program again with OpenBLAS's AVX-512 kernels (qb-blas.h). */
  qb_blas_prefer_avx512 (argv);
  setlocale (LC_ALL, "");

  if (!qb_cli_take_device (&argc, argv))
    return 2;
  if (argc >= 2 && argv[1][0] != '-' && !g_file_test (argv[1], G_FILE_TEST_EXISTS))
    {
      for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
        if (strcmp (argv[1], commands[i].name) == 0)
          return commands[i].run (argc - 1, argv + 1);
      fprintf (stderr, "quantbench: no command or file named '%s'\n\n", argv[1]);
      print_help ();
      return 2;
    }
  if (argc >= 2 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0))
    {
      print_help ();
      return 0;
    }

#ifdef QB_HAVE_GUI
  if (has_display ())
    return qb_application_run (argc, argv);
  fprintf (stderr, "quantbench: no display found (DISPLAY and WAYLAND_DISPLAY are unset); "
                   "running the headless demo instead.\n");
#else
  (void) has_display;
  fprintf (stderr, "quantbench: built without the GUI; running the headless demo.\n");
#endif
  return qb_cmd_demo (0, NULL);
}
