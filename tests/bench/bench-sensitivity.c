/* SPDX-License-Identifier: MIT */
/* bench-sensitivity.c — what a sensitivity study costs, beside one full
 * evaluation of the same tokens (the float model and one quantized model,
 * as `quantbench eval --kld` runs them).
 *
 * stories260K on TinyStories (../shared): 6 candidates, 8 chunks of 128
 * tokens; the generated demo model (--params, default 370M, F16): 4
 * candidates (Q4_K, Q5_K, Q6_K, Q8_0), --chunks chunks of --ctx tokens,
 * --measure candidates per tensor measured end to end (default all).  The
 * study's time is the whole run (float pass, quantizing every tensor in
 * every candidate, the measurements); the baseline is qb_eval_run with
 * --kld on the same chunks, the float model's cache disabled.
 *
 * Run: meson test -C build --benchmark --suite bench sensitivity -v
 * or:  ./build/tests/bench/bench-sensitivity [--params 370M] [--ctx 128] [--chunks 1]
 *      [--measure N] [--threads N] [--skip-demo]
 */
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#include "qb-bench-util.h"
#include "qb-demo-model.h"
#include "qb-eval.h"
#include "qb-llama.h"
#include "qb-sensitivity.h"
#include "qb-store.h"
#include "qb-tokenizer.h"

typedef struct {
  double study_wall, study_cpu;
  double eval_wall, eval_cpu;
  guint  n_tensors, n_measured;
} Figures;

static gboolean
measure (const char *model_path, const char *text, const char * const *names, guint n_names,
         guint n_ctx, guint n_chunks, guint measure_n, guint threads, Figures *f, GError **error)
{
  g_autoptr(QbModel) model = qb_model_open (model_path, error);
  g_autoptr(QbTokenizer) tok = NULL;
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbLlama) llama = NULL;
  g_autoptr(QbSensitivityStudy) st = NULL;
  g_autofree char *dir = NULL, *db = NULL;
  g_autofree const QbFormat **cands = g_new0 (const QbFormat *, n_names);
  QbSensitivityOptions o;
  QbEvalOptions eo;
  QbEvalResult r;
  gint64 id = 0;
  double t0, c0;

  if (model == NULL || (tok = qb_tokenizer_new_for_model (model, error)) == NULL)
    return FALSE;
  dir = g_dir_make_tmp ("qb-bench-sens-XXXXXX", error);
  if (dir == NULL)
    return FALSE;
  db = g_build_filename (dir, "qb.db", NULL);
  if ((store = qb_store_open (db, error)) == NULL)
    return FALSE;
  for (guint i = 0; i < n_names; i++)
    cands[i] = qb_format_find (names[i]);

  qb_sensitivity_options_init (&o);
  o.candidates = cands;
  o.n_candidates = n_names;
  o.eval_text = text;
  o.eval_n_ctx = n_ctx;
  o.eval_n_chunks = n_chunks;
  o.measure = measure_n;
  o.n_threads = threads;
  t0 = qb_bench_now ();
  c0 = qb_bench_cpu_seconds ();
  if (!qb_sensitivity_run (model, tok, store, &o, NULL, NULL, NULL, &id, error))
    return FALSE;
  f->study_wall = qb_bench_now () - t0;
  f->study_cpu = qb_bench_cpu_seconds () - c0;
  if ((st = qb_sensitivity_study_load (store, id, error)) == NULL)
    return FALSE;
  f->n_tensors = st->n_tensors;
  f->n_measured = st->n_measured;

  /* One full evaluation of the same chunks: the float pass and a
   * quantized pass (here the stored weights stand in for the quantized
   * ones: the forward work is the same). */
  if ((llama = qb_llama_new (model, error)) == NULL)
    return FALSE;
  qb_llama_set_threads (llama, threads);
  qb_eval_options_init (&eo);
  eo.n_ctx = st->record->eval_n_ctx;
  eo.n_chunks = st->record->eval_n_chunks;
  eo.kld = TRUE;
  eo.no_cache = TRUE;
  t0 = qb_bench_now ();
  c0 = qb_bench_cpu_seconds ();
  if (!qb_eval_run (llama, tok, text, &eo, NULL, NULL, NULL, &r, error))
    return FALSE;
  f->eval_wall = qb_bench_now () - t0;
  f->eval_cpu = qb_bench_cpu_seconds () - c0;
  g_unlink (db);
  return TRUE;
}

