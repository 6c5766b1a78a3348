/* SPDX-License-Identifier: MIT */
/* qb-progress-note.h — the newest progress of a worker thread, handed to the
 * main loop: the worker posts, the main loop takes. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  /* Written by the worker, under lock. */
  GMutex  lock;
  char   *pending_text;
  char   *pending_tensor;
  double  pending_fraction;

  /* The main loop's copy. */
  char   *text;
  char   *tensor;
  double  fraction;
} QbProgressNote;

void qb_progress_note_init  (QbProgressNote *note);
void qb_progress_note_clear (QbProgressNote *note);
void qb_progress_note_post  (QbProgressNote *note,
                             char           *text,
                             const char     *tensor,
                             double          fraction);
void qb_progress_note_take  (QbProgressNote *note);

G_END_DECLS
