/* SPDX-License-Identifier: MIT */
/* qb-bench-util.c — timers, the memory-read baseline, rate formatting. */
#include "qb-bench-util.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "qb-demo-model.h"
#include "qb-workers.h"

#define SLICE (4u << 20)

double
qb_bench_now (void)
{
  return g_get_monotonic_time () / 1e6;
}

double
qb_bench_cpu_seconds (void)
{
  struct rusage u;

  getrusage (RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

typedef struct
{
  const guint8 *data;
  gsize         size;
  guint64      *sums;     /* one per slice, so the reads cannot be dropped */
} ReadJob;

static void
read_slice (gint64 item, guint thread, gpointer user_data)
{
  ReadJob *job = user_data;
  gsize start = (gsize) item * SLICE, end = MIN (start + SLICE, job->size);
  const guint8 *p = job->data + start;
  gsize n = (end - start) / 8;
  guint64 acc[8] = { 0 }, total = 0;
  gsize i;

  /* Eight independent sums: the loop vectorizes and is bound by memory.
   * Loads go through memcpy, as the buffer need not be aligned. */
  for (i = 0; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++)
      {
        guint64 v;
        memcpy (&v, p + 8 * (i + k), 8);
        acc[k] += v;
      }
  for (; i < n; i++)
    {
      guint64 v;
      memcpy (&v, p + 8 * i, 8);
      acc[0] += v;
    }
  for (int k = 0; k < 8; k++)
    total += acc[k];
  job->sums[item] = total;
}

QbBenchTime
qb_bench_read_time (gconstpointer data, gsize size, guint n_threads, guint repeats)
{
  g_autoptr(QbWorkers) workers = qb_workers_new (n_threads);
  gint64 n_slices = (gint64) ((size + SLICE - 1) / SLICE);
  g_autofree guint64 *sums = g_new0 (guint64, MAX (n_slices, 1));
  ReadJob job = { data, size, sums };
  QbBenchTime best = { G_MAXDOUBLE, G_MAXDOUBLE };

  for (guint r = 0; r < MAX (repeats, 1); r++)
    {
      double t0 = qb_bench_now (), c0 = qb_bench_cpu_seconds ();
      qb_workers_run (workers, n_slices, read_slice, &job);
      best.wall = MIN (best.wall, qb_bench_now () - t0);
      best.cpu = MIN (best.cpu, qb_bench_cpu_seconds () - c0);
    }
  return best;
}

char *
qb_bench_format_rate (double bytes_per_second)
{
  return g_strdup_printf ("%.2f GB/s", bytes_per_second / 1e9);
}

void
qb_bench_print_header (void)
{
  printf ("  %-40s %12s %8s   %12s %8s\n", "", "wall clock", "ratio", "per CPU-s", "ratio");
}

void
qb_bench_print_rate (const char *label, double bytes, const QbBenchTime *t,
                     const QbBenchTime *baseline, double baseline_bytes)
{
  double wall = bytes / t->wall, cpu = bytes / MAX (t->cpu, 1e-9);
  g_autofree char *wall_text = qb_bench_format_rate (wall);
  g_autofree char *cpu_text = qb_bench_format_rate (cpu);

  if (baseline)
    printf ("  %-40s %12s %7.3fx   %12s %7.3fx\n", label, wall_text,
            wall / (baseline_bytes / baseline->wall), cpu_text,
            cpu / (baseline_bytes / MAX (baseline->cpu, 1e-9)));
  else
    printf ("  %-40s %12s %8s   %12s %8s\n", label, wall_text, "", cpu_text, "");
  fflush (stdout);
}

char *
qb_bench_cache_dir (void)
{
  const char *env = g_getenv ("QB_BENCH_CACHE");
  char *dir = env ? g_strdup (env)
                  : g_build_filename (g_get_user_cache_dir (), "quantbench", "bench", NULL);

  g_mkdir_with_parents (dir, 0755);
  return dir;
}

char *
qb_bench_demo_model (gint64 n_params, QbDType dtype)
{
  g_autofree char *dir = qb_bench_cache_dir ();
  g_autofree char *name = g_strdup_printf ("demo-v%d-%" G_GINT64_FORMAT "-%s-seed1.gguf",
                                           QB_DEMO_MODEL_VERSION, n_params,
                                           dtype == QB_DTYPE_F32 ? "f32" : "f16");
  char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;
  QbDemoModelSpec spec;
  double t0;

  if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return path;
  qb_demo_model_spec_init (&spec);
  spec.n_params = n_params;
  spec.dtype = dtype;
  printf ("generating %s ...\n", path);
  fflush (stdout);
  t0 = qb_bench_now ();
  if (!qb_demo_model_write (&spec, path, NULL, NULL, &error))
    g_error ("%s", error->message);
  printf ("  generated in %.1f s\n", qb_bench_now () - t0);
  return path;
}

void
qb_bench_data_span (QbModel *model, const guint8 **start, gsize *size)
{
  const guint8 *lo = NULL, *hi = NULL;

  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      const guint8 *p = t->data;
      if (lo == NULL || p < lo)
        lo = p;
      if (hi == NULL || p + t->n_bytes > hi)
        hi = p + t->n_bytes;
    }
  *start = lo;
  *size = hi - lo;
}

double
qb_bench_children_cpu_seconds (void)
{
  struct rusage u;

  getrusage (RUSAGE_CHILDREN, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec * 1e-6;
}

gboolean
qb_bench_spawn_time (const char * const *argv, char **envp, QbBenchTime *t)
{
  double t0 = qb_bench_now (), c0 = qb_bench_children_cpu_seconds ();
  g_autoptr(GError) error = NULL;
  int status;

  if (!g_spawn_sync (NULL, (char **) argv, envp,
                     G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                     NULL, NULL, NULL, NULL, &status, &error)
      || !g_spawn_check_wait_status (status, &error))
    {
      fprintf (stderr, "%s: %s\n", argv[0], error->message);
      return FALSE;
    }
  t->wall = qb_bench_now () - t0;
  t->cpu = qb_bench_children_cpu_seconds () - c0;
  return TRUE;
}
