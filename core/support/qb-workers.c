/* SPDX-License-Identifier: MIT */
/* qb-workers.c — persistent threads that share loops by an atomic counter. */
#include "qb-workers.h"

#include <unistd.h>

struct _QbWorkers
{
  guint       n_threads;
  GThread   **threads;       /* n_threads - 1: the caller is thread 0 */
  GMutex      mutex;
  GCond       start_cond;
  GCond       done_cond;
  guint64     generation;    /* bumped for each run; workers wait for a new one */
  gboolean    quit;

  /* The current run. */
  QbWorkFunc  fn;
  gpointer    user_data;
  gint64      n_items;
  gint64      next_item;     /* atomic */
  guint       n_busy;        /* workers still in this run, under mutex */

  /* n_threads * QB_WORKERS_SCRATCH_SLOTS buffers and their sizes. */
  gpointer   *scratch;
  gsize      *scratch_size;
};

typedef struct
{
  QbWorkers *workers;
  guint      index;
} WorkerArg;

guint
qb_cpu_count (void)
{
  long n = sysconf (_SC_NPROCESSORS_ONLN);
  return n > 0 ? (guint) n : 1;
}

static void
drain_items (QbWorkers *w, guint thread)
{
  for (;;)
    {
      gint64 item = __atomic_fetch_add (&w->next_item, 1, __ATOMIC_RELAXED);
      if (item >= w->n_items)
        break;
      w->fn (item, thread, w->user_data);
    }
}

static gpointer
worker_main (gpointer data)
{
  WorkerArg *arg = data;
  QbWorkers *w = arg->workers;
  guint64 seen = 0;

  for (;;)
    {
      g_mutex_lock (&w->mutex);
      while (!w->quit && w->generation == seen)
        g_cond_wait (&w->start_cond, &w->mutex);
      if (w->quit)
        {
          g_mutex_unlock (&w->mutex);
          break;
        }
      seen = w->generation;
      g_mutex_unlock (&w->mutex);

      drain_items (w, arg->index);

      g_mutex_lock (&w->mutex);
      if (--w->n_busy == 0)
        g_cond_signal (&w->done_cond);
      g_mutex_unlock (&w->mutex);
    }
  g_free (arg);
  return NULL;
}

QbWorkers *
qb_workers_new (guint n_threads)
{
  QbWorkers *w = g_new0 (QbWorkers, 1);

  w->n_threads = MIN (n_threads ? n_threads : qb_cpu_count (), QB_WORKERS_MAX_THREADS);
  g_mutex_init (&w->mutex);
  g_cond_init (&w->start_cond);
  g_cond_init (&w->done_cond);
  w->threads = g_new0 (GThread *, w->n_threads);
  w->scratch = g_new0 (gpointer, w->n_threads * QB_WORKERS_SCRATCH_SLOTS);
  w->scratch_size = g_new0 (gsize, w->n_threads * QB_WORKERS_SCRATCH_SLOTS);
  for (guint i = 1; i < w->n_threads; i++)
    {
      WorkerArg *arg = g_new (WorkerArg, 1);
      arg->workers = w;
      arg->index = i;
      w->threads[i] = g_thread_try_new ("qb-worker", worker_main, arg, NULL);
      if (w->threads[i] == NULL)
        {
          /* Refused (EAGAIN under a process limit): fewer threads, not an abort. */
          g_free (arg);
          w->n_threads = i;
          break;
        }
    }
  return w;
}

void
qb_workers_free (QbWorkers *w)
{
  if (w == NULL)
    return;
  g_mutex_lock (&w->mutex);
  w->quit = TRUE;
  g_cond_broadcast (&w->start_cond);
  g_mutex_unlock (&w->mutex);
  for (guint i = 1; i < w->n_threads; i++)
    g_thread_join (w->threads[i]);
  g_free (w->threads);
  for (guint i = 0; i < w->n_threads * QB_WORKERS_SCRATCH_SLOTS; i++)
    g_aligned_free (w->scratch[i]);
  g_free (w->scratch);
  g_free (w->scratch_size);
  g_mutex_clear (&w->mutex);
  g_cond_clear (&w->start_cond);
  g_cond_clear (&w->done_cond);
  g_free (w);
}

guint
qb_workers_get_n_threads (QbWorkers *w)
{
  return w->n_threads;
}

gpointer
qb_workers_scratch (QbWorkers *w, guint thread, guint slot, gsize size)
{
  guint k = thread * QB_WORKERS_SCRATCH_SLOTS + slot;

  g_return_val_if_fail (thread < w->n_threads && slot < QB_WORKERS_SCRATCH_SLOTS, NULL);
  if (w->scratch_size[k] < size)
    {
      g_aligned_free (w->scratch[k]);
      w->scratch[k] = g_aligned_alloc (MAX (size, 1), 1, 64);
      w->scratch_size[k] = size;
    }
  return w->scratch[k];
}

void
qb_workers_run (QbWorkers *w, gint64 n_items, QbWorkFunc fn, gpointer user_data)
{
  if (n_items <= 0)
    return;
  if (w->n_threads == 1 || n_items == 1)
    {
      for (gint64 i = 0; i < n_items; i++)
        fn (i, 0, user_data);
      return;
    }

  g_mutex_lock (&w->mutex);
  w->fn = fn;
  w->user_data = user_data;
  w->n_items = n_items;
  w->next_item = 0;
  w->n_busy = w->n_threads - 1;
  w->generation++;
  g_cond_broadcast (&w->start_cond);
  g_mutex_unlock (&w->mutex);

  drain_items (w, 0);

  g_mutex_lock (&w->mutex);
  while (w->n_busy > 0)
    g_cond_wait (&w->done_cond, &w->mutex);
  g_mutex_unlock (&w->mutex);
}
