/* SPDX-License-Identifier: MIT */
/* test-moe.c — mixtures of experts: the forward pass (perplexity of
 * generated Mixtral-style and Qwen2-MoE models against llama.cpp's on the
 * same weights and text, the export llama.cpp loaded, a one-expert mixture
 * against the dense model it is) and quantizing 3-D expert tensors with an
 * importance set per expert.
 */
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "qb-activation-stats.h"
#include "qb-calibration.h"
#include "qb-demo-model.h"
#include "qb-device.h"
#include "qb-gptq-device-private.h"
#include "qb-imatrix.h"
#include "qb-format.h"
#include "qb-job.h"
#include "qb-gguf.h"
#include "qb-llama.h"
#include "qb-model.h"
#include "qb-plan.h"
#include "qb-sensitivity.h"
#include "qb-store.h"
#include "qb-study-record.h"
#include "qb-tensor-quantizer.h"
#include "qb-test-model.h"
#include "qb-tokenizer.h"
#include "qb-test-util.h"

/* llama.cpp's perplexities, from its Feb-2025 snapshot (commit c392e50),
 * CPU, 2 threads, KV cache in F32 (`-ctk f32 -ctv f32`: its default F16
 * cache rounds attention, which Quantbench does not).  The models:
 * `quantbench demo-model --arch A --dtype f32 -o m.gguf` (seed 1, 4 layers
 * of 256, 8 experts of 256, 2 per token; the Qwen2-MoE one with a shared
 * expert of 768).  F32 over the first 20,000 bytes of
 * ../shared/text/tinystories-val.txt (`head -c 20000`), 20 chunks of 128:
 *   llama-perplexity -m m.gguf -f t20k.txt -c 128 -t 2 --chunks 20 -ctk f32 -ctv f32
 * The quantized plans over 300 chunks of the whole file:
 *   quantbench quantize m.gguf --default T -o q.gguf --no-save
 *   llama-perplexity -m q.gguf -f tinystories-val.txt -c 128 -t 2 --chunks 300 -ctk f32 -ctv f32
 * (llama.cpp built with -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON
 * -DGGML_F16C=ON, run on an AMD EPYC with AVX-512; -t 1, -ub 16 and -b 64
 * give the same figures).  Quantbench evaluates them with
 * --ggml-activations, as llama.cpp's CPU kernels compute (activations
 * rounded to 8-bit blocks before each product with Q8_0/K-quant weights).
 *
 * Why 300 chunks: what remains between the two is chaotic.  They sum in
 * other orders, so now and then an activation on a rounding boundary
 * rounds the other way and moves a token to another expert; over a few
 * chunks that is a draw of noise of ±0.1-0.8 % (deepseek2's near-tied
 * routing the most).  The draw depends on the machine as well as the
 * code: OpenBLAS picks its kernels for the CPU, each sums in its own
 * order.  Measured over 20 chunks with OPENBLAS_CORETYPE=Haswell,
 * SkylakeX and Sandybridge, the Mixtral-style Q8_0 gave 636.05-636.32
 * (llama.cpp 636.64), deepseek2 Q4_K 594.30-595.23, the 27-layer
 * V2-Lite shape's Q8_0 601.20-606.26; the 20-chunk references of an
 * earlier machine failed on a newer one.  Over 300 chunks the same three
 * kernels stay within 0.03 % of llama.cpp for the Mixtral-style and
 * Qwen2-MoE models (Q8_0 658.57-658.74, Q4_K 672.54-672.66; Q8_0
 * 661.74-661.78, Q4_K 677.69-677.83), within 0.02 % for deepseek2 (V2
 * routing) and YaRN, and within 0.06 % for the sigmoid routing (Q4_K
 * 606.12-606.68): tol says how close each must be.  The V2-Lite shape
 * (27 layers, attn_q instead of the low-rank pair) is compared in F32
 * only: its F32 agrees to the printed digit, and 300 chunks of it would
 * take minutes.
 *
 * DeepSeek-style (deepseek2: multi-head latent attention, one leading dense
 * layer, 8 experts of 256 with one shared expert, 2 per token): `--arch
 * deepseek2` (V2 routing: softmax, not renormalised), `--arch deepseek2
 * --sigmoid` (V3 routing: sigmoid with a selection bias, renormalised,
 * × 2.5) and `--arch deepseek2 --yarn` (YaRN as DeepSeek-V2/V3 carry it,
 * factor 4 over an original context of 128; it moves F32 perplexity by
 * +2.3 % against the same weights without it), the same commands; F32
 * agrees to the printed digit in each. */
typedef struct {
  const char *name;
  const char *arch;
  gboolean    sigmoid;
  gboolean    yarn;
  double      ppl_f32;
  double      ppl_q8_0;
  double      ppl_q4_k;
  double      tol;        /* of the quantized plans */
  guint       n_layer;    /* 0: the demo's default */
} Reference;

static const Reference references[] = {
  { "mixtral", "mixtral", FALSE, FALSE, 635.8695, 658.5990, 672.4699, 0.001 },
  { "qwen2moe", "qwen2moe", FALSE, FALSE, 673.9397, 661.7363, 677.8107, 0.001 },
  { "deepseek2", "deepseek2", FALSE, FALSE, 578.5385, 583.2003, 592.7724, 0.001 },
  { "deepseek2-sigmoid", "deepseek2", TRUE, FALSE, 588.7367, 589.3985, 606.4475, 0.0015 },
  { "deepseek2-yarn", "deepseek2", FALSE, TRUE, 591.6024, 584.7589, 596.4313, 0.001 },
  { "deepseek2-lite", "deepseek2", FALSE, FALSE, 595.0463, 0, 0, 0, 27 },
};

#define TEXT_BYTES 20000
#define QUANT_CHUNKS 300

static JsonObject *
parse_json (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

static char *
write_model_as (const char *dir, const char *arch, gboolean sigmoid, gboolean yarn,
                guint n_layer, guint n_expert, guint n_used)
{
  char *path = g_strdup_printf ("%s/%s%s%s-%u-%u.gguf", dir, arch, sigmoid ? "-sigmoid" : "",
                                yarn ? "-yarn" : "", n_expert, n_used);
  g_autoptr(GError) error = NULL;
  QbDemoModelSpec spec;

  qb_demo_model_spec_init (&spec);
  spec.dtype = QB_DTYPE_F32;
  spec.arch = arch;
  spec.n_layer = n_layer;
  spec.n_expert = n_expert;
  spec.n_expert_used = n_used;
  spec.sigmoid = sigmoid;
  spec.yarn = yarn;
  g_assert_true (qb_demo_model_write (&spec, path, NULL, NULL, &error));
  g_assert_no_error (error);
  return path;
}

static char *
write_model (const char *dir, const char *arch, guint n_layer, guint n_expert, guint n_used)
{
  return write_model_as (dir, arch, FALSE, FALSE, n_layer, n_expert, n_used);
}

static double
eval_ppl (const char *model, const char *text, guint n_chunks, const char *format, gboolean ggml)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *chunks = g_strdup_printf ("%u", n_chunks);
  g_autoptr(JsonObject) o = NULL;
  const char *args[] = { "eval", model, "--text", text, "--ctx", "128", "--threads", "2",
                         "--no-cache", "--json", "--chunks", chunks,
                         ggml ? "--ggml-activations" : NULL, format ? "--default" : NULL, format,
                         NULL };
  /* Close the gaps a missing option left. */
  const char *argv[G_N_ELEMENTS (args)];
  guint n = 0;

  for (gsize i = 0; i + 1 < G_N_ELEMENTS (args); i++)
    if (args[i] != NULL)
      argv[n++] = args[i];
  argv[n] = NULL;
  if (qb_test_quantbench_argv (argv, NULL, &out, &err) != 0)
    g_error ("quantbench eval failed: %s", err);
  o = parse_json (out);
  g_assert_cmpint (json_object_get_int_member (o, "n_chunks"), ==, n_chunks);
  return json_object_get_double_member (o, "ppl");
}

static void
check_llama_cpp (gconstpointer data)
{
  const Reference *ref = data;
  g_autofree char *whole = qb_test_shared_path ("text/tinystories-val.txt");
  g_autofree char *dir = NULL, *text = NULL, *model = NULL, *exported = NULL;
  g_autofree char *contents = NULL, *out = NULL, *err = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) q = NULL;
  gsize len;
  double f32;
  const QbTensor *t;

  if (whole == NULL)
    return;
  dir = qb_test_tmpdir ();
  text = g_build_filename (dir, "t20k.txt", NULL);
  g_assert_true (g_file_get_contents (whole, &contents, &len, &error));
  g_assert_cmpuint (len, >=, TEXT_BYTES);
  g_assert_true (g_file_set_contents (text, contents, TEXT_BYTES, &error));
  model = write_model_as (dir, ref->arch, ref->sigmoid, ref->yarn, ref->n_layer, 0, 0);
  if (qb_test_quantbench_path () == NULL)
    return;

  f32 = eval_ppl (model, text, 20, NULL, FALSE);
  g_test_message ("%s: F32 PPL %.4f (llama.cpp %.4f, %+.3f %%)", ref->name, f32, ref->ppl_f32,
                  100 * (f32 / ref->ppl_f32 - 1));
  g_assert_cmpfloat (fabs (f32 / ref->ppl_f32 - 1), <, 0.001);
  for (guint k = 0; k < 2; k++)
    {
      const char *format = k == 0 ? "Q8_0" : "Q4_K";
      double expect = k == 0 ? ref->ppl_q8_0 : ref->ppl_q4_k;
      double ggml;

      if (expect == 0)
        continue;
      ggml = eval_ppl (model, whole, QUANT_CHUNKS, format, TRUE);
      g_test_message ("%s: %s over %u chunks, with llama.cpp's activation rounding: PPL %.4f "
                      "(llama.cpp %.4f, %+.3f %%)", ref->name, format, QUANT_CHUNKS, ggml, expect,
                      100 * (ggml / expect - 1));
      g_assert_cmpfloat (fabs (ggml / expect - 1), <, ref->tol);
    }

  /* The export llama.cpp evaluated: 3-D experts in Q8_0 under their own
   * names, the router kept in F32. */
  exported = g_build_filename (dir, "q8.gguf", NULL);
  g_assert_cmpint (qb_test_quantbench (&out, &err, "quantize", model, "--default", "Q8_0", "-o",
                                       exported, "--no-save", "--no-metrics", "--threads", "2",
                                       NULL), ==, 0);
  q = qb_model_open (exported, &error);
  g_assert_no_error (error);
  t = qb_model_find_tensor (q, "blk.3.ffn_down_exps.weight", NULL);
  g_assert_nonnull (t);
  g_assert_cmpuint (t->n_dims, ==, 3);
  g_assert_cmpint (t->ne[2], ==, 8);
  g_assert_cmpint (t->dtype, ==, QB_DTYPE_Q8_0);
  t = qb_model_find_tensor (q, "blk.3.ffn_gate_inp.weight", NULL);
  g_assert_nonnull (t);
  g_assert_cmpint (t->dtype, ==, QB_DTYPE_F32);
  g_assert_cmpuint (qb_model_get_arch (q)->n_expert, ==, 8);
}

/* A dense model written from a one-expert mixture: the experts' 3-D
 * tensors as 2-D ones, no router, the family's keys under the dense
 * family's name, no expert count. */
static void
write_dense_twin (QbModel *moe, const char *moe_arch, const char *dense_arch, const char *path)
{
  static const char *const numbers[] = {
    "block_count", "context_length", "embedding_length", "feed_forward_length",
    "attention.head_count", "attention.head_count_kv", "rope.dimension_count", "vocab_size",
  };
  g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
  g_autoptr(GPtrArray) sources = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *prefix = g_strdup_printf ("%s.", moe_arch);
  QbGguf *g = qb_model_get_gguf (moe);
  char key[128];
  guint64 v;
  double d;

  for (guint64 i = 0; i < qb_gguf_get_n_kv (g); i++)
    {
      const QbGgufKv *kv = qb_gguf_get_kv (g, i);
      if (!g_str_has_prefix (kv->key.str, prefix))
        qb_gguf_writer_copy_kv (w, kv);
    }
  qb_gguf_writer_set_string (w, "general.architecture", dense_arch);
  for (gsize i = 0; i < G_N_ELEMENTS (numbers); i++)
    {
      g_snprintf (key, sizeof key, "%s.%s", moe_arch, numbers[i]);
      g_assert_true (qb_gguf_get_uint (g, key, &v));
      g_snprintf (key, sizeof key, "%s.%s", dense_arch, numbers[i]);
      qb_gguf_writer_set_uint32 (w, key, (guint32) v);
    }
  g_snprintf (key, sizeof key, "%s.attention.layer_norm_rms_epsilon", moe_arch);
  g_assert_true (qb_gguf_get_double (g, key, &d));
  g_snprintf (key, sizeof key, "%s.attention.layer_norm_rms_epsilon", dense_arch);
  qb_gguf_writer_set_float32 (w, key, (float) d);
  g_snprintf (key, sizeof key, "%s.rope.freq_base", moe_arch);
  g_assert_true (qb_gguf_get_double (g, key, &d));
  g_snprintf (key, sizeof key, "%s.rope.freq_base", dense_arch);
  qb_gguf_writer_set_float32 (w, key, (float) d);

  for (guint i = 0; i < qb_model_get_n_tensors (moe); i++)
    {
      const QbTensor *t = qb_model_get_tensor (moe, i);
      g_autoptr(GString) name = g_string_new (t->name);

      if (t->role == QB_ROLE_FFN_GATE_INP)
        continue;
      g_string_replace (name, "_exps", "", 1);
      qb_gguf_writer_add_tensor (w, name->str, MIN (t->n_dims, 2), t->ne, t->dtype);
      g_ptr_array_add (sources, (gpointer) t);
    }
  g_assert_true (qb_gguf_writer_begin (w, path, &error));
  for (guint i = 0; i < sources->len; i++)
    {
      const QbTensor *t = g_ptr_array_index (sources, i);
      g_assert_true (qb_gguf_writer_write_tensor (w, i, t->data, t->n_bytes, &error));
    }
  g_assert_true (qb_gguf_writer_finish (w, &error));
  g_assert_no_error (error);
}

/* The largest difference between two models' logits on the same n tokens. */
static double
largest_logit_difference (QbLlama *a, QbLlama *b, guint n)
{
  guint n_vocab = qb_llama_get_params (a)->n_vocab;
  g_autofree gint32 *tokens = g_new (gint32, n);
  g_autofree float *la = g_new (float, (gsize) n * n_vocab);
  g_autofree float *lb = g_new (float, (gsize) n * n_vocab);
  g_autoptr(GError) error = NULL;
  double worst = 0;

  for (guint i = 0; i < n; i++)
    tokens[i] = (gint32) ((i * 37 + 1) % n_vocab);
  g_assert_true (qb_llama_forward (a, tokens, n, 0, la, NULL, NULL, NULL, &error));
  g_assert_true (qb_llama_forward (b, tokens, n, 0, lb, NULL, NULL, NULL, &error));
  for (gsize i = 0; i < (gsize) n * n_vocab; i++)
    worst = MAX (worst, fabs (la[i] - lb[i]));
  return worst;
}

/* A mixture with one expert, which every token takes with weight 1, and
 * the dense model it is (Mixtral-style llama and llama; Qwen3-MoE and
 * Qwen3): the same logits. */
typedef struct {
  const char *demo_arch, *moe_arch, *dense_arch;
} Twin;

static const Twin twins[] = {
  { "mixtral", "llama", "llama" },
  { "qwen3moe", "qwen3moe", "qwen3" },
};

