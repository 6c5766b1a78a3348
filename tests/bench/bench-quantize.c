/* SPDX-License-Identifier: MIT */
/* bench-quantize.c — quantization throughput in GB/s of input weights.
 *
 * Run it with one command from the source root:
 *
 *   meson test -C build --benchmark --suite bench -v
 *
 * or directly: ./build/tests/bench/bench-quantize [--params 370M] [--threads N]
 *              [--repeats N] [--formats Q8_0,Q4_K] [--pass measure|quantize]
 *              [--llama-quantize PATH] [--quantbench PATH] [--process-only]
 *
 * On the ~370M-parameter F16 demo model (generated once into
 * $QB_BENCH_CACHE, shared with bench-inspect), it reports the rate at
 * which plain threads read the mapped weights (the baseline, measured in
 * the same run), then for Q8_0, Q4_0, Q4_K, Q6_K, INT4_G128 and NF4 the
 * rate of a whole quantization job — pre-pass, quantization,
 * dequantization, every metric and the three histograms — and of the
 * quantization alone (a job with metrics off), on one thread and on all
 * threads, by wall clock and per CPU-second (steadier on a shared
 * machine), with the ratio to the baseline.  The engine's target: Q8_0
 * and Q4_0 quantized alone on all threads at 40% of the memory-read rate
 * or more; a summary says whether this run met it.
 *
 * Whole process, as a user runs it: the quantbench executable (the one
 * meson built, or --quantbench PATH) on the same file, the default command
 * (`quantize --default F --out FILE`: metrics, three histograms, the
 * experiment saved to a database in a temporary folder) beside the bare
 * one (`--no-metrics --no-save`), run alternately, best of --repeats each,
 * each writing a new file (the previous run's output is removed untimed);
 * the default as a first run of the model (an empty scan cache) and as a
 * later one (the pre-pass of the F16 tensors from the scan cache),
 * with the machine's load average beside each pair; the target is the
 * default at most 1.3 times the bare run for Q8_0, Q4_0, Q4_K and Q6_K,
 * and at most half of llama-quantize's time for Q4_0 and Q8_0 when it is
 * at hand (said so when it is not).  --process-only runs only this part.
 *
 * With llama.cpp's llama-quantize (--llama-quantize PATH, or
 * $QB_LLAMA_QUANTIZE, or the one meson found), the ggml types are also
 * run through it with --pure on the same file and thread counts, against
 * our job exporting a GGUF, so both read the model, quantize and write a
 * file.  Optional: without it that part is skipped.
 */
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "qb-bench-util.h"
#include "qb-demo-model.h"
#include "qb-job.h"
#include "qb-model.h"

static const char *default_formats = "Q8_0,Q4_0,Q4_K,Q6_K,INT4_G128,NF4";

/* The best of repeats runs of a job with one default format. */
static QbBenchTime
job_time (QbModel *model, const char *format, guint threads, const char *out,
          gboolean metrics, guint repeats)
{
  QbBenchTime best = { G_MAXDOUBLE, G_MAXDOUBLE };

  for (guint r = 0; r < repeats; r++)
    {
      g_autoptr(QbPlan) plan = qb_plan_new ();
      g_autoptr(QbJob) job = NULL;
      g_autoptr(GError) error = NULL;
      double t0, c0;

      qb_plan_set_default_format (plan, format);
      job = qb_job_new (model, plan);
      qb_job_set_threads (job, threads);
      qb_job_set_metrics (job, metrics);
      if (out)
        qb_job_set_export (job, QB_EXPORT_GGUF, out);
      t0 = qb_bench_now ();
      c0 = qb_bench_cpu_seconds ();
      if (!qb_job_run (job, NULL, &error))
        g_error ("%s: %s", format, error->message);
      best.wall = MIN (best.wall, qb_bench_now () - t0);
      best.cpu = MIN (best.cpu, qb_bench_cpu_seconds () - c0);
      if (out)
        g_unlink (out);
    }
  return best;
}

/* llama-quantize --pure MODEL OUT TYPE THREADS, best of repeats; FALSE
 * when it fails. */