static void
report (const char *what, const Figures *f, guint n_cands)
{
  printf ("%s\n", what);
  printf ("  study: %u tensors × %u candidates, %u measured end to end: %.1f s wall, %.1f CPU s\n",
          f->n_tensors, n_cands, f->n_measured, f->study_wall, f->study_cpu);
  printf ("  one evaluation of the same tokens (float + model, --kld): %.2f s wall, %.2f CPU s\n",
          f->eval_wall, f->eval_cpu);
  printf ("  study / evaluation: %.1f x wall, %.1f x CPU; per measured candidate %.3f evaluations\n",
          f->study_wall / f->eval_wall, f->study_cpu / f->eval_cpu,
          f->study_wall / f->eval_wall / MAX (f->n_measured, 1));
}

int
main (int argc, char **argv)
{
  static const char *small[] = { "Q4_0", "IQ4_NL", "Q5_0", "Q8_0", "INT4_CH", "INT8_CH" };
  static const char *demo[] = { "Q4_K", "Q5_K", "Q6_K", "Q8_0" };
  g_autofree char *params = NULL;
  int threads = 0, ctx = 128, chunks = 1, measure_n = 0;
  gboolean skip_demo = FALSE;
  GOptionEntry entries[] = {
    { "params", 0, 0, G_OPTION_ARG_STRING, &params, "Size of the generated model (default 370M)", "SIZE" },
    { "ctx", 0, 0, G_OPTION_ARG_INT, &ctx, "Demo model: tokens per chunk (default 128)", "N" },
    { "chunks", 0, 0, G_OPTION_ARG_INT, &chunks, "Demo model: evaluation chunks (default 1)", "N" },
    { "measure", 0, 0, G_OPTION_ARG_INT, &measure_n, "Demo model: candidates measured per tensor (default all)", "N" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "Threads (default: all cores)", "N" },
    { "skip-demo", 0, 0, G_OPTION_ARG_NONE, &skip_demo, "Only stories260K", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- sensitivity study time");
  g_autoptr(GError) error = NULL;
  const char *shared = g_getenv ("QB_SHARED_DIR") ? g_getenv ("QB_SHARED_DIR") : "../shared";
  g_autofree char *model = g_build_filename (shared, "models", "stories260K.gguf", NULL);
  g_autofree char *text = g_build_filename (shared, "text", "tinystories-val.txt", NULL);
  gint64 n_params = 370000000;
  Figures f = { 0 };

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error)
      || (params && !qb_demo_model_parse_size (params, &n_params)) || threads < 0)
    {
      fprintf (stderr, "%s\n", error ? error->message : "bad options");
      return 2;
    }
  printf ("threads: %u\n", threads ? (guint) threads : qb_cpu_count ());
  if (!g_file_test (model, G_FILE_TEST_EXISTS) || !g_file_test (text, G_FILE_TEST_EXISTS))
    {
      printf ("skipped: %s or %s is absent (set QB_SHARED_DIR)\n", model, text);
      return 0;
    }
  if (!measure (model, text, small, G_N_ELEMENTS (small), 0, 8, 0, threads, &f, &error))
    {
      fprintf (stderr, "stories260K: %s\n", error->message);
      return 1;
    }
  report ("stories260K, 8 chunks of 128 tokens", &f, G_N_ELEMENTS (small));
  if (!skip_demo)
    {
      g_autofree char *path = qb_bench_demo_model (n_params, QB_DTYPE_F16);
      g_autofree char *what = NULL;

      if (!measure (path, text, demo, G_N_ELEMENTS (demo), (guint) ctx, (guint) chunks,
                    (guint) measure_n, threads, &f, &error))
        {
          fprintf (stderr, "demo model: %s\n", error->message);
          return 1;
        }
      what = g_strdup_printf ("demo model %s (F16), %d chunk(s) of %d tokens, measure %s",
                              params ? params : "370M", chunks, ctx,
                              measure_n ? "some" : "all");
      report (what, &f, G_N_ELEMENTS (demo));
    }
  return 0;
}
