/* SPDX-License-Identifier: MIT */
/* qb-cmd-formats.c — `quantbench formats`: the quantization formats and methods. */
#include <stdio.h>

#include "qb-cli.h"
#include "qb-format.h"
#include "qb-method.h"

int
qb_cmd_formats (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- list the quantization formats");

  if (!qb_cli_parse (context, &argc, &argv))
    return 2;
  printf ("%-16s %-6s %4s %6s %7s %-7s %s\n", "format", "family", "bits", "block", "bpw",
          "native", "summary");
  for (guint i = 0; i < qb_format_count (); i++)
    {
      const QbFormat *f = qb_format_get (i);
      char block[16];

      if (f->scope == QB_SCOPE_BLOCK)
        g_snprintf (block, sizeof block, "%u", f->block_size);
      else
        g_strlcpy (block, f->scope == QB_SCOPE_CHANNEL ? "row" : "tensor", sizeof block);
      /* bpw of a 4096-wide row: scales per row or tensor amortize there. */
      printf ("%-16s %-6s %4u %6s %7.3f %-7s %s\n", f->name, qb_format_family_name (f->family),
              f->bits, block, qb_format_bpw (f, 4096),
              f->dtype != QB_DTYPE_INVALID ? qb_dtype_name (f->dtype) : "-", f->summary);
    }
  printf ("\nMethods:\n");
  for (guint i = 0; i < qb_method_count (); i++)
    printf ("  %-8s %s\n", qb_method_get (i)->name, qb_method_get (i)->summary);
  return 0;
}