static gboolean
llama_time (const char *tool, const char *model, const char *format, guint threads,
            const char *out, guint repeats, QbBenchTime *best)
{
  g_autofree char *type = g_ascii_strdown (format, -1);
  g_autofree char *nthreads = g_strdup_printf ("%u", threads);
  const char *argv[] = { tool, "--pure", model, out, type, nthreads, NULL };

  best->wall = best->cpu = G_MAXDOUBLE;
  for (guint r = 0; r < repeats; r++)
    {
      QbBenchTime t;

      if (!qb_bench_spawn_time (argv, NULL, &t))
        return FALSE;
      best->wall = MIN (best->wall, t.wall);
      best->cpu = MIN (best->cpu, t.cpu);
      g_unlink (out);
    }
  return TRUE;
}

static double
load_average (void)
{
  g_autofree char *text = NULL;

  if (!g_file_get_contents ("/proc/loadavg", &text, NULL, NULL))
    return NAN;
  return g_ascii_strtod (text, NULL);
}

/* Removes dir/quantbench/scans/KEY/N.scan, the scan cache of one run. */
static void
remove_scan_cache (const char *home)
{
  g_autofree char *scans = g_build_filename (home, "quantbench", "scans", NULL);
  g_autofree char *quantbench = g_build_filename (home, "quantbench", NULL);
  g_autoptr(GDir) keys = g_dir_open (scans, 0, NULL);
  const char *key;

  while (keys != NULL && (key = g_dir_read_name (keys)) != NULL)
    {
      g_autofree char *kdir = g_build_filename (scans, key, NULL);
      g_autoptr(GDir) entries = g_dir_open (kdir, 0, NULL);
      const char *name;

      while (entries != NULL && (name = g_dir_read_name (entries)) != NULL)
        {
          g_autofree char *file = g_build_filename (kdir, name, NULL);
          g_unlink (file);
        }
      g_rmdir (kdir);
    }
  g_rmdir (scans);
  g_rmdir (quantbench);
  g_rmdir (home);
}

/* One timed command writing out, which is removed first: replacing a
 * file costs its deletion (tens of ms for a few hundred MB), and no
 * command should pay for the one before it. */
static gboolean
fresh_spawn_time (const char *out, const char * const *argv, char **envp, QbBenchTime *t)
{
  g_unlink (out);
  return qb_bench_spawn_time (argv, envp, t);
}

static void
keep_best (QbBenchTime *best, const QbBenchTime *t)
{
  best->wall = MIN (best->wall, t->wall);
  best->cpu = MIN (best->cpu, t->cpu);
}

/* The quantbench executable: the default command beside the bare one
 * (and llama-quantize when at hand), as whole processes. */
