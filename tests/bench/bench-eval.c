/* SPDX-License-Identifier: MIT */
/* bench-eval.c — evaluation speed: tokens per second of a perplexity run.
 *
 * Run it with one command from the source root:
 *
 *   meson test -C build --benchmark --suite bench -v
 *
 * or directly: ./build/tests/bench/bench-eval [--threads N] [--params 370M]
 *              [--chunks N] [--big-chunks N] [--big-ctx N] [--repeats N]
 *
 * Models: stories260K (../shared) as float32 and as Q8_0, and a generated
 * ~370M-parameter demo model as float32 and Q8_0.  The Q8_0 files are
 * written by Quantbench's own engine (a job with the default Q8_0 plan,
 * exported to GGUF); the demo model by qb_demo_model_write.  Generated
 * files are kept in $QB_BENCH_CACHE (default ~/.cache/quantbench/bench):
 * the 370M float32 model takes about 1.5 GB and is made once.
 *
 * For each model it reports Quantbench's evaluation rate (tokens per second
 * of the forward passes and scoring of a perplexity run over text tokenized
 * beforehand, after one warm-up chunk), and beside it, measured in the same
 * run on the same files and thread count:
 *  - llama.cpp's llama-perplexity ("prompt eval" tokens per second from its
 *    timing report), when it is found: $QB_LLAMA_PERPLEXITY, then PATH, then
 *    llama.cpp/build/bin beside the source tree.  Optional: without it the
 *    column is left empty.
 *  - the rate OpenBLAS's sgemm alone would give for the model's matrix
 *    products (their 2 × weights FLOPs per token, embeddings excluded and the output
 *    matrix for half the tokens, at
 *    the GFLOP/s of one multi-threaded sgemm of the model's FFN shape,
 *    timed here): the ceiling of a BLAS-based evaluator.
 * It also compares the two dequantization strategies on the Q8_0 models:
 * per row block inside each worker (the default) and whole matrix then one
 * multi-threaded sgemm.
 *
 * Machines shared with other work slow every run by a different amount:
 * each figure is the best of --repeats runs (default 3), Quantbench's and
 * llama.cpp's runs alternating, and Quantbench's rate per CPU-second (all
 * threads, which other work does not inflate) is printed as well.
 */
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "qb-bench-util.h"
#include "qb-blas.h"
#include "qb-demo-model.h"
#include "qb-eval.h"
#include "qb-job.h"
#include "qb-llama.h"
#include "qb-tokenizer.h"
#include "qb-workers.h"

typedef struct {
  guint  threads;
  char  *params;
  int    chunks;       /* stories260K, n_ctx 128 */
  int    big_chunks;   /* demo model */
  int    big_ctx;
  int    repeats;
} Options;

typedef struct {
  double   tokens_per_second;
  double   tokens_per_cpu_second;   /* 0 when not measured */
  double   ppl;
  gboolean ok;
} Rate;

static void
keep_best (Rate *best, Rate r)
{
  if (!r.ok)
    return;
  best->tokens_per_second = MAX (best->tokens_per_second, r.tokens_per_second);
  best->tokens_per_cpu_second = MAX (best->tokens_per_cpu_second, r.tokens_per_cpu_second);
  best->ppl = r.ppl;
  best->ok = TRUE;
}

/* ---- inputs ----------------------------------------------------------- */

static char *
shared_path (const char *relative)
{
  const char *dir = g_getenv ("QB_SHARED_DIR");
  char *path = g_build_filename (dir ? dir : QB_DEFAULT_SHARED_DIR, relative, NULL);

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_free (path);
      return NULL;
    }
  return path;
}

static char *
cache_path (const char *name)
{
  g_autofree char *dir = qb_bench_cache_dir ();
  return g_build_filename (dir, name, NULL);
}

/* A Q8_0 GGUF of model_path, written by the engine. */
static char *
q8_0_file (const char *model_path, const char *name, guint threads)
{
  char *path = cache_path (name);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbPlan) plan = NULL;
  g_autoptr(QbJob) job = NULL;
  double t0;

  if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return path;
  model = qb_model_open (model_path, &error);
  if (model == NULL)
    g_error ("%s", error->message);
  plan = qb_plan_new ();
  qb_plan_set_default_format (plan, "Q8_0");
  job = qb_job_new (model, plan);
  qb_job_set_threads (job, threads);
  qb_job_set_export (job, QB_EXPORT_GGUF, path);
  printf ("writing %s ...\n", path);
  fflush (stdout);
  t0 = qb_bench_now ();
  if (!qb_job_run (job, NULL, &error))
    g_error ("%s", error->message);
  printf ("  written in %.1f s\n", qb_bench_now () - t0);
  return path;
}

