/* SPDX-License-Identifier: MIT */
/* bench-device.c — the OpenCL device against the CPU, in one run.
 *
 *   meson test -C build --benchmark --suite bench -v device
 *   ./build/tests/bench/bench-device [--device opencl:N|gpu] [--params 370M] [--threads N]
 *                                    [--eval-only] [--only quantize|eval|calib]
 *                                    [--tensors GLOB] [--formats F,F,..]
 *                                    [--eval-ctx N --eval-chunks N --calib-ctx N --calib-chunks N]
 *
 * The 370M demo model on PoCL (hours at the defaults), in one run of about
 * half an hour:
 *   QB_BENCH_CACHE=/tmp/x bench-device --params 370M --formats Q8_0,Q4_0,Q4_K,Q6_K \
 *     --tensors 'blk.0.*' --eval-ctx 64 --eval-chunks 1 --calib-ctx 64 --calib-chunks 1
 * (--tensors, --formats and the sizes apply to the demo model only;
 * stories260K always runs whole.)
 *
 * For stories260K and a generated demo model (default 25M parameters, F16;
 * --params 370M for the figure, which takes long on PoCL): the
 * quantization rate in GB/s of input weights for Q8_0, Q4_0, the K-quants,
 * IQ4_NL/XS, NF4, MXFP4, FP8 and per-row and per-tensor INT
 * (stories260K's rows are too short for the K-quants), with and
 * without metrics and histograms, every tensor through qb_tensor_quantize,
 * on the CPU threads and on the device; then the evaluation rate in
 * tokens/s of a perplexity run (stories260K, 10 chunks of 128; demo model,
 * 2 chunks of 256) on both, with the weights as stored and quantized by
 * a Q4_K_M plan (on stories260K, whose rows no K-quant fits, its
 * fallbacks), whose blocks the device dequantizes; with the device memory
 * the weights take there; then calibration (the importance matrix and
 * XᵀX of every linear layer's input, 8 chunks of 128 tokens on
 * stories260K, 4 of 256 on the demo model) and GPTQ (Q4_0, every tensor
 * whose rows fit, with that XᵀX), seconds on both; and quantization with
 * that importance matrix (Q4_0, Q4_K, Q6_K with metrics), GB/s on both.
 * The load average is printed at the start and the end.  --only quantize|eval|
 * calib runs one part (--eval-only: eval).  The device's kernels are
 * built once before
 * any timing (their compile time is printed).  The device counters say
 * how much of each run really ran there.
 *
 * On PoCL (a CPU OpenCL device sharing the same cores) these figures only
 * show the path works; they say nothing about a GPU.
 */
#include <stdio.h>
#include <string.h>

#include "qb-activation-stats.h"
#include "qb-bench-util.h"
#include "qb-demo-model.h"
#include "qb-device.h"
#include "qb-eval.h"
#include "qb-format.h"
#include "qb-gptq-device-private.h"
#include "qb-imatrix.h"
#include "qb-job.h"
#include "qb-plan.h"
#include "qb-llama.h"
#include "qb-llama-device-private.h"
#include "qb-quantize-device-private.h"
#include "qb-tensor-quantizer.h"
#include "qb-tokenizer.h"
#include "qb-workers.h"

/* What the demo model's part runs (stories260K runs whole). */
typedef struct {
  GPatternSpec *tensors;     /* quantization and GPTQ only on these; NULL: all */
  const char   *tensors_glob;
  char        **formats;     /* NULL: the default list */
  int           eval_ctx, eval_chunks, calib_ctx, calib_chunks;
} Limits;

static void
print_load (const char *when)
{
  g_autofree char *load = NULL;

  if (g_file_get_contents ("/proc/loadavg", &load, NULL, NULL))
    printf ("load average %s: %s", when, load);
  fflush (stdout);
}

