/* bench-quantize.c — quantization throughput in GB/s of input weights.
 *
 * On a generated ~370M-parameter F16 LLaMA-shaped model (or --model FILE):
 * the memory-read rate of the same mapped weights, measured in the same
 * run, then for Q8_0, Q4_0, Q4_K, Q6_K, INT4_G128 and NF4 the time of a
 * whole job (pre-pass, quantization, dequantization, every metric and
 * histogram) on 1 thread and on all threads.  When llama.cpp's
 * llama-quantize is given (--llama-quantize PATH or $QB_LLAMA_QUANTIZE),
 * the ggml types are also run through it on the same file and threads, and
 * through our job with a GGUF export, so both sides read, quantize and
 * write a file.
 *
 *   build/tests/bench/bench-quantize [--model FILE] [--threads N] [--runs N]
 *                                    [--llama-quantize PATH]
 */
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#include "qb-bench-util.h"
#include "qb-job.h"
#include "qb-model.h"
#include "qb-workers.h"

static const char *formats[] = { "Q8_0", "Q4_0", "Q4_K", "Q6_K", "INT4_G128", "NF4" };

typedef struct {
  QbModel  *model;
  guint64  *sums;     /* one per thread, so the reads cannot be optimized away */
  gint64    block;    /* bytes per work item */
  guint64   total;
} ReadJob;

/* Item k: the k-th block of the concatenated tensor data. */
static void
read_block (gint64 item, guint thread, gpointer user_data)
{
  ReadJob *rj = user_data;
  guint64 start = (guint64) item * rj->block, end = start + rj->block, at = 0;
  guint64 s0 = 0, s1 = 0, s2 = 0, s3 = 0;

  for (guint i = 0; i < qb_model_get_n_tensors (rj->model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (rj->model, i);
      guint64 lo = MAX (start, at), hi = MIN (end, at + t->n_bytes);

      if (lo < hi)
        {
          const guint8 *p = (const guint8 *) t->data + (lo - at);
          guint64 n = (hi - lo) / 32;
          for (guint64 k = 0; k < n; k++)
            {
              guint64 w[4];
              memcpy (w, p + 32 * k, 32);
              s0 += w[0];
              s1 += w[1];
              s2 += w[2];
              s3 += w[3];
            }
        }
      at += t->n_bytes;
    }
  rj->sums[thread] += s0 ^ s1 ^ s2 ^ s3;
}

/* GB/s reading the model's mapped tensor data: best of three warm passes. */
static double
memory_read_rate (QbModel *model, guint threads)
{
  g_autoptr(QbWorkers) workers = qb_workers_new (threads);
  ReadJob rj = { model, g_new0 (guint64, threads), 4 << 20, qb_model_get_n_bytes (model) };
  gint64 n_items = (rj.total + rj.block - 1) / rj.block;
  double best = 1e30;

  for (int pass = 0; pass < 4; pass++)
    {
      gint64 t0 = g_get_monotonic_time ();
      qb_workers_run (workers, n_items, read_block, &rj);
      if (pass > 0)
        best = MIN (best, (g_get_monotonic_time () - t0) / 1e6);
    }
  g_free (rj.sums);
  return rj.total / best / 1e9;
}

static double
time_job (QbModel *model, const char *format, guint threads, const char *out, int runs)
{
  double best = 1e30;

  for (int r = 0; r < runs; r++)
    {
      g_autoptr(QbPlan) plan = qb_plan_new ();
      g_autoptr(QbJob) job = NULL;
      g_autoptr(GError) error = NULL;

      qb_plan_set_default_format (plan, format);
      job = qb_job_new (model, plan);
      qb_job_set_threads (job, threads);
      if (out)
        qb_job_set_export (job, QB_EXPORT_GGUF, out);
      if (!qb_job_run (job, NULL, &error))
        g_error ("%s: %s", format, error->message);
      best = MIN (best, qb_job_get_seconds (job));
      if (out)
        g_unlink (out);
    }
  return best;
}

/* Seconds llama-quantize takes (best of runs), or a negative number. */
static double
time_llama (const char *tool, const char *model, const char *format, guint threads,
            const char *out, int runs)
{
  g_autofree char *type = g_ascii_strdown (format, -1);
  g_autofree char *nthreads = g_strdup_printf ("%u", threads);
  const char *argv[] = { tool, "--pure", model, out, type, nthreads, NULL };
  double best = 1e30;

  for (int r = 0; r < runs; r++)
    {
      g_autoptr(GError) error = NULL;
      gint64 t0 = g_get_monotonic_time ();
      int status;

      if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                         NULL, NULL, NULL, NULL, &status, &error)
          || !g_spawn_check_wait_status (status, NULL))
        return -1;
      best = MIN (best, (g_get_monotonic_time () - t0) / 1e6);
      g_unlink (out);
    }
  return best;
}

