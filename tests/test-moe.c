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
#include "qb-imatrix.h"
#include "qb-format.h"
#include "qb-gguf.h"
#include "qb-llama.h"
#include "qb-model.h"
#include "qb-tensor-quantizer.h"
#include "qb-test-util.h"

/* llama.cpp's perplexities, from its Feb-2025 snapshot (commit c392e50),
 * CPU, 2 threads.  The models: `quantbench demo-model --arch A --dtype f32
 * -o m.gguf` (seed 1, 4 layers of 256, 8 experts of 256, 2 per token; the
 * Qwen2-MoE one with a shared expert of 768); the text: the first 20,000
 * bytes of ../shared/text/tinystories-val.txt (`head -c 20000`).
 *   F32:  llama-perplexity -m m.gguf -f t20k.txt -c 128 -t 2 --chunks 20
 *   Q8_0: quantbench quantize m.gguf --default Q8_0 -o q.gguf --no-save
 *         llama-perplexity -m q.gguf -f t20k.txt -c 128 -t 2   (all 149 chunks)
 * The quantized figure is taken over the whole text: llama.cpp multiplies
 * quantized weights by activations it rounds to 8 bits, which moves a few
 * tokens to other experts; over 20 chunks that alone is 0.1-0.2 %. */
typedef struct {
  const char *arch;
  double      ppl_f32_20;
  double      ppl_q8_0_all;
} Reference;

static const Reference references[] = {
  { "mixtral",  635.7547, 661.4771 },
  { "qwen2moe", 674.0005, 661.4061 },
};

#define TEXT_BYTES 20000

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
write_model (const char *dir, const char *arch, guint n_layer, guint n_expert, guint n_used)
{
  char *path = g_strdup_printf ("%s/%s-%u-%u.gguf", dir, arch, n_expert, n_used);
  g_autoptr(GError) error = NULL;
  QbDemoModelSpec spec;

  qb_demo_model_spec_init (&spec);
  spec.dtype = QB_DTYPE_F32;
  spec.arch = arch;
  spec.n_layer = n_layer;
  spec.n_expert = n_expert;
  spec.n_expert_used = n_used;
  g_assert_true (qb_demo_model_write (&spec, path, NULL, NULL, &error));
  g_assert_no_error (error);
  return path;
}