static char *
shared_path (const char *rel)
{
  const char *dir = g_getenv ("QB_SHARED_DIR");
  g_autofree char *path = g_build_filename (dir ? dir : QB_DEFAULT_SHARED_DIR, rel, NULL);

  return g_file_test (path, G_FILE_TEST_EXISTS) ? g_steal_pointer (&path) : NULL;
}

/* Every tensor whose rows fit the format (and that tensors matches,
 * and that im has the importance of when not NULL), quantized; seconds
 * taken. */
static double
quantize_all (QbModel *model, const QbFormat *f, gboolean metrics, QbWorkers *workers,
              GPatternSpec *tensors, QbImatrix *im, guint64 *bytes_in)
{
  double t0 = qb_bench_now ();

  *bytes_in = 0;
  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      QbQuantizeSpec spec = { .format = f, .no_metrics = !metrics };
      guint64 size = 0;
      g_autofree guint8 *out = NULL;
      g_autoptr(QbTensorResult) r = NULL;
      g_autoptr(GError) error = NULL;

      guint n_imp = 0;

      if (t->n_dims < 2 || !qb_format_fits (f, t->ne[0]) ||
          !qb_format_tensor_bytes (f, t->ne[0], qb_tensor_n_rows (t), &size) ||
          (tensors != NULL && !g_pattern_spec_match_string (tensors, t->name)))
        continue;
      if (im != NULL)
        {
          spec.importance = qb_imatrix_get (im, t->name, &n_imp);
          if (spec.importance == NULL || n_imp != t->ne[0])
            continue;
        }
      out = g_malloc (size);
      r = qb_tensor_quantize (model, i, &spec, workers, &(QbQuantizeOutput) { .data = out },
                              NULL, NULL, NULL, &error);
      if (r == NULL)
        g_error ("%s: %s", t->name, error->message);
      *bytes_in += t->n_bytes;
    }
  return qb_bench_now () - t0;
}

static void
bench_quantize (const char *label, const char *path, const char *device, QbWorkers *workers,
                const Limits *lim)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  const char *all[] = { "Q8_0", "Q4_0", "Q2_K", "Q3_K", "Q4_K", "Q6_K", "IQ4_NL", "IQ4_XS",
                        "NF4", "MXFP4", "FP8_E4M3_CH", "FP8_E5M2_T", "INT4_CH", "INT8_T", NULL };
  const char * const *formats = lim && lim->formats ? (const char * const *) lim->formats : all;
  GPatternSpec *tensors = lim ? lim->tensors : NULL;

  if (model == NULL)
    g_error ("%s", error->message);
  if (tensors != NULL)
    printf ("%-18s quantize: the tensors matching %s only\n", label, lim->tensors_glob);
  for (gsize k = 0; formats[k] != NULL; k++)
    for (int metrics = 1; metrics >= 0; metrics--)
      {
        const QbFormat *f = qb_format_find (formats[k]);
        guint64 bytes = 0, slabs;
        double cpu, dev;

        if (f == NULL)
          g_error ("unknown format %s", formats[k]);
        qb_device_set_default ("cpu", NULL);
        quantize_all (model, f, metrics, workers, tensors, NULL, &bytes);   /* pages in, warm */
        cpu = quantize_all (model, f, metrics, workers, tensors, NULL, &bytes);
        qb_device_set_default (device, NULL);
        slabs = qb_device_quantize_slabs ();
        dev = quantize_all (model, f, metrics, workers, tensors, NULL, &bytes);
        if (bytes == 0)
          {
            printf ("%-18s quantize %-11s no tensor's rows fit\n", label, f->name);
            break;
          }
        printf ("%-18s quantize %-11s %-10s %8.3f GB/s %8.3f GB/s %7.2f x   (%" G_GUINT64_FORMAT " slabs on the device)\n",
                label, f->name, metrics ? "+ metrics" : "output only", bytes / cpu / 1e9,
                bytes / dev / 1e9, cpu / dev, qb_device_quantize_slabs () - slabs);
        fflush (stdout);
      }
  qb_device_set_default ("cpu", NULL);
}

