/* SPDX-License-Identifier: MIT */
/* bench-calib.c — does calibration pay?  Method × format → KL divergence
 * against the float model, perplexity and top-1 agreement, on
 * stories260K with TinyStories (../shared).
 *
 * Split: the text is tokenized once (BOS first) and cut into chunks of
 * 128 tokens (the model's context).  Evaluation scores chunks 0 .. 79
 * (llama-perplexity's protocol, qb-eval.h); calibration uses 128 chunks
 * from chunk 100 on (skip 100), so the two never share a token.
 *
 * Every 2-D tensor gets the format (token_embd and output included; a
 * tensor whose rows do not fit falls back as the plan says: stories260K's
 * 172-wide ffn_down goes to INT4_CH under INT4_G32 and to F16 under Q4_0).
 * Methods: rtn (plain rounding, no calibration), search (the format's
 * scale search, no calibration), imatrix (rounding with
 * the calibration's importance, output.weight included), gptq (GPTQ with
 * XᵀX and the same importance for the block scales), gptq-ao (with
 * act-order).  Run: meson test -C build --benchmark --suite bench calib -v
 */
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>

#include "qb-activation-stats.h"
#include "qb-bench-util.h"
#include "qb-calibration.h"
#include "qb-eval.h"
#include "qb-job.h"
#include "qb-llama.h"
#include "qb-tokenizer.h"

#define N_CTX        128
#define EVAL_CHUNKS  80
#define CALIB_SKIP   100
#define CALIB_CHUNKS 128

typedef struct {
  const char *name;
  const char *method;
  gboolean    importance;
  gboolean    act_order;
} Method;

static const Method methods[] = {
  { "rtn",     "rtn",  FALSE, FALSE },
  { "search",  "search", FALSE, FALSE },
  { "imatrix", "rtn",  TRUE,  FALSE },
  { "gptq",    "gptq", TRUE,  FALSE },
  { "gptq-ao", "gptq", TRUE,  TRUE },
};

static const char *formats[] = { "INT4_G32", "Q4_0" };

static char *
shared (const char *rel)
{
  const char *dir = g_getenv ("QB_SHARED_DIR");
  return g_build_filename (dir ? dir : "../shared", rel, NULL);
}

/* Quantizes with the method and loads every quantized tensor into llama. */
static gboolean
quantize_into (QbModel *model, QbLlama *llama, QbActivationStats *stats, const char *format,
               const Method *m, double *bpw, GError **error)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbJob) job = NULL;

  qb_plan_set_default_format (plan, format);
  qb_plan_set_default_method (plan, m->method);
  if (m->act_order)
    qb_plan_set_option (plan, "gptq.act_order", "true");
  job = qb_job_new (model, plan);
  qb_job_set_keep_data (job, TRUE);
  if (m->importance)
    qb_activation_stats_attach (stats, job, TRUE);
  if (!qb_job_run (job, NULL, error))
    return FALSE;
  *bpw = qb_job_get_resolution (job)->bpw;
  return qb_llama_use_job (llama, job, NULL, error);
}

int
main (int argc, char **argv)
{
  g_autofree char *model_path = shared ("models/stories260K.gguf");
  g_autofree char *text = shared ("text/tinystories-val.txt");
  g_autofree char *bench_dir = qb_bench_cache_dir ();
  g_autofree char *cache = g_build_filename (bench_dir, "calib", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbLlama) llama = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  g_autoptr(QbCalibration) calib = NULL;
  QbActivationStats *stats;
  const char *paths[] = { text, NULL };
  QbCalibrationOptions co;
  QbStatsOptions so;
  QbEvalOptions eo;
  QbEvalResult base;

  if (!g_file_test (model_path, G_FILE_TEST_EXISTS) || !g_file_test (text, G_FILE_TEST_EXISTS))
    {
      printf ("skipped: %s or %s is absent (set QB_SHARED_DIR)\n", model_path, text);
      return 0;
    }
  if ((model = qb_model_open (model_path, &error)) == NULL
      || (llama = qb_llama_new (model, &error)) == NULL
      || (tok = qb_tokenizer_new_for_model (model, &error)) == NULL)
    goto fail;

  qb_calibration_options_init (&co);
  co.n_ctx = N_CTX;
  co.n_chunks = CALIB_CHUNKS;
  co.skip_chunks = CALIB_SKIP;
  co.cache_dir = cache;
  if ((calib = qb_calibration_new (model, tok, paths, &co, NULL, &error)) == NULL)
    goto fail;
  qb_stats_options_init (&so);
  so.gram_all = TRUE;
  so.cache_dir = cache;
  if ((stats = qb_activation_stats_compute (llama, calib, &so, NULL, NULL, NULL, &error)) == NULL)
    goto fail;

  qb_eval_options_init (&eo);
  eo.n_ctx = N_CTX;
  eo.n_chunks = EVAL_CHUNKS;
  eo.kld = TRUE;
  eo.cache_dir = cache;
  if (!qb_eval_run (llama, tok, text, &eo, NULL, NULL, NULL, &base, &error))
    goto fail;

  printf ("stories260K, %s: %" G_GUINT64_FORMAT " tokens\n", text, qb_calibration_get_n_text_tokens (calib));
  printf ("evaluation: chunks 0..%d of %d tokens (%" G_GUINT64_FORMAT " scored positions)\n",
          EVAL_CHUNKS - 1, N_CTX, base.n_scored);
  printf ("calibration: %u chunks of %d tokens from chunk %d on (chunks %u..%u)\n",
          qb_calibration_get_n_chunks (calib), N_CTX, CALIB_SKIP,
          qb_calibration_get_chunk_index (calib, 0),
          qb_calibration_get_chunk_index (calib, qb_calibration_get_n_chunks (calib) - 1));
  printf ("float model: PPL %.4f +/- %.4f\n\n", base.ppl, base.ppl_err);
  printf ("%-9s %-9s %6s %22s %18s %9s\n", "method", "format", "bpw", "KLD mean", "PPL", "same top");

  for (gsize f = 0; f < G_N_ELEMENTS (formats); f++)
    for (gsize k = 0; k < G_N_ELEMENTS (methods); k++)
      {
        QbEvalResult r;
        double bpw = 0;

        if (!quantize_into (model, llama, stats, formats[f], &methods[k], &bpw, &error)
            || !qb_eval_run (llama, tok, text, &eo, NULL, NULL, NULL, &r, &error))
          goto fail;
        printf ("%-9s %-9s %6.3f %12.6f +/- %.6f %9.4f +/- %.4f %8.2f%%\n", methods[k].name,
                formats[f], bpw, r.kld_mean, r.kld_mean_err, r.ppl, r.ppl_err, 100 * r.same_top);
      }
  qb_activation_stats_free (stats);
  return 0;

fail:
  fprintf (stderr, "bench-calib: %s\n", error->message);
  return 1;
}