int
main (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- quantization throughput");
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autofree char *model_path = NULL;
  g_autofree char *llama = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *out = NULL;
  gint threads = 0, runs = 2;
  GOptionEntry entries[] = {
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &model_path, "Use this model instead of generating one", "FILE" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "All-thread count (default: cores)", "N" },
    { "runs", 0, 0, G_OPTION_ARG_INT, &runs, "Runs per measurement; the best counts (default 2)", "N" },
    { "llama-quantize", 0, 0, G_OPTION_ARG_FILENAME, &llama, "llama.cpp's llama-quantize, to compare", "PATH" },
    { NULL }
  };
  guint all;
  double read1, readn;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    g_error ("%s", error->message);
  if (llama == NULL && g_getenv ("QB_LLAMA_QUANTIZE"))
    llama = g_strdup (g_getenv ("QB_LLAMA_QUANTIZE"));
  all = threads > 0 ? (guint) threads : qb_cpu_count ();
  runs = MAX (runs, 1);

  dir = g_dir_make_tmp ("qb-bench-XXXXXX", &error);
  g_assert_no_error (error);
  out = g_build_filename (dir, "out.gguf", NULL);
  if (model_path == NULL)
    {
      model_path = g_build_filename (dir, "model-370M-f16.gguf", NULL);
      qb_bench_generate_model (model_path, 370000000);
    }
  model = qb_model_open (model_path, &error);
  if (model == NULL)
    g_error ("%s", error->message);

  printf ("model: %s, %" G_GINT64_FORMAT " parameters, %.2f GB of weights\n", model_path,
          qb_model_get_n_params (model), qb_model_get_n_bytes (model) / 1e9);
  read1 = memory_read_rate (model, 1);
  readn = memory_read_rate (model, all);
  printf ("memory read of the mapped weights (warm, best of 3): %.2f GB/s on 1 thread, "
          "%.2f GB/s on %u threads\n\n", read1, readn, all);

  printf ("%-10s %8s %9s %8s %9s\n", "format", "threads", "seconds", "GB/s", "of read");
  for (gsize f = 0; f < G_N_ELEMENTS (formats); f++)
    {
      guint counts[2] = { 1, all };
      for (int k = 0; k < (all > 1 ? 2 : 1); k++)
        {
          double s = time_job (model, formats[f], counts[k], NULL, runs);
          double gbs = qb_model_get_n_bytes (model) / s / 1e9;
          printf ("%-10s %8u %9.3f %8.2f %8.0f%%\n", formats[f], counts[k], s, gbs,
                  100 * gbs / (k ? readn : read1));
        }
    }

  if (llama != NULL)
    {
      printf ("\nagainst %s (both read the model, quantize and write a GGUF; best of %d):\n", llama, runs);
      printf ("%-10s %8s %14s %14s %9s\n", "format", "threads", "quantbench s", "llama s", "speedup");
      for (gsize f = 0; f < 4; f++)
        {
          guint counts[2] = { 1, all };
          for (int k = 0; k < (all > 1 ? 2 : 1); k++)
            {
              double ours = time_job (model, formats[f], counts[k], out, runs);
              double theirs = time_llama (llama, model_path, formats[f], counts[k], out, runs);
              if (theirs < 0)
                printf ("%-10s %8u %14.3f %14s\n", formats[f], counts[k], ours, "failed");
              else
                printf ("%-10s %8u %14.3f %14.3f %8.2fx\n", formats[f], counts[k], ours, theirs,
                        theirs / ours);
            }
        }
    }

  g_clear_object (&model);
  if (strstr (model_path, dir) == model_path)
    g_unlink (model_path);
  g_rmdir (dir);
  return 0;
}