static double
eval_ppl (const char *model, const char *text, const char *chunks, const char *format)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonObject) o = NULL;
  const char *args[] = { "eval", model, "--text", text, "--ctx", "128", "--threads", "2",
                         "--no-cache", "--json", chunks ? "--chunks" : NULL, chunks,
                         format ? "--default" : NULL, format, NULL };
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
  double f32, q8;
  const QbTensor *t;

  if (whole == NULL)
    return;
  dir = qb_test_tmpdir ();
  text = g_build_filename (dir, "t20k.txt", NULL);
  g_assert_true (g_file_get_contents (whole, &contents, &len, &error));
  g_assert_cmpuint (len, >=, TEXT_BYTES);
  g_assert_true (g_file_set_contents (text, contents, TEXT_BYTES, &error));
  model = write_model (dir, ref->arch, 0, 0, 0);
  if (qb_test_quantbench_path () == NULL)
    return;

  f32 = eval_ppl (model, text, "20", NULL);
  q8 = eval_ppl (model, text, NULL, "Q8_0");
  g_test_message ("%s: F32 PPL %.4f (llama.cpp %.4f, %+.3f %%), Q8_0 %.4f (llama.cpp %.4f, %+.3f %%)",
                  ref->arch, f32, ref->ppl_f32_20, 100 * (f32 / ref->ppl_f32_20 - 1), q8,
                  ref->ppl_q8_0_all, 100 * (q8 / ref->ppl_q8_0_all - 1));
  g_assert_cmpfloat (fabs (f32 / ref->ppl_f32_20 - 1), <, 0.001);
  g_assert_cmpfloat (fabs (q8 / ref->ppl_q8_0_all - 1), <, 0.001);

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
  gint32 tokens[40];
  guint n_vocab;
  g_autofree float *la = NULL, *lb = NULL;
  double worst = 0;

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

  n_vocab = qb_llama_get_params (a)->n_vocab;
  for (guint i = 0; i < G_N_ELEMENTS (tokens); i++)
    tokens[i] = (gint32) ((i * 37 + 1) % n_vocab);
  la = g_new (float, G_N_ELEMENTS (tokens) * n_vocab);
  lb = g_new (float, G_N_ELEMENTS (tokens) * n_vocab);
  g_assert_true (qb_llama_forward (a, tokens, G_N_ELEMENTS (tokens), 0, la, NULL, NULL, NULL, &error));
  g_assert_true (qb_llama_forward (b, tokens, G_N_ELEMENTS (tokens), 0, lb, NULL, NULL, NULL, &error));
  for (gsize i = 0; i < G_N_ELEMENTS (tokens) * n_vocab; i++)
    worst = MAX (worst, fabs (la[i] - lb[i]));
  g_test_message ("%s with one expert vs %s: largest logit difference %.3g", tw->moe_arch,
                  tw->dense_arch, worst);
  g_assert_cmpfloat (worst, <, 1e-4);
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
        g_assert_true (isfinite (r->expert_sqnr_db[e]) && r->expert_rmse_rel[e] > 0);
        g_assert_cmpfloat_with_epsilon (r->expert_sqnr_db[e], -20 * log10 (r->expert_rmse_rel[e]), 1e-9);
        lo = MIN (lo, r->expert_sqnr_db[e]);
        hi = MAX (hi, r->expert_sqnr_db[e]);
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
  g_autoptr(QbCalibration) calib = NULL;
  g_autoptr(QbImatrix) im = NULL, back = NULL;
  QbActivationStats *stats;
  QbCalibrationOptions co;
  QbStatsOptions so;
  gint32 tokens[64 * 4];
  const guint64 *counts;
  guint n_mat = 0, n = 0, n_back = 0;
  guint64 total = 0;
  const float *imp, *imp_back;

  g_assert_no_error (error);
  llama = qb_llama_new (model, &error);
  g_assert_no_error (error);
  qb_llama_set_threads (llama, 2);
  for (guint i = 0; i < G_N_ELEMENTS (tokens); i++)
    tokens[i] = (gint32) (3 + (i * 2654435761u) % 500);
  qb_calibration_options_init (&co);
  co.n_ctx = 64;
  co.n_chunks = 4;
  calib = qb_calibration_new_from_tokens (tokens, G_N_ELEMENTS (tokens), 1, &co, &error);
  g_assert_no_error (error);
  qb_stats_options_init (&so);
  so.no_cache = TRUE;
  stats = qb_activation_stats_compute (llama, calib, &so, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
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
  qb_activation_stats_free (stats);
}

/* A sensitivity study measures the experts and the shared expert end to
 * end like any matrix (the router stays as stored). */
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
                          "--json", NULL) != 0)
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
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (references); i++)
    {
      g_autofree char *name = g_strdup_printf ("/eval-moe/llama-cpp/%s", references[i].arch);
      g_test_add_data_func (name, &references[i], check_llama_cpp);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (twins); i++)
    {
      g_autofree char *name = g_strdup_printf ("/eval-moe/one-expert/%s", twins[i].demo_arch);
      g_test_add_data_func (name, &twins[i], test_one_expert);
    }
  g_test_add_func ("/eval-moe/params", test_params);
  g_test_add_func ("/quantize-moe/expert-importance", test_expert_importance);
  g_test_add_func ("/quantize-moe/expert-histograms", test_expert_histograms);
  g_test_add_func ("/calib-moe/expert-imatrix", test_expert_imatrix);
  g_test_add_func ("/sensitivity-moe/experts", test_sensitivity);
  return g_test_run ();
}