/* llama's weights quantized by a plan with this preset, as an
 * experiment's evaluation runs them (the quantization itself on the CPU,
 * untimed). */
static void
quantize_weights (QbLlama *llama, QbModel *model, const char *preset, guint threads)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbJob) job = NULL;
  g_autoptr(GError) error = NULL;

  qb_plan_set_preset (plan, preset);
  job = qb_job_new (model, plan);
  qb_job_set_keep_data (job, TRUE);
  qb_job_set_metrics (job, FALSE);
  qb_job_set_threads (job, threads);
  qb_device_set_default ("cpu", NULL);
  if (!qb_job_run (job, NULL, &error) || !qb_llama_use_job (llama, job, NULL, &error))
    g_error ("%s", error->message);
}

/* Tokens/s of a perplexity run of the model (its weights quantized with
 * preset when not NULL) on device; its perplexity in *ppl, and the device memory its
 * weights take there in *weight_bytes. */
static double
eval_rate (const char *path, const char *text, guint ctx, guint chunks, const char *device,
           guint threads, const char *preset, double *ppl, guint64 *weight_bytes)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  QbLlama *llama;
  QbTokenizer *tok;
  QbEvalOptions o;
  QbEvalResult r;

  if (model == NULL || (llama = qb_llama_new (model, &error)) == NULL ||
      (tok = qb_tokenizer_new_from_gguf (qb_model_get_gguf (model), &error)) == NULL)
    g_error ("%s", error->message);
  qb_llama_set_threads (llama, threads);
  if (preset != NULL)
    quantize_weights (llama, model, preset, threads);
  if (weight_bytes != NULL)
    {
      guint64 fixed, largest;
      qb_llama_device_needs (llama, ctx, ctx / 2, &fixed, &largest, weight_bytes);
    }
  qb_device_set_default (device, NULL);
  qb_eval_options_init (&o);
  o.n_ctx = ctx;
  o.n_chunks = chunks;
  o.no_cache = TRUE;
  if (!qb_eval_run (llama, tok, text, &o, NULL, NULL, NULL, &r, &error))
    g_error ("%s", error->message);
  qb_device_set_default ("cpu", NULL);
  qb_llama_free (llama);
  qb_tokenizer_unref (tok);
  *ppl = r.ppl;
  return r.tokens_per_second;
}

static void
bench_eval (const char *label, const char *path, const char *text, guint ctx, guint chunks,
            const char *device, guint threads, const char *preset)
{
  double ppl_cpu, ppl_dev, cpu, dev;
  guint64 passes, dequantized, weights = 0;

  cpu = eval_rate (path, text, ctx, chunks, "cpu", threads, preset, &ppl_cpu, NULL);
  passes = qb_llama_device_passes ();
  dequantized = qb_llama_device_dequantized ();
  dev = eval_rate (path, text, ctx, chunks, device, threads, preset, &ppl_dev, &weights);
  printf ("%-18s eval %-6s ctx %-4u %2u chunks %8.0f tok/s %8.0f tok/s %7.2f x   (PPL %.6f / %.6f, %"
          G_GUINT64_FORMAT " passes on the device, %" G_GUINT64_FORMAT
          " products dequantized there, weights %.1f MiB there)\n",
          label, preset ? preset : "as is", ctx, chunks, cpu, dev, dev / cpu, ppl_cpu, ppl_dev,
          qb_llama_device_passes () - passes, qb_llama_device_dequantized () - dequantized,
          weights / 1048576.0);
  fflush (stdout);
}

/* ---- calibration and GPTQ ------------------------------------------------------ */

/* Every input's importance and XᵀX on device; seconds, and the stats. */
static double
calib_time (QbLlama *llama, QbCalibration *calib, const char *device, QbActivationStats **stats)
{
  g_autoptr(GError) error = NULL;
  QbStatsOptions so;
  double t0;

  qb_device_set_default (device, NULL);
  qb_stats_options_init (&so);
  so.gram_all = TRUE;
  so.no_cache = TRUE;
  t0 = qb_bench_now ();
  *stats = qb_activation_stats_compute (llama, calib, &so, NULL, NULL, NULL, &error);
  if (*stats == NULL)
    g_error ("%s", error->message);
  return qb_bench_now () - t0;
}

