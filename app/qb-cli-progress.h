/* SPDX-License-Identifier: MIT */
/* qb-cli-progress.h — the one-line progress bar commands draw on a
 * terminal's stderr: "[#####.....]  42%  what is happening". */
#pragma once

#include <glib.h>

#include "qb-relay.h"

G_BEGIN_DECLS

typedef struct {
  QbRateLimit limit;    /* of the redraws */
  gboolean drawn;
} QbCliProgress;

/* Redraws the line, at most every 100 ms unless final (the last state is
 * always drawn).  Called from any one thread at a time. */
void qb_cli_progress_draw (QbCliProgress *bar,
                           double         fraction,
                           gboolean       final,
                           const char    *format,
                           ...) G_GNUC_PRINTF (4, 5);
/* Ends the line when anything was drawn. */
void qb_cli_progress_end  (QbCliProgress *bar);

G_END_DECLS