/* ---- Quantbench ------------------------------------------------------- */

/* FLOPs per evaluated token of the matrix products (attention's own are
 * left out); the output matrix runs for the scored half of each chunk. */
static double
flops_per_token (const QbLlamaParams *p)
{
  double qd = (double) p->n_head * p->head_dim, kvd = (double) p->n_head_kv * p->head_dim;
  double layer = p->n_embd * (qd + 2 * kvd) + qd * p->n_embd + 3.0 * p->n_embd * p->n_ff;

  return 2 * (p->n_layer * layer + 0.5 * p->n_embd * p->n_vocab);
}

/* One model set up for repeated runs: the text tokenized once. */
typedef struct {
  QbModel     *model;
  QbLlama     *llama;
  QbTokenizer *tok;
  GArray      *tokens;
  double       flops;
} Ours;

static void
ours_open (Ours *o, const char *model_path, const char *text, guint threads, QbDequantMode mode)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize len = 0;

  o->model = qb_model_open (model_path, &error);
  if (o->model == NULL || (o->llama = qb_llama_new (o->model, &error)) == NULL
      || (o->tok = qb_tokenizer_new_for_model (o->model, &error)) == NULL
      || !g_file_get_contents (text, &contents, &len, &error)
      || (o->tokens = qb_tokenizer_encode (o->tok, contents, len, TRUE, FALSE, NULL, &error)) == NULL)
    g_error ("%s", error->message);
  qb_llama_set_threads (o->llama, threads);
  qb_llama_set_dequant_mode (o->llama, mode);
  o->flops = flops_per_token (qb_llama_get_params (o->llama));
}

static void
ours_close (Ours *o)
{
  g_array_unref (o->tokens);
  qb_tokenizer_unref (o->tok);
  qb_llama_free (o->llama);
  g_object_unref (o->model);
}

static Rate
measure_ours (Ours *o, guint ctx, guint chunks)
{
  g_autoptr(GError) error = NULL;
  g_autofree float *logits = NULL;
  QbEvalResult r;
  Rate rate = { 0, 0, 0, FALSE };
  double cpu;

  /* One chunk to warm the mapping, caches and threads, as llama.cpp's own
   * warm-up run does. */
  logits = g_new (float, (gsize) qb_llama_get_params (o->llama)->n_vocab * (ctx - ctx / 2));
  if (!qb_llama_forward (o->llama, (const gint32 *) (void *) o->tokens->data, ctx, ctx / 2, logits,
                         NULL, NULL, NULL, &error))
    g_error ("%s", error->message);

  cpu = qb_bench_cpu_seconds ();
  if (!qb_eval_tokens (o->llama, (const gint32 *) (void *) o->tokens->data, o->tokens->len,
                       qb_tokenizer_get_add_bos (o->tok) ? qb_tokenizer_get_bos (o->tok) : -1,
                       ctx, chunks, NULL, &r, &error))
    g_error ("%s", error->message);
  cpu = qb_bench_cpu_seconds () - cpu;
  rate.tokens_per_second = r.tokens_per_second;
  rate.tokens_per_cpu_second = cpu > 0 ? r.n_chunks * (double) ctx / cpu : 0;
  rate.ppl = r.ppl;
  rate.ok = TRUE;
  return rate;
}

/* ---- llama.cpp -------------------------------------------------------- */

static char *
find_llama_perplexity (void)
{
  const char *env = g_getenv ("QB_LLAMA_PERPLEXITY");
  g_autofree char *in_path = g_find_program_in_path ("llama-perplexity");
  const char *beside[] = { QB_SOURCE_ROOT "/../llama.cpp/build/bin/llama-perplexity",
                           QB_SOURCE_ROOT "/../../llama.cpp/build/bin/llama-perplexity" };

  if (env != NULL && g_file_test (env, G_FILE_TEST_IS_EXECUTABLE))
    return g_strdup (env);
  if (in_path != NULL)
    return g_steal_pointer (&in_path);
  for (gsize i = 0; i < G_N_ELEMENTS (beside); i++)
    if (g_file_test (beside[i], G_FILE_TEST_IS_EXECUTABLE))
      return g_canonicalize_filename (beside[i], NULL);
  return NULL;
}

/* Runs llama-perplexity and reads "prompt eval time = ... tokens per second"
 * and "Final estimate: PPL = ..." from its report. */
