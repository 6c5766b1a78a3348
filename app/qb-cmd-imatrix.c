/* SPDX-License-Identifier: MIT */
/* qb-cmd-imatrix.c — `quantbench imatrix MODEL --calib FILE --out FILE`:
 * an importance matrix in llama.cpp's formats. */
#include <stdio.h>
#include <string.h>

#include "qb-cli.h"
#include "qb-cli-calib.h"
#include "qb-imatrix.h"

/* The work, on a thread of its own: a signal cancels it, nothing is
 * written (the file appears whole, by rename, or not at all) and the
 * command exits 130. */
typedef struct {
  const char        *model_path;
  const char        *out;
  QbCliCalibOptions *co;
  int                threads;
} ImatrixCommand;

static int
run_command (gpointer data, GCancellable *cancellable)
{
  ImatrixCommand *c = data;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbImatrix) im = NULL;
  g_autoptr(GError) error = NULL;
  QbActivationStats *stats;
  gboolean ok;

  model = qb_model_open (c->model_path, &error);
  if (model == NULL)
    return qb_cli_fail (error);
  stats = qb_cli_calib_compute (model, NULL, c->co, c->threads, FALSE, cancellable, &error);
  if (stats == NULL)
    return qb_cli_fail_or_cancelled (error);
  im = qb_activation_stats_get_imatrix (stats, c->co->process_output);
  qb_activation_stats_free (stats);
  /* A signal while saving: the save completes (it is short and atomic). */
  if (g_cancellable_set_error_if_cancelled (cancellable, &error))
    return qb_cli_fail_or_cancelled (error);
  ok = g_str_has_suffix (c->out, ".dat") ? qb_imatrix_save_dat (im, c->out, &error)
                                         : qb_imatrix_save_gguf (im, c->out, &error);
  if (!ok)
    return qb_cli_fail (error);
  printf ("wrote %s: %u entries, %u chunks of %u tokens\n", c->out, qb_imatrix_get_n_entries (im),
          qb_imatrix_get_n_chunks (im), qb_imatrix_get_chunk_size (im));
  return 0;
}

int
qb_cmd_imatrix (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("MODEL - compute an importance matrix on calibration text");
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  QbCliCalibOptions co = { 0 };
  int threads = 0;
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
  {
    ImatrixCommand command = { argv[1], out, &co, threads };
    int status = qb_cli_run_interruptible (run_command, &command);

    qb_cli_calib_options_clear (&co);
    return status;
  }
}
