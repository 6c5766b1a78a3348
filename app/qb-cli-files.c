/* SPDX-License-Identifier: MIT */
/* qb-cli-files.c — outputs checked against every input before any work. */
#include "qb-cli.h"
#include "qb-file.h"

gboolean
qb_cli_check_output (const char *out, const char *option, const char * const *inputs,
                     guint n_inputs, char **texts, GError **error)
{
  if (!qb_file_check_output (out, option, inputs, n_inputs, error))
    return FALSE;
  return texts == NULL
         || qb_file_check_output (out, option, (const char * const *) texts, g_strv_length (texts),
                                  error);
}
