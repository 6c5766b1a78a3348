/* SPDX-License-Identifier: MIT */
/* qb-cli-text.c — how every command writes sizes, shapes and numbers. */
#include <math.h>

#include "qb-cli.h"

char *
qb_cli_format_size (guint64 bytes)
{
  return g_format_size_full (bytes, G_FORMAT_SIZE_IEC_UNITS);
}

char *
qb_cli_shape (const QbTensor *t, const char *separator)
{
  GString *s = g_string_new (NULL);

  for (guint d = 0; d < MAX (t->n_dims, 1); d++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, d ? separator : "", t->ne[d]);
  return g_string_free (s, FALSE);
}

char *
qb_cli_number (double v, int digits, char style)
{
  if (isnan (v))
    return g_strdup ("-");
  if (isinf (v))
    return g_strdup (v > 0 ? "inf" : "-inf");
  return style == 'g' ? g_strdup_printf ("%.*g", digits, v) : g_strdup_printf ("%.*f", digits, v);
}