/* GPTQ to Q4_0 of every tensor whose rows fit (that glob matches, the
 * others kept); seconds. */
static double
gptq_time (QbModel *model, QbActivationStats *stats, const char *device, guint threads,
           const char *glob)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbJob) job = NULL;
  g_autoptr(GError) error = NULL;
  double t0;

  qb_device_set_default (device, NULL);
  qb_plan_set_default_format (plan, glob ? QB_FORMAT_KEEP : "Q4_0");
  qb_plan_set_default_method (plan, "gptq");
  if (glob != NULL && !qb_plan_insert_rule (plan, -1, glob, QB_RULE_GLOB, "Q4_0", "gptq", &error))
    g_error ("%s", error->message);
  job = qb_job_new (model, plan);
  qb_job_set_threads (job, threads);
  qb_activation_stats_attach (stats, job, FALSE);
  t0 = qb_bench_now ();
  if (!qb_job_run (job, NULL, &error))
    g_error ("%s", error->message);
  return qb_bench_now () - t0;
}

/* Quantization with the importance matrix of the calibration just
 * run, CPU and device, with metrics. */
static void
bench_imatrix_quantize (const char *label, QbModel *model, QbActivationStats *stats,
                        const char *device, guint threads, GPatternSpec *tensors)
{
  g_autoptr(QbImatrix) im = qb_activation_stats_get_imatrix (stats, FALSE);
  g_autoptr(QbWorkers) workers = qb_workers_new (threads);
  const char *formats[] = { "Q4_0", "Q4_K", "Q6_K" };

  for (gsize k = 0; k < G_N_ELEMENTS (formats); k++)
    {
      const QbFormat *f = qb_format_find (formats[k]);
      guint64 bytes = 0, slabs;
      double cpu, dev;

      qb_device_set_default ("cpu", NULL);
      cpu = quantize_all (model, f, TRUE, workers, tensors, im, &bytes);
      qb_device_set_default (device, NULL);
      slabs = qb_device_quantize_slabs ();
      dev = quantize_all (model, f, TRUE, workers, tensors, im, &bytes);
      qb_device_set_default ("cpu", NULL);
      if (bytes == 0)
        {
          printf ("%-18s quantize %-4s + imatrix: no tensor's rows fit\n", label, f->name);
          continue;
        }
      printf ("%-18s quantize %-4s + imatrix + metrics %8.3f GB/s %8.3f GB/s %7.2f x   (%" G_GUINT64_FORMAT " slabs on the device)\n",
              label, f->name, bytes / cpu / 1e9, bytes / dev / 1e9, cpu / dev,
              qb_device_quantize_slabs () - slabs);
      fflush (stdout);
    }
}

