/* SPDX-License-Identifier: MIT */
/* test-longrope.c — Phi-3's LongRoPE (Phi-3 128k, Phi-3.5, Phi-4-mini).
 *
 * Against llama.cpp: the demo model
 *   quantbench demo-model --arch phi3 --longrope --dtype f32 -o lr.gguf
 * (seed 1, the tiny size: 4 layers, hidden 256, context 512, original
 * context 64, so attention factor sqrt (1 + ln 8 / ln 64); short factors
 * within 1.3, long ones up to 41) was evaluated by llama.cpp commit c392e50
 * (CPU build, 2 threads):
 *   llama-perplexity -m lr.gguf -f ../shared/text/tinystories-val.txt \
 *       -c C --chunks 4 -t 2 -ctk f32 -ctv f32
 * with C = 128 (above the original context: llama.cpp takes the long
 * factors) and C = 64 (the short ones).  Quantbench measured 133512.8409
 * and 151719.9981 on the same file, within 0.0002 % of both.  The test
 * asserts 0.1 %.  llama.cpp also loads Quantbench's exports of it: F16,
 * 133461.4494 (Quantbench on the same file 133480.1970, +0.014 %); Q8_0,
 * 127766.1200 (Quantbench with --ggml-activations 127389.0173, −0.30 %,
 * the quantized-plan difference test-families describes; not asserted).
 * The test also checks that the comparison can fail: with the short factors
 * in place of the long ones, without the attention factor, or on the
 * same model without LongRoPE, perplexity moves by more than 1 %.
 */
#include <math.h>
#include <string.h>

#include "qb-demo-model.h"
#include "qb-eval.h"
#include "qb-llama-private.h"
#include "qb-model.h"
#include "qb-test-model.h"
#include "qb-test-util.h"
#include "qb-tokenizer.h"

#define CHUNKS 4

static const struct { guint ctx; double ppl; } references[] = {
  { 128, 133512.6989 },   /* long factors */
  { 64, 151720.1413 },    /* short factors */
};

static char *
write_demo (const char *dir, const char *name, gboolean longrope)
{
  char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;
  QbDemoModelSpec spec;

  qb_demo_model_spec_init (&spec);
  spec.arch = "phi3";
  spec.dtype = QB_DTYPE_F32;
  spec.longrope = longrope;
  qb_demo_model_write (&spec, path, NULL, NULL, &error);
  g_assert_no_error (error);
  return path;
}

static QbLlama *
open_llama (QbModel *model)
{
  g_autoptr(GError) error = NULL;
  QbLlama *llama = qb_llama_new (model, &error);

  g_assert_no_error (error);
  qb_llama_set_threads (llama, 2);
  return llama;
}

static double
perplexity (QbLlama *llama, QbTokenizer *tok, const char *text, guint ctx)
{
  g_autoptr(GError) error = NULL;
  QbEvalOptions o;
  QbEvalResult r;

  qb_eval_options_init (&o);
  o.n_ctx = ctx;
  o.n_chunks = CHUNKS;
  o.no_cache = TRUE;
  qb_eval_run (llama, tok, text, &o, NULL, NULL, NULL, &r, &error);
  g_assert_no_error (error);
  return r.ppl;
}

static void
assert_moved (double ppl, double ref, const char *what)
{
  g_test_message ("%s: PPL %.4f (%+.2f %% from llama.cpp's)", what, ppl, 100 * (ppl / ref - 1));
  g_assert_cmpfloat (fabs (ppl / ref - 1), >, 0.01);
}

static void
test_llama_cpp (void)
{
  g_autofree char *text = qb_test_shared_path ("text/tinystories-val.txt");
  g_autofree char *dir = NULL, *path = NULL, *plain_path = NULL;
  g_autoptr(QbModel) model = NULL, plain_model = NULL;
  g_autoptr(QbLlama) llama = NULL, plain = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  g_autoptr(GError) error = NULL;
  float *long_factors;

  if (text == NULL)
    return;
  dir = qb_test_tmpdir ();
  path = write_demo (dir, "lr.gguf", TRUE);
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  tok = qb_tokenizer_new_from_gguf (qb_model_get_gguf (model), &error);
  g_assert_no_error (error);
  llama = open_llama (model);
  g_assert_cmpuint (llama->p.n_ctx_orig, ==, 64);
  g_assert_cmpfloat_with_epsilon (llama->p.rope_attn_factor, sqrt (1.5), 1e-6);
  g_assert_nonnull (llama->rope_factors_long);

  for (gsize i = 0; i < G_N_ELEMENTS (references); i++)
    {
      double ppl = perplexity (llama, tok, text, references[i].ctx);
      g_test_message ("context %u: PPL %.4f, llama.cpp %.4f (%+.5f %%)", references[i].ctx, ppl,
                      references[i].ppl, 100 * (ppl / references[i].ppl - 1));
      g_assert_cmpfloat_with_epsilon (ppl / references[i].ppl, 1.0, 0.001);
    }

  /* Each piece matters at the longer context. */
  long_factors = llama->rope_factors_long;
  llama->rope_factors_long = llama->rope_factors;
  assert_moved (perplexity (llama, tok, text, 128), references[0].ppl, "short factors at 128");
  llama->rope_factors_long = long_factors;
  llama->p.rope_attn_factor = 1.0f;
  assert_moved (perplexity (llama, tok, text, 128), references[0].ppl, "no attention factor");

  plain_path = write_demo (dir, "plain.gguf", FALSE);
  plain_model = qb_model_open (plain_path, &error);
  g_assert_no_error (error);
  plain = open_llama (plain_model);
  g_assert_null (plain->rope_factors_long);
  g_assert_cmpfloat (plain->p.rope_attn_factor, ==, 1.0f);
  assert_moved (perplexity (plain, tok, text, 128), references[0].ppl, "without LongRoPE");
}

/* A model file whose factors cannot divide positions is refused by name. */
static void
test_bad_factors (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_demo (dir, "bad.gguf", TRUE);
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbLlama) llama = NULL;
  g_autoptr(GError) error = NULL;

  qb_test_poison_tensor (path, "rope_factors_long.weight", 3, 0.0f);
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  llama = qb_llama_new (model, &error);
  g_assert_null (llama);
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "rope_factors_long.weight[3]"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/longrope/llama-cpp", test_llama_cpp);
  g_test_add_func ("/longrope/bad-factors", test_bad_factors);
  return g_test_run ();
}
