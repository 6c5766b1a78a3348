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
 *
 * From Hugging Face: the same weights as model.safetensors with
 * config.json's rope_scaling {"type": "longrope", long_factor,
 * short_factor} and original_max_position_embeddings give the GGUF form's
 * logits, above and below the original context (the attention factor
 * derived as transformers does).
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

/* ---- the same model as a Hugging Face checkpoint ----------------------- */

/* Phi-3's Hugging Face name of a GGUF tensor (convert_hf_to_gguf's map,
 * backwards). */
static char *
hf_name (const QbTensor *t)
{
  static const char *const map[][2] = {
    { "attn_norm", "input_layernorm" }, { "attn_qkv", "self_attn.qkv_proj" },
    { "attn_output", "self_attn.o_proj" }, { "ffn_norm", "post_attention_layernorm" },
    { "ffn_up", "mlp.gate_up_proj" }, { "ffn_down", "mlp.down_proj" },
  };
  g_auto(GStrv) parts = g_strsplit (t->name, ".", -1);

  if (t->layer < 0)
    return g_strdup (t->role == QB_ROLE_TOKEN_EMBD ? "model.embed_tokens.weight"
                     : t->role == QB_ROLE_OUTPUT_NORM ? "model.norm.weight" : "lm_head.weight");
  for (gsize i = 0; i < G_N_ELEMENTS (map); i++)
    if (strcmp (parts[2], map[i][0]) == 0)
      return g_strdup_printf ("model.layers.%d.%s.weight", t->layer, map[i][1]);
  g_assert_not_reached ();
}

/* "[1.5,2,...]" of the n values of a GGUF factor tensor. */
static char *
factor_list (QbModel *model, const char *name)
{
  guint index;
  const QbTensor *t = qb_model_find_tensor (model, name, &index);
  g_autofree float *v = NULL;
  g_autoptr(GString) s = g_string_new ("[");
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (t);
  v = g_new (float, t->n_params);
  qb_model_read_rows (model, index, 0, 1, v, &error);
  g_assert_no_error (error);
  for (gint64 i = 0; i < t->n_params; i++)
    g_string_append_printf (s, "%s%.9g", i ? "," : "", v[i]);
  g_string_append_c (s, ']');
  return g_string_free (g_steal_pointer (&s), FALSE);
}

/* The GGUF model's weights as dir/model.safetensors, its LongRoPE in
 * dir/config.json (without the attention factor: derived there). */
static void
write_hf (QbLlama *llama, const char *dir)
{
  QbModel *model = qb_llama_get_model (llama);
  const QbLlamaParams *p = qb_llama_get_params (llama);
  QbTestSafetensors *st = qb_test_safetensors_new ();
  g_autofree char *st_path = g_build_filename (dir, "model.safetensors", NULL);
  g_autofree char *cfg_path = g_build_filename (dir, "config.json", NULL);
  g_autofree char *lf = factor_list (model, "rope_factors_long.weight");
  g_autofree char *sf = factor_list (model, "rope_factors_short.weight");
  g_autofree char *config = NULL;
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      g_autofree char *name = NULL;
      g_autofree float *v = NULL;
      gint64 shape[2] = { t->ne[1], t->ne[0] };

      if (g_str_has_prefix (t->name, "rope_factors_"))
        continue;
      name = hf_name (t);
      v = g_new (float, t->n_params);
      qb_model_read_rows (model, i, 0, qb_tensor_n_rows (t), v, &error);
      g_assert_no_error (error);
      if (t->n_dims == 1)
        qb_test_safetensors_add (st, name, 1, &t->ne[0], v);
      else
        qb_test_safetensors_add (st, name, 2, shape, v);
    }
  qb_test_safetensors_write (st, st_path);
  config = g_strdup_printf (
    "{\"model_type\":\"phi3\",\"hidden_size\":%u,\"num_attention_heads\":%u,"
    "\"num_key_value_heads\":%u,\"num_hidden_layers\":%u,\"intermediate_size\":%u,"
    "\"vocab_size\":%u,\"rms_norm_eps\":%g,\"rope_theta\":%g,\"sliding_window\":%u,"
    "\"max_position_embeddings\":512,\"original_max_position_embeddings\":64,"
    "\"tie_word_embeddings\":false,"
    "\"rope_scaling\":{\"type\":\"longrope\",\"long_factor\":%s,\"short_factor\":%s}}",
    p->n_embd, p->n_head, p->n_head_kv, p->n_layer, p->n_ff, p->n_vocab, p->rms_eps,
    p->rope_base, p->swa_window, lf, sf);
  g_file_set_contents (cfg_path, config, -1, &error);
  g_assert_no_error (error);
}

/* First tokens of a fixed pseudo-random sequence. */
static float *
logits_of (QbLlama *llama, guint n_tokens)
{
  float *logits = g_new (float, (gsize) n_tokens * qb_llama_get_params (llama)->n_vocab);
  g_autofree gint32 *tokens = g_new (gint32, n_tokens);
  g_autoptr(GError) error = NULL;

  tokens[0] = 1;
  for (guint i = 1; i < n_tokens; i++)
    tokens[i] = (gint32) (3 + (i * 2654435761u) % 509);
  qb_llama_forward (llama, tokens, n_tokens, 0, logits, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  return logits;
}

static double
max_diff (const float *a, const float *b, gsize n)
{
  double m = 0;

  for (gsize i = 0; i < n; i++)
    m = MAX (m, fabs ((double) a[i] - b[i]));
  return m;
}

static void
test_safetensors (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_demo (dir, "lr.gguf", TRUE);
  g_autofree char *hf_dir = g_build_filename (dir, "hf", NULL);
  g_autoptr(QbModel) model = NULL, hf_model = NULL;
  g_autoptr(QbLlama) gguf = NULL, hf = NULL;
  g_autoptr(GError) error = NULL;
  /* Above and below the original context of 64. */
  const guint lengths[] = { 96, 48 };

  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  gguf = open_llama (model);
  g_mkdir_with_parents (hf_dir, 0700);
  write_hf (gguf, hf_dir);
  hf_model = qb_model_open (hf_dir, &error);
  g_assert_no_error (error);
  hf = open_llama (hf_model);
  g_assert_cmpuint (hf->p.n_ctx_orig, ==, gguf->p.n_ctx_orig);
  g_assert_cmpfloat_with_epsilon (hf->p.rope_attn_factor, gguf->p.rope_attn_factor, 1e-6);
  for (gsize i = 0; i < G_N_ELEMENTS (lengths); i++)
    {
      g_autofree float *a = logits_of (gguf, lengths[i]), *b = logits_of (hf, lengths[i]);
      double d = max_diff (a, b, lengths[i] * (gsize) gguf->p.n_vocab);

      g_test_message ("%u tokens: safetensors against GGUF: %g", lengths[i], d);
      g_assert_cmpfloat (d, <, 1e-4);
    }
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
  g_test_add_func ("/longrope/safetensors", test_safetensors);
  g_test_add_func ("/longrope/bad-factors", test_bad_factors);
  return g_test_run ();
}
