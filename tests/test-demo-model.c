/* SPDX-License-Identifier: MIT */
/* test-demo-model.c — the demo model generator: sizes, determinism, the
 * file it writes, and the statistics of its weights.
 */
#include <math.h>
#include <glib/gstdio.h>
#include <string.h>

#include "qb-demo-model.h"
#include "qb-model.h"
#include "qb-model-stats.h"
#include "qb-test-util.h"

static void
test_sizes (void)
{
  static const gint64 targets[] = { 5000000, 20000000, 100000000, 370000000, 1000000000,
                                    3000000000, 7000000000 };
  QbDemoModelDims d;
  gint64 n;

  qb_demo_model_choose_dims (0, &d);
  g_assert_cmpuint (d.n_layer, ==, 4);
  g_assert_cmpuint (d.n_embd, ==, 256);
  g_assert_cmpuint (d.n_ff, ==, 768);
  g_assert_cmpuint (d.n_vocab, ==, 512);
  n = qb_demo_model_count_params (&d);
  g_assert_cmpint (n, >, 3000000);
  g_assert_cmpint (n, <, 4000000);                 /* a few MB in F16 */

  for (gsize i = 0; i < G_N_ELEMENTS (targets); i++)
    {
      qb_demo_model_choose_dims (targets[i], &d);
      n = qb_demo_model_count_params (&d);
      g_test_message ("%" G_GINT64_FORMAT ": %" G_GINT64_FORMAT " params, %u layers x %u, ffn %u, "
                      "heads %u/%u, vocab %u", targets[i], n, d.n_layer, d.n_embd, d.n_ff,
                      d.n_head, d.n_head_kv, d.n_vocab);
      g_assert_cmpfloat (fabs ((double) n / targets[i] - 1.0), <, 0.15);
      g_assert_cmpuint (d.n_layer, >=, 2);
      g_assert_cmpuint (d.n_embd % 256, ==, 0);
      g_assert_cmpuint (d.n_ff % 256, ==, 0);
      g_assert_cmpuint (d.n_embd % d.n_head, ==, 0);
      g_assert_cmpuint (d.n_head % d.n_head_kv, ==, 0);
    }
}

/* Each mixture family: llama.cpp's tensor names, 3-D experts, the
 * metadata that says so, and QbModel's reading of them. */
