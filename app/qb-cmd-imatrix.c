/* SPDX-License-Identifier: MIT */
/* qb-cmd-imatrix.c — `quantbench imatrix MODEL --calib FILE --out FILE`:
 * an importance matrix in llama.cpp's formats. */
#include <stdio.h>
#include <string.h>

#include "qb-cli.h"
#include "qb-cli-calib.h"
#include "qb-imatrix.h"

int
qb_cmd_imatrix (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("MODEL - compute an importance matrix on calibration text");
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbImatrix) im = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  QbCliCalibOptions co = { 0 };
  QbActivationStats *stats;
  int threads = 0;
  gboolean ok;
  GOptionEntry entries[] = {
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Write the importance matrix: .dat (llama.cpp's legacy format) or .gguf", "FILE" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "Threads (default: all cores)", "N" },
    { NULL }
  };

  g_option_context_add_main_entries (context, entries, NULL);
  qb_cli_calib_add_entries (context, &co);
  g_option_context_set_description (context,
    "Runs the model over the calibration chunks and sums, for every linear layer's input,\n"
    "the squares of each column, as llama-imatrix does; llama-quantize --imatrix reads the .dat.");
  if (!qb_cli_parse (context, &argc, &argv) || !qb_cli_check_threads (threads))
    return 2;
  if (argc != 2 || co.calib == NULL || out == NULL
      || !(g_str_has_suffix (out, ".dat") || g_str_has_suffix (out, ".gguf")))
    {
      fprintf (stderr, "quantbench imatrix: expected MODEL, --calib FILE and --out FILE.dat|FILE.gguf (see --help)\n");
      qb_cli_calib_options_clear (&co);
      return 2;
    }
  {
    const char *inputs[] = { argv[1] };
    if (!qb_cli_check_output (out, "--out", inputs, 1, co.calib, &error))
      return qb_cli_fail (error);
  }
  model = qb_model_open (argv[1], &error);
  if (model == NULL)
    return qb_cli_fail (error);
  stats = qb_cli_calib_compute (model, NULL, &co, threads, FALSE, &error);
  if (stats == NULL)
    return qb_cli_fail (error);
  im = qb_activation_stats_get_imatrix (stats, co.process_output);
  qb_activation_stats_free (stats);
  ok = g_str_has_suffix (out, ".dat") ? qb_imatrix_save_dat (im, out, &error)
                                      : qb_imatrix_save_gguf (im, out, &error);
  qb_cli_calib_options_clear (&co);
  if (!ok)
    return qb_cli_fail (error);
  printf ("wrote %s: %u entries, %u chunks of %u tokens\n", out, qb_imatrix_get_n_entries (im),
          qb_imatrix_get_n_chunks (im), qb_imatrix_get_chunk_size (im));
  return 0;
}
