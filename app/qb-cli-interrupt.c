/* SPDX-License-Identifier: MIT */
/* qb-cli-interrupt.c — long commands run on a thread of their own while
 * the main thread waits in a main loop, so that Ctrl-C, SIGTERM and a
 * closed terminal (SIGHUP) cancel the work cleanly — temporaries removed,
 * stored records ended as cancelled — instead of killing the process. */
#include "qb-cli.h"

#include <gio/gio.h>
#include <glib-unix.h>
#include <stdio.h>

typedef struct {
  QbCliWorkFunc  func;
  gpointer       data;
  GCancellable  *cancellable;
  GMainLoop     *loop;
  int            status;
} Work;

static gboolean
quit_loop (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

static gpointer
work_thread (gpointer data)
{
  Work *w = data;

  w->status = w->func (w->data, w->cancellable);
  g_idle_add (quit_loop, w->loop);
  return NULL;
}

static gboolean
on_interrupt (gpointer cancellable)
{
  fprintf (stderr, "\ninterrupted: cancelling\n");
  g_cancellable_cancel (cancellable);
  return G_SOURCE_CONTINUE;
}

int
qb_cli_run_interruptible (QbCliWorkFunc func, gpointer data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GError) error = NULL;
  Work w = { func, data, cancellable, loop, 1 };
  guint sigint = g_unix_signal_add (SIGINT, on_interrupt, cancellable);
  guint sigterm = g_unix_signal_add (SIGTERM, on_interrupt, cancellable);
  guint sighup = g_unix_signal_add (SIGHUP, on_interrupt, cancellable);
  GThread *thread = g_thread_try_new ("qb-command", work_thread, &w, &error);

  if (thread != NULL)
    {
      g_main_loop_run (loop);
      g_thread_join (thread);
    }
  g_source_remove (sigint);
  g_source_remove (sigterm);
  g_source_remove (sighup);
  return thread != NULL ? w.status : qb_cli_fail (error);
}
