/* SPDX-License-Identifier: MIT */
/* qb-bench-util.h — helpers shared by the benchmarks in tests/bench.
 *
 * Benchmarks report a rate beside a baseline measured in the same run on
 * the same machine (here: how fast plain threads can read the same bytes),
 * so that figures from different machines compare as ratios.
 */
#pragma once

#include <glib.h>

#include "qb-model.h"

G_BEGIN_DECLS

/* Monotonic seconds. */
double  qb_bench_now             (void);
/* CPU seconds used by the process so far, all threads (user + system).
 * Rates per CPU-second hold up better than wall-clock rates on a machine
 * that other work shares. */
double  qb_bench_cpu_seconds     (void);

/* One timed measurement. */
typedef struct {
  double wall;        /* seconds */
  double cpu;         /* CPU seconds, all threads */
} QbBenchTime;

/* How long n_threads threads (0: one per CPU) take to read size bytes at
 * data, each summing its own slices; the best of repeats runs.  Touch the
 * memory once before timing if it is a fresh mapping. */
QbBenchTime qb_bench_read_time   (gconstpointer  data,
                                  gsize          size,
                                  guint          n_threads,
                                  guint          repeats);

/* CPU seconds used by the children this process has waited for. */
double  qb_bench_children_cpu_seconds (void);
/* Runs argv (NULL-terminated) once as a whole process, in envp (NULL: this
 * process's environment), its output discarded; its wall and CPU time in
 * t.  FALSE, with the reason on stderr, when it cannot run or fails. */
gboolean qb_bench_spawn_time     (const char * const *argv,
                                  char              **envp,
                                  QbBenchTime        *t);

/* "12.34 GB/s" (decimal gigabytes). */
char   *qb_bench_format_rate     (double         bytes_per_second);

/* Prints "  label   12.34 GB/s  0.45 x   |  12.00 GB/s  0.40 x" for bytes
 * processed in t, by wall clock and per CPU-second, with ratios to the
 * baseline's rates (omitted when baseline is NULL). */
void    qb_bench_print_rate      (const char        *label,
                                  double             bytes,
                                  const QbBenchTime *t,
                                  const QbBenchTime *baseline,
                                  double             baseline_bytes);
void    qb_bench_print_header    (void);

/* Where benchmarks keep generated inputs: $QB_BENCH_CACHE, else
 * $XDG_CACHE_HOME/quantbench/bench; created if missing. */
char   *qb_bench_cache_dir       (void);
/* The demo model of n_params in dtype (F16 or F32), generated into the
 * cache folder the first time. */
char   *qb_bench_demo_model      (gint64             n_params,
                                  QbDType            dtype);
/* The span of the model's mapping that holds tensor data. */
void    qb_bench_data_span       (QbModel           *model,
                                  const guint8     **start,
                                  gsize             *size);

G_END_DECLS
