/* SPDX-License-Identifier: MIT */
/* qb-model-stats.c — per-tensor weight statistics over the whole model.
 *
 * The readable tensors are cut into chunks of QB_STATS_CHUNK values; a
 * window of chunks is handed to the workers, each chunk's result lands in
 * its own slot, and the slots are merged into their tensors in chunk order
 * once the window is done.  Memory: one chunk buffer per thread and one
 * window of slots.
 */
#include "qb-model-stats.h"

#define WINDOW 1024

typedef struct
{
  guint  tensor;
  gint64 first;
  gint64 n;
} Chunk;

typedef struct
{
  QbModel             *model;
  QbTensorStats       *stats;
  gboolean             outlier_pass;
  float              **buffers;        /* one per thread */
  Chunk                chunks[WINDOW];
  QbMoments            moments[WINDOW];
  guint64              outliers[WINDOW];
} Run;

static void
run_chunk (gint64 item, guint thread, gpointer data)
{
  Run *run = data;
  const Chunk *c = &run->chunks[item];
  float *buf = run->buffers[thread];

  /* Types and ranges were checked when the chunks were made. */
  qb_model_read_range (run->model, c->tensor, c->first, c->n, buf, NULL);
  if (!run->outlier_pass)
    {
      qb_moments_init (&run->moments[item]);
      qb_moments_add (&run->moments[item], buf, c->n);
    }
  else
    {
      const QbMoments *m = &run->stats[c->tensor].moments;
      run->outliers[item] = qb_moments_count_outliers (buf, c->n, m->mean,
                                                       qb_moments_outlier_radius (m));
    }
}

/* Cuts the next chunks, from tensor *tensor at value *pos, into the window. */
static guint
fill_window (Run *run, guint *tensor, gint64 *pos)
{
  guint n_tensors = qb_model_get_n_tensors (run->model);
  guint n = 0;

  while (n < WINDOW && *tensor < n_tensors)
    {
      const QbTensor *t = qb_model_get_tensor (run->model, *tensor);

      if (!run->stats[*tensor].readable || *pos >= t->n_params)
        {
          (*tensor)++;
          *pos = 0;
          continue;
        }
      run->chunks[n] = (Chunk) { *tensor, *pos, MIN (QB_STATS_CHUNK, t->n_params - *pos) };
      *pos += run->chunks[n].n;
      n++;
    }
  return n;
}

static gboolean
run_pass (Run *run, QbWorkers *workers, double done_before, guint64 total,
          QbStatsProgressFunc progress, gpointer user_data, GCancellable *cancellable, GError **error)
{
  guint tensor = 0, n;
  gint64 pos = 0;
  guint64 done = 0;

  while ((n = fill_window (run, &tensor, &pos)) > 0)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      qb_workers_run (workers, n, run_chunk, run);
      for (guint i = 0; i < n; i++)
        {
          QbTensorStats *s = &run->stats[run->chunks[i].tensor];
          if (!run->outlier_pass)
            qb_moments_merge (&s->moments, &run->moments[i]);
          else
            s->n_outliers += run->outliers[i];
          done += (guint64) run->chunks[i].n;
        }
      if (progress)
        progress (done_before + 0.5 * (double) done / (double) MAX (total, 1), user_data);
    }
  return TRUE;
}

gboolean
qb_model_compute_stats (QbModel *model, QbWorkers *workers, QbTensorStats *stats,
                        QbStatsProgressFunc progress, gpointer user_data,
                        GCancellable *cancellable, GError **error)
{
  guint n_threads = qb_workers_get_n_threads (workers);
  g_autofree Run *run = g_new0 (Run, 1);
  guint64 total = 0;
  gboolean ok;

  run->model = model;
  run->stats = stats;
  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);

      stats[i] = (QbTensorStats) { .readable = qb_dtype_is_readable (t->dtype) };
      qb_moments_init (&stats[i].moments);
      if (stats[i].readable)
        total += (guint64) t->n_params;
    }

  run->buffers = g_new (float *, n_threads);
  for (guint i = 0; i < n_threads; i++)
    run->buffers[i] = g_new (float, QB_STATS_CHUNK);

  ok = run_pass (run, workers, 0.0, total, progress, user_data, cancellable, error);
  run->outlier_pass = TRUE;
  ok = ok && run_pass (run, workers, 0.5, total, progress, user_data, cancellable, error);

  for (guint i = 0; i < n_threads; i++)
    g_free (run->buffers[i]);
  g_free (run->buffers);
  return ok;
}