/* label NULL: a silent run that builds the kernels. */
static void
bench_calib (const char *label, const char *path, const char *text, guint ctx, guint chunks,
             const char *device, guint threads, const Limits *lim)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  g_autoptr(QbTokenizer) tok = NULL;
  g_autoptr(QbCalibration) calib = NULL;
  QbActivationStats *sc = NULL, *sd = NULL;
  const char *paths[] = { text, NULL };
  QbCalibrationOptions co;
  QbLlama *llama;
  double cpu, dev;
  guint64 passes, updates;

  if (model == NULL || (llama = qb_llama_new (model, &error)) == NULL
      || (tok = qb_tokenizer_new_for_model (model, &error)) == NULL)
    g_error ("%s", error->message);
  qb_llama_set_threads (llama, threads);
  qb_calibration_options_init (&co);
  co.n_ctx = ctx;
  co.n_chunks = chunks;
  co.no_cache = TRUE;
  if ((calib = qb_calibration_new (model, tok, paths, &co, NULL, &error)) == NULL)
    g_error ("%s", error->message);
  cpu = calib_time (llama, calib, "cpu", &sc);
  passes = qb_llama_device_passes ();
  dev = calib_time (llama, calib, device, &sd);
  if (label != NULL)
    printf ("%-18s calib    ctx %-4u %2u chunks %8.2f s      %8.2f s      %7.2f x   (imatrix + XᵀX of every input, %" G_GUINT64_FORMAT " passes on the device)\n",
          label, ctx, chunks, cpu, dev, cpu / dev, qb_llama_device_passes () - passes);
  fflush (stdout);
  if (label != NULL)
    bench_imatrix_quantize (label, model, sc, device, threads, lim ? lim->tensors : NULL);
  cpu = gptq_time (model, sc, "cpu", threads, lim ? lim->tensors_glob : NULL);
  updates = qb_gptq_device_updates ();
  dev = gptq_time (model, sc, device, threads, lim ? lim->tensors_glob : NULL);
  if (label != NULL)
    printf ("%-18s gptq     Q4_0 %-14s %8.2f s      %8.2f s      %7.2f x   (%" G_GUINT64_FORMAT " batch updates and guard products on the device)\n",
          label, lim && lim->tensors_glob ? lim->tensors_glob : "", cpu, dev, cpu / dev,
          qb_gptq_device_updates () - updates);
  fflush (stdout);
  qb_device_set_default ("cpu", NULL);
  qb_activation_stats_free (sc);
  qb_activation_stats_free (sd);
  qb_llama_free (llama);
}

