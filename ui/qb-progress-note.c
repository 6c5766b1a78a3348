/* SPDX-License-Identifier: MIT */
/* qb-progress-note.c — the newest progress of a worker thread, handed to the
 * main loop.  Only the newest message matters, so a post replaces what the
 * main loop has not taken yet. */
#include "qb-progress-note.h"

void
qb_progress_note_init (QbProgressNote *note)
{
  *note = (QbProgressNote) { 0 };
  g_mutex_init (&note->lock);
}

void
qb_progress_note_clear (QbProgressNote *note)
{
  g_free (note->pending_text);
  g_free (note->pending_tensor);
  g_free (note->text);
  g_free (note->tensor);
  g_mutex_clear (&note->lock);
}

/* Worker thread.  Takes text; tensor may be NULL. */
void
qb_progress_note_post (QbProgressNote *note,
                       char           *text,
                       const char     *tensor,
                       double          fraction)
{
  g_mutex_lock (&note->lock);
  g_free (note->pending_text);
  note->pending_text = text;
  g_free (note->pending_tensor);
  note->pending_tensor = g_strdup (tensor);
  note->pending_fraction = fraction;
  g_mutex_unlock (&note->lock);
}

/* Main loop: the newest post becomes the note's text, tensor and fraction. */
void
qb_progress_note_take (QbProgressNote *note)
{
  g_mutex_lock (&note->lock);
  if (note->pending_text != NULL)
    {
      g_free (note->text);
      note->text = g_steal_pointer (&note->pending_text);
      g_free (note->tensor);
      note->tensor = g_steal_pointer (&note->pending_tensor);
    }
  note->fraction = note->pending_fraction;
  g_mutex_unlock (&note->lock);
}
