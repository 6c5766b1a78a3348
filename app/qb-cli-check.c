/* SPDX-License-Identifier: MIT */
/* qb-cli-check.c — options checked before any work: outputs against
 * every input, thread counts against what a process can have. */
#include "qb-cli.h"
#include "qb-file.h"
#include "qb-workers.h"

#include <stdio.h>

gboolean
qb_cli_check_threads (int threads)
{
  if (threads >= 0 && threads <= QB_WORKERS_MAX_THREADS)
    return TRUE;
  fprintf (stderr, "quantbench: --threads %d: give 1 to %d (0 or none: one per core)\n",
           threads, QB_WORKERS_MAX_THREADS);
  return FALSE;
}

gboolean
qb_cli_check_output (const char *out, const char *option, const char * const *inputs,
                     guint n_inputs, char **texts, GError **error)
{
  g_autoptr(GPtrArray) stale = NULL;

  if (!qb_file_check_output (out, option, inputs, n_inputs, error) ||
      (texts != NULL && !qb_file_check_output (out, option, (const char * const *) texts,
                                               g_strv_length (texts), error)))
    return FALSE;
  /* What a killed run left beside the output goes now, and is named. */
  stale = out ? qb_file_clean_stale_temps (out) : NULL;
  for (guint i = 0; stale && i < stale->len; i++)
    fprintf (stderr, "quantbench: removed %s, left by an interrupted run\n",
             (const char *) g_ptr_array_index (stale, i));
  return TRUE;
}