static Rate
measure_llama (const char *exe, const char *model, const char *text, guint ctx, guint chunks,
               guint threads)
{
  g_autofree char *c = g_strdup_printf ("%u", ctx), *n = g_strdup_printf ("%u", chunks);
  g_autofree char *t = g_strdup_printf ("%u", threads);
  const char *argv[] = { exe, "-m", model, "-f", text, "-c", c, "--chunks", n, "-t", t, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(GError) error = NULL;
  Rate rate = { 0, 0, 0, FALSE };
  const char *line;
  int status = 0;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                     &status, &error) || !g_spawn_check_wait_status (status, NULL))
    return rate;
  for (int k = 0; k < 2; k++)
    {
      const char *all = k == 0 ? err : out;
      if ((line = strstr (all, "prompt eval time")) != NULL)
        {
          const char *per = strstr (line, "ms per token,");
          if (per != NULL)
            rate.tokens_per_second = g_ascii_strtod (per + strlen ("ms per token,"), NULL);
        }
      if ((line = strstr (all, "Final estimate: PPL = ")) != NULL)
        rate.ppl = g_ascii_strtod (line + strlen ("Final estimate: PPL = "), NULL);
    }
  rate.ok = rate.tokens_per_second > 0;
  return rate;
}

/* ---- the sgemm ceiling ------------------------------------------------ */

/* GFLOP/s of a multi-threaded sgemm of m × n × k, best of three runs of
 * about a quarter second each. */
static double
sgemm_gflops (int m, int n, int k, guint threads)
{
  g_autofree float *a = g_new (float, (gsize) m * k), *b = g_new (float, (gsize) n * k);
  g_autofree float *c = g_new (float, (gsize) m * n);
  double best = 0;

  for (gsize i = 0; i < (gsize) m * k; i++)
    a[i] = (float) (i % 7) * 0.1f;
  for (gsize i = 0; i < (gsize) n * k; i++)
    b[i] = (float) (i % 5) * 0.1f;
  openblas_set_num_threads ((int) threads);
  for (int rep = 0; rep < 3; rep++)
    {
      double t0 = qb_bench_now (), t;
      int runs = 0;
      do
        {
          cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
          runs++;
          t = qb_bench_now () - t0;
        }
      while (t < 0.25);
      best = MAX (best, 2.0 * m * n * k * runs / t / 1e9);
    }
  return best;
}

/* ---- report ----------------------------------------------------------- */

static void
print_row (const char *label, guint ctx, guint chunks, Rate ours, Rate llama, double ceiling)
{
  char llama_rate[32] = "-", ratio[32] = "-", llama_ppl[32] = "-";

  if (llama.ok)
    {
      g_snprintf (llama_rate, sizeof llama_rate, "%.0f", llama.tokens_per_second);
      g_snprintf (ratio, sizeof ratio, "%.2f x", ours.tokens_per_second / llama.tokens_per_second);
      g_snprintf (llama_ppl, sizeof llama_ppl, "%.4f", llama.ppl);
    }
  printf ("%-24s %5u %6u %10.0f %10.0f %10s %8s %9.0f %6.2f %11.4f %11s\n", label, ctx, chunks,
          ours.tokens_per_second, ours.tokens_per_cpu_second, llama_rate, ratio, ceiling,
          ours.tokens_per_second / ceiling, ours.ppl, llama_ppl);
  fflush (stdout);
}

static void
print_header (guint threads, int repeats)
{
  printf ("\n%u threads, best of %d runs each.  tokens/s: evaluation rate (wall clock); per CPU s:\n"
          "Quantbench's tokens per CPU-second of all its threads; ceiling: tokens/s if the matrix\n"
          "products ran at the best sgemm speed measured between the runs (2 x weights FLOPs\n"
          "per token)\n\n", threads, repeats);
  printf ("%-24s %5s %6s %10s %10s %10s %8s %9s %6s %11s %11s\n", "model", "ctx", "chunks",
          "quantbench", "per CPU s", "llama.cpp", "ratio", "ceiling", "of it", "PPL qb", "PPL llama");
}

/* The sgemm speed is measured again in every round, the best kept, so a
 * busy moment does not lower the ceiling. */