static void
whole_process (const char *quantbench, const char *llama, const char *path, char **formats,
               guint threads, guint repeats, GString *targets)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("qb-bench-XXXXXX", &error);
  g_autofree char *out = NULL;
  g_autofree char *db = NULL;
  g_autofree char *nthreads = g_strdup_printf ("%u", threads);
  g_autofree char *cold_home = NULL;
  g_autofree char *warm_home = NULL;
  g_auto(GStrv) cold_env = NULL;
  g_auto(GStrv) warm_env = NULL;

  g_assert_no_error (error);

  g_assert_no_error (error);
  out = g_build_filename (dir, "out.gguf", NULL);
  db = g_build_filename (dir, "experiments.db", NULL);
  /* The default command twice: as a first run of the model (an empty scan
   * cache, emptied again after each run) and as a later run (the cache the
   * first untimed run filled). */
  cold_home = g_build_filename (dir, "cold-cache", NULL);
  warm_home = g_build_filename (dir, "warm-cache", NULL);
  cold_env = g_environ_setenv (g_get_environ (), "XDG_CACHE_HOME", cold_home, TRUE);
  warm_env = g_environ_setenv (g_get_environ (), "XDG_CACHE_HOME", warm_home, TRUE);
  printf ("\n  whole process, %s, %u threads, best of %u (wall s | CPU s, all threads);\n"
          "  default = metrics, histograms, saved experiment: first run of the model (empty scan\n"
          "  cache) and a later run (pre-pass from the scan cache):\n", quantbench, threads, repeats);
  printf ("  %-8s %5s %14s %14s %6s %14s %6s %14s %6s\n", "format", "load",
          "bare", "default 1st", "ratio", "default later", "ratio",
          llama ? "llama-quantize" : "", llama ? "ratio" : "");
  for (guint f = 0; formats[f]; f++)
    {
      const QbFormat *fmt = qb_format_find (formats[f]);
      gboolean ggml = fmt->family == QB_FAMILY_GGML;
      g_autofree char *type = g_ascii_strdown (formats[f], -1);
      const char *bare_argv[] = { quantbench, "quantize", path, "--default", formats[f],
                                  "--threads", nthreads, "--out", out,
                                  "--no-metrics", "--no-save", NULL };
      const char *default_argv[] = { quantbench, "quantize", path, "--default", formats[f],
                                     "--threads", nthreads, "--out", out, "--db", db, NULL };
      const char *llama_argv[] = { llama, "--pure", path, out, type, nthreads, NULL };
      QbBenchTime bare = { G_MAXDOUBLE, G_MAXDOUBLE }, def = bare, cold = bare, theirs = bare, t;
      gboolean with_llama = llama != NULL && ggml, ok = TRUE;
      double load = load_average ();

      remove_scan_cache (warm_home);
      ok = qb_bench_spawn_time (default_argv, warm_env, &t);   /* fills the warm cache */
      for (guint r = 0; r < repeats && ok; r++)
        {
          ok = fresh_spawn_time (out, bare_argv, NULL, &t);
          keep_best (&bare, &t);
          ok = ok && fresh_spawn_time (out, default_argv, cold_env, &t);
          keep_best (&cold, &t);
          remove_scan_cache (cold_home);
          ok = ok && fresh_spawn_time (out, default_argv, warm_env, &t);
          keep_best (&def, &t);
          if (ok && with_llama)
            {
              with_llama = fresh_spawn_time (out, llama_argv, NULL, &t);
              keep_best (&theirs, &t);
            }
        }
      g_unlink (out);
      if (!ok)
        {
          printf ("  %-8s failed\n", formats[f]);
          continue;
        }
      load = (load + load_average ()) / 2;
      printf ("  %-8s %5.1f %6.2f |%6.2f %6.2f |%6.2f %5.2fx %6.2f |%6.2f %5.2fx", formats[f], load,
              bare.wall, bare.cpu, cold.wall, cold.cpu, cold.wall / bare.wall,
              def.wall, def.cpu, def.wall / bare.wall);
      if (with_llama)
        printf (" %6.2f |%6.2f %5.2fx", theirs.wall, theirs.cpu, cold.wall / theirs.wall);
      printf ("\n");
      g_string_append_printf (targets, "  %-8s default %.2f s (first run) = %.2fx, %.2f s (later run) = %.2fx"
                              " the bare run's %.2f s (target 1.3x): %s / %s  [load %.1f]\n",
                              formats[f], cold.wall, cold.wall / bare.wall, def.wall,
                              def.wall / bare.wall, bare.wall,
                              cold.wall <= 1.3 * bare.wall ? "met" : "not met",
                              def.wall <= 1.3 * bare.wall ? "met" : "not met", load);
      if (!g_strcmp0 (formats[f], "Q4_0") || !g_strcmp0 (formats[f], "Q8_0"))
        {
          if (with_llama)
            g_string_append_printf (targets, "  %-8s default %.2f s (first run) = %.2fx llama-quantize's %.2f s"
                                    " (target 0.5x): %s\n", formats[f], cold.wall,
                                    cold.wall / theirs.wall, theirs.wall,
                                    cold.wall <= 0.5 * theirs.wall ? "met" : "not met");
          else
            g_string_append_printf (targets, "  %-8s against llama-quantize: not measured (%s)\n",
                                    formats[f], llama ? "it failed" : "llama-quantize is not built");
        }
    }
  remove_scan_cache (warm_home);
  remove_scan_cache (cold_home);
  g_unlink (db);
  {
    g_autofree char *wal = g_strconcat (db, "-wal", NULL);
    g_autofree char *shm = g_strconcat (db, "-shm", NULL);
    g_unlink (wal);
    g_unlink (shm);
  }
  g_rmdir (dir);
}

