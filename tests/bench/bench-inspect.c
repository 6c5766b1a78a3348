/* SPDX-License-Identifier: MIT */
/* bench-inspect.c — throughput of `quantbench inspect --stats`.
 *
 * Run it with one command from the source root:
 *
 *   meson test -C build --benchmark --suite bench -v
 *
 * or directly: ./build/tests/bench/bench-inspect [--params 370M] [--threads N]
 *
 * The first run generates a ~370M-parameter F16 demo model (about 740 MB)
 * into $QB_BENCH_CACHE (default ~/.cache/quantbench/bench) and reuses it
 * afterwards.  It then reports, with one thread and with all threads, the
 * rate at which the statistics of `inspect --stats` are computed (tensor
 * bytes per second of the whole computation: both passes, moments then
 * outliers) beside the rate at which plain threads merely read the same
 * mapped bytes, measured in the same run.  The statistics are computed by
 * qb_model_compute_stats(), the function `inspect --stats` calls.
 */
#include <stdio.h>

#include "qb-bench-util.h"
#include "qb-demo-model.h"
#include "qb-model-stats.h"

static QbBenchTime
stats_time (QbModel *model, guint n_threads, guint repeats)
{
  g_autoptr(QbWorkers) workers = qb_workers_new (n_threads);
  g_autofree QbTensorStats *stats = g_new (QbTensorStats, qb_model_get_n_tensors (model));
  g_autoptr(GError) error = NULL;
  QbBenchTime best = { G_MAXDOUBLE, G_MAXDOUBLE };

  for (guint r = 0; r < repeats; r++)
    {
      double t0 = qb_bench_now (), c0 = qb_bench_cpu_seconds ();
      if (!qb_model_compute_stats (model, workers, stats, NULL, NULL, NULL, &error))
        g_error ("%s", error->message);
      best.wall = MIN (best.wall, qb_bench_now () - t0);
      best.cpu = MIN (best.cpu, qb_bench_cpu_seconds () - c0);
    }
  return best;
}

int
main (int argc, char **argv)
{
  g_autofree char *params = NULL;
  int threads = 0, repeats = 2;
  const GOptionEntry entries[] = {
    { "params", 0, 0, G_OPTION_ARG_STRING, &params, "Demo model size (default 370M)", "SIZE" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "Threads for the parallel runs (default: all CPUs)", "N" },
    { "repeats", 0, 0, G_OPTION_ARG_INT, &repeats, "Runs per figure; the best is kept (default 2)", "N" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("— inspect --stats throughput");
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autofree char *path = NULL;
  gint64 n_params = 370000000;
  const guint8 *data;
  gsize size;
  guint n_all;
  QbBenchTime read1, read_all, stats1, stats_all;
  double t0, bytes;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) ||
      (params && !qb_demo_model_parse_size (params, &n_params)) || threads < 0 || repeats < 1)
    {
      fprintf (stderr, "bench-inspect: %s\n", error ? error->message : "bad option");
      return 2;
    }
  n_all = threads ? (guint) threads : qb_cpu_count ();

  path = qb_bench_demo_model (n_params, QB_DTYPE_F16);
  t0 = qb_bench_now ();
  model = qb_model_open (path, &error);
  if (model == NULL)
    g_error ("%s", error->message);
  printf ("bench-inspect: %s\n  %" G_GINT64_FORMAT " parameters, %.2f GB of tensor data, "
          "opened in %.2f ms, %u CPUs\n\n", path, qb_model_get_n_params (model),
          qb_model_get_n_bytes (model) / 1e9, (qb_bench_now () - t0) * 1e3, qb_cpu_count ());

  qb_bench_data_span (model, &data, &size);
  bytes = qb_model_get_n_bytes (model);
  qb_bench_read_time (data, size, n_all, 1);           /* fault the mapping in */

  read1 = qb_bench_read_time (data, size, 1, 3);
  read_all = qb_bench_read_time (data, size, n_all, 3);
  stats1 = stats_time (model, 1, repeats);
  stats_all = stats_time (model, n_all, repeats);

  qb_bench_print_header ();
  qb_bench_print_rate ("memory read, 1 thread (baseline)", size, &read1, NULL, 0);
  {
    g_autofree char *label = g_strdup_printf ("memory read, %u threads (baseline)", n_all);
    qb_bench_print_rate (label, size, &read_all, NULL, 0);
  }
  qb_bench_print_rate ("inspect --stats, 1 thread", bytes, &stats1, &read1, size);
  {
    g_autofree char *label = g_strdup_printf ("inspect --stats, %u threads", n_all);
    qb_bench_print_rate (label, bytes, &stats_all, &read_all, size);
  }
  printf ("\n  thread scaling of inspect --stats: %.2f x with %u threads (wall clock)\n",
          stats1.wall / stats_all.wall, n_all);
  return 0;
}