static void
bench_model (const char *label, const char *path, const char *text, const char *llama_exe,
             guint ctx, guint chunks, const Options *opt, const int shape[3], gboolean modes)
{
  double gflops = 0;
  Rate ours = { 0, 0, 0, FALSE }, llama = { 0, 0, 0, FALSE }, whole = { 0, 0, 0, FALSE };
  Rate none = { 0, 0, 0, FALSE };
  Ours rows, matrix;
  double ceiling;

  ours_open (&rows, path, text, opt->threads, QB_DEQUANT_ROWS);
  if (modes)
    ours_open (&matrix, path, text, opt->threads, QB_DEQUANT_MATRIX);
  for (int rep = 0; rep < opt->repeats; rep++)
    {
      keep_best (&ours, measure_ours (&rows, ctx, chunks));
      if (modes)
        keep_best (&whole, measure_ours (&matrix, ctx, chunks));
      if (llama_exe != NULL)
        keep_best (&llama, measure_llama (llama_exe, path, text, ctx, chunks, opt->threads));
      gflops = MAX (gflops, sgemm_gflops (shape[0], shape[1], shape[2], opt->threads));
    }
  ceiling = gflops * 1e9 / rows.flops;
  printf ("%-24s sgemm %.1f GFLOP/s at %dx%dx%d\n", "", gflops, shape[0], shape[1], shape[2]);
  print_row (label, ctx, chunks, ours, llama, ceiling);
  if (modes)
    {
      print_row ("  (whole-matrix dequant)", ctx, chunks, whole, none, ceiling);
      printf ("  per-row-block / whole-matrix dequantization: %.2f x (wall), %.2f x (per CPU s)\n",
              ours.tokens_per_second / whole.tokens_per_second,
              ours.tokens_per_cpu_second / whole.tokens_per_cpu_second);
      ours_close (&matrix);
    }
  ours_close (&rows);
}

int
main (int argc, char **argv)
{
  Options o = { 0, NULL, 100, 2, 512, 3 };
  GOptionEntry entries[] = {
    { "threads", 't', 0, G_OPTION_ARG_INT, &o.threads, "Threads (default: all cores)", "N" },
    { "params", 0, 0, G_OPTION_ARG_STRING, &o.params, "Size of the generated model (default 370M)", "SIZE" },
    { "chunks", 0, 0, G_OPTION_ARG_INT, &o.chunks, "stories260K chunks of 128 tokens (default 100)", "N" },
    { "big-chunks", 0, 0, G_OPTION_ARG_INT, &o.big_chunks, "Generated model's chunks (default 2)", "N" },
    { "big-ctx", 0, 0, G_OPTION_ARG_INT, &o.big_ctx, "Generated model's context (default 512)", "N" },
    { "repeats", 0, 0, G_OPTION_ARG_INT, &o.repeats, "Runs per figure, the best kept (default 3)", "N" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- evaluation tokens per second");
  g_autoptr(GError) error = NULL;
  g_autofree char *stories = NULL, *text = NULL, *llama = NULL;
  g_autofree char *stories_q8 = NULL, *demo = NULL, *demo_q8 = NULL;
  gint64 n_params = 370000000;
  int small[3] = { 128, 172, 64 }, big[3];
  QbDemoModelDims dims;

  /* The kernels `quantbench` itself uses (qb-blas.h). */
  qb_blas_prefer_avx512 (argv);
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    g_error ("%s", error->message);
  if (o.threads == 0)
    o.threads = qb_cpu_count ();
  if (o.params != NULL && !qb_demo_model_parse_size (o.params, &n_params))
    g_error ("--params %s is not a size", o.params);

  stories = shared_path ("models/stories260K.gguf");
  text = shared_path ("text/tinystories-val.txt");
  if (stories == NULL || text == NULL)
    {
      printf ("bench-eval: ../shared (stories260K, tinystories-val.txt) is absent; nothing to measure\n");
      return 0;
    }
  llama = find_llama_perplexity ();
  printf ("llama-perplexity: %s\n", llama ? llama : "not found (set QB_LLAMA_PERPLEXITY)");
  printf ("OpenBLAS kernels: %s\n", qb_blas_get_core_name ());
  stories_q8 = q8_0_file (stories, "stories260K-q8_0.gguf", o.threads);
  demo = qb_bench_demo_model (n_params, QB_DTYPE_F32);
  {
    g_autofree char *name = g_strdup_printf ("demo-v%d-%" G_GINT64_FORMAT "-q8_0-seed1.gguf",
                                             QB_DEMO_MODEL_VERSION, n_params);
    demo_q8 = q8_0_file (demo, name, o.threads);
  }

  /* The sgemm ceilings at each model's FFN shape (stories260K: 128 tokens,
   * 172 × 64). */
  qb_demo_model_choose_dims (n_params, &dims);
  big[0] = o.big_ctx;
  big[1] = (int) dims.n_ff;
  big[2] = (int) dims.n_embd;

  o.repeats = MAX (o.repeats, 1);
  print_header (o.threads, o.repeats);
  bench_model ("stories260K F32", stories, text, llama, 128, o.chunks, &o, small, FALSE);
  bench_model ("stories260K Q8_0", stories_q8, text, llama, 128, o.chunks, &o, small, TRUE);
  bench_model ("demo F32", demo, text, llama, o.big_ctx, o.big_chunks, &o, big, FALSE);
  bench_model ("demo Q8_0", demo_q8, text, llama, o.big_ctx, o.big_chunks, &o, big, TRUE);
  g_free (o.params);
  return 0;
}