static void
compare_with_llama (const char *tool, const char *path, QbModel *model, char **formats,
                    guint n_all, guint repeats, const char *out)
{
  printf ("\n  against %s --pure (both read the model, quantize and write a GGUF):\n", tool);
  printf ("  %-10s %7s %12s %12s %9s %12s %12s %9s\n", "format", "threads",
          "ours wall s", "llama wall s", "speedup", "ours CPU s", "llama CPU s", "speedup");
  for (guint f = 0; formats[f]; f++)
    {
      const QbFormat *fmt = qb_format_find (formats[f]);
      guint counts[2] = { 1, n_all };

      if (fmt == NULL || fmt->family != QB_FAMILY_GGML)
        continue;
      for (guint k = 0; k < (n_all > 1 ? 2u : 1u); k++)
        {
          QbBenchTime ours = job_time (model, formats[f], counts[k], out, TRUE, repeats);
          QbBenchTime theirs;

          if (!llama_time (tool, path, formats[f], counts[k], out, repeats, &theirs))
            {
              printf ("  %-10s %7u %12.2f %12s\n", formats[f], counts[k], ours.wall, "failed");
              continue;
            }
          printf ("  %-10s %7u %12.2f %12.2f %8.2fx %12.2f %12.2f %8.2fx\n", formats[f],
                  counts[k], ours.wall, theirs.wall, theirs.wall / ours.wall, ours.cpu,
                  theirs.cpu, theirs.cpu / ours.cpu);
        }
    }
}

