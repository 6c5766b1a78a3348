/* SPDX-License-Identifier: MIT */
/* qb-cli-progress.c — a progress bar on stderr. */
#include "qb-cli-progress.h"

#include <stdarg.h>
#include <stdio.h>

#define BAR_CELLS 30

void
qb_cli_progress_draw (QbCliProgress *bar, double fraction, gboolean final, const char *format, ...)
{
  int filled = (int) (CLAMP (fraction, 0.0, 1.0) * BAR_CELLS);
  char cells[BAR_CELLS + 1];
  va_list ap;

  if (!qb_rate_limit_pass (&bar->limit, 100, final))
    return;
  bar->drawn = TRUE;
  for (int i = 0; i < BAR_CELLS; i++)
    cells[i] = i < filled ? '#' : '.';
  cells[BAR_CELLS] = '\0';
  fprintf (stderr, "\r[%s] %3.0f%%  ", cells, fraction * 100);
  va_start (ap, format);
  vfprintf (stderr, format, ap);
  va_end (ap);
  fflush (stderr);
}

void
qb_cli_progress_end (QbCliProgress *bar)
{
  if (bar->drawn)
    fprintf (stderr, "\n");
  bar->drawn = FALSE;
}