int
main (int argc, char **argv)
{
  g_autofree char *device = NULL, *params = NULL, *only = NULL, *glob = NULL, *formats = NULL;
  int threads = 0;
  gboolean eval_only = FALSE;
  Limits lim = { .eval_ctx = 256, .eval_chunks = 2, .calib_ctx = 256, .calib_chunks = 4 };
  GOptionEntry entries[] = {
    { "tensors", 0, 0, G_OPTION_ARG_STRING, &glob, "Demo model: quantize and GPTQ only these tensors", "GLOB" },
    { "formats", 0, 0, G_OPTION_ARG_STRING, &formats, "Demo model: quantize only these formats", "F,F" },
    { "eval-ctx", 0, 0, G_OPTION_ARG_INT, &lim.eval_ctx, "Demo model: evaluation context (256)", "N" },
    { "eval-chunks", 0, 0, G_OPTION_ARG_INT, &lim.eval_chunks, "Demo model: evaluation chunks (2)", "N" },
    { "calib-ctx", 0, 0, G_OPTION_ARG_INT, &lim.calib_ctx, "Demo model: calibration context (256)", "N" },
    { "calib-chunks", 0, 0, G_OPTION_ARG_INT, &lim.calib_chunks, "Demo model: calibration chunks (4)", "N" },
    { "eval-only", 0, 0, G_OPTION_ARG_NONE, &eval_only, "Only the evaluation figures", NULL },
    { "device", 0, 0, G_OPTION_ARG_STRING, &device, "Device to compare (default opencl:0)", "SPEC" },
    { "params", 0, 0, G_OPTION_ARG_STRING, &params, "Demo model size (default 25M)", "N" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "CPU threads (default: all)", "N" },
    { "only", 0, 0, G_OPTION_ARG_STRING, &only, "One part: quantize, eval or calib", "PART" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- device against CPU");
  g_autoptr(GError) error = NULL;
  g_autoptr(QbWorkers) workers = NULL;
  g_autoptr(QbDevice) dev = NULL;
  g_autofree char *stories = NULL, *text = NULL, *demo = NULL;
  gint64 n_params = 25000000;
  double t0;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) ||
      (params && !qb_demo_model_parse_size (params, &n_params)) || threads < 0 ||
      lim.eval_ctx < 8 || lim.eval_chunks < 1 || lim.calib_ctx < 8 || lim.calib_chunks < 1)
    {
      fprintf (stderr, "bench-device: %s\n", error ? error->message : "bad option");
      return 2;
    }
  if (glob != NULL)
    {
      lim.tensors = g_pattern_spec_new (glob);
      lim.tensors_glob = glob;
    }
  if (formats != NULL)
    lim.formats = g_strsplit (formats, ",", -1);
  if (eval_only && only == NULL)
    only = g_strdup ("eval");
  if (device == NULL)
    device = g_strdup ("opencl:0");
  dev = qb_device_open (device, &error);
  if (dev == NULL)
    {
      printf ("bench-device: %s; nothing to compare\n", error ? error->message : "cpu is no device");
      return 0;
    }
  printf ("device: %s, %s, %s\n", qb_device_get_label (dev), qb_device_get_info (dev)->platform,
          qb_device_get_info (dev)->version);
  workers = qb_workers_new ((guint) threads);
  threads = (int) qb_workers_get_n_threads (workers);
  printf ("CPU: %d threads.  Columns: CPU, device, device/CPU speed.\n", threads);
  print_load ("at the start");

  stories = shared_path ("models/stories260K.gguf");
  text = shared_path ("text/tinystories-val.txt");
  demo = qb_bench_demo_model (n_params, QB_DTYPE_F16);

  /* Kernels compiled (or read from the cache) before any timing. */
  t0 = qb_bench_now ();
  qb_device_set_default (device, NULL);
  if (stories != NULL && text != NULL)
    {
      double ppl;
      g_autoptr(QbModel) m = qb_model_open (stories, NULL);
      guint64 b;
      quantize_all (m, qb_format_find ("Q4_0"), TRUE, workers, NULL, NULL, &b);
      eval_rate (stories, text, 128, 1, device, (guint) threads, NULL, &ppl, NULL);
    }
  /* CLBlast builds its kernels per routine, precision and shape class:
   * one chunk of each model's calibration and GPTQ before timing them. */
  if (text != NULL && (only == NULL || g_str_equal (only, "calib")))
    {
      if (stories != NULL)
        bench_calib (NULL, stories, text, 128, 1, device, (guint) threads, NULL);
      bench_calib (NULL, demo, text, (guint) lim.calib_ctx, 1, device, (guint) threads, &lim);
    }
  printf ("kernels ready in %.1f s (built, or read from the cache)\n\n", qb_bench_now () - t0);

  if (only == NULL || g_str_equal (only, "quantize"))
    {
      if (stories != NULL)
        bench_quantize ("stories260K", stories, device, workers, NULL);
      bench_quantize (params ? params : "demo 25M", demo, device, workers, &lim);
    }
  if (text == NULL)
    {
      printf ("../shared is absent: no evaluation or calibration figures\n");
      return 0;
    }
  if (only == NULL || g_str_equal (only, "eval"))
    {
      if (stories != NULL)
        {
          bench_eval ("stories260K", stories, text, 128, 10, device, (guint) threads, NULL);
          bench_eval ("stories260K", stories, text, 128, 10, device, (guint) threads, "Q4_K_M");
        }
      bench_eval (params ? params : "demo 25M", demo, text, (guint) lim.eval_ctx,
                  (guint) lim.eval_chunks, device, (guint) threads, NULL);
      bench_eval (params ? params : "demo 25M", demo, text, (guint) lim.eval_ctx,
                  (guint) lim.eval_chunks, device, (guint) threads, "Q4_K_M");
    }
  if (only == NULL || g_str_equal (only, "calib"))
    {
      if (stories != NULL)
        bench_calib ("stories260K", stories, text, 128, 8, device, (guint) threads, NULL);
      bench_calib (params ? params : "demo 25M", demo, text, (guint) lim.calib_ctx,
                   (guint) lim.calib_chunks, device, (guint) threads, &lim);
    }
  print_load ("at the end");
  if (lim.tensors != NULL)
    g_pattern_spec_free (lim.tensors);
  g_strfreev (lim.formats);
  return 0;
}
