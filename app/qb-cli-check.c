/* SPDX-License-Identifier: MIT */
/* qb-cli-check.c — options checked before any work: outputs against
 * every input, thread counts against what a process can have. */
#include "qb-cli.h"
#include "qb-file.h"
#include "qb-workers.h"

#include <stdio.h>
#include <string.h>

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
  g_autoptr(GPtrArray) left = NULL;

  if (!qb_file_check_output (out, option, inputs, n_inputs, error) ||
      (texts != NULL && !qb_file_check_output (out, option, (const char * const *) texts,
                                               g_strv_length (texts), error)))
    return FALSE;
  /* What a killed run left beside the output goes now, and is named. */
  stale = out ? qb_file_clean_stale_temps (out, &left) : NULL;
  for (guint i = 0; stale && i < stale->len; i++)
    fprintf (stderr, "quantbench: removed %s, left by an interrupted run\n",
             (const char *) g_ptr_array_index (stale, i));
  /* An earlier version's temporary that may still be in use (or is not
   * this user's, or is newer than this run) stays: the user decides. */
  for (guint i = 0; left && i < left->len; i++)
    fprintf (stderr, "quantbench: %s looks like a temporary file of an earlier run of an older "
             "version; it is kept (it may be in use); remove it once no program writes %s\n",
             (const char *) g_ptr_array_index (left, i), out);
  return TRUE;
}

char *
qb_cli_safe_text (const char *text)
{
  g_autofree char *valid = g_utf8_make_valid (text ? text : "", -1);
  GString *out = g_string_sized_new (strlen (valid));

  /* Control characters (C0, DEL, C1) could move the cursor, retitle the
   * terminal or hide text: they are shown as escapes. */
  for (const char *p = valid; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0))
        g_string_append_printf (out, c < 0x80 ? "\\x%02x" : "\\u%04x", c);
      else
        g_string_append_len (out, p, g_utf8_next_char (p) - p);
    }
  return g_string_free (out, FALSE);
}