int
main (int argc, char **argv)
{
  g_autofree char *params = NULL;
  g_autofree char *model_file = NULL;
  g_autofree char *format_list = NULL;
  g_autofree char *llama = NULL;
  g_autofree char *only_pass = NULL;
  g_autofree char *quantbench = NULL;
  gboolean process_only = FALSE;
  int threads = 0, repeats = 2;
  const GOptionEntry entries[] = {
    { "params", 0, 0, G_OPTION_ARG_STRING, &params, "Demo model size (default 370M)", "SIZE" },
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &model_file, "Use this model instead", "FILE" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "Threads for the parallel runs (default: all CPUs)", "N" },
    { "repeats", 0, 0, G_OPTION_ARG_INT, &repeats, "Runs per figure; the best is kept (default 2)", "N" },
    { "formats", 0, 0, G_OPTION_ARG_STRING, &format_list, "Comma-separated formats", "LIST" },
    { "pass", 0, 0, G_OPTION_ARG_STRING, &only_pass, "Only the whole job (measure) or only quantization (quantize)", "PASS" },
    { "llama-quantize", 0, 0, G_OPTION_ARG_FILENAME, &llama, "llama.cpp's llama-quantize, to compare with", "PATH" },
    { "quantbench", 0, 0, G_OPTION_ARG_FILENAME, &quantbench, "The quantbench executable for the whole-process figures", "PATH" },
    { "process-only", 0, 0, G_OPTION_ARG_NONE, &process_only, "Only the whole-process figures", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("— quantization throughput");
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  g_auto(GStrv) formats = NULL;
  g_autoptr(GString) targets = g_string_new (NULL);
  g_autoptr(GString) process_targets = g_string_new (NULL);
  g_autofree char *path = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *out = NULL;
  gint64 n_params = 370000000;
  const guint8 *data;
  gsize size;
  guint n_all;
  QbBenchTime read1, read_all;
  double bytes;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) ||
      (params && !qb_demo_model_parse_size (params, &n_params)) || threads < 0 || repeats < 1
      || (only_pass && g_strcmp0 (only_pass, "measure") && g_strcmp0 (only_pass, "quantize")))
    {
      fprintf (stderr, "bench-quantize: %s\n", error ? error->message : "bad option");
      return 2;
    }
  n_all = threads ? (guint) threads : qb_cpu_count ();
  if (llama == NULL && g_getenv ("QB_LLAMA_QUANTIZE"))
    llama = g_strdup (g_getenv ("QB_LLAMA_QUANTIZE"));
  /* meson's benchmark passes the one it found */
  if (llama == NULL && g_getenv ("QB_LLAMA_QUANTIZE_FOUND"))
    llama = g_strdup (g_getenv ("QB_LLAMA_QUANTIZE_FOUND"));
  if (quantbench == NULL && g_getenv ("QB_QUANTBENCH"))
    quantbench = g_strdup (g_getenv ("QB_QUANTBENCH"));
  formats = g_strsplit (format_list ? format_list : default_formats, ",", -1);
  for (guint f = 0; formats[f]; f++)
    if (qb_format_find (formats[f]) == NULL)
      {
        fprintf (stderr, "bench-quantize: unknown format %s\n", formats[f]);
        return 2;
      }

  path = model_file ? g_strdup (model_file) : qb_bench_demo_model (n_params, QB_DTYPE_F16);
  model = qb_model_open (path, &error);
  if (model == NULL)
    g_error ("%s", error->message);
  printf ("bench-quantize: %s\n  %" G_GINT64_FORMAT " parameters, %.2f GB of tensor data, %u CPUs\n\n",
          path, qb_model_get_n_params (model), qb_model_get_n_bytes (model) / 1e9, qb_cpu_count ());

  /* The whole process first, while the model is not yet mapped here. */
  if (quantbench != NULL)
    {
      whole_process (quantbench, llama, path, formats, n_all, repeats, process_targets);
      printf ("\n  whole process, default command against the bare one (and llama-quantize):\n%s",
              process_targets->str);
    }
  else
    printf ("  (whole-process figures skipped: pass --quantbench PATH or set QB_QUANTBENCH)\n");
  if (process_only)
    return 0;

  qb_bench_data_span (model, &data, &size);
  bytes = qb_model_get_n_bytes (model);
  qb_bench_read_time (data, size, n_all, 1);           /* fault the mapping in */
  read1 = qb_bench_read_time (data, size, 1, 3);
  read_all = qb_bench_read_time (data, size, n_all, 3);

  qb_bench_print_header ();
  qb_bench_print_rate ("memory read, 1 thread (baseline)", size, &read1, NULL, 0);
  {
    g_autofree char *label = g_strdup_printf ("memory read, %u threads (baseline)", n_all);
    qb_bench_print_rate (label, size, &read_all, NULL, 0);
  }
  /* The whole job, then the quantization alone (--no-metrics). */
  for (int metrics = 1; metrics >= 0; metrics--)
    {
      if (only_pass && g_strcmp0 (only_pass, metrics ? "measure" : "quantize"))
        continue;
      printf ("\n  %s\n", metrics ? "quantize and measure (metrics and histograms):"
                                  : "quantize only (--no-metrics):");
      for (guint f = 0; formats[f]; f++)
        {
          QbBenchTime one = job_time (model, formats[f], 1, NULL, metrics, repeats);
          g_autofree char *label1 = g_strdup_printf ("%s, 1 thread", formats[f]);

          qb_bench_print_rate (label1, bytes, &one, &read1, size);
          if (n_all > 1)
            {
              gboolean target = !metrics && (!strcmp (formats[f], "Q8_0") || !strcmp (formats[f], "Q4_0"));
              /* The target is judged against a memory read taken right
               * before, so that a shared machine's drift over a long run
               * does not decide it. */
              QbBenchTime beside = target ? qb_bench_read_time (data, size, n_all, 3) : read_all;
              QbBenchTime all = job_time (model, formats[f], n_all, NULL, metrics, repeats);
              g_autofree char *label = g_strdup_printf ("%s, %u threads", formats[f], n_all);
              qb_bench_print_rate (label, bytes, &all, &read_all, size);
              if (target)
                g_string_append_printf (targets, "  %-10s %5.1f GB/s, %5.1f%% of the memory-read rate measured"
                                        " beside it (%.1f GB/s; target 40%%): %s\n",
                                        formats[f], bytes / all.wall / 1e9,
                                        100 * (bytes / all.wall) / (size / beside.wall), size / beside.wall / 1e9,
                                        (bytes / all.wall) >= 0.4 * (size / beside.wall) ? "met" : "not met");
            }
        }
    }

  if (targets->len > 0)
    printf ("\n  quantize only, %u threads, by wall clock:\n%s", n_all, targets->str);

  if (llama != NULL)
    {
      dir = g_dir_make_tmp ("qb-bench-XXXXXX", &error);
      g_assert_no_error (error);
      out = g_build_filename (dir, "out.gguf", NULL);
      compare_with_llama (llama, path, model, formats, n_all, repeats, out);
      g_rmdir (dir);
    }
  else
    printf ("\n  (llama-quantize comparison skipped: pass --llama-quantize PATH or set QB_LLAMA_QUANTIZE)\n");
  return 0;
}