static void
test_one_expert (gconstpointer data)
{
  const Twin *tw = data;
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *moe_path = write_model (dir, tw->demo_arch, 2, 1, 1);
  g_autofree char *dense_path = g_build_filename (dir, "dense.gguf", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) moe = qb_model_open (moe_path, &error);
  g_autoptr(QbModel) dense = NULL;
  g_autoptr(QbLlama) a = NULL, b = NULL;
  double worst;

  g_assert_no_error (error);
  write_dense_twin (moe, tw->moe_arch, tw->dense_arch, dense_path);
  dense = qb_model_open (dense_path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (qb_model_get_arch (dense)->family, ==, tw->dense_arch);
  g_assert_cmpuint (qb_model_get_arch (dense)->n_expert, ==, 0);
  a = qb_llama_new (moe, &error);
  g_assert_no_error (error);
  b = qb_llama_new (dense, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (qb_llama_get_params (a)->n_expert, ==, 1);
  g_assert_cmpuint (qb_llama_get_params (b)->n_expert, ==, 0);

  worst = largest_logit_difference (a, b, 40);
  g_test_message ("%s with one expert vs %s: largest logit difference %.3g", tw->moe_arch,
                  tw->dense_arch, worst);
  g_assert_cmpfloat (worst, <, 1e-4);
}

/* A pass resumed from any layer's stream gives the whole pass's logits bit
 * for bit, as on a dense model (/sensitivity/forward-from): the sensitivity
 * study's floor with nothing changed is then exactly 0. */
static void
test_forward_from (gconstpointer data)
{
  const char *arch = data;
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_model (dir, arch, 3, 8, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  g_autoptr(QbLlama) llama = NULL;
  const QbLlamaParams *p;
  guint T = 64, first = 16, V, E;
  g_autofree gint32 *tokens = g_new (gint32, T);
  g_autofree float *logits = NULL, *again = NULL, *hidden = NULL;

  g_assert_no_error (error);
  llama = qb_llama_new (model, &error);
  g_assert_no_error (error);
  qb_llama_set_threads (llama, 2);
  p = qb_llama_get_params (llama);
  V = p->n_vocab;
  E = p->n_embd;
  logits = g_new (float, (gsize) (T - first) * V);
  again = g_new (float, (gsize) (T - first) * V);
  hidden = g_new (float, (gsize) (p->n_layer + 1) * T * E);
  for (guint i = 0; i < T; i++)
    tokens[i] = (gint32) ((i * 37 + 11) % V);

  g_assert_true (qb_llama_forward_keep (llama, tokens, T, first, logits, hidden, NULL, &error));
  g_assert_no_error (error);
  for (guint layer = 0; layer <= p->n_layer; layer++)
    {
      gsize n = (gsize) (T - first) * V, differ = 0;
      double worst = 0;

      g_assert_true (qb_llama_forward_from (llama, layer, hidden + (gsize) layer * T * E, T,
                                            first, again, NULL, &error));
      g_assert_no_error (error);
      for (gsize i = 0; i < n; i++)
        if (memcmp (&logits[i], &again[i], sizeof (float)) != 0)
          {
            differ++;
            worst = MAX (worst, fabs (logits[i] - again[i]));
          }
      g_test_message ("%s from layer %u: %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT
                      " logits differ, by up to %.3g", arch, layer, differ, n, worst);
      g_assert_cmpuint (differ, ==, 0);
    }
}

/* What a Qwen2-MoE GGUF says to the runtime. */
static void
test_params (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_model (dir, "qwen2moe", 1, 4, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  g_autoptr(QbLlama) llama = NULL;
  const QbLlamaParams *p;

  g_assert_no_error (error);
  llama = qb_llama_new (model, &error);
  g_assert_no_error (error);
  p = qb_llama_get_params (llama);
  g_assert_cmpuint (p->n_expert, ==, 4);
  g_assert_cmpuint (p->n_expert_used, ==, 2);
  g_assert_cmpuint (p->n_ff_shexp, >, 0);
  g_assert_false (p->moe_norm_topk);        /* Qwen2-MoE GGUFs: weights not renormalised */
  g_assert_cmpint (p->rope_style, ==, QB_ROPE_NEOX);
  g_assert_true (p->qkv_bias);
}

/* A 3-D expert tensor quantized with llama-imatrix's layout (one set of
 * importance per expert) gives, expert by expert, the bytes of each
 * expert's rows quantized with its own set, and not those of one set for
 * all. */
static void
test_expert_importance (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_model (dir, "mixtral", 1, 4, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  g_autoptr(QbWorkers) workers = qb_workers_new (2);
  g_autoptr(QbTensorResult) r = NULL, r1 = NULL;
  const QbFormat *f = qb_format_find ("Q4_K");
  const QbTensor *t;
  QbQuantizeSpec spec = { 0 };
  QbQuantizeOutput out = { 0 }, out1 = { 0 };
  g_autofree float *imp = NULL, *rows = NULL;
  g_autofree guint8 *data = NULL, *data1 = NULL, *row = NULL;
  guint index;
  gint64 n_cols, per_expert;
  guint64 row_bytes = 0, total = 0;

  g_assert_no_error (error);
  t = qb_model_find_tensor (model, "blk.0.ffn_down_exps.weight", &index);
  g_assert_nonnull (t);
  n_cols = t->ne[0];
  per_expert = t->ne[1];
  g_assert_true (qb_format_row_bytes (f, n_cols, &row_bytes));
  g_assert_true (qb_format_tensor_bytes (f, n_cols, qb_tensor_n_rows (t), &total));
  /* Each expert sees different inputs: different importance. */
  imp = g_new (float, n_cols * 4);
  for (gint64 j = 0; j < n_cols * 4; j++)
    imp[j] = 0.05f + (float) ((j * 7919 + (j / n_cols) * 104729) % 1000) / 100.0f;

  data = g_malloc (total);
  out.data = data;
  spec.format = f;
  spec.importance = imp;
  spec.importance_sets = 4;
  r = qb_tensor_quantize (model, index, &spec, workers, &out, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (isfinite (r->metrics.wmse) && r->metrics.wmse > 0);
  /* Each expert's figures: the whole tensor's SQNR lies among them. */
  g_assert_cmpuint (r->n_experts, ==, 4);
  {
    double lo = INFINITY, hi = -INFINITY;
    for (guint e = 0; e < 4; e++)
      {
        const QbTensorMetrics *m = &r->expert_metrics[e];
        g_assert_true (isfinite (m->sqnr_db) && m->rmse_rel > 0);
        g_assert_cmpfloat_with_epsilon (m->sqnr_db, -20 * log10 (m->rmse_rel), 1e-9);
        lo = MIN (lo, m->sqnr_db);
        hi = MAX (hi, m->sqnr_db);
      }
    g_assert_cmpfloat (r->metrics.sqnr_db, >=, lo - 1e-9);
    g_assert_cmpfloat (r->metrics.sqnr_db, <=, hi + 1e-9);
  }

  rows = g_new (float, n_cols * per_expert);
  row = g_malloc (row_bytes);
  for (guint e = 0; e < 4; e++)
    {
      QbQuantParams params = { .format = f, .importance = imp + e * n_cols };

      g_assert_true (qb_model_read_rows (model, index, e * per_expert, per_expert, rows, &error));
      for (gint64 i = 0; i < per_expert; i++)
        {
          f->quantize_row (&params, rows + i * n_cols, row, n_cols);
          g_assert_cmpmem (row, row_bytes, data + (e * per_expert + i) * row_bytes, row_bytes);
        }
    }

  /* The first expert's set for every expert: other bytes. */
  data1 = g_malloc (total);
  out1.data = data1;
  spec.importance_sets = 1;
  r1 = qb_tensor_quantize (model, index, &spec, workers, &out1, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (data1, per_expert * row_bytes, data, per_expert * row_bytes);
  g_assert_true (memcmp (data1, data, total) != 0);

  /* Sets that do not divide the rows: refused. */
  spec.importance_sets = 3;
  g_assert_null (qb_tensor_quantize (model, index, &spec, workers, &out1, NULL, NULL, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

/* The .dat bytes as llama-quantize's load_imatrix reads them (its
 * Feb-2025 snapshot): int32 entry count; per entry int32 name length,
 * the name, int32 ncall, int32 value count, the values (each one's mean
 * times ncall); then int32 chunk count and the dataset's name.  A 3-D
 * expert tensor's entry holds ne[0] values per expert, expert by expert,
 * each expert's mean over the tokens routed to it. */
static gint32
read_i32 (const guint8 **at, const guint8 *end)
{
  gint32 v;

  g_assert_cmpint (end - *at, >=, 4);
  memcpy (&v, *at, 4);
  *at += 4;
  return GINT32_FROM_LE (v);
}

static void
check_dat_layout (const char *dat, QbImatrix *im, QbModel *model)
{
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  const guint8 *at, *end;
  gsize len;
  gint32 n_entries;
  gboolean seen_experts = FALSE;

  g_assert_true (g_file_get_contents (dat, &contents, &len, &error));
  at = (const guint8 *) contents;
  end = at + len;
  n_entries = read_i32 (&at, end);
  g_assert_cmpint (n_entries, >, 0);
  for (gint32 i = 0; i < n_entries; i++)
    {
      gint32 name_len = read_i32 (&at, end), ncall, nval;
      g_autofree char *name = NULL;
      const QbTensor *t;
      const float *mean;
      guint n_mean = 0;

      g_assert_cmpint (name_len, >, 0);
      g_assert_cmpint (end - at, >=, name_len);
      name = g_strndup ((const char *) at, name_len);
      at += name_len;
      ncall = read_i32 (&at, end);
      nval = read_i32 (&at, end);
      t = qb_model_find_tensor (model, name, NULL);
      g_assert_nonnull (t);
      g_assert_cmpint (ncall, ==, 4);                      /* the chunks */
      g_assert_cmpint (nval, ==, t->ne[0] * qb_tensor_n_experts (t));
      mean = qb_imatrix_get (im, name, &n_mean);
      g_assert_cmpint (n_mean, ==, nval);
      g_assert_cmpint (end - at, >=, 4 * (gint64) nval);
      for (gint32 j = 0; j < nval; j++)
        {
          float v;
          memcpy (&v, at + 4 * j, 4);
          g_assert_cmpfloat (fabs (v / ncall - mean[j]), <=, 1e-5 * mean[j]);
        }
      if (t->role == QB_ROLE_FFN_DOWN_EXPS)
        {
          /* Each expert its own values: expert 1's differ from expert 0's. */
          g_assert_cmpint (qb_tensor_n_experts (t), ==, 4);
          g_assert_true (memcmp (at, at + 4 * t->ne[0], 4 * t->ne[0]) != 0);
          seen_experts = TRUE;
        }
      at += 4 * (gsize) nval;
    }
  g_assert_true (seen_experts);
  g_assert_cmpint (read_i32 (&at, end), ==, 4);          /* llama-imatrix's last call */
  g_assert_cmpint (read_i32 (&at, end), ==, end - at);   /* the dataset's name, to the end */
}

/* Each expert's histograms: its own rows binned over the tensor's edges
 * (four bins to one), summing over the experts to the tensor's, the same
 * for any thread count. */
static void
test_expert_histograms (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_model (dir, "mixtral", 1, 4, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  g_autoptr(QbWorkers) one = qb_workers_new (1);
  g_autoptr(QbWorkers) three = qb_workers_new (3);
  g_autoptr(QbTensorResult) r = NULL, r3 = NULL;
  QbQuantizeSpec spec = { .format = qb_format_find ("Q4_K") };
  g_autofree float *rows = NULL;
  const QbTensor *t;
  guint index;
  gint64 n_cols, per_expert;

  g_assert_no_error (error);
  t = qb_model_find_tensor (model, "blk.0.ffn_down_exps.weight", &index);
  n_cols = t->ne[0];
  per_expert = t->ne[1];
  r = qb_tensor_quantize (model, index, &spec, one, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  r3 = qb_tensor_quantize (model, index, &spec, three, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (r->n_experts, ==, 4);
  g_assert_nonnull (r->expert_hists);

  rows = g_new (float, n_cols * per_expert);
  for (guint k = 0; k < 3; k++)
    {
      const QbHistogram *whole[3] = { r->hist_original, r->hist_quantized, r->hist_error };
      g_autoptr(QbHistogram) sum = qb_histogram_coarsen (whole[k], 4);
      g_autoptr(QbHistogram) added = qb_histogram_new (QB_EXPERT_HISTOGRAM_BINS, sum->lo, sum->hi);

      for (guint e = 0; e < 4; e++)
        {
          const QbHistogram *h = qb_tensor_result_expert_histogram (r, e, k);
          g_assert_nonnull (h);
          g_assert_cmpuint (h->n_bins, ==, QB_EXPERT_HISTOGRAM_BINS);
          g_assert_cmpfloat (h->lo, ==, whole[k]->lo);
          g_assert_cmpfloat (h->hi, ==, whole[k]->hi);
          g_assert_cmpuint (qb_histogram_total (h), ==, (guint64) (n_cols * per_expert));
          g_assert_cmpmem (h->counts, h->n_bins * 8, r3->expert_hists[3 * e + k]->counts,
                           h->n_bins * 8);
          for (guint b = 0; b < h->n_bins; b++)
            added->counts[b] += h->counts[b];
        }
      g_assert_cmpmem (added->counts, added->n_bins * 8, sum->counts, sum->n_bins * 8);
    }

  /* The original's bins are the expert's own values, binned as the
   * measurement bins them (float arithmetic, ends clamped). */
  for (guint e = 0; e < 4; e++)
    {
      const QbHistogram *h = qb_tensor_result_expert_histogram (r, e, 0);
      const QbHistogram *w = r->hist_original;
      g_autofree guint64 *counts = g_new0 (guint64, h->n_bins);
      float lo = (float) w->lo, scale = (float) (w->n_bins / (w->hi - w->lo));

      g_assert_true (qb_model_read_rows (model, index, e * per_expert, per_expert, rows, &error));
      for (gint64 i = 0; i < n_cols * per_expert; i++)
        {
          float p = (rows[i] - lo) * scale;
          p = p > 0.0f ? p : 0.0f;
          p = p < (float) (w->n_bins - 1) ? p : (float) (w->n_bins - 1);
          counts[(gint32) p / 4]++;
        }
      g_assert_cmpmem (counts, h->n_bins * 8, h->counts, h->n_bins * 8);
    }
}

/* Each expert's metrics are the tensor's over its own rows: recomputed
 * here in double from the original rows and the dequantized output of
 * the same run; the same bits with 1 and 3 threads; and the tensor's
 * figures follow from its experts' where they must (equal row sets: the
 * mean of the experts' MSE is the tensor's, the largest expert error and
 * range are the tensor's). */
static void
test_expert_metrics (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_model (dir, "mixtral", 1, 4, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  g_autoptr(QbWorkers) one = qb_workers_new (1);
  g_autoptr(QbWorkers) three = qb_workers_new (3);
  g_autoptr(QbTensorResult) r = NULL, r3 = NULL;
  QbQuantizeSpec spec = { .format = qb_format_find ("Q4_K") };
  QbQuantizeOutput out = { 0 };
  g_autofree float *imp = NULL, *x = NULL, *y = NULL;
  double mse_mean = 0, out_share_mean = 0, worst = 0, lo = INFINITY, hi = -INFINITY;
  const QbTensor *t;
  guint index;
  gint64 n_cols, per_expert, n;

  g_assert_no_error (error);
  t = qb_model_find_tensor (model, "blk.0.ffn_down_exps.weight", &index);
  n_cols = t->ne[0];
  per_expert = t->ne[1];
  n = n_cols * per_expert;
  imp = g_new (float, n_cols * 4);
  for (gint64 j = 0; j < n_cols * 4; j++)
    imp[j] = 0.05f + (float) ((j * 7919 + (j / n_cols) * 104729) % 1000) / 100.0f;
  spec.importance = imp;
  spec.importance_sets = 4;
  y = out.f32 = g_new (float, t->n_params);
  r = qb_tensor_quantize (model, index, &spec, one, &out, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  r3 = qb_tensor_quantize (model, index, &spec, three, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (r->n_experts, ==, 4);
  g_assert_cmpmem (r->expert_metrics, 4 * sizeof (QbTensorMetrics), r3->expert_metrics,
                   4 * sizeof (QbTensorMetrics));
  g_assert_true (r->metrics.out_rel_err_diag);   /* importance only: the diagonal estimate */

  x = g_new (float, t->n_params);
  g_assert_true (qb_model_read_rows (model, index, 0, qb_tensor_n_rows (t), x, &error));
  for (guint e = 0; e < 4; e++)
    {
      const QbTensorMetrics *m = &r->expert_metrics[e];
      const float *xe = x + e * n, *ye = y + e * n, *w = imp + e * n_cols;
      double xx = 0, yy = 0, xy = 0, ee = 0, wee = 0, wsum = 0, wxx = 0;
      float maxerr = 0, mn = INFINITY, mx = -INFINITY;

      for (gint64 i = 0; i < n; i++)
        {
          double d = (double) xe[i] - ye[i], wj = w[i % n_cols];
          xx += (double) xe[i] * xe[i];
          yy += (double) ye[i] * ye[i];
          xy += (double) xe[i] * ye[i];
          ee += d * d;
          wee += wj * d * d;
          wsum += wj;
          wxx += wj * xe[i] * xe[i];
          maxerr = MAX (maxerr, fabsf (xe[i] - ye[i]));
          mn = MIN (mn, xe[i]);
          mx = MAX (mx, xe[i]);
        }
      g_test_message ("expert %u: mse %.6e sqnr %.3f cosine %.7f max %.4g wmse %.4e out %.4e "
                      "range %.4g…%.4g outliers %.2e", e, m->mse, m->sqnr_db, m->cosine,
                      m->max_abs_err, m->wmse, m->out_rel_err, m->min, m->max, m->outlier_share);
      g_assert_cmpfloat (fabs (m->mse - ee / n), <=, 1e-5 * ee / n);
      g_assert_cmpfloat (fabs (m->rmse_rel - sqrt (ee / xx)), <=, 1e-5 * sqrt (ee / xx));
      g_assert_cmpfloat (fabs (m->sqnr_db - 10 * log10 (xx / ee)), <=, 1e-4);
      g_assert_cmpfloat (fabs (m->cosine - xy / sqrt (xx * yy)), <=, 1e-6);
      g_assert_cmpfloat (m->max_abs_err, ==, maxerr);    /* the same float differences */
      g_assert_cmpfloat (m->min, ==, mn);
      g_assert_cmpfloat (m->max, ==, mx);
      g_assert_cmpfloat (fabs (m->wmse - wee / wsum), <=, 1e-5 * wee / wsum);
      g_assert_cmpfloat (fabs (m->out_rel_err - wee / wxx), <=, 1e-5 * wee / wxx);
      g_assert_true (m->out_rel_err_diag);
      g_assert_true (m->outlier_share >= 0 && m->outlier_share < 0.01);
      mse_mean += m->mse / 4;
      out_share_mean += m->outlier_share / 4;
      worst = MAX (worst, m->max_abs_err);
      lo = MIN (lo, m->min);
      hi = MAX (hi, m->max);
    }
  g_assert_cmpfloat (fabs (mse_mean - r->metrics.mse), <=, 1e-12 * r->metrics.mse);
  g_assert_cmpfloat (fabs (out_share_mean - r->metrics.outlier_share), <=, 1e-15);
  g_assert_cmpfloat (worst, ==, r->metrics.max_abs_err);
  g_assert_cmpfloat (lo, ==, r->metrics.min);
  g_assert_cmpfloat (hi, ==, r->metrics.max);
  /* The experts differ (they are not the tensor's figures copied). */
  g_assert_cmpfloat (r->expert_metrics[0].mse, !=, r->expert_metrics[1].mse);
}

/* Moments of n values, two passes in double: the reference the
 * experts' moments are checked against. */
static void
exact_moments (const float *x, gint64 n, double *mean, double *std, double *kurtosis)
{
  double sum = 0, m2 = 0, m4 = 0;

  for (gint64 i = 0; i < n; i++)
    sum += x[i];
  *mean = sum / n;
  for (gint64 i = 0; i < n; i++)
    {
      double d = x[i] - *mean;
      m2 += d * d;
      m4 += d * d * d * d;
    }
  *std = sqrt (m2 / n);
  *kurtosis = n * m4 / (m2 * m2) - 3.0;
}

/* The experts' mean, std and kurtosis of tensor `name`, quantized with 1
 * and with 3 threads: each recomputed in double from the expert's rows as
 * the model gives them (float lanes in the pass: within 1e-6), the same
 * bits for both thread counts, and the tensor's mean and variance from
 * its experts' as equal row sets imply (mean of means; the law of total
 * variance). */
static void
check_expert_moments (QbModel *model, const char *name, const char *format)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbWorkers) one = qb_workers_new (1);
  g_autoptr(QbWorkers) three = qb_workers_new (3);
  g_autoptr(QbTensorResult) r = NULL, r3 = NULL;
  QbQuantizeSpec spec = { .format = qb_format_find (format) };
  g_autofree float *x = NULL;
  double mean_of_means = 0, within = 0, between = 0, var;
  const QbTensor *t;
  guint index, n_experts;
  gint64 n;

  t = qb_model_find_tensor (model, name, &index);
  g_assert_nonnull (t);
  n_experts = (guint) qb_tensor_n_experts (t);
  n = t->n_params / n_experts;
  r = qb_tensor_quantize (model, index, &spec, one, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  r3 = qb_tensor_quantize (model, index, &spec, three, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (r->n_experts, ==, n_experts);
  g_assert_cmpmem (r->expert_metrics, n_experts * sizeof (QbTensorMetrics), r3->expert_metrics,
                   n_experts * sizeof (QbTensorMetrics));

  x = g_new (float, t->n_params);
  g_assert_true (qb_model_read_rows (model, index, 0, qb_tensor_n_rows (t), x, &error));
  for (guint e = 0; e < n_experts; e++)
    {
      const QbTensorMetrics *m = &r->expert_metrics[e];
      double mean, std, kurtosis;

      exact_moments (x + e * n, n, &mean, &std, &kurtosis);
      g_test_message ("%s expert %u: mean %.6e (exact %.6e) std %.6e (%.6e) kurtosis %.5f (%.5f)",
                      name, e, m->mean, mean, m->std, std, m->kurtosis, kurtosis);
      g_assert_cmpfloat (fabs (m->mean - mean), <=, 1e-6 * std);
      g_assert_cmpfloat (fabs (m->std - std), <=, 1e-6 * std);
      g_assert_cmpfloat (fabs (m->kurtosis - kurtosis), <=, 1e-5 * (kurtosis + 3));
      mean_of_means += m->mean / n_experts;
      within += m->std * m->std / n_experts;
    }
  for (guint e = 0; e < n_experts; e++)
    between += (r->expert_metrics[e].mean - mean_of_means)
               * (r->expert_metrics[e].mean - mean_of_means) / n_experts;
  var = r->metrics.std * r->metrics.std;
  g_assert_cmpfloat (fabs (mean_of_means - r->metrics.mean), <=, 1e-6 * r->metrics.std);
  g_assert_cmpfloat (fabs (within + between - var), <=, 2e-6 * var);
  /* The experts differ (not the tensor's figures copied). */
  g_assert_cmpfloat (r->expert_metrics[0].kurtosis, !=, r->expert_metrics[1].kurtosis);
}

/* A generated mixture, stored in F32 (moments pre-pass) and in F16 (the
 * tensor's moments from its pattern counts, kept in the scan cache: the
 * second run reads them from there, the experts' come from the pass). */
static void
test_expert_moments_demo (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_model (dir, "qwen2moe", 1, 8, 2);
  g_autofree char *path16 = g_build_filename (dir, "qwen2moe-f16.gguf", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  g_autoptr(QbModel) model16 = NULL;
  QbDemoModelSpec spec;

  g_assert_no_error (error);
  check_expert_moments (model, "blk.0.ffn_down_exps.weight", "Q4_K");
  check_expert_moments (model, "blk.0.ffn_gate_exps.weight", "Q8_0");

  qb_demo_model_spec_init (&spec);
  spec.dtype = QB_DTYPE_F16;
  spec.arch = "qwen2moe";
  spec.n_layer = 1;
  spec.n_expert = 8;
  spec.n_expert_used = 2;
  g_assert_true (qb_demo_model_write (&spec, path16, NULL, NULL, &error));
  model16 = qb_model_open (path16, &error);
  g_assert_no_error (error);
  check_expert_moments (model16, "blk.0.ffn_up_exps.weight", "Q4_K");
  check_expert_moments (model16, "blk.0.ffn_up_exps.weight", "Q4_K");   /* scan cached */
}

/* Real weights: stories260K's five ffn_up matrices (64 × 172 each, their
 * heavy tails and all) as the five experts of one 3-D tensor, in F32 and
 * in F16. */
static void
test_expert_moments_stories (void)
{
  g_autofree char *stories = qb_test_shared_path ("models/stories260K.gguf");
  g_autofree char *dir = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) source = NULL;
  g_autofree float *w = NULL;
  const QbTensor *t;
  gint64 per;

  if (stories == NULL)
    return;
  dir = qb_test_tmpdir ();
  source = qb_model_open (stories, &error);
  g_assert_no_error (error);
  t = qb_model_find_tensor (source, "blk.0.ffn_up.weight", NULL);
  g_assert_nonnull (t);
  per = t->n_params;
  w = g_new (float, 5 * per);
  for (guint l = 0; l < 5; l++)
    {
      g_autofree char *name = g_strdup_printf ("blk.%u.ffn_up.weight", l);
      guint index;

      g_assert_nonnull (qb_model_find_tensor (source, name, &index));
      g_assert_true (qb_model_read_rows (source, index, 0, qb_tensor_n_rows (t), w + l * per, &error));
    }
  for (guint f16 = 0; f16 < 2; f16++)
    {
      g_autofree char *path = g_strdup_printf ("%s/stories-experts-%s.gguf", dir, f16 ? "f16" : "f32");
      g_autoptr(QbGgufWriter) writer = qb_gguf_writer_new ();
      g_autofree guint16 *h = NULL;
      g_autoptr(QbModel) model = NULL;
      gint64 ne[3] = { t->ne[0], t->ne[1], 5 };

      qb_gguf_writer_set_string (writer, "general.architecture", "llama");
      qb_gguf_writer_add_tensor (writer, "blk.0.ffn_up_exps.weight", 3, ne,
                                 f16 ? QB_DTYPE_F16 : QB_DTYPE_F32);
      g_assert_true (qb_gguf_writer_begin (writer, path, &error));
      if (f16)
        {
          h = g_new (guint16, 5 * per);
          for (gint64 i = 0; i < 5 * per; i++)
            h[i] = GUINT16_TO_LE (qb_fp32_to_fp16 (w[i]));
        }
      g_assert_true (qb_gguf_writer_write_tensor (writer, 0, f16 ? (gpointer) h : (gpointer) w,
                                                  5 * per * (f16 ? 2 : 4), &error));
      g_assert_true (qb_gguf_writer_finish (writer, &error));
      model = qb_model_open (path, &error);
      g_assert_no_error (error);
      check_expert_moments (model, "blk.0.ffn_up_exps.weight", "Q8_0");
    }
}

/* Calibration counts importance per expert: the entries of a 3-D expert
 * tensor hold a set per expert with the rows routed to it (together
 * tokens × experts per token), the router and the shared expert one set
 * over every token; the .dat file llama-quantize reads keeps it. */
static void
test_expert_imatrix (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_model (dir, "qwen2moe", 2, 4, 2);
  g_autofree char *dat = g_build_filename (dir, "moe.imatrix", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  g_autoptr(QbLlama) llama = NULL;
  g_autoptr(QbImatrix) im = NULL, back = NULL;
  QbActivationStats *stats;
  const guint64 *counts;
  guint n_mat = 0, n = 0, n_back = 0;
  guint64 total = 0;
  const float *imp, *imp_back;

  g_assert_no_error (error);
  llama = qb_llama_new (model, &error);
  g_assert_no_error (error);
  stats = qb_test_activation_stats (llama, 64, 4);
  im = qb_activation_stats_get_imatrix (stats, FALSE);

  counts = qb_imatrix_get_counts (im, "blk.1.ffn_down_exps.weight", &n_mat);
  g_assert_nonnull (counts);
  g_assert_cmpuint (n_mat, ==, 4);
  for (guint m = 0; m < n_mat; m++)
    {
      g_assert_cmpuint (counts[m], >, 0);
      total += counts[m];
    }
  g_assert_cmpuint (total, ==, 4 * 64 * 2);             /* every token, two experts each */
  imp = qb_imatrix_get (im, "blk.1.ffn_down_exps.weight", &n);
  g_assert_cmpuint (n, ==, 4 * qb_model_find_tensor (model, "blk.1.ffn_down_exps.weight", NULL)->ne[0]);
  g_assert_nonnull (qb_imatrix_get (im, "blk.1.ffn_gate_exps.weight", NULL));
  g_assert_true (qb_imatrix_get (im, "blk.1.ffn_up_exps.weight", NULL)
                 != NULL);
  counts = qb_imatrix_get_counts (im, "blk.0.ffn_gate_inp.weight", &n_mat);
  g_assert_cmpuint (n_mat, ==, 1);
  g_assert_cmpuint (counts[0], ==, 4 * 64);
  counts = qb_imatrix_get_counts (im, "blk.0.ffn_down_shexp.weight", &n_mat);
  g_assert_cmpuint (n_mat, ==, 1);
  g_assert_cmpuint (counts[0], ==, 4 * 64);

  /* llama-imatrix's .dat: one value per column per expert, each expert's
   * mean; read back the same. */
  g_assert_true (qb_imatrix_save_dat (im, dat, &error));
  g_assert_no_error (error);
  back = qb_imatrix_load (dat, &error);
  g_assert_no_error (error);
  imp_back = qb_imatrix_get (back, "blk.1.ffn_down_exps.weight", &n_back);
  g_assert_cmpuint (n_back, ==, n);
  for (guint j = 0; j < n; j++)
    g_assert_cmpfloat (fabs (imp_back[j] - imp[j]), <=, 1e-5 * imp[j]);
  check_dat_layout (dat, im, model);
  qb_activation_stats_free (stats);
}

/* A sensitivity study measures the experts and the shared expert end to
 * end like any matrix (the router stays as stored); --per-expert adds each
 * expert alone to the JSON. */
static void
test_sensitivity (void)
{
  g_autofree char *whole = qb_test_shared_path ("text/tinystories-val.txt");
  g_autofree char *dir = NULL, *path = NULL, *db = NULL, *out = NULL, *err = NULL;
  g_autoptr(JsonObject) o = NULL;
  g_autofree char *exe = NULL;
  JsonArray *costs;
  gboolean experts = FALSE, shexp = FALSE, router = FALSE;

  if (whole == NULL || (exe = qb_test_quantbench_path ()) == NULL)
    return;
  dir = qb_test_tmpdir ();
  path = write_model (dir, "qwen2moe", 1, 4, 2);
  db = g_build_filename (dir, "study.db", NULL);
  if (qb_test_quantbench (&out, &err, "sensitivity", path, "--calib", whole, "--calib-chunks", "1",
                          "--calib-ctx", "64", "--eval-text", whole, "--eval-chunks", "1",
                          "--eval-ctx", "64", "--candidates", "Q8_0", "--db", db, "--threads", "2",
                          "--per-expert", "--json", NULL) != 0)
    g_error ("quantbench sensitivity failed: %s", err);
  o = parse_json (out);
  costs = json_object_get_array_member (o, "costs");
  for (guint i = 0; i < json_array_get_length (costs); i++)
    {
      JsonObject *c = json_array_get_object_element (costs, i);
      const char *name = json_object_get_string_member (c, "tensor");

      if (strstr (name, "ffn_gate_inp"))
        router = TRUE;
      if (strstr (name, "_exps") || strstr (name, "_shexp"))
        {
          g_assert_false (json_object_get_boolean_member (c, "skipped"));
          g_assert_cmpfloat (json_object_get_double_member (c, "kld"), >=, 0);
        }
      experts |= strstr (name, "ffn_down_exps") != NULL;
      shexp |= strstr (name, "ffn_down_shexp") != NULL;
    }
  g_assert_true (experts);
  g_assert_true (shexp);
  g_assert_false (router);

  /* --per-expert: each expert of gate, up and down alone, in order. */
  costs = json_object_get_array_member (o, "expert_costs");
  g_assert_cmpuint (json_array_get_length (costs), ==, 3 * 4);
  for (guint i = 0; i < json_array_get_length (costs); i++)
    {
      JsonObject *c = json_array_get_object_element (costs, i);

      g_assert_nonnull (strstr (json_object_get_string_member (c, "tensor"), "_exps"));
      g_assert_cmpint (json_object_get_int_member (c, "expert"), ==, i % 4);
      g_assert_cmpstr (json_object_get_string_member (c, "format"), ==, "Q8_0");
      g_assert_cmpfloat (json_object_get_double_member (c, "kld"), >, 0);
      g_assert_cmpint (json_object_get_int_member (c, "bytes"), >, 0);
    }
}

/* ---- a study per expert ------------------------------------------------ */

typedef struct {
  GCancellable *cancel;
  guint         seen;     /* "studying experts" reports */
  guint         at;
} ExpertCancel;

static void
cancel_in_experts (const QbSensitivityProgress *p, gpointer data)
{
  ExpertCancel *c = data;

  if (g_strcmp0 (p->stage, "studying experts") == 0 && ++c->seen == c->at)
    g_cancellable_cancel (c->cancel);
}

static const QbStudyCost *
find_cost (GPtrArray *costs, guint position, guint rung, int expert)
{
  for (guint i = 0; i < costs->len; i++)
    {
      const QbStudyCost *c = g_ptr_array_index (costs, i);
      if (c->position == position && c->rung == rung && c->expert == expert)
        return c;
    }
  return NULL;
}

/* Each expert of a 3-D expert tensor measured alone: finite, positive,
 * different from expert to expert, its MSE a quarter of the tensor's
 * squared error, its KLD not above the whole tensor's (beyond noise); a
 * cancel inside the experts keeps the stored ones and resume completes
 * them as they were; the per-tensor table (the allocator's) is unchanged. */
static void
test_sensitivity_per_expert (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_model (dir, "mixtral", 1, 4, 2);
  g_autofree char *text = g_build_filename (dir, "eval.txt", NULL);
  g_autofree char *db = g_build_filename (dir, "study.db", NULL);
  g_autoptr(GString) words = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  g_autoptr(QbStore) store = NULL;
  g_autoptr(GCancellable) cancel = g_cancellable_new ();
  g_autoptr(GPtrArray) before = NULL;
  g_autoptr(QbSensitivityStudy) st = NULL;
  const QbFormat *cands[] = { qb_format_find ("Q4_0"), qb_format_find ("Q8_0") };
  ExpertCancel at = { cancel, 0, 6 };
  QbSensitivityOptions o;
  gint64 id = 0, id2 = 0;
  guint n_exps = 0;

  for (guint i = 0; i < 400; i++)
    g_string_append_printf (words, "The little %s saw %u birds by the river. ",
                            i % 3 ? "cat" : "dog", (i * 7) % 13);
  g_assert_true (g_file_set_contents (text, words->str, words->len, &error));
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  tok = qb_tokenizer_new_for_model (model, &error);
  g_assert_no_error (error);
  store = qb_store_open (db, &error);
  g_assert_no_error (error);

  qb_sensitivity_options_init (&o);
  o.candidates = cands;
  o.n_candidates = G_N_ELEMENTS (cands);
  o.eval_text = text;
  o.eval_n_ctx = 64;
  o.eval_n_chunks = 2;
  o.n_threads = 2;
  o.per_expert = TRUE;
  /* Cancelled inside the first expert tensor's experts. */
  g_assert_false (qb_sensitivity_run (model, tok, store, &o, cancel_in_experts, &at, cancel, &id,
                                      &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  before = qb_store_get_study_expert_costs (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (before->len, >=, 4);
  g_assert_cmpuint (before->len, <, 3 * 4 * 2);

  o.resume_id = id;
  g_assert_true (qb_sensitivity_run (model, tok, store, &o, NULL, NULL, NULL, &id2, &error));
  g_assert_no_error (error);
  g_assert_cmpint (id2, ==, id);
  st = qb_sensitivity_study_load (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (st->expert_costs->len, ==, 3 * 4 * 2);   /* gate, up, down × 4 × 2 */
  /* Kept as they were measured before the cancel. */
  for (guint i = 0; i < before->len; i++)
    {
      const QbStudyCost *b = g_ptr_array_index (before, i);
      const QbStudyCost *a = find_cost (st->expert_costs, b->position, b->rung, b->expert);
      g_assert_nonnull (a);
      g_assert_cmpfloat (a->kld, ==, b->kld);
    }

  for (guint t = 0; t < st->n_tensors; t++)
    {
      guint pos = st->positions[t];
      const QbTensor *tensor = qb_model_get_tensor (model, pos);

      if (qb_tensor_n_experts (tensor) == 1)
        continue;
      n_exps++;
      for (guint r = 0; r < G_N_ELEMENTS (cands); r++)
        {
          const QbStudyCost *whole = qb_sensitivity_study_get (st, t, r)->cost;
          double lo = INFINITY, hi = 0, mse_sum = 0;

          g_assert_nonnull (whole);
          g_assert_cmpint (whole->expert, ==, -1);
          for (int e = 0; e < 4; e++)
            {
              const QbStudyCost *c = find_cost (st->expert_costs, pos, r, e);

              g_assert_nonnull (c);
              g_assert_cmpstr (c->tensor, ==, tensor->name);
              g_assert_cmpint (c->n_weights, ==, tensor->n_params / 4);
              g_assert_true (isfinite (c->kld) && c->kld > 0);
              g_assert_true (isfinite (c->kld_err));
              /* One expert of the tensor changed: no more than all of them. */
              g_assert_cmpfloat (c->kld, <=, whole->kld + 3 * (c->kld_err + whole->kld_err));
              g_test_message ("%s %s expert %d: kld %.4e ± %.1e (whole %.4e)", c->tensor,
                              c->format, e, c->kld, c->kld_err, whole->kld);
              lo = MIN (lo, c->kld);
              hi = MAX (hi, c->kld);
              mse_sum += c->mse;
            }
          g_assert_cmpfloat (hi, >, lo * 1.001);          /* the experts differ */
          /* Equal slices: the experts' mean squared error is the tensor's. */
          g_assert_cmpfloat (fabs (mse_sum / 4 - whole->mse), <=, 1e-3 * whole->mse);
        }
    }
  g_assert_cmpuint (n_exps, ==, 3);
  /* Only expert tensors get expert rows. */
  for (guint i = 0; i < st->expert_costs->len; i++)
    g_assert_nonnull (strstr (((QbStudyCost *) g_ptr_array_index (st->expert_costs, i))->tensor,
                              "_exps"));
}

/* A copy of the model with `name` (F32) replaced by its own values through
 * `format`: quantizing that tensor again in the format changes nothing. */
static char *
write_requantized (QbModel *model, const char *name, const char *format, const char *dir)
{
  char *path = g_build_filename (dir, "requantized.gguf", NULL);
  g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
  g_autoptr(QbWorkers) workers = qb_workers_new (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbTensorResult) r = NULL;
  QbQuantizeSpec spec = { .format = qb_format_find (format) };
  QbQuantizeOutput out = { 0 };
  QbGguf *g = qb_model_get_gguf (model);
  g_autofree float *values = NULL;
  guint index;
  const QbTensor *t = qb_model_find_tensor (model, name, &index);

  g_assert_nonnull (t);
  g_assert_cmpint (t->dtype, ==, QB_DTYPE_F32);
  values = out.f32 = g_new (float, t->n_params);
  r = qb_tensor_quantize (model, index, &spec, workers, &out, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  for (guint64 i = 0; i < qb_gguf_get_n_kv (g); i++)
    qb_gguf_writer_copy_kv (w, qb_gguf_get_kv (g, i));
  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensor *u = qb_model_get_tensor (model, i);
      qb_gguf_writer_add_tensor (w, u->name, u->n_dims, u->ne, u->dtype);
    }
  g_assert_true (qb_gguf_writer_begin (w, path, &error));
  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensor *u = qb_model_get_tensor (model, i);
      g_assert_true (qb_gguf_writer_write_tensor (w, i, i == index ? (gconstpointer) values
                                                                   : u->data,
                                                  u->n_bytes, &error));
    }
  g_assert_true (qb_gguf_writer_finish (w, &error));
  g_assert_no_error (error);
  return path;
}

/* A study measures a tensor whose candidate changes nothing as exactly 0,
 * from the tensor's layer on (a pass resumed from layer 1 of 2), on a
 * mixture, expert by expert, as on a dense model: the resumed pass gives
 * the float pass's logits bit for bit and the KLD compares them without a
 * rounding of one side only (which left ~1e-7 at every position). */
typedef struct {
  const char *arch;
  guint       n_expert;
  const char *tensor;
} FloorCase;

static const FloorCase floor_cases[] = {
  { "mixtral", 4, "blk.1.ffn_down_exps.weight" },
  { "llama", 0, "blk.1.ffn_down.weight" },
};

static void
test_sensitivity_floor (gconstpointer data)
{
  const FloorCase *fc = data;
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *first = write_model (dir, fc->arch, 2, fc->n_expert, fc->n_expert ? 2 : 0);
  g_autofree char *text = g_build_filename (dir, "eval.txt", NULL);
  g_autofree char *db = g_build_filename (dir, "study.db", NULL);
  g_autofree char *path = NULL;
  g_autoptr(GString) words = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL, original = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbSensitivityStudy) st = NULL;
  const QbFormat *cands[] = { qb_format_find ("Q8_0") };
  QbSensitivityOptions o;
  gint64 id = 0;
  guint n_zero = 0, n_positive = 0, n_expert_rows = 0;

  for (guint i = 0; i < 300; i++)
    g_string_append_printf (words, "The little %s saw %u birds by the river. ",
                            i % 3 ? "cat" : "dog", (i * 7) % 13);
  g_assert_true (g_file_set_contents (text, words->str, words->len, &error));
  original = qb_model_open (first, &error);
  g_assert_no_error (error);
  path = write_requantized (original, fc->tensor, "Q8_0", dir);
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  tok = qb_tokenizer_new_for_model (model, &error);
  g_assert_no_error (error);
  store = qb_store_open (db, &error);
  g_assert_no_error (error);

  qb_sensitivity_options_init (&o);
  o.candidates = cands;
  o.n_candidates = 1;
  o.eval_text = text;
  o.eval_n_ctx = 64;
  o.eval_n_chunks = 2;
  o.n_threads = 2;
  o.per_expert = fc->n_expert > 0;
  g_assert_true (qb_sensitivity_run (model, tok, store, &o, NULL, NULL, NULL, &id, &error));
  g_assert_no_error (error);
  st = qb_sensitivity_study_load (store, id, &error);
  g_assert_no_error (error);
  for (guint t = 0; t < st->n_tensors; t++)
    {
      const QbStudyCost *c = qb_sensitivity_study_get (st, t, 0)->cost;

      g_assert_nonnull (c);
      g_assert_false (c->skipped);
      if (strcmp (c->tensor, fc->tensor) == 0)
        {
          /* Q8_0 of Q8_0 values: the same values, measured. */
          g_assert_cmpfloat (c->mse, ==, 0.0);
          g_assert_cmpfloat (c->kld, ==, 0.0);
          n_zero++;
        }
      else if (c->kld > 0)
        n_positive++;
    }
  for (guint i = 0; i < st->expert_costs->len; i++)
    {
      const QbStudyCost *c = g_ptr_array_index (st->expert_costs, i);
      if (strcmp (c->tensor, fc->tensor) != 0)
        continue;
      g_assert_cmpfloat (c->mse, ==, 0.0);
      g_assert_cmpfloat (c->kld, ==, 0.0);
      n_expert_rows++;
    }
  g_test_message ("%s: %s kld exactly 0 (%u expert rows too); %u other tensors > 0", fc->arch,
                  fc->tensor, n_expert_rows, n_positive);
  g_assert_cmpuint (n_zero, ==, 1);
  g_assert_cmpuint (n_expert_rows, ==, fc->n_expert);
  /* The measurement itself is not blind: every other tensor moved it. */
  g_assert_cmpuint (n_positive, ==, st->n_tensors - 1);
}

/* ---- Hugging Face checkpoints with one matrix per expert --------------- */

/* The Hugging Face name of a GGUF tensor of a Mixtral-style (mixtral),
 * Qwen2-MoE or DeepSeek (deepseek: latent attention, dense FFNs, plural
 * shared experts, the selection bias) model; expert e of a 3-D tensor. */
static char *
hf_moe_name (const QbTensor *t, gboolean mixtral, gboolean deepseek, guint e)
{
  static const char *const attn[][2] = {
    { "attn_norm", "input_layernorm" }, { "ffn_norm", "post_attention_layernorm" },
    { "attn_q", "self_attn.q_proj" }, { "attn_k", "self_attn.k_proj" },
    { "attn_v", "self_attn.v_proj" }, { "attn_output", "self_attn.o_proj" },
    { "ffn_gate_shexp", "mlp.shared_expert.gate_proj" }, { "ffn_up_shexp", "mlp.shared_expert.up_proj" },
    { "ffn_down_shexp", "mlp.shared_expert.down_proj" }, { "ffn_gate_inp_shexp", "mlp.shared_expert_gate" },
    { "attn_q_a", "self_attn.q_a_proj" }, { "attn_q_a_norm", "self_attn.q_a_layernorm" },
    { "attn_q_b", "self_attn.q_b_proj" }, { "attn_kv_a_mqa", "self_attn.kv_a_proj_with_mqa" },
    { "attn_kv_a_norm", "self_attn.kv_a_layernorm" }, { "attn_kv_b", "self_attn.kv_b_proj" },
    { "ffn_gate", "mlp.gate_proj" }, { "ffn_up", "mlp.up_proj" }, { "ffn_down", "mlp.down_proj" },
  };
  static const char *const experts[][3] = {   /* GGUF, Mixtral, Qwen2-MoE */
    { "ffn_gate_exps", "w1", "gate_proj" }, { "ffn_up_exps", "w3", "up_proj" },
    { "ffn_down_exps", "w2", "down_proj" },
  };
  const char *suffix = t->is_bias ? "bias" : "weight";
  g_auto(GStrv) parts = g_strsplit (t->name, ".", -1);

  if (t->layer < 0)
    return g_strdup (t->role == QB_ROLE_TOKEN_EMBD ? "model.embed_tokens.weight"
                     : t->role == QB_ROLE_OUTPUT_NORM ? "model.norm.weight" : "lm_head.weight");
  if (strcmp (parts[2], "ffn_gate_inp") == 0)
    return g_strdup_printf ("model.layers.%d.%s.weight", t->layer,
                            mixtral ? "block_sparse_moe.gate" : "mlp.gate");
  if (strcmp (parts[2], "exp_probs_b") == 0)
    return g_strdup_printf ("model.layers.%d.mlp.gate.e_score_correction_bias", t->layer);
  if (deepseek && g_str_has_suffix (parts[2], "_shexp"))
    return g_strdup_printf ("model.layers.%d.mlp.shared_experts.%.*s_proj.weight", t->layer,
                            (int) (strlen (parts[2]) - strlen ("_shexp") - strlen ("ffn_")),
                            parts[2] + strlen ("ffn_"));
  for (gsize i = 0; i < G_N_ELEMENTS (experts); i++)
    if (strcmp (parts[2], experts[i][0]) == 0)
      return g_strdup_printf ("model.layers.%d.%s.%u.%s.weight", t->layer,
                              mixtral ? "block_sparse_moe.experts" : "mlp.experts", e,
                              experts[i][mixtral ? 1 : 2]);
  for (gsize i = 0; i < G_N_ELEMENTS (attn); i++)
    if (strcmp (parts[2], attn[i][0]) == 0)
      return g_strdup_printf ("model.layers.%d.%s.%s", t->layer, attn[i][1], suffix);
  g_assert_not_reached ();
}

/* GGUF's LLaMA Q/K rows pair (2i, 2i+1) within a head; Hugging Face's
 * pair (i, i + head_dim/2): the rows as the checkpoint stores them. */
static void
unpermute_rows (float *w, gint64 n_rows, gint64 n_cols, guint head_dim)
{
  g_autofree float *copy = g_memdup2 (w, sizeof (float) * n_rows * n_cols);

  for (gint64 r = 0; r < n_rows; r++)
    {
      gint64 h = r / head_dim, j = r % head_dim;
      gint64 half = head_dim / 2, from = h * head_dim + (j % half) * 2 + j / half;
      memcpy (w + r * n_cols, copy + from * n_cols, sizeof (float) * n_cols);
    }
}

/* config.json of a DeepSeek demo model: V2 (softmax) or V3 (sigmoid,
 * noaux_tc) routing as its GGUF says. */
static char *
hf_deepseek_config (QbModel *model)
{
  const QbArchInfo *a = qb_model_get_arch (model);
  QbGguf *g = qb_model_get_gguf (model);
  guint64 qr = 0, kvr = 0, dk = 0, dv = 0, rot = 0, gating = 0, groups = 1, used = 1;
  double scale = 1, factor = 0;
  gboolean norm = FALSE;
  g_autofree char *yarn = NULL;

  qb_gguf_get_uint (g, "deepseek2.attention.q_lora_rank", &qr);
  qb_gguf_get_uint (g, "deepseek2.attention.kv_lora_rank", &kvr);
  qb_gguf_get_uint (g, "deepseek2.attention.key_length", &dk);
  qb_gguf_get_uint (g, "deepseek2.attention.value_length", &dv);
  qb_gguf_get_uint (g, "deepseek2.rope.dimension_count", &rot);
  qb_gguf_get_uint (g, "deepseek2.expert_gating_func", &gating);
  qb_gguf_get_uint (g, "deepseek2.expert_group_count", &groups);
  qb_gguf_get_uint (g, "deepseek2.expert_group_used_count", &used);
  qb_gguf_get_double (g, "deepseek2.expert_weights_scale", &scale);
  qb_gguf_get_bool (g, "deepseek2.expert_weights_norm", &norm);
  /* YaRN as DeepSeek-V2's config.json gives it (GGUF's log multiplier is
   * 0.1 × mscale_all_dim). */
  if (qb_gguf_get_double (g, "deepseek2.rope.scaling.factor", &factor))
    yarn = g_strdup_printf (",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":%g,"
                            "\"original_max_position_embeddings\":%u,\"mscale\":0.707,"
                            "\"mscale_all_dim\":0.707,\"beta_fast\":32,\"beta_slow\":1}",
                            factor, a->n_ctx / 4);
  return g_strdup_printf (
    "{\"model_type\":\"%s\",\"hidden_size\":%u,\"num_attention_heads\":%u,"
    "\"num_key_value_heads\":%u,\"num_hidden_layers\":%u,\"intermediate_size\":%u,"
    "\"vocab_size\":%u,\"rms_norm_eps\":%g,\"rope_theta\":%g,\"max_position_embeddings\":%u,"
    "\"tie_word_embeddings\":false,\"n_routed_experts\":%u,\"num_experts_per_tok\":%u,"
    "\"moe_intermediate_size\":%u,\"n_shared_experts\":%u,\"first_k_dense_replace\":1,"
    "\"moe_layer_freq\":1,\"q_lora_rank\":%u,\"kv_lora_rank\":%u,\"qk_nope_head_dim\":%u,"
    "\"qk_rope_head_dim\":%u,\"v_head_dim\":%u,\"routed_scaling_factor\":%g,"
    "\"norm_topk_prob\":%s,\"scoring_func\":\"%s\",\"topk_method\":\"%s\",\"n_group\":%u,"
    "\"topk_group\":%u%s}",
    gating == 2 ? "deepseek_v3" : "deepseek_v2", a->n_embd, a->n_head, a->n_head_kv, a->n_layer,
    a->n_ff, a->n_vocab, a->rms_eps, a->rope_freq_base, a->n_ctx, a->n_expert, a->n_expert_used,
    a->n_ff_exp, a->n_ff_shexp / a->n_ff_exp, (guint) qr, (guint) kvr, (guint) (dk - rot),
    (guint) rot, (guint) dv, scale, norm ? "true" : "false", gating == 2 ? "sigmoid" : "softmax",
    gating == 2 ? "noaux_tc" : groups > 1 ? "group_limited_greedy" : "greedy", (guint) groups,
    (guint) used, yarn ? yarn : "");
}

/* The GGUF demo model as a Hugging Face folder: model.safetensors with
 * one matrix per expert, and config.json. */
static char *
write_hf_moe (const char *parent, QbModel *model, gboolean mixtral)
{
  const QbArchInfo *a = qb_model_get_arch (model);
  gboolean deepseek = strcmp (a->family, "deepseek2") == 0;
  char *dir = g_build_filename (parent, mixtral ? "hf-mixtral" : deepseek ? "hf-deepseek" : "hf-qwen2moe", NULL);
  g_autofree char *st_path = g_build_filename (dir, "model.safetensors", NULL);
  g_autofree char *cfg_path = g_build_filename (dir, "config.json", NULL);
  g_autofree char *config = NULL;
  QbTestSafetensors *st = qb_test_safetensors_new ();
  g_autoptr(GError) error = NULL;

  g_mkdir_with_parents (dir, 0700);
  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      gint64 rows = t->n_dims == 1 ? 1 : t->ne[1];
      guint n_mats = t->n_dims == 3 ? (guint) t->ne[2] : 1;
      g_autofree float *v = g_new (float, t->n_params);

      g_assert_true (qb_model_read_rows (model, i, 0, qb_tensor_n_rows (t), v, &error));
      if (mixtral && !t->is_bias && (t->role == QB_ROLE_ATTN_Q || t->role == QB_ROLE_ATTN_K))
        unpermute_rows (v, rows, t->ne[0], a->head_dim);
      for (guint e = 0; e < n_mats; e++)
        {
          g_autofree char *name = hf_moe_name (t, mixtral, deepseek, e);
          gint64 shape[2] = { t->n_dims == 1 && t->role != QB_ROLE_FFN_GATE_INP_SHEXP ? t->ne[0] : rows,
                              t->ne[0] };

          qb_test_safetensors_add (st, name, t->n_dims == 1 && t->role != QB_ROLE_FFN_GATE_INP_SHEXP ? 1 : 2,
                                   shape, v + (gsize) e * rows * t->ne[0]);
        }
    }
  qb_test_safetensors_write (st, st_path);
  config = deepseek ? hf_deepseek_config (model) : g_strdup_printf (
    "{\"model_type\":\"%s\",\"hidden_size\":%u,\"num_attention_heads\":%u,"
    "\"num_key_value_heads\":%u,\"num_hidden_layers\":%u,\"intermediate_size\":%u,"
    "\"vocab_size\":%u,\"rms_norm_eps\":%g,\"rope_theta\":%g,\"max_position_embeddings\":%u,"
    "\"tie_word_embeddings\":false,\"%s\":%u,\"num_experts_per_tok\":%u,"
    "\"moe_intermediate_size\":%u,\"shared_expert_intermediate_size\":%u,\"norm_topk_prob\":%s}",
    mixtral ? "mixtral" : "qwen2_moe", a->n_embd, a->n_head, a->n_head_kv, a->n_layer,
    mixtral ? a->n_ff_exp : a->n_ff, a->n_vocab, a->rms_eps, a->rope_freq_base, a->n_ctx,
    mixtral ? "num_local_experts" : "num_experts", a->n_expert, a->n_expert_used, a->n_ff_exp,
    a->n_ff_shexp, mixtral ? "true" : "false");
  g_assert_true (g_file_set_contents (cfg_path, config, -1, &error));
  g_assert_no_error (error);
  return dir;
}

/* A Hugging Face checkpoint with one matrix per expert evaluates, read in
 * place, to the logits of the GGUF file llama.cpp's converter makes of it
 * (3-D expert tensors); quantized expert by expert, each expert's matrix
 * takes its own bytes. */
static void
test_safetensors_experts (gconstpointer data)
{
  const char *arch = data;
  gboolean mixtral = strcmp (arch, "mixtral") == 0;
  g_autofree char *dir = qb_test_tmpdir ();
  gboolean sigmoid = strcmp (arch, "deepseek2-sigmoid") == 0;
  gboolean yarn = strcmp (arch, "deepseek2-yarn") == 0;
  gboolean deepseek = g_str_has_prefix (arch, "deepseek2");
  g_autofree char *path = write_model_as (dir, deepseek ? "deepseek2" : arch, sigmoid, yarn, 2, 4, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) gguf = qb_model_open (path, &error);
  g_autoptr(QbModel) hf = NULL;
  g_autoptr(QbLlama) a = NULL, b = NULL;
  g_autofree char *hf_dir = NULL;
  guint index;
  double worst, moved;
  const QbTensor *t;

  g_assert_no_error (error);
  hf_dir = write_hf_moe (dir, gguf, mixtral);
  hf = qb_model_open (hf_dir, &error);
  g_assert_no_error (error);
  t = qb_model_find_tensor (hf, mixtral ? "model.layers.1.block_sparse_moe.experts.3.w2.weight"
                                        : "model.layers.1.mlp.experts.3.down_proj.weight", &index);
  g_assert_nonnull (t);
  g_assert_cmpint (t->expert, ==, 3);
  g_assert_cmpint (t->role, ==, QB_ROLE_FFN_DOWN_EXPS);
  a = qb_llama_new (gguf, &error);
  g_assert_no_error (error);
  b = qb_llama_new (hf, &error);
  g_assert_no_error (error);
  qb_llama_set_threads (a, 2);
  qb_llama_set_threads (b, 2);
  g_assert_cmpuint (qb_llama_get_params (b)->n_expert, ==, 4);
  g_assert_cmpint (qb_llama_get_params (b)->moe_norm_topk, ==, qb_llama_get_params (a)->moe_norm_topk);
  g_assert_cmpint (qb_llama_get_params (b)->moe_gating, ==, qb_llama_get_params (a)->moe_gating);
  g_assert_cmpfloat (qb_llama_get_params (b)->expert_weights_scale, ==,
                     qb_llama_get_params (a)->expert_weights_scale);
  g_assert_cmpuint (qb_llama_get_params (b)->kv_lora_rank, ==, qb_llama_get_params (a)->kv_lora_rank);
  g_assert_cmpfloat (qb_llama_get_params (b)->rope_yarn, ==, yarn ? 1 : 0);
  g_assert_cmpfloat (qb_llama_get_params (b)->attn_scale, ==, qb_llama_get_params (a)->attn_scale);
  g_assert_cmpuint (qb_llama_get_params (b)->n_layer_dense_lead, ==,
                    qb_llama_get_params (a)->n_layer_dense_lead);

  worst = largest_logit_difference (a, b, 48);
  g_test_message ("%s: one matrix per expert against 3-D tensors: largest logit difference %.3g",
                  arch, worst);
  g_assert_cmpfloat (worst, <, 1e-4);

  /* One expert's down matrix zeroed changes the logits: each matrix is
   * read from its own place. */
  {
    QbQuantParams params = { qb_format_find ("F32"), NULL, FALSE, 0 };
    g_autoptr(GBytes) zeros = g_bytes_new_take (g_malloc0 (sizeof (float) * t->n_params),
                                                sizeof (float) * t->n_params);

    g_assert_true (qb_llama_set_weight (b, index, zeros, &params, &error));
    g_assert_no_error (error);
  }
  moved = largest_logit_difference (a, b, 48);
  g_test_message ("%s: expert 3's down matrix zeroed: %.3g", arch, moved);
  g_assert_cmpfloat (moved, >, 1e-3);
}

/* llama.cpp's presets on mixtures of experts (llama_tensor_get_type in the
 * Feb-2025 snapshot's src/llama-quant.cpp): "ffn_down" anywhere in a name
 * takes the ffn_down rules, by the layer in the name; 8 experts put attn_k
 * and attn_v in Q8_0 and give attn_output Q5_K for the lower presets (and
 * not the dense bumps).  Checked by hand against llama-quantize on the demo
 * models (Mixtral-style 8 layers × 8 experts, Qwen2-MoE 8 layers × 8 and
 * × 4 experts, 14 presets each: every tensor's type the same); the
 * expectations below are those files' types. */
static const char *
preset_format (QbModel *model, const char *preset, const char *name)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbPlanResolution) res = NULL;
  g_autoptr(GError) error = NULL;
  const QbTensorChoice *c;
  guint index;

  qb_plan_set_preset (plan, preset);
  res = qb_plan_resolve (plan, model, &error);
  g_assert_no_error (error);
  g_assert_nonnull (qb_model_find_tensor (model, name, &index));
  c = &res->choices[index];
  return c->format ? c->format->name : "keep";
}

/* DeepSeek (8 layers, the first dense, 8 experts): llama-quantize gives
 * the latent attention's matrices the base type (attn_kv_b only counts as
 * an attn_v), the ffn_down bumps to the dense ffn_down and the experts'
 * alike, and the 8-expert attn_output rule.  Checked by hand: 9 presets
 * (Q2_K, Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M, Q6_K) of `demo-model --arch
 * deepseek2 --layers 8` through llama-quantize and through Quantbench
 * give every one of the 128 tensors the same type. */
static void
test_presets_deepseek (const char *dir, const gboolean *more_bits)
{
  g_autofree char *path = write_model (dir, "deepseek2", 8, 8, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) ds = qb_model_open (path, &error);
  static const char *const latent[] = { "attn_q_a", "attn_q_b", "attn_kv_a_mqa", "attn_kv_b" };
  char name[64];

  g_assert_no_error (error);
  g_assert_cmpstr (preset_format (ds, "Q4_K_M", "blk.0.ffn_down.weight"), ==, "Q6_K");
  for (guint i = 1; i < 8; i++)
    {
      g_snprintf (name, sizeof name, "blk.%u.ffn_down_exps.weight", i);
      g_assert_cmpstr (preset_format (ds, "Q4_K_M", name), ==, more_bits[i] ? "Q6_K" : "Q4_K");
      g_snprintf (name, sizeof name, "blk.%u.ffn_down_shexp.weight", i);
      g_assert_cmpstr (preset_format (ds, "Q4_K_M", name), ==, more_bits[i] ? "Q6_K" : "Q4_K");
      g_snprintf (name, sizeof name, "blk.%u.ffn_gate_inp.weight", i);
      g_assert_cmpstr (preset_format (ds, "Q4_K_M", name), ==, "keep");
    }
  for (gsize j = 0; j < G_N_ELEMENTS (latent); j++)
    {
      g_snprintf (name, sizeof name, "blk.2.%s.weight", latent[j]);
      g_assert_cmpstr (preset_format (ds, "Q4_K_M", name), ==, "Q4_K");
      g_assert_cmpstr (preset_format (ds, "Q3_K_M", name), ==, "Q3_K");
    }
  g_assert_cmpstr (preset_format (ds, "Q4_K_M", "blk.2.attn_kv_a_norm.weight"), ==, "keep");
  g_assert_cmpstr (preset_format (ds, "Q4_K_M", "blk.2.attn_output.weight"), ==, "Q5_K");
}


/* ---- GPTQ on expert tensors: one XᵀX per expert ------------------------ */

/* Calibration chunks of the shared TinyStories text (the model's own
 * tokenizer) when it is there, else fixed token ids. */
static QbCalibration *
moe_calibration (QbModel *model, guint n_chunks, guint n_ctx)
{
  g_autofree char *text = qb_test_shared_path ("text/tinystories-val.txt");
  g_autoptr(GError) error = NULL;
  QbCalibrationOptions co;
  QbCalibration *calib;

  qb_calibration_options_init (&co);
  co.n_ctx = n_ctx;
  co.n_chunks = n_chunks;
  co.no_cache = TRUE;
  if (text != NULL)
    {
      g_autoptr(QbTokenizer) tok = qb_tokenizer_new_for_model (model, &error);
      const char *paths[] = { text, NULL };

      g_assert_no_error (error);
      calib = qb_calibration_new (model, tok, paths, &co, NULL, &error);
    }
  else
    {
      g_autofree gint32 *tokens = g_new (gint32, n_chunks * n_ctx);

      g_test_message ("no shared text: calibrating on fixed token ids");
      for (guint i = 0; i < n_chunks * n_ctx; i++)
        tokens[i] = (gint32) (3 + (i * 2654435761u) % 500);
      calib = qb_calibration_new_from_tokens (tokens, n_chunks * n_ctx, 1, &co, &error);
    }
  g_assert_no_error (error);
  return calib;
}

static QbActivationStats *
moe_stats (QbModel *model, QbCalibration *calib, QbStatsOptions *so)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbLlama) llama = qb_llama_new (model, &error);
  QbActivationStats *stats;

  g_assert_no_error (error);
  qb_llama_set_threads (llama, 2);
  stats = qb_activation_stats_compute (llama, calib, so, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  return stats;
}

/* XᵀX per expert straight from the forward pass: the rows the hook gives
 * for each expert of two expert tensors (gate's input, down's input). */
typedef struct {
  QbLlama *llama;
  const char *names[2];
  gint64   n;
  guint    n_expert;
  double  *gram[2];     /* n_expert × n × n each */
  guint64 *rows[2];     /* n_expert each */
} DirectGram;

static void
direct_gram_hook (const char *weight_name, guint weight_index, const float *x, gint64 n_rows,
                  gint64 n_cols, gpointer data)
{
  DirectGram *d = data;

  for (guint k = 0; k < 2; k++)
    if (strcmp (weight_name, d->names[k]) == 0)
      {
        int e = qb_llama_get_activation_expert (d->llama);
        double *g;

        g_assert_cmpint (e, >=, 0);
        g_assert_cmpint (n_cols, ==, d->n);
        g = d->gram[k] + (gsize) e * d->n * d->n;
        for (gint64 r = 0; r < n_rows; r++)
          for (gint64 i = 0; i < d->n; i++)
            for (gint64 j = 0; j < d->n; j++)
              g[i * d->n + j] += (double) x[r * d->n + i] * x[r * d->n + j];
        d->rows[k][e] += n_rows;
      }
}

static void
assert_same_gram (const double *a, const double *b, gint64 n, double tol)
{
  for (gint64 i = 0; i < n; i++)
    for (gint64 j = 0; j < n; j++)
      {
        double scale = sqrt (fabs (a[i * n + i] * a[j * n + j])) + 1e-30;
        g_assert_cmpfloat (fabs (a[i * n + j] - b[i * n + j]), <=, tol * scale);
      }
}

/* Calibration collects one XᵀX per expert: each equals XᵀX of the rows
 * routed to that expert (recomputed from the forward pass), counts its
 * rows as the importance does, and over the experts gate/up's add up to
 * k times the router's XᵀX (every token reaches k experts).  Passes cut
 * through a group's experts, the cache and a cancelled run give the same. */
static void
test_expert_grams (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_model (dir, "mixtral", 2, 4, 2);
  g_autofree char *cache = g_build_filename (dir, "cache", NULL);
  g_autofree char *cache2 = g_build_filename (dir, "cache2", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  g_autoptr(QbCalibration) calib = NULL;
  g_autoptr(QbLlama) llama = NULL;
  g_autoptr(QbImatrix) im = NULL;
  g_autoptr(GCancellable) cancel = g_cancellable_new ();
  QbActivationStats *stats, *split, *again, *cancelled;
  QbStatsOptions so;
  DirectGram d = { 0 };
  guint n_ctx, n_chunks, n_mat = 0;
  const guint64 *counts;
  const double *router;
  guint64 router_rows = 0;
  gint64 n;

  g_assert_no_error (error);
  calib = moe_calibration (model, 4, 64);
  n_ctx = qb_calibration_get_n_ctx (calib);
  n_chunks = qb_calibration_get_n_chunks (calib);
  qb_stats_options_init (&so);
  so.no_cache = TRUE;
  so.gram_all = TRUE;
  stats = moe_stats (model, calib, &so);

  /* The forward pass itself, with a hook of the test's own. */
  n = qb_model_find_tensor (model, "blk.1.ffn_gate_exps.weight", NULL)->ne[0];
  g_assert_cmpint (qb_model_find_tensor (model, "blk.1.ffn_down_exps.weight", NULL)->ne[0], ==, n);
  llama = qb_llama_new (model, &error);
  g_assert_no_error (error);
  d.llama = llama;
  d.names[0] = "blk.1.ffn_gate_exps.weight";
  d.names[1] = "blk.1.ffn_down_exps.weight";
  d.n = n;
  d.n_expert = 4;
  for (guint k = 0; k < 2; k++)
    {
      d.gram[k] = g_new0 (double, 4 * n * n);
      d.rows[k] = g_new0 (guint64, 4);
    }
  qb_llama_set_activation_func (llama, direct_gram_hook, &d);
  {
    g_autofree gint32 *tokens = g_new (gint32, n_ctx);
    g_autofree float *logits = g_new (float, (gsize) qb_llama_get_params (llama)->n_vocab);
    for (guint c = 0; c < n_chunks; c++)
      {
        qb_calibration_get_chunk (calib, c, tokens);
        g_assert_true (qb_llama_forward (llama, tokens, n_ctx, n_ctx - 1, logits, NULL, NULL, NULL,
                                         &error));
      }
  }
  qb_llama_set_activation_func (llama, NULL, NULL);

  im = qb_activation_stats_get_imatrix (stats, FALSE);
  for (guint k = 0; k < 2; k++)
    {
      guint64 total = 0;
      counts = qb_imatrix_get_counts (im, d.names[k], &n_mat);
      g_assert_cmpuint (n_mat, ==, 4);
      for (guint e = 0; e < 4; e++)
        {
          guint64 rows = 0;
          const double *g = qb_activation_stats_get_expert_gram (stats, d.names[k], e, &rows);

          g_assert_nonnull (g);
          g_assert_cmpuint (rows, ==, d.rows[k][e]);
          g_assert_cmpuint (rows, ==, counts[e]);
          g_assert_cmpuint (rows, >, 0);
          total += rows;
          assert_same_gram (d.gram[k] + (gsize) e * n * n, g, n, 1e-12);
        }
      g_assert_cmpuint (total, ==, (guint64) n_chunks * n_ctx * 2);
    }
  /* The expert tensor has no single XᵀX. */
  g_assert_null (qb_activation_stats_get_gram (stats, d.names[0], &router_rows));
  g_assert_null (qb_activation_stats_get_expert_note (stats));

  /* Σ over experts of gate's XᵀX = 2 × the router's (the same normed
   * hidden state, each token in two experts). */
  router = qb_activation_stats_get_gram (stats, "blk.1.ffn_gate_inp.weight", &router_rows);
  g_assert_nonnull (router);
  g_assert_cmpuint (router_rows, ==, (guint64) n_chunks * n_ctx);
  {
    g_autofree double *sum = g_new0 (double, n * n);
    g_autofree double *twice = g_new (double, n * n);
    for (guint e = 0; e < 4; e++)
      {
        guint64 rows;
        const double *g = qb_activation_stats_get_expert_gram (stats, d.names[0], e, &rows);
        for (gint64 i = 0; i < n * n; i++)
          sum[i] += g[i];
      }
    for (gint64 i = 0; i < n * n; i++)
      twice[i] = 2 * router[i];
    assert_same_gram (twice, sum, n, 1e-9);
  }

  /* Through the cache, passes of three XᵀX (a group's experts cut across
   * passes), then again from the cache alone: the same matrices. */
  qb_stats_options_init (&so);
  so.gram_all = TRUE;
  so.cache_dir = cache;
  so.max_gram_bytes = 3 * n * n * sizeof (double);
  split = moe_stats (model, calib, &so);
  g_assert_cmpuint (qb_activation_stats_get_n_passes (split), >, 3);
  again = moe_stats (model, calib, &so);
  g_assert_cmpuint (qb_activation_stats_get_n_forward (again), ==, 0);
  for (guint k = 0; k < 2; k++)
    for (guint e = 0; e < 4; e++)
      {
        guint64 r1, r2, r3;
        const double *a = qb_activation_stats_get_expert_gram (stats, d.names[k], e, &r1);
        const double *b = qb_activation_stats_get_expert_gram (split, d.names[k], e, &r2);
        const double *c = qb_activation_stats_get_expert_gram (again, d.names[k], e, &r3);
        g_assert_cmpuint (r1, ==, r2);
        g_assert_cmpuint (r1, ==, r3);
        assert_same_gram (a, b, n, 1e-12);
        g_assert_cmpmem (b, n * n * sizeof (double), c, n * n * sizeof (double));
      }

  /* Cancelled at once: nothing; the run after it, the same matrices. */
  so.cache_dir = cache2;
  g_cancellable_cancel (cancel);
  {
    g_autoptr(QbLlama) l2 = qb_llama_new (model, &error);
    cancelled = qb_activation_stats_compute (l2, calib, &so, NULL, NULL, cancel, &error);
    g_assert_null (cancelled);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
  }
  cancelled = moe_stats (model, calib, &so);
  for (guint e = 0; e < 4; e++)
    {
      guint64 r1, r2;
      const double *a = qb_activation_stats_get_expert_gram (split, d.names[1], e, &r1);
      const double *b = qb_activation_stats_get_expert_gram (cancelled, d.names[1], e, &r2);
      g_assert_cmpuint (r1, ==, r2);
      g_assert_cmpmem (a, n * n * sizeof (double), b, n * n * sizeof (double));
    }

  for (guint k = 0; k < 2; k++)
    {
      g_free (d.gram[k]);
      g_free (d.rows[k]);
    }
  qb_activation_stats_free (cancelled);
  qb_activation_stats_free (again);
  qb_activation_stats_free (split);
  qb_activation_stats_free (stats);
}

/* A model holding each expert's matrix of a 3-D tensor as a 2-D tensor of
 * its own ("expert.E.weight"), beside the original's metadata. */
static char *
write_expert_matrices (QbModel *moe, const char *tensor, const char *dir)
{
  char *path = g_build_filename (dir, "experts-2d.gguf", NULL);
  g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
  g_autoptr(GError) error = NULL;
  const QbTensor *t = qb_model_find_tensor (moe, tensor, NULL);
  QbGguf *g = qb_model_get_gguf (moe);
  gint64 ne[2] = { t->ne[0], t->ne[1] };
  gsize bytes = t->n_bytes / t->ne[2];

  for (guint64 i = 0; i < qb_gguf_get_n_kv (g); i++)
    qb_gguf_writer_copy_kv (w, qb_gguf_get_kv (g, i));
  for (gint64 e = 0; e < t->ne[2]; e++)
    {
      g_autofree char *name = g_strdup_printf ("expert.%" G_GINT64_FORMAT ".weight", e);
      qb_gguf_writer_add_tensor (w, name, 2, ne, t->dtype);
    }
  g_assert_true (qb_gguf_writer_begin (w, path, &error));
  for (gint64 e = 0; e < t->ne[2]; e++)
    g_assert_true (qb_gguf_writer_write_tensor (w, (guint) e, (const guint8 *) t->data + e * bytes,
                                                bytes, &error));
  g_assert_true (qb_gguf_writer_finish (w, &error));
  g_assert_no_error (error);
  return path;
}

/* Σ over rows of ΔwᵀGΔw: the output error ‖(W − Ŵ)X‖² through XᵀX. */
static double
output_error (const float *w, const float *y, gint64 rows, gint64 n, const double *gram)
{
  g_autofree double *d = g_new (double, n);
  double total = 0;

  for (gint64 r = 0; r < rows; r++)
    {
      for (gint64 j = 0; j < n; j++)
        d[j] = (double) w[r * n + j] - y[r * n + j];
      for (gint64 i = 0; i < n; i++)
        {
          double s = 0;
          for (gint64 j = 0; j < n; j++)
            s += gram[i * n + j] * d[j];
          total += d[i] * s;
        }
    }
  return total;
}

/* GPTQ on a 3-D expert tensor with one XᵀX per expert: each expert's
 * bytes are exactly those of GPTQ on that expert's matrix alone (a 2-D
 * tensor) with its own XᵀX — the layout is unchanged; an expert with no
 * tokens is rounded, and the result says which. */
static void
test_gptq_per_expert (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_model (dir, "mixtral", 1, 4, 2);
  g_autofree char *flat = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  g_autoptr(QbModel) dense = NULL;
  g_autoptr(QbCalibration) calib = NULL;
  g_autoptr(QbWorkers) workers = qb_workers_new (2);
  g_autoptr(QbTensorResult) r = NULL, r0 = NULL;
  const char *name = "blk.0.ffn_down_exps.weight";
  const QbFormat *f = qb_format_find ("Q4_0");
  const double *grams[4];
  guint64 samples[4], total = 0, row_bytes = 0;
  QbActivationStats *stats;
  QbStatsOptions so;
  QbQuantizeSpec spec = { 0 };
  QbQuantizeOutput out = { 0 };
  g_autofree guint8 *data = NULL, *data0 = NULL;
  const QbTensor *t;
  guint index;
  gint64 n, per;
  guint64 updates;
  g_autoptr(QbDevice) device = qb_device_dup_default ();

  g_assert_no_error (error);
  calib = moe_calibration (model, 4, 64);
  qb_stats_options_init (&so);
  so.no_cache = TRUE;
  so.gram_all = TRUE;
  stats = moe_stats (model, calib, &so);
  t = qb_model_find_tensor (model, name, &index);
  n = t->ne[0];
  per = t->ne[1];
  g_assert_cmpuint (qb_activation_stats_get_expert_grams (stats, name, n, grams, samples, 4), ==, 4);
  g_assert_true (qb_format_row_bytes (f, n, &row_bytes));
  g_assert_true (qb_format_tensor_bytes (f, n, qb_tensor_n_rows (t), &total));

  data = g_malloc (total);
  out.data = data;
  spec.format = f;
  spec.method = qb_method_find ("gptq");
  spec.expert_grams = grams;
  spec.expert_gram_samples = samples;
  spec.n_expert_grams = 4;
  updates = qb_gptq_device_updates ();
  r = qb_tensor_quantize (model, index, &spec, workers, &out, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  /* With a device selected (QB_DEVICE=opencl:0), each expert's batch
   * updates ran there: rows of 256 are two batches of 128. */
  if (device != NULL)
    g_assert_cmpuint (qb_gptq_device_updates (), >, updates);
  g_assert_cmpstr (r->method, ==, "gptq");
  g_assert_null (r->fallback_reason);
  g_assert_false (r->metrics.out_rel_err_diag);
  g_assert_true (r->metrics.out_rel_err > 0 && r->metrics.out_rel_err < 1);

  flat = write_expert_matrices (model, name, dir);
  dense = qb_model_open (flat, &error);
  g_assert_no_error (error);
  for (guint e = 0; e < 4; e++)
    {
      g_autofree char *ename = g_strdup_printf ("expert.%u.weight", e);
      g_autofree guint8 *one = g_malloc (per * row_bytes);
      g_autoptr(QbTensorResult) re = NULL;
      QbQuantizeSpec ds = { .format = f, .method = qb_method_find ("gptq"), .gram = grams[e],
                            .gram_samples = samples[e] };
      QbQuantizeOutput dout = { .data = one };
      guint di;

      g_assert_nonnull (qb_model_find_tensor (dense, ename, &di));
      re = qb_tensor_quantize (dense, di, &ds, workers, &dout, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpmem (one, per * row_bytes, data + e * per * row_bytes, per * row_bytes);
    }

  /* Expert 2 without tokens: its rows are plain rounding, the others
   * unchanged, and the result lists it. */
  samples[2] = 0;
  data0 = g_malloc (total);
  out.data = data0;
  r0 = qb_tensor_quantize (model, index, &spec, workers, &out, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (r0->method, ==, "gptq");
  g_assert_nonnull (r0->fallback_reason);
  g_test_message ("%s", r0->fallback_reason);
  g_assert_nonnull (strstr (r0->fallback_reason, "gptq on 3 of 4 experts"));
  g_assert_nonnull (strstr (r0->fallback_reason, "expert 2: no calibration tokens"));
  /* Each expert's output error through its own XᵀX; none for expert 2. */
  for (guint e = 0; e < 4; e++)
    {
      g_assert_false (r0->expert_metrics[e].out_rel_err_diag);
      if (e == 2)
        g_assert_true (isnan (r0->expert_metrics[e].out_rel_err));
      else
        g_assert_cmpfloat (r0->expert_metrics[e].out_rel_err, ==, r->expert_metrics[e].out_rel_err);
    }
  g_assert_cmpmem (data0, 2 * per * row_bytes, data, 2 * per * row_bytes);
  g_assert_cmpmem (data0 + 3 * per * row_bytes, per * row_bytes, data + 3 * per * row_bytes,
                   per * row_bytes);
  {
    g_autofree float *rows = g_new (float, per * n);
    QbQuantParams p = { .format = f };
    g_autofree guint8 *row = g_malloc (row_bytes);

    g_assert_true (qb_model_read_rows (model, index, 2 * per, per, rows, &error));
    for (gint64 i = 0; i < per; i++)
      {
        f->quantize_row (&p, rows + i * n, row, n);
        g_assert_cmpmem (row, row_bytes, data0 + (2 * per + i) * row_bytes, row_bytes);
      }
  }
  qb_activation_stats_free (stats);
}

/* GPTQ per expert against plain rounding of the same format, on the
 * calibration text: each expert's output error ‖(W − Ŵ)X‖² over the
 * tokens routed to it.  The guard keeps GPTQ at or below rounding; it
 * must be strictly lower for most experts. */
static void
test_gptq_experts_lower_error (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_model (dir, "mixtral", 2, 8, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  g_autoptr(QbCalibration) calib = NULL;
  g_autoptr(QbWorkers) workers = qb_workers_new (2);
  const QbFormat *f = qb_format_find ("Q4_0");
  QbActivationStats *stats;
  QbStatsOptions so;
  guint n_lower = 0, n_all = 0;
  double sum_gptq = 0, sum_rtn = 0;

  g_assert_no_error (error);
  calib = moe_calibration (model, 8, 128);
  qb_stats_options_init (&so);
  so.no_cache = TRUE;
  so.gram_all = TRUE;
  stats = moe_stats (model, calib, &so);
  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      const double *grams[8];
      guint64 samples[8], total = 0, rb = 0;
      gint64 n = t->ne[0], per;
      QbQuantParams p = { .format = f };
      g_autofree guint8 *gq = NULL, *rq = NULL;
      g_autofree float *w = NULL, *y = NULL;
      QbQuantizeSpec spec = { 0 };
      QbQuantizeOutput out = { 0 };
      g_autoptr(QbTensorResult) r = NULL;

      if (qb_tensor_n_experts (t) != 8)
        continue;
      per = t->ne[1];
      g_assert_cmpuint (qb_activation_stats_get_expert_grams (stats, t->name, n, grams, samples, 8), ==, 8);
      g_assert_true (qb_format_tensor_bytes (f, n, qb_tensor_n_rows (t), &total));
      g_assert_true (qb_format_row_bytes (f, n, &rb));
      gq = g_malloc (total);
      rq = g_malloc (total);
      out.data = gq;
      spec.format = f;
      spec.method = qb_method_find ("gptq");
      spec.expert_grams = grams;
      spec.expert_gram_samples = samples;
      spec.n_expert_grams = 8;
      r = qb_tensor_quantize (model, i, &spec, workers, &out, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      w = g_new (float, per * n);
      y = g_new (float, per * n);
      for (guint e = 0; e < 8; e++)
        {
          double eg, er;

          g_assert_true (qb_model_read_rows (model, i, e * per, per, w, &error));
          for (gint64 k = 0; k < per; k++)
            f->quantize_row (&p, w + k * n, rq + k * rb, n);
          for (gint64 k = 0; k < per; k++)
            f->dequantize_row (&p, gq + (e * per + k) * rb, y + k * n, n);
          eg = output_error (w, y, per, n, grams[e]);
          for (gint64 k = 0; k < per; k++)
            f->dequantize_row (&p, rq + k * rb, y + k * n, n);
          er = output_error (w, y, per, n, grams[e]);
          g_assert_cmpfloat (eg, <=, er * (1 + 1e-9));
          n_lower += eg < er;
          n_all++;
          sum_gptq += eg;
          sum_rtn += er;
        }
    }
  g_test_message ("Q4_0, %u expert matrices: GPTQ's output error below rounding's for %u; in all "
                  "%.4g against %.4g (%.1f %%)", n_all, n_lower, sum_gptq, sum_rtn,
                  100 * sum_gptq / sum_rtn);
  g_assert_cmpuint (n_all, ==, 2 * 3 * 8);
  g_assert_cmpuint (4 * n_lower, >=, 3 * n_all);
  g_assert_cmpfloat (sum_gptq, <, sum_rtn);
  qb_activation_stats_free (stats);
}

/* A one-expert mixture and the dense model it is: calibrated on the same
 * tokens, GPTQ by a job gives the expert tensors the dense tensors'
 * bytes.  On the CPU: with a device selected the dense model would
 * calibrate there (DSYRK sums in another order, agreeing to ~1e-6, which
 * test-calib-device checks) and the mixture on the CPU, and GPTQ's
 * roundings on the edge of a tie could then go either way. */
static void
test_gptq_one_expert (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *moe_path = write_model (dir, "mixtral", 2, 1, 1);
  g_autofree char *dense_path = g_build_filename (dir, "dense.gguf", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) moe = qb_model_open (moe_path, &error);
  g_autoptr(QbModel) dense = NULL;
  QbModel *models[2];
  QbJob *jobs[2];
  QbActivationStats *stats[2];
  guint n_compared = 0;

  g_assert_no_error (error);
  g_assert_true (qb_device_set_default ("cpu", &error));
  write_dense_twin (moe, "llama", "llama", dense_path);
  dense = qb_model_open (dense_path, &error);
  g_assert_no_error (error);
  models[0] = moe;
  models[1] = dense;
  for (guint k = 0; k < 2; k++)
    {
      g_autoptr(QbCalibration) calib = moe_calibration (models[k], 4, 64);
      g_autoptr(QbPlan) plan = qb_plan_new ();
      QbStatsOptions so;

      qb_stats_options_init (&so);
      so.no_cache = TRUE;
      so.gram_all = TRUE;
      stats[k] = moe_stats (models[k], calib, &so);
      qb_plan_set_default_format (plan, "Q4_0");
      qb_plan_set_default_method (plan, "gptq");
      jobs[k] = qb_job_new (models[k], plan);
      qb_job_set_threads (jobs[k], 2);
      qb_job_set_keep_data (jobs[k], TRUE);
      qb_activation_stats_attach (stats[k], jobs[k], FALSE);
      g_assert_true (qb_job_run (jobs[k], NULL, &error));
      g_assert_no_error (error);
    }
  for (guint i = 0; i < qb_model_get_n_tensors (moe); i++)
    {
      const QbTensor *t = qb_model_get_tensor (moe, i);
      g_autoptr(GString) name = g_string_new (t->name);
      g_autoptr(GBytes) a = NULL, b = NULL;
      const QbTensorResult *r;
      guint j;

      if (t->role != QB_ROLE_FFN_GATE_EXPS && t->role != QB_ROLE_FFN_UP_EXPS
          && t->role != QB_ROLE_FFN_DOWN_EXPS)
        continue;
      g_string_replace (name, "_exps", "", 1);
      g_assert_nonnull (qb_model_find_tensor (dense, name->str, &j));
      r = qb_job_get_result (jobs[0], i);
      g_assert_cmpstr (r->method, ==, "gptq");
      g_assert_null (r->fallback_reason);
      a = qb_job_get_tensor_data (jobs[0], i, NULL);
      b = qb_job_get_tensor_data (jobs[1], j, NULL);
      g_assert_true (g_bytes_equal (a, b));
      n_compared++;
    }
  g_assert_cmpuint (n_compared, ==, 2 * 3);
  for (guint k = 0; k < 2; k++)
    {
      qb_job_free (jobs[k]);
      qb_activation_stats_free (stats[k]);
    }
  if (g_getenv ("QB_DEVICE") != NULL)
    g_assert_true (qb_device_set_default (g_getenv ("QB_DEVICE"), NULL));
}

/* Cancels halfway through the first expert tensor's main pass. */
static void
cancel_halfway (const QbJobProgress *p, gpointer data)
{
  if (p->current_name != NULL && strstr (p->current_name, "_exps") != NULL
      && p->current_fraction > 0.5)
    g_cancellable_cancel (data);
}

/* GPTQ on a mixture through a job: the plan keeps GPTQ on the expert
 * tensors (no fallback); with XᵀX per expert every expert tensor gets it;
 * above the limit calibration collects none, says why, and the expert
 * tensors are rounded, each a fallback that says so; a run cancelled
 * midway stops cleanly. */
static void
test_gptq_experts_job (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_model (dir, "qwen2moe", 2, 4, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbPlanResolution) res = NULL;
  g_autoptr(QbCalibration) calib = NULL;
  g_autoptr(GCancellable) cancel = g_cancellable_new ();
  g_auto(GStrv) grams = NULL;
  QbActivationStats *stats, *limited;
  QbStatsOptions so;
  QbJob *job;
  guint n_experts = 0;

  g_assert_no_error (error);
  qb_plan_set_default_format (plan, "Q4_0");
  qb_plan_set_default_method (plan, "gptq");
  res = qb_plan_resolve (plan, model, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (res->n_fallbacks, ==, 0);
  grams = qb_activation_stats_gram_tensors (plan, model, &error);
  g_assert_true (g_strv_contains ((const char * const *) grams, "blk.1.ffn_down_exps.weight"));
  {
    guint64 experts = 0, largest = 0;
    guint64 all = qb_activation_stats_gram_bytes (model, (const char * const *) grams, &largest,
                                                  &experts);
    const QbTensor *t = qb_model_find_tensor (model, "blk.1.ffn_down_exps.weight", NULL);
    const QbTensor *g = qb_model_find_tensor (model, "blk.1.ffn_gate_exps.weight", NULL);
    guint64 per_layer = 4 * 8 * (guint64) (t->ne[0] * t->ne[0] + g->ne[0] * g->ne[0]);
    g_assert_cmpuint (experts, ==, 2 * per_layer);
    g_assert_cmpuint (all, >, experts);
  }

  calib = moe_calibration (model, 4, 64);
  qb_stats_options_init (&so);
  so.no_cache = TRUE;
  so.gram_tensors = (const char * const *) grams;
  stats = moe_stats (model, calib, &so);
  job = qb_job_new (model, plan);
  qb_job_set_threads (job, 2);
  qb_activation_stats_attach (stats, job, FALSE);
  g_assert_true (qb_job_run (job, NULL, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensorResult *r = qb_job_get_result (job, i);
      if (qb_tensor_n_experts (qb_model_get_tensor (model, i)) < 2)
        continue;
      n_experts++;
      g_assert_cmpstr (r->method, ==, "gptq");
      g_assert_null (r->fallback_reason);
      g_assert_false (r->metrics.out_rel_err_diag);
    }
  g_assert_cmpuint (n_experts, ==, 2 * 3);
  qb_job_free (job);

  /* Cancelled halfway through the run. */
  job = qb_job_new (model, plan);
  qb_job_set_threads (job, 2);
  qb_activation_stats_attach (stats, job, FALSE);
  qb_job_set_progress_func (job, cancel_halfway, cancel);
  g_assert_false (qb_job_run (job, cancel, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_cmpuint (qb_job_get_n_results (job), <, qb_model_get_n_tensors (model));
  qb_job_free (job);

  /* Above the limit: none collected, and said why. */
  so.max_expert_gram_bytes = 1024;
  limited = moe_stats (model, calib, &so);
  g_assert_nonnull (qb_activation_stats_get_expert_note (limited));
  g_assert_nonnull (strstr (qb_activation_stats_get_expert_note (limited), "above the limit"));
  job = qb_job_new (model, plan);
  qb_job_set_threads (job, 2);
  qb_activation_stats_attach (limited, job, FALSE);
  g_assert_true (qb_job_run (job, NULL, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensorResult *r = qb_job_get_result (job, i);
      const QbTensor *t = qb_model_get_tensor (model, i);

      if (r == NULL || g_strcmp0 (r->method, "keep") == 0)
        continue;
      if (qb_tensor_n_experts (t) > 1)
        {
          g_assert_cmpstr (r->method, ==, "rtn");
          g_assert_nonnull (strstr (r->fallback_reason, "per expert"));
        }
      else if (t->role != QB_ROLE_TOKEN_EMBD)
        g_assert_cmpstr (r->method, ==, "gptq");
    }
  qb_job_free (job);
  qb_activation_stats_free (limited);
  qb_activation_stats_free (stats);
}

/* The command line: GPTQ on a Mixtral-style model's experts, the JSON and
 * the stored experiment saying so per tensor. */
/* Each expert's mean, std and kurtosis: measured by the run (quantize
 * --json), stored and exported the same (experiments show --json), and
 * listed in experiments show --tensors. */
static void
check_stored_expert_moments (JsonObject *run, JsonObject *shown, const char *db)
{
  static const char *const keys[] = { "mean", "std", "kurtosis" };
  JsonArray *ran = json_object_get_array_member (run, "tensors");
  JsonObject *experiment = json_array_get_object_element (json_object_get_array_member (shown, "experiments"), 0);
  JsonArray *stored = json_object_get_array_member (experiment, "tensors");
  g_autofree char *text = NULL, *line = NULL;
  const char *at;
  guint n_checked = 0;

  for (guint i = 0; i < json_array_get_length (ran); i++)
    {
      JsonObject *t = json_array_get_object_element (ran, i);
      const char *name = json_object_get_string_member (t, "name");
      JsonArray *a, *b = NULL;

      if (strstr (name, "_exps") == NULL)
        continue;
      a = json_object_get_array_member (t, "experts");
      for (guint j = 0; j < json_array_get_length (stored) && b == NULL; j++)
        if (g_str_equal (json_object_get_string_member (json_array_get_object_element (stored, j), "name"), name))
          b = json_object_get_array_member (json_array_get_object_element (stored, j), "experts");
      g_assert_nonnull (b);
      g_assert_cmpuint (json_array_get_length (a), ==, 4);
      g_assert_cmpuint (json_array_get_length (b), ==, 4);
      for (guint e = 0; e < 4; e++)
        for (guint k = 0; k < G_N_ELEMENTS (keys); k++)
          {
            double x = json_object_get_double_member (json_array_get_object_element (a, e), keys[k]);
            double y = json_object_get_double_member (json_array_get_object_element (b, e), keys[k]);
            g_assert_false (json_object_get_null_member (json_array_get_object_element (b, e), keys[k]));
            g_assert_cmpfloat (x, ==, y);
            n_checked++;
          }
    }
  g_assert_cmpuint (n_checked, ==, 6 * 4 * 3);

  g_assert_cmpint (qb_test_quantbench (&text, NULL, "experiments", "show", "1", "--tensors", "--db", db,
                                       NULL), ==, 0);
  g_assert_nonnull (strstr (text, "KURTOSIS"));
  at = strstr (strstr (text, "blk.0.ffn_gate_exps.weight"), "expert 3 of 4");
  g_assert_nonnull (at);
  line = g_strndup (at, strcspn (at, "\n"));
  {
    JsonObject *t = NULL;
    g_autofree char *kurtosis = NULL;
    for (guint i = 0; i < json_array_get_length (ran) && t == NULL; i++)
      if (g_str_equal (json_object_get_string_member (json_array_get_object_element (ran, i), "name"),
                       "blk.0.ffn_gate_exps.weight"))
        t = json_array_get_object_element (ran, i);
    kurtosis = g_strdup_printf (" %.2f ", json_object_get_double_member (
      json_array_get_object_element (json_object_get_array_member (t, "experts"), 3), "kurtosis"));
    g_assert_nonnull (strstr (line, kurtosis));
  }
}

static void
test_gptq_experts_cli (void)
{
  g_autofree char *text = qb_test_shared_path ("text/tinystories-val.txt");
  g_autofree char *dir = NULL, *path = NULL, *db = NULL, *out = NULL, *err = NULL;
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_autoptr(JsonObject) o = NULL, o2 = NULL;
  JsonArray *tensors;
  guint n_experts = 0;

  if (text == NULL)
    {
      g_test_skip ("no shared text");
      return;
    }
  dir = qb_test_tmpdir ();
  path = write_model (dir, "mixtral", 2, 4, 2);
  db = g_build_filename (dir, "e.db", NULL);
  if (qb_test_quantbench (&out, &err, "quantize", path, "--calib", text, "--calib-chunks", "4",
                          "--calib-ctx", "64", "--default", "Q4_0", "--method", "gptq", "--json",
                          "--db", db, "--threads", "2", "--calib-no-cache", NULL) != 0)
    {
      g_assert_null (qb_test_quantbench_path ());
      return;
    }
  o = parse_json (out);
  tensors = json_object_get_array_member (o, "tensors");
  for (guint i = 0; i < json_array_get_length (tensors); i++)
    {
      JsonObject *t = json_array_get_object_element (tensors, i);
      if (strstr (json_object_get_string_member (t, "name"), "_exps") == NULL)
        continue;
      n_experts++;
      g_assert_cmpstr (json_object_get_string_member (t, "method"), ==, "gptq");
      g_assert_true (json_object_get_null_member (t, "fallback_reason"));
    }
  g_assert_cmpuint (n_experts, ==, 6);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (o, "totals"),
                                               "n_fallbacks"), ==, 0);
  g_assert_null (strstr (err, "per expert, which"));

  /* The stored experiment: the same per tensor. */
  g_assert_cmpint (qb_test_quantbench (&out2, &err2, "experiments", "show", "1", "--json", "--db",
                                       db, NULL), ==, 0);
  g_assert_nonnull (strstr (out2, "\"blk.1.ffn_down_exps.weight\""));
  o2 = parse_json (out2);
  check_stored_expert_moments (o, o2, db);
  {
    g_autofree char *again = NULL, *err3 = NULL;
    g_autoptr(JsonObject) o3 = NULL;
    JsonArray *t3;
    guint n_rounded = 0;

    /* Above the limit: rounded, each a fallback, and the calibration says why. */
    g_assert_cmpint (qb_test_quantbench (&again, &err3, "quantize", path, "--calib", text,
                                         "--calib-chunks", "4", "--calib-ctx", "64", "--default",
                                         "Q4_0", "--method", "gptq", "--json", "--no-save",
                                         "--threads", "2", "--calib-no-cache",
                                         "--calib-expert-gram-max", "0.000001", NULL), ==, 0);
    g_assert_nonnull (strstr (err3, "above the limit"));
    o3 = parse_json (again);
    t3 = json_object_get_array_member (o3, "tensors");
    for (guint i = 0; i < json_array_get_length (t3); i++)
      {
        JsonObject *t = json_array_get_object_element (t3, i);
        if (strstr (json_object_get_string_member (t, "name"), "_exps") == NULL)
          continue;
        n_rounded++;
        g_assert_cmpstr (json_object_get_string_member (t, "method"), ==, "rtn");
        g_assert_nonnull (strstr (json_object_get_string_member (t, "fallback_reason"), "per expert"));
      }
    g_assert_cmpuint (n_rounded, ==, 6);
    g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (o3, "totals"),
                                                 "n_fallbacks"), ==, 6);
  }
}

static void
test_presets (void)
{
  /* use_more_bits (i, 8): layers 0, 3, 6, 7. */
  static const gboolean more_bits[8] = { TRUE, FALSE, FALSE, TRUE, FALSE, FALSE, TRUE, TRUE };
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *mix_path = write_model (dir, "mixtral", 8, 8, 2);
  g_autofree char *qw_path = write_model (dir, "qwen2moe", 8, 4, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) mix = qb_model_open (mix_path, &error);
  g_autoptr(QbModel) qw = NULL;
  char name[64];

  g_assert_no_error (error);
  qw = qb_model_open (qw_path, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 8; i++)
    {
      const char *bumped = more_bits[i] ? "Q6_K" : "Q4_K";

      g_snprintf (name, sizeof name, "blk.%u.ffn_down_exps.weight", i);
      g_assert_cmpstr (preset_format (mix, "Q4_K_M", name), ==, bumped);
      g_assert_cmpstr (preset_format (qw, "Q4_K_M", name), ==, bumped);
      g_snprintf (name, sizeof name, "blk.%u.ffn_down_shexp.weight", i);
      g_assert_cmpstr (preset_format (qw, "Q4_K_M", name), ==, bumped);
      g_snprintf (name, sizeof name, "blk.%u.ffn_gate_exps.weight", i);
      g_assert_cmpstr (preset_format (mix, "Q4_K_M", name), ==, "Q4_K");
      /* Q4_K_S: Q5_K in the first eighth (layer 0). */
      g_snprintf (name, sizeof name, "blk.%u.ffn_down_exps.weight", i);
      g_assert_cmpstr (preset_format (mix, "Q4_K_S", name), ==, i == 0 ? "Q5_K" : "Q4_K");
    }
  /* 8 experts: attn_k and attn_v Q8_0 whatever the preset; attn_output
   * Q5_K for Q3_K_M and Q4_K_M, the base for Q3_K_L and Q5_K_M. */
  g_assert_cmpstr (preset_format (mix, "Q4_K_M", "blk.1.attn_k.weight"), ==, "Q8_0");
  g_assert_cmpstr (preset_format (mix, "Q3_K_S", "blk.1.attn_v.weight"), ==, "Q8_0");
  g_assert_cmpstr (preset_format (mix, "Q4_K_M", "blk.1.attn_output.weight"), ==, "Q5_K");
  g_assert_cmpstr (preset_format (mix, "Q3_K_M", "blk.1.attn_output.weight"), ==, "Q5_K");
  g_assert_cmpstr (preset_format (mix, "Q3_K_L", "blk.1.attn_output.weight"), ==, "Q3_K");
  g_assert_cmpstr (preset_format (mix, "Q5_K_M", "blk.1.attn_output.weight"), ==, "Q5_K");
  g_assert_cmpstr (preset_format (mix, "Q4_K_M", "blk.0.ffn_gate_inp.weight"), ==, "keep");
  /* 4 experts: the dense rules. */
  g_assert_cmpstr (preset_format (qw, "Q4_K_M", "blk.1.attn_k.weight"), ==, "Q4_K");
  g_assert_cmpstr (preset_format (qw, "Q4_K_M", "blk.1.attn_v.weight"), ==, "Q4_K");
  g_assert_cmpstr (preset_format (qw, "Q4_K_M", "blk.0.attn_v.weight"), ==, "Q6_K");
  g_assert_cmpstr (preset_format (qw, "Q3_K_L", "blk.1.attn_output.weight"), ==, "Q5_K");
  g_assert_cmpstr (preset_format (qw, "Q3_K_M", "blk.0.ffn_down_shexp.weight"), ==, "Q4_K");
  test_presets_deepseek (dir, more_bits);
}

/* A DeepSeek-V3-style model (sigmoid, bias) with its 8 experts in 4
 * groups of 2: with every group allowed it is the ungrouped model; with
 * one group per token its logits move (llama.cpp's Feb-2025 snapshot
 * ignores the groups, so this is checked against the ungrouped pass and,
 * in test-deepseek.c, the routing against its definition). */
static QbLlama *
grouped_deepseek (const char *dir, guint n_group, guint topk_group, QbModel **model)
{
  g_autofree char *path = g_strdup_printf ("%s/ds-%u-%u.gguf", dir, n_group, topk_group);
  g_autoptr(GError) error = NULL;
  QbDemoModelSpec spec;
  QbLlama *llama;

  qb_demo_model_spec_init (&spec);
  spec.dtype = QB_DTYPE_F32;
  spec.arch = "deepseek2";
  spec.sigmoid = TRUE;
  spec.n_group = n_group;
  spec.topk_group = topk_group;
  g_assert_true (qb_demo_model_write (&spec, path, NULL, NULL, &error));
  *model = qb_model_open (path, &error);
  g_assert_no_error (error);
  llama = qb_llama_new (*model, &error);
  g_assert_no_error (error);
  qb_llama_set_threads (llama, 2);
  return llama;
}

static void
test_deepseek_groups (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autoptr(QbModel) m1 = NULL, m4 = NULL, m41 = NULL;
  QbLlama *plain = grouped_deepseek (dir, 0, 0, &m1);
  QbLlama *all = grouped_deepseek (dir, 4, 4, &m4);
  QbLlama *one = grouped_deepseek (dir, 4, 1, &m41);
  double same = largest_logit_difference (plain, all, 64);
  double moved = largest_logit_difference (plain, one, 64);

  g_test_message ("4 groups, all used: %g; one used: %g", same, moved);
  g_assert_cmpuint (qb_llama_get_params (one)->n_group, ==, 4);
  g_assert_cmpfloat (same, ==, 0);
  g_assert_cmpfloat (moved, >, 0.01);
  qb_llama_free (plain);
  qb_llama_free (all);
  qb_llama_free (one);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (references); i++)
    {
      g_autofree char *name = g_strdup_printf ("/eval-moe/llama-cpp/%s", references[i].name);
      g_test_add_data_func (name, &references[i], check_llama_cpp);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (twins); i++)
    {
      g_autofree char *name = g_strdup_printf ("/eval-moe/one-expert/%s", twins[i].demo_arch);
      g_test_add_data_func (name, &twins[i], test_one_expert);
    }
  g_test_add_func ("/eval-moe/params", test_params);
  g_test_add_func ("/eval-moe/deepseek2/groups", test_deepseek_groups);
  g_test_add_data_func ("/eval-moe/forward-from/mixtral", "mixtral", test_forward_from);
  g_test_add_data_func ("/eval-moe/forward-from/qwen2moe", "qwen2moe", test_forward_from);
  g_test_add_func ("/quantize-moe/expert-importance", test_expert_importance);
  g_test_add_func ("/quantize-moe/expert-histograms", test_expert_histograms);
  g_test_add_func ("/quantize-moe/expert-metrics", test_expert_metrics);
  g_test_add_func ("/quantize-moe/expert-moments/demo", test_expert_moments_demo);
  g_test_add_func ("/quantize-moe/expert-moments/stories", test_expert_moments_stories);
  g_test_add_func ("/calib-moe/expert-imatrix", test_expert_imatrix);
  g_test_add_func ("/sensitivity-moe/experts", test_sensitivity);
  g_test_add_func ("/sensitivity-moe/per-expert", test_sensitivity_per_expert);
  g_test_add_data_func ("/sensitivity-moe/floor/mixtral", &floor_cases[0], test_sensitivity_floor);
  g_test_add_data_func ("/sensitivity-moe/floor/dense", &floor_cases[1], test_sensitivity_floor);
  g_test_add_func ("/plan-moe/presets", test_presets);
  g_test_add_func ("/calib-moe/expert-grams", test_expert_grams);
  g_test_add_func ("/quantize-moe/gptq-per-expert", test_gptq_per_expert);
  g_test_add_func ("/quantize-moe/gptq-lower-error", test_gptq_experts_lower_error);
  g_test_add_func ("/quantize-moe/gptq-one-expert", test_gptq_one_expert);
  g_test_add_func ("/quantize-moe/gptq-job", test_gptq_experts_job);
  g_test_add_func ("/quantize-moe/gptq-cli", test_gptq_experts_cli);
  g_test_add_data_func ("/eval-moe/safetensors/mixtral", "mixtral", test_safetensors_experts);
  g_test_add_data_func ("/eval-moe/safetensors/qwen2moe", "qwen2moe", test_safetensors_experts);
  g_test_add_data_func ("/eval-moe/safetensors/deepseek2", "deepseek2", test_safetensors_experts);
  g_test_add_data_func ("/eval-moe/safetensors/deepseek2-sigmoid", "deepseek2-sigmoid",
                        test_safetensors_experts);
  g_test_add_data_func ("/eval-moe/safetensors/deepseek2-yarn", "deepseek2-yarn",
                        test_safetensors_experts);
  return g_test_run ();
}