static void
test_moe (void)
{
  static const struct { const char *arch, *family; guint per_layer; gboolean shexp, bias, qk_norm; }
  cases[] = {
    { "mixtral", "llama", 10, FALSE, FALSE, FALSE },
    { "qwen2moe", "qwen2moe", 17, TRUE, TRUE, FALSE },
    { "qwen3moe", "qwen3moe", 12, FALSE, FALSE, TRUE },
  };
  g_autofree char *dir = qb_test_tmpdir ();

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_build_filename (dir, cases[i].arch, NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(QbModel) model = NULL;
      const QbArchInfo *a;
      const QbTensor *t;
      QbDemoModelSpec spec;
      QbDemoModelDims d;

      qb_demo_model_spec_init (&spec);
      spec.arch = cases[i].arch;
      spec.n_layer = 2;
      spec.n_expert = 4;
      qb_demo_model_spec_dims (&spec, &d);
      g_assert_cmpuint (d.n_expert, ==, 4);
      g_assert_cmpuint (d.n_expert_used, ==, 2);
      g_assert_true (qb_demo_model_write (&spec, path, NULL, NULL, &error));
      g_assert_no_error (error);
      model = qb_model_open (path, &error);
      g_assert_no_error (error);
      a = qb_model_get_arch (model);
      g_assert_cmpstr (a->family, ==, cases[i].family);
      g_assert_cmpuint (a->n_layer, ==, 2);
      g_assert_cmpuint (a->n_expert, ==, 4);
      g_assert_cmpuint (a->n_expert_used, ==, 2);
      g_assert_cmpuint (a->n_ff_exp, ==, d.n_ff_exp);
      g_assert_cmpuint (a->n_ff_shexp, ==, cases[i].shexp ? d.n_ff : 0);
      g_assert_cmpuint (qb_model_get_n_tensors (model), ==, 3 + 2 * cases[i].per_layer);
      g_assert_cmpint (qb_model_get_n_params (model), >=, qb_demo_model_count_params (&d));

      t = qb_model_find_tensor (model, "blk.1.ffn_down_exps.weight", NULL);
      g_assert_nonnull (t);
      g_assert_cmpuint (t->n_dims, ==, 3);
      g_assert_cmpint (t->ne[0], ==, d.n_ff_exp);
      g_assert_cmpint (t->ne[1], ==, d.n_embd);
      g_assert_cmpint (t->ne[2], ==, 4);
      g_assert_cmpint (t->role, ==, QB_ROLE_FFN_DOWN_EXPS);
      g_assert_cmpint (t->layer, ==, 1);
      g_assert_cmpint (qb_tensor_n_experts (t), ==, 4);
      g_assert_cmpint (qb_tensor_n_rows (t), ==, 4 * (gint64) d.n_embd);
      t = qb_model_find_tensor (model, "blk.0.ffn_gate_inp.weight", NULL);
      g_assert_nonnull (t);
      g_assert_cmpint (t->role, ==, QB_ROLE_FFN_GATE_INP);
      g_assert_cmpint (t->dtype, ==, QB_DTYPE_F32);
      g_assert_cmpint (t->ne[1], ==, 4);
      g_assert_cmpint (qb_tensor_n_experts (t), ==, 1);
      g_assert_true ((qb_model_find_tensor (model, "blk.0.ffn_up_shexp.weight", NULL) != NULL)
                     == cases[i].shexp);
      g_assert_true ((qb_model_find_tensor (model, "blk.0.ffn_gate_inp_shexp.weight", NULL) != NULL)
                     == cases[i].shexp);
      g_assert_true ((qb_model_find_tensor (model, "blk.0.attn_k.bias", NULL) != NULL)
                     == cases[i].bias);
      g_assert_true ((qb_model_find_tensor (model, "blk.1.attn_k_norm.weight", NULL) != NULL)
                     == cases[i].qk_norm);
      g_assert_null (qb_model_find_tensor (model, "blk.0.ffn_up.weight", NULL));
    }

  {
    QbDemoModelSpec spec;
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_build_filename (dir, "bad.gguf", NULL);

    qb_demo_model_spec_init (&spec);
    spec.arch = "gpt5";
    g_assert_false (qb_demo_model_write (&spec, path, NULL, NULL, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  }
}

static void
test_parse_size (void)
{
  static const struct { const char *text; gint64 value; } ok[] = {
    { "370M", 370000000 }, { "1B", 1000000000 }, { "1.5b", 1500000000 }, { "5m", 5000000 },
    { "500K", 500000 }, { "123", 123 }, { "0", 0 },
  };
  static const char *const bad[] = { "", "M", "-5M", "5X", "5MB", "1e99", "abc", NULL };
  gint64 v;

  for (gsize i = 0; i < G_N_ELEMENTS (ok); i++)
    {
      g_assert_true (qb_demo_model_parse_size (ok[i].text, &v));
      g_assert_cmpint (v, ==, ok[i].value);
    }
  for (gsize i = 0; bad[i]; i++)
    g_assert_false (qb_demo_model_parse_size (bad[i], &v));
  g_assert_false (qb_demo_model_parse_size (NULL, &v));
}

/* Field by field: the struct has padding. */
static gboolean
stats_equal (const QbTensorStats *a, const QbTensorStats *b, guint n)
{
  for (guint i = 0; i < n; i++)
    if (a[i].readable != b[i].readable || a[i].n_outliers != b[i].n_outliers ||
        memcmp (&a[i].moments, &b[i].moments, sizeof a[i].moments) != 0)
      return FALSE;
  return TRUE;
}

static char *
write_demo (const char *dir, const char *name, QbDType dtype, guint64 seed, guint threads)
{
  char *path = g_build_filename (dir, name, NULL);
  g_autoptr(QbWorkers) workers = qb_workers_new (threads);
  g_autoptr(GError) error = NULL;
  QbDemoModelSpec spec;

  qb_demo_model_spec_init (&spec);
  spec.dtype = dtype;
  spec.seed = seed;
  g_assert_true (qb_demo_model_write (&spec, path, workers, NULL, &error));
  g_assert_no_error (error);
  return path;
}

static void
test_deterministic (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *a = write_demo (dir, "a.gguf", QB_DTYPE_F16, 7, 1);
  g_autofree char *b = write_demo (dir, "b.gguf", QB_DTYPE_F16, 7, 3);
  g_autofree char *c = write_demo (dir, "c.gguf", QB_DTYPE_F16, 8, 2);
  g_autoptr(GBytes) ba = qb_test_read_file (a);
  g_autoptr(GBytes) bb = qb_test_read_file (b);
  g_autoptr(GBytes) bc = qb_test_read_file (c);

  g_assert_true (g_bytes_equal (ba, bb));           /* same seed, any thread count */
  g_assert_cmpuint (g_bytes_get_size (ba), ==, g_bytes_get_size (bc));
  g_assert_false (g_bytes_equal (ba, bc));          /* another seed */
}

static void
test_file (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_demo (dir, "demo.gguf", QB_DTYPE_F16, 1, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  const QbArchInfo *a;
  QbGguf *g;
  const QbGgufString *tokens;
  const gint32 *types;
  guint64 n, u;

  g_assert_no_error (error);
  a = qb_model_get_arch (model);
  g_assert_cmpstr (a->family, ==, "llama");
  g_assert_cmpuint (a->n_layer, ==, 4);
  g_assert_cmpuint (a->n_embd, ==, 256);
  g_assert_cmpuint (a->n_ff, ==, 768);
  g_assert_cmpuint (a->n_head, ==, 4);
  g_assert_cmpuint (a->n_head_kv, ==, 2);
  g_assert_cmpuint (a->head_dim, ==, 64);
  g_assert_cmpuint (a->n_vocab, ==, 512);
  g_assert_cmpuint (a->n_ctx, ==, 512);
  g_assert_cmpfloat (a->rope_freq_base, ==, 10000.0);
  g_assert_cmpfloat_with_epsilon (a->rms_eps, 1e-5, 1e-9);
  g_assert_false (a->tied_embeddings);
  g_assert_cmpuint (qb_model_get_n_tensors (model), ==, 3 + 4 * 9);
  g_assert_cmpuint (qb_model_get_file_size (model), <, 8u << 20);

  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      g_assert_cmpint (t->role, !=, QB_ROLE_OTHER);
      g_assert_false (t->is_bias);
      if (t->n_dims == 2)
        {
          g_assert_cmpint (t->dtype, ==, QB_DTYPE_F16);
          g_assert_cmpint (t->ne[0] % 256, ==, 0);         /* every block format fits */
        }
      else
        g_assert_cmpint (t->dtype, ==, QB_DTYPE_F32);
    }

  g = qb_model_get_gguf (model);
  g_assert_cmpstr (qb_gguf_get_string (g, "tokenizer.ggml.model"), ==, "llama");
  g_assert_true (qb_gguf_get_uint (g, "general.file_type", &u) && u == 1);
  g_assert_true (qb_gguf_get_uint (g, "tokenizer.ggml.bos_token_id", &u) && u == 1);
  g_assert_true (qb_gguf_get_uint (g, "tokenizer.ggml.eos_token_id", &u) && u == 2);
  g_assert_true (qb_gguf_get_uint (g, "llama.rope.dimension_count", &u) && u == 64);
  tokens = qb_gguf_get_string_array (g, "tokenizer.ggml.tokens", &n);
  g_assert_cmpuint (n, ==, 512);
  g_assert_cmpstr (tokens[0].str, ==, "<unk>");
  g_assert_cmpstr (tokens[1].str, ==, "<s>");
  g_assert_cmpstr (tokens[2].str, ==, "</s>");
  g_assert_cmpstr (tokens[3].str, ==, "<0x00>");
  g_assert_cmpstr (tokens[3 + 0x0a].str, ==, "<0x0A>");
  g_assert_cmpstr (tokens[258].str, ==, "<0xFF>");
  types = qb_gguf_get_array (g, "tokenizer.ggml.token_type", QB_GGUF_TYPE_INT32, &n);
  g_assert_cmpuint (n, ==, 512);
  g_assert_cmpint (types[0], ==, 2);
  g_assert_cmpint (types[1], ==, 3);
  g_assert_cmpint (types[100], ==, 6);
  g_assert_cmpint (types[300], ==, 1);
  g_assert_nonnull (qb_gguf_get_array (g, "tokenizer.ggml.scores", QB_GGUF_TYPE_FLOAT32, &n));
  g_assert_cmpuint (n, ==, 512);
  {
    g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
    for (guint i = 0; i < 512; i++)
      g_assert_true (g_hash_table_add (seen, (gpointer) tokens[i].str));   /* all distinct */
  }
}

/* Heavy tails, outlier channels, scales that vary by layer, norms near 1. */
static void
test_weight_statistics (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = write_demo (dir, "demo.gguf", QB_DTYPE_F32, 1, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);
  g_autoptr(QbWorkers) workers = qb_workers_new (2);
  g_autofree QbTensorStats *stats = NULL;
  double min_std = G_MAXDOUBLE, max_std = 0;
  guint n_heavy = 0, n_matrices = 0;

  g_assert_no_error (error);
  stats = g_new (QbTensorStats, qb_model_get_n_tensors (model));
  g_assert_true (qb_model_compute_stats (model, workers, stats, NULL, NULL, NULL, &error));

  /* The same to the bit with another thread count. */
  {
    g_autoptr(QbWorkers) three = qb_workers_new (3);
    g_autofree QbTensorStats *again = g_new (QbTensorStats, qb_model_get_n_tensors (model));
    g_assert_true (qb_model_compute_stats (model, three, again, NULL, NULL, NULL, &error));
    g_assert_true (stats_equal (stats, again, qb_model_get_n_tensors (model)));
  }

  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      const QbMoments *m = &stats[i].moments;
      double std = qb_moments_std (m);

      if (t->n_dims == 1)
        {
          g_assert_cmpfloat (fabs (m->mean - 1.0), <, 0.05);
          g_assert_cmpfloat (m->min, >, 0.0);
          continue;
        }
      n_matrices++;
      g_assert_cmpfloat (fabs (m->mean), <, 0.1 * std);
      if (qb_moments_kurtosis (m) > 1.0)
        n_heavy++;
      if (t->role == QB_ROLE_ATTN_Q)
        {
          min_std = MIN (min_std, std);
          max_std = MAX (max_std, std);
        }
    }
  g_assert_cmpuint (n_heavy, ==, n_matrices);          /* every matrix is heavy-tailed */
  g_assert_cmpfloat (max_std / min_std, >, 1.1);       /* layers differ in scale */

  /* The same outlier input channels in every layer's attn_q. */
  {
    guint index;
    const QbTensor *t = qb_model_find_tensor (model, "blk.1.attn_q.weight", &index);
    g_autofree float *rows = g_new (float, t->n_params);
    g_autofree double *col_rms = g_new0 (double, t->ne[0]);
    double median_like = 0;
    guint n_big = 0;

    g_assert_true (qb_model_read_rows (model, index, 0, t->ne[1], rows, &error));
    for (gint64 r = 0; r < t->ne[1]; r++)
      for (gint64 j = 0; j < t->ne[0]; j++)
        col_rms[j] += (double) rows[r * t->ne[0] + j] * rows[r * t->ne[0] + j];
    for (gint64 j = 0; j < t->ne[0]; j++)
      median_like += col_rms[j] / t->ne[0];
    for (gint64 j = 0; j < t->ne[0]; j++)
      n_big += col_rms[j] > 4 * median_like;
    g_assert_cmpuint (n_big, >=, 1);
    g_assert_cmpuint (n_big, <=, 4);
  }
}

/* F32 and F16 files hold the same values, up to half-precision rounding. */
static void
test_f32_matches_f16 (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *p16 = write_demo (dir, "h.gguf", QB_DTYPE_F16, 3, 2);
  g_autofree char *p32 = write_demo (dir, "f.gguf", QB_DTYPE_F32, 3, 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) m16 = qb_model_open (p16, &error);
  g_autoptr(QbModel) m32 = qb_model_open (p32, &error);
  guint index;
  const QbTensor *t = qb_model_find_tensor (m32, "blk.2.ffn_down.weight", &index);
  g_autofree float *a = g_new (float, t->n_params);
  g_autofree float *b = g_new (float, t->n_params);

  g_assert_no_error (error);
  g_assert_true (qb_model_read_rows (m32, index, 0, t->ne[1], a, &error));
  g_assert_true (qb_model_read_rows (m16, index, 0, t->ne[1], b, &error));
  for (gint64 i = 0; i < t->n_params; i++)
    g_assert_cmpfloat (b[i], ==, qb_fp16_to_fp32 (qb_fp32_to_fp16 (a[i])));
}

static void
test_cancel (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "x.gguf", NULL);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) d = NULL;
  QbDemoModelSpec spec;

  qb_demo_model_spec_init (&spec);
  g_cancellable_cancel (cancellable);
  g_assert_false (qb_demo_model_write (&spec, path, NULL, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  d = g_dir_open (dir, 0, NULL);
  g_assert_null (g_dir_read_name (d));              /* nothing left behind */
}

static void
test_default_cached (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *first = qb_demo_model_get_default (NULL, &error);
  g_autofree char *second = NULL;
  g_autoptr(QbModel) model = NULL;
  GStatBuf st1, st2;

  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (first, g_getenv ("XDG_CACHE_HOME")));
  g_assert_cmpint (g_stat (first, &st1), ==, 0);
  second = qb_demo_model_get_default (NULL, &error);
  g_assert_cmpstr (first, ==, second);
  g_assert_cmpint (g_stat (second, &st2), ==, 0);
  g_assert_cmpint (st1.st_ino, ==, st2.st_ino);      /* not written again */
  model = qb_model_open (first, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (qb_model_get_arch (model)->n_layer, ==, 4);
}

int
main (int argc, char **argv)
{
  g_autofree char *cache = NULL;

  g_test_init (&argc, &argv, NULL);
  /* Before anything asks GLib for the cache folder (it is looked up once). */
  cache = qb_test_tmpdir ();
  g_setenv ("XDG_CACHE_HOME", cache, TRUE);

  g_test_add_func ("/demo-model/sizes", test_sizes);
  g_test_add_func ("/demo-model/moe", test_moe);
  g_test_add_func ("/demo-model/parse-size", test_parse_size);
  g_test_add_func ("/demo-model/deterministic", test_deterministic);
  g_test_add_func ("/demo-model/file", test_file);
  g_test_add_func ("/demo-model/weight-statistics", test_weight_statistics);
  g_test_add_func ("/demo-model/f32-matches-f16", test_f32_matches_f16);
  g_test_add_func ("/demo-model/cancel", test_cancel);
  g_test_add_func ("/demo-model/default-cached", test_default_cached);
  return g_test_run ();
}
