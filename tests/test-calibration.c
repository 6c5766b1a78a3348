/* SPDX-License-Identifier: MIT */
/* test-calibration.c — calibration sets and activation statistics:
 * chunking and its identity, token and statistics caches, the importance
 * matrix and XᵀX against direct computations, passes in bounded memory,
 * cancel, llama.cpp's file layouts, and the output error a job measures. */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "qb-activation-stats.h"
#include "qb-calibration.h"
#include "qb-demo-model.h"
#include "qb-device.h"
#include "qb-gguf.h"
#include "qb-imatrix.h"
#include "qb-job.h"
#include "qb-llama.h"
#include "qb-store.h"
#include "qb-test-model.h"
#include "qb-test-util.h"
#include "qb-tokenizer.h"

#define N_CTX    32
#define N_CHUNKS 6

/* ---- a small model and random tokens ------------------------------------- */

typedef struct {
  char          *dir;
  char          *cache;
  QbModel       *model;
  QbLlama       *llama;
  QbCalibration *calib;
} Fixture;

static gint32 *
random_tokens (gsize n, guint n_vocab, guint32 seed)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (seed);
  gint32 *t = g_new (gint32, n);

  for (gsize i = 0; i < n; i++)
    t[i] = g_rand_int_range (r, 0, n_vocab);
  return t;
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  QbTestLlama spec = { .n_layer = 2, .n_embd = 64, .n_ff = 96, .n_vocab = 200,
                       .n_head = 4, .n_head_kv = 2, .dtype = QB_DTYPE_F32, .seed = 3 };
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree gint32 *tokens = random_tokens (N_CTX * 10, 200, 5);
  QbCalibrationOptions co;

  f->dir = qb_test_tmpdir ();
  f->cache = g_build_filename (f->dir, "cache", NULL);
  path = qb_test_write_llama (f->dir, "model.gguf", &spec);
  f->model = qb_model_open (path, &error);
  g_assert_no_error (error);
  f->llama = qb_llama_new (f->model, &error);
  g_assert_no_error (error);
  qb_llama_set_threads (f->llama, 2);
  qb_calibration_options_init (&co);
  co.n_ctx = N_CTX;
  co.n_chunks = N_CHUNKS;
  co.skip_chunks = 1;
  f->calib = qb_calibration_new_from_tokens (tokens, N_CTX * 10, 1, &co, &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  qb_calibration_unref (f->calib);
  qb_llama_free (f->llama);
  g_clear_object (&f->model);
  g_free (f->cache);
  g_free (f->dir);
}

static QbActivationStats *
compute (Fixture *f, const QbStatsOptions *opts)
{
  g_autoptr(GError) error = NULL;
  QbActivationStats *s = qb_activation_stats_compute (f->llama, f->calib, opts, NULL, NULL, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (s);
  return s;
}

/* ---- calibration sets ---------------------------------------------------- */

static void
test_chunks (void)
{
  g_autofree gint32 *tokens = random_tokens (1000, 300, 9);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbCalibration) seq = NULL, rnd = NULL, rnd2 = NULL, other = NULL;
  QbCalibrationOptions co;
  gint32 chunk[50];

  qb_calibration_options_init (&co);
  co.n_ctx = 50;
  co.n_chunks = 5;
  co.skip_chunks = 3;
  seq = qb_calibration_new_from_tokens (tokens, 1000, 1, &co, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (qb_calibration_get_n_chunks (seq), ==, 5);
  for (guint i = 0; i < 5; i++)
    {
      g_assert_cmpuint (qb_calibration_get_chunk_index (seq, i), ==, 3 + i);
      qb_calibration_get_chunk (seq, i, chunk);
      g_assert_cmpint (chunk[0], ==, 1);     /* BOS first */
      g_assert_cmpmem (chunk + 1, 49 * 4, tokens + (3 + i) * 50 + 1, 49 * 4);
    }

  /* Random: in range, distinct, sorted, reproducible, seed-dependent. */
  co.random = TRUE;
  co.seed = 42;
  co.n_chunks = 8;
  rnd = qb_calibration_new_from_tokens (tokens, 1000, 1, &co, &error);
  rnd2 = qb_calibration_new_from_tokens (tokens, 1000, 1, &co, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 8; i++)
    {
      guint c = qb_calibration_get_chunk_index (rnd, i);
      g_assert_cmpuint (c, >=, 3);
      g_assert_cmpuint (c, <, 20);
      if (i > 0)
        g_assert_cmpuint (c, >, qb_calibration_get_chunk_index (rnd, i - 1));
      g_assert_cmpuint (c, ==, qb_calibration_get_chunk_index (rnd2, i));
    }
  g_assert_cmpstr (qb_calibration_get_hash (rnd), ==, qb_calibration_get_hash (rnd2));
  g_assert_cmpstr (qb_calibration_get_hash (rnd), !=, qb_calibration_get_hash (seq));
  co.seed = 43;
  other = qb_calibration_new_from_tokens (tokens, 1000, 1, &co, &error);
  g_assert_cmpstr (qb_calibration_get_hash (rnd), !=, qb_calibration_get_hash (other));

  /* Fewer chunks than asked for when the text is short; none is an error. */
  g_clear_pointer (&other, qb_calibration_unref);
  co.random = FALSE;
  co.n_chunks = 100;
  other = qb_calibration_new_from_tokens (tokens, 1000, 1, &co, &error);
  g_assert_cmpuint (qb_calibration_get_n_chunks (other), ==, 17);
  g_clear_pointer (&other, qb_calibration_unref);
  co.skip_chunks = 20;
  other = qb_calibration_new_from_tokens (tokens, 1000, 1, &co, &error);
  g_assert_error (error, QB_CALIBRATION_ERROR, QB_CALIBRATION_ERROR_TEXT);
  g_assert_null (other);
  g_clear_error (&error);
  co.skip_chunks = 0;
  co.n_ctx = 8;
  g_assert_null (qb_calibration_new_from_tokens (tokens, 1000, 1, &co, &error));
  g_assert_error (error, QB_CALIBRATION_ERROR, QB_CALIBRATION_ERROR_INVALID);
}

/* Texts through the model's tokenizer (the built-in demo model's), the
 * token cache, and a damaged cache file ignored. */
static void
test_text_and_cache (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *model_path = g_build_filename (dir, "demo.gguf", NULL);
  g_autofree char *text_a = g_build_filename (dir, "a.txt", NULL);
  g_autofree char *text_b = g_build_filename (dir, "b.txt", NULL);
  g_autofree char *cache = g_build_filename (dir, "cache", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  g_autoptr(QbCalibration) c1 = NULL, c2 = NULL, c3 = NULL, c4 = NULL;
  g_autoptr(GString) text = g_string_new (NULL);
  const char *paths[] = { text_a, text_b, NULL };
  g_autofree gint32 *t1 = NULL, *t2 = NULL;
  g_autofree char *tokens_file = NULL;
  QbDemoModelSpec spec;
  QbCalibrationOptions co;
  guint n;

  qb_demo_model_spec_init (&spec);
  g_assert_true (qb_demo_model_write (&spec, model_path, NULL, NULL, &error));
  g_assert_no_error (error);
  model = qb_model_open (model_path, &error);
  g_assert_no_error (error);
  tok = qb_tokenizer_new_for_model (model, &error);
  g_assert_no_error (error);
  for (int i = 0; i < 60; i++)
    g_string_append_printf (text, "Once upon a time, %d little cats ran to the park and played.\n", i);
  g_assert_true (g_file_set_contents (text_a, text->str, -1, NULL));
  g_assert_true (g_file_set_contents (text_b, "The end. The dog slept by the fire.\n", -1, NULL));

  qb_calibration_options_init (&co);
  co.n_ctx = 64;
  co.n_chunks = 4;
  co.cache_dir = cache;
  c1 = qb_calibration_new (model, tok, paths, &co, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (qb_calibration_get_from_cache (c1));
  g_assert_cmpstr (qb_calibration_get_name (c1), ==, "a.txt + 1 more");
  g_assert_cmpuint (g_strv_length ((char **) qb_calibration_get_sources (c1)), ==, 2);
  n = qb_calibration_get_n_chunks (c1);
  g_assert_cmpuint (n, ==, 4);
  g_assert_cmpuint (qb_calibration_get_n_text_tokens (c1), >=, 4 * 64);

  c2 = qb_calibration_new (model, tok, paths, &co, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (qb_calibration_get_from_cache (c2));
  g_assert_cmpstr (qb_calibration_get_hash (c1), ==, qb_calibration_get_hash (c2));
  g_assert_cmpuint (qb_calibration_get_n_text_tokens (c1), ==, qb_calibration_get_n_text_tokens (c2));
  t1 = g_new (gint32, 64);
  t2 = g_new (gint32, 64);
  for (guint i = 0; i < n; i++)
    {
      qb_calibration_get_chunk (c1, i, t1);
      qb_calibration_get_chunk (c2, i, t2);
      g_assert_cmpmem (t1, 64 * 4, t2, 64 * 4);
    }

  /* A damaged cache file is not believed. */
  tokens_file = g_strdup_printf ("%s/tokens/%s.tokens", cache, qb_calibration_get_hash (c1));
  {
    g_autoptr(GBytes) b = qb_test_read_file (tokens_file);
    g_autofree guint8 *d = g_memdup2 (g_bytes_get_data (b, NULL), g_bytes_get_size (b));
    d[g_bytes_get_size (b) - 3] ^= 0x40;
    g_assert_true (g_file_set_contents (tokens_file, (char *) d, g_bytes_get_size (b), NULL));
  }
  c3 = qb_calibration_new (model, tok, paths, &co, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (qb_calibration_get_from_cache (c3));
  qb_calibration_get_chunk (c3, n - 1, t2);
  qb_calibration_get_chunk (c1, n - 1, t1);
  g_assert_cmpmem (t1, 64 * 4, t2, 64 * 4);

  /* Another text: another identity. */
  g_assert_true (g_file_set_contents (text_b, "The end. The cat slept by the fire.\n", -1, NULL));
  c4 = qb_calibration_new (model, tok, paths, &co, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (qb_calibration_get_hash (c1), !=, qb_calibration_get_hash (c4));
  g_assert_false (qb_calibration_get_from_cache (c4));
}

/* The store keeps the set's record and finds it again by its hash. */
static void
test_store_record (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *db = g_build_filename (dir, "experiments.db", NULL);
  g_autofree gint32 *tokens = random_tokens (2000, 100, 4);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbCalibration) c = NULL;
  g_autoptr(QbCalibrationSet) rec = NULL, back = NULL;
  g_autoptr(QbStore) store = NULL;
  QbCalibrationOptions co;
  gint64 id = 0, id2 = 0;

  qb_calibration_options_init (&co);
  co.n_ctx = 100;
  co.n_chunks = 7;
  co.random = TRUE;
  co.seed = 99;
  c = qb_calibration_new_from_tokens (tokens, 2000, 1, &co, &error);
  g_assert_no_error (error);
  rec = qb_calibration_to_record (c);
  store = qb_store_open (db, &error);
  g_assert_no_error (error);
  g_assert_true (qb_store_add_calibration_set (store, rec, &id, &error));
  g_assert_true (qb_store_add_calibration_set (store, rec, &id2, &error));
  g_assert_cmpint (id, >, 0);
  g_assert_cmpint (id, ==, id2);
  back = qb_store_get_calibration_set (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (back->hash, ==, qb_calibration_get_hash (c));
  g_assert_cmpstr (back->name, ==, "tokens");
  g_assert_cmpuint (back->n_tokens, ==, 2000);
  g_assert_cmpuint (back->chunk_len, ==, 100);
  g_assert_cmpuint (back->n_chunks, ==, 7);
  g_assert_true (back->seeded);
  g_assert_cmpuint (back->seed, ==, 99);
}

/* A stored set is rebuilt from its record, with or without skipped
 * chunks: the same hash, tokens from the cache.  One whose text changed
 * since is reported as changed, before tokenizing. */
static void
test_rebuild_from_record (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *model_path = g_build_filename (dir, "demo.gguf", NULL);
  g_autofree char *text = g_build_filename (dir, "a.txt", NULL);
  g_autofree char *cache = g_build_filename (dir, "cache", NULL);
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  g_autoptr(GString) body = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  const char *paths[] = { text, NULL };
  QbDemoModelSpec spec;

  qb_demo_model_spec_init (&spec);
  g_assert_true (qb_demo_model_write (&spec, model_path, NULL, NULL, &error));
  model = qb_model_open (model_path, &error);
  g_assert_no_error (error);
  tok = qb_tokenizer_new_for_model (model, &error);
  g_assert_no_error (error);
  for (int i = 0; i < 80; i++)
    g_string_append_printf (body, "The %d birds sang in the old oak tree by the river.\n", i);
  g_assert_true (g_file_set_contents (text, body->str, -1, NULL));

  for (guint skip = 0; skip < 2; skip++)
    {
      g_autoptr(QbCalibration) made = NULL, again = NULL;
      g_autoptr(QbCalibrationSet) record = NULL;
      QbCalibrationOptions co, from;

      qb_calibration_options_init (&co);
      co.n_ctx = 32;
      co.n_chunks = 5;
      co.skip_chunks = skip;
      co.random = TRUE;
      co.seed = 11;
      co.cache_dir = cache;
      made = qb_calibration_new (model, tok, paths, &co, NULL, &error);
      g_assert_no_error (error);
      record = qb_calibration_to_record (made);

      qb_calibration_options_for_record (&from, record);
      from.cache_dir = cache;
      again = qb_calibration_new (model, tok, (const char * const *) record->sources, &from, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (record->skip_chunks, ==, skip);
      g_assert_cmpuint (qb_calibration_get_skip_chunks (again), ==, skip);
      g_assert_cmpstr (qb_calibration_get_hash (again), ==, record->hash);
      g_assert_true (qb_calibration_get_from_cache (again));
    }

  /* The text changed since. */
  {
    g_autoptr(QbCalibration) made = NULL, again = NULL;
    g_autoptr(QbCalibrationSet) record = NULL;
    QbCalibrationOptions co, from;

    qb_calibration_options_init (&co);
    co.n_ctx = 32;
    co.n_chunks = 5;
    co.cache_dir = cache;
    made = qb_calibration_new (model, tok, paths, &co, NULL, &error);
    g_assert_no_error (error);
    record = qb_calibration_to_record (made);
    g_string_append (body, "One more line.\n");
    g_assert_true (g_file_set_contents (text, body->str, -1, NULL));
    qb_calibration_options_for_record (&from, record);
    from.cache_dir = cache;
    again = qb_calibration_new (model, tok, paths, &from, NULL, &error);
    g_assert_error (error, QB_CALIBRATION_ERROR, QB_CALIBRATION_ERROR_CHANGED);
    g_assert_nonnull (strstr (error->message, "a.txt"));
  }
}

/* ---- statistics against direct computations -------------------------------- */

typedef struct {
  QbModel    *model;
  GHashTable *sums;    /* name -> double[n + 1]: Σ x² per column, then rows */
  GHashTable *grams;   /* name -> double[n·n] */
} Direct;

static void
direct_hook (const char *name, guint index, const float *x, gint64 rows, gint64 n, gpointer data)
{
  Direct *d = data;
  double *s = g_hash_table_lookup (d->sums, name), *g = g_hash_table_lookup (d->grams, name);

  if (s == NULL)
    {
      s = g_new0 (double, n + 1);
      g = g_new0 (double, n * n);
      g_hash_table_insert (d->sums, g_strdup (name), s);
      g_hash_table_insert (d->grams, g_strdup (name), g);
    }
  for (gint64 r = 0; r < rows; r++)
    for (gint64 i = 0; i < n; i++)
      {
        s[i] += (double) x[r * n + i] * x[r * n + i];
        for (gint64 j = 0; j < n; j++)
          g[i * n + j] += (double) x[r * n + i] * x[r * n + j];
      }
  s[n] += rows;
}

static void
assert_close (double a, double b, double tol)
{
  g_assert_cmpfloat (fabs (a - b), <=, tol * MAX (fabs (a), fabs (b)) + 1e-30);
}

/* Every linear layer's inputs captured naïvely (one forward per chunk,
 * the same chunks, all positions through the output matrix) against the
 * statistics: importance, row counts, and XᵀX of every input. */
static void
test_against_hook (Fixture *f, gconstpointer data)
{
  QbStatsOptions so;
  g_autoptr(QbImatrix) im = NULL, im_out = NULL;
  g_autoptr(GError) error = NULL;
  Direct d = { f->model, g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free),
               g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free) };
  g_autofree float *logits = g_new (float, N_CTX * 200);
  gint32 tokens[N_CTX];
  QbActivationStats *s;
  GHashTableIter iter;
  gpointer key, value;
  const char *device = g_getenv ("QB_DEVICE");

  /* The statistics against the hook on the same (CPU) pass, to 1e-10:
   * test-calibration-device compares the device's with the CPU's. */
  g_assert_true (qb_device_set_default ("cpu", NULL));
  qb_stats_options_init (&so);
  so.gram_all = TRUE;
  so.no_cache = TRUE;
  s = compute (f, &so);
  g_assert_cmpuint (qb_activation_stats_get_n_forward (s), ==, N_CHUNKS);

  qb_llama_set_activation_func (f->llama, direct_hook, &d);
  for (guint k = 0; k < N_CHUNKS; k++)
    {
      qb_calibration_get_chunk (f->calib, k, tokens);
      g_assert_true (qb_llama_forward (f->llama, tokens, N_CTX, 0, logits, NULL, NULL, NULL, &error));
    }
  qb_llama_set_activation_func (f->llama, NULL, NULL);

  im = qb_activation_stats_get_imatrix (s, FALSE);
  im_out = qb_activation_stats_get_imatrix (s, TRUE);
  /* 2 layers × 7 weights; with the output matrix one more. */
  g_assert_cmpuint (qb_imatrix_get_n_entries (im), ==, 14);
  g_assert_cmpuint (qb_imatrix_get_n_entries (im_out), ==, 15);
  g_assert_cmpuint (g_hash_table_size (d.sums), ==, 15);
  g_hash_table_iter_init (&iter, d.sums);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      const char *name = key;
      const double *sums = value, *direct_gram = g_hash_table_lookup (d.grams, name);
      const QbTensor *t = qb_model_find_tensor (f->model, name, NULL);
      gint64 n = t->ne[0];
      guint n_imp = 0;
      const float *imp = qb_imatrix_get (im_out, name, &n_imp);
      guint64 rows = 0;
      const double *gram = qb_activation_stats_get_gram (s, name, &rows);

      g_assert_nonnull (imp);
      g_assert_cmpuint (n_imp, ==, n);
      /* Q, K and V share one input and count it once per token. */
      g_assert_cmpuint (qb_imatrix_get_samples (im_out, name), ==, (guint64) sums[n]);
      g_assert_cmpuint (rows, ==, (guint64) sums[n]);
      g_assert_cmpuint (rows, ==, N_CHUNKS * N_CTX);
      for (gint64 i = 0; i < n; i++)
        assert_close (imp[i], sums[i] / sums[n], 1e-6);
      g_assert_nonnull (gram);
      for (gint64 i = 0; i < n * n; i++)
        assert_close (gram[i], direct_gram[i], 1e-10);
    }
  /* Entries sharing an input are equal. */
  g_assert_cmpmem (qb_imatrix_get (im, "blk.1.attn_q.weight", NULL), 64 * 4,
                   qb_imatrix_get (im, "blk.1.attn_v.weight", NULL), 64 * 4);
  g_assert_null (qb_imatrix_get (im, "output.weight", NULL));
  g_assert_cmpuint (qb_imatrix_get_n_chunks (im), ==, N_CHUNKS);
  g_assert_cmpuint (qb_imatrix_get_chunk_size (im), ==, N_CTX);

  qb_activation_stats_free (s);
  g_hash_table_unref (d.sums);
  g_hash_table_unref (d.grams);
  g_assert_true (qb_device_set_default (device ? device : "cpu", NULL));
}

/* The first layer's input straight from the weights, without the forward
 * pass: RMS-normalized embedding rows times attn_norm. */
static void
test_first_layer (Fixture *f, gconstpointer data)
{
  QbStatsOptions so;
  g_autoptr(GError) error = NULL;
  const char *want[] = { "blk.0.attn_k.weight", NULL };
  guint embd, norm;
  float w[64], x[64];
  gint32 tokens[N_CTX];
  g_autofree double *gram = g_new0 (double, 64 * 64);
  const double *got;
  guint64 rows;
  QbActivationStats *s;

  g_assert_nonnull (qb_model_find_tensor (f->model, "token_embd.weight", &embd));
  g_assert_nonnull (qb_model_find_tensor (f->model, "blk.0.attn_norm.weight", &norm));
  g_assert_true (qb_model_read_rows (f->model, norm, 0, 1, w, &error));
  for (guint k = 0; k < N_CHUNKS; k++)
    {
      qb_calibration_get_chunk (f->calib, k, tokens);
      for (guint t = 0; t < N_CTX; t++)
        {
          double sum = 0;
          float scale;

          g_assert_true (qb_model_read_rows (f->model, embd, tokens[t], 1, x, &error));
          for (int i = 0; i < 64; i++)
            sum += (double) (x[i] * x[i]);
          scale = 1.0f / sqrtf ((float) (sum / 64 + 1e-5f));
          for (int i = 0; i < 64; i++)
            x[i] = (x[i] * scale) * w[i];
          for (int i = 0; i < 64; i++)
            for (int j = 0; j < 64; j++)
              gram[i * 64 + j] += (double) x[i] * x[j];
        }
    }

  qb_stats_options_init (&so);
  so.gram_tensors = want;
  so.cache_dir = f->cache;
  s = compute (f, &so);
  got = qb_activation_stats_get_gram (s, "blk.0.attn_q.weight", &rows);   /* same input as K */
  g_assert_nonnull (got);
  g_assert_cmpuint (rows, ==, N_CHUNKS * N_CTX);
  for (int i = 0; i < 64 * 64; i++)
    assert_close (got[i], gram[i], 1e-6);
  /* Not asked for: none. */
  g_assert_null (qb_activation_stats_get_gram (s, "blk.0.ffn_down.weight", &rows));
  g_assert_null (qb_activation_stats_get_gram (s, "token_embd.weight", &rows));
  qb_activation_stats_free (s);
}

/* ---- cache, passes, cancel ------------------------------------------------ */

static double *
copy_gram (QbActivationStats *s, const char *name, gint64 n)
{
  guint64 rows;
  const double *g = qb_activation_stats_get_gram (s, name, &rows);

  g_assert_nonnull (g);
  return g_memdup2 (g, sizeof (double) * n * n);
}

/* Files under dir (recursively). */
static guint
count_files (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint n = 0;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      n += g_file_test (path, G_FILE_TEST_IS_DIR) ? count_files (path) : 1;
    }
  return n;
}

/* A second computation reads the cache: no forward pass; asking for one
 * more XᵀX computes only that; a damaged file is computed again. */
static void
test_cache (Fixture *f, gconstpointer data)
{
  const char *first[] = { "blk.1.attn_q.weight", NULL };
  const char *more[] = { "blk.1.attn_q.weight", "blk.0.ffn_down.weight", NULL };
  QbStatsOptions so;
  QbActivationStats *s;
  g_autofree double *g1 = NULL, *g2 = NULL;
  g_autoptr(QbImatrix) im1 = NULL, im2 = NULL;
  g_autofree char *gram_file = NULL;

  qb_stats_options_init (&so);
  so.gram_tensors = first;
  so.cache_dir = f->cache;
  s = compute (f, &so);
  g_assert_cmpuint (qb_activation_stats_get_n_forward (s), ==, N_CHUNKS);
  g1 = copy_gram (s, "blk.1.attn_k.weight", 64);
  im1 = qb_activation_stats_get_imatrix (s, TRUE);
  gram_file = g_build_filename (qb_activation_stats_get_cache_dir (s), "gram-blk.1.attn_in.bin", NULL);
  g_assert_true (g_file_test (gram_file, G_FILE_TEST_IS_REGULAR));
  qb_activation_stats_free (s);

  s = compute (f, &so);
  g_assert_cmpuint (qb_activation_stats_get_n_forward (s), ==, 0);
  g2 = copy_gram (s, "blk.1.attn_v.weight", 64);
  g_assert_cmpmem (g1, 64 * 64 * 8, g2, 64 * 64 * 8);
  im2 = qb_activation_stats_get_imatrix (s, TRUE);
  g_assert_cmpuint (qb_imatrix_get_n_entries (im2), ==, qb_imatrix_get_n_entries (im1));
  g_assert_cmpmem (qb_imatrix_get (im1, "blk.0.ffn_down.weight", NULL), 96 * 4,
                   qb_imatrix_get (im2, "blk.0.ffn_down.weight", NULL), 96 * 4);
  qb_activation_stats_free (s);

  so.gram_tensors = more;
  s = compute (f, &so);
  g_assert_cmpuint (qb_activation_stats_get_n_forward (s), ==, N_CHUNKS);
  g_assert_cmpuint (qb_activation_stats_get_n_passes (s), ==, 1);
  g_free (g2);
  g2 = copy_gram (s, "blk.1.attn_q.weight", 64);
  g_assert_cmpmem (g1, 64 * 64 * 8, g2, 64 * 64 * 8);
  qb_activation_stats_free (s);
  s = compute (f, &so);
  g_assert_cmpuint (qb_activation_stats_get_n_forward (s), ==, 0);
  qb_activation_stats_free (s);

  /* Damage one byte of the XᵀX file: recomputed, same values. */
  {
    g_autoptr(GBytes) b = qb_test_read_file (gram_file);
    g_autofree guint8 *d = g_memdup2 (g_bytes_get_data (b, NULL), g_bytes_get_size (b));
    d[g_bytes_get_size (b) / 2] ^= 1;
    g_assert_true (g_file_set_contents (gram_file, (char *) d, g_bytes_get_size (b), NULL));
  }
  s = compute (f, &so);
  g_assert_cmpuint (qb_activation_stats_get_n_forward (s), ==, N_CHUNKS);
  g_free (g2);
  g2 = copy_gram (s, "blk.1.attn_q.weight", 64);
  g_assert_cmpmem (g1, 64 * 64 * 8, g2, 64 * 64 * 8);
  qb_activation_stats_free (s);
}

static void
count_layers (const QbStatsProgress *p, gpointer data)
{
  ((guint *) data)[p->pass]++;
}

/* XᵀX in bounded memory: one input per pass gives the same bytes as all at
 * once, and a pass runs only the layers it needs. */
static void
test_passes (Fixture *f, gconstpointer data)
{
  guint layers[16] = { 0 };
  g_autoptr(GError) error = NULL;
  static const char *names[] = { "blk.0.attn_q.weight", "blk.0.attn_output.weight",
                                 "blk.0.ffn_up.weight", "blk.0.ffn_down.weight",
                                 "blk.1.attn_k.weight", "blk.1.ffn_down.weight", "output.weight",
                                 NULL };
  QbStatsOptions so;
  QbActivationStats *one, *many;
  const char *device = g_getenv ("QB_DEVICE");

  /* The CPU pass's progress (one unit per layer; the device pass reports
   * half layers): test-calib-device runs the passes on the device. */
  g_assert_true (qb_device_set_default ("cpu", NULL));
  qb_stats_options_init (&so);
  so.gram_all = TRUE;
  so.no_cache = TRUE;
  one = compute (f, &so);
  g_assert_cmpuint (qb_activation_stats_get_n_passes (one), ==, 1);

  so.no_cache = FALSE;
  so.cache_dir = f->cache;
  so.max_gram_bytes = 64 * 64 * 8;
  many = qb_activation_stats_compute (f->llama, f->calib, &so, count_layers, layers, NULL, &error);
  g_assert_no_error (error);
  /* Progress comes once per layer (the output matrix counts as one): the
   * first pass also sums squares everywhere, the second wants layer 0's
   * attn_output input only, the last the output matrix's. */
  g_assert_cmpuint (layers[0], ==, 3 * N_CHUNKS);
  g_assert_cmpuint (layers[1], ==, 1 * N_CHUNKS);
  g_assert_cmpuint (layers[5], ==, 2 * N_CHUNKS);
  g_assert_cmpuint (layers[8], ==, 3 * N_CHUNKS);
  /* 4 inputs per layer and the output's: 9 passes. */
  g_assert_cmpuint (qb_activation_stats_get_n_passes (many), ==, 9);
  g_assert_cmpuint (qb_activation_stats_get_n_forward (many), ==, 9 * N_CHUNKS);
  g_assert_cmpuint (qb_activation_stats_gram_bytes (f->model, names, NULL, NULL), ==,
                    (4 * 64 * 64 + 2 * 96 * 96 + 64 * 64) * 8);
  for (gsize i = 0; names[i] != NULL; i++)
    {
      gint64 n = qb_model_find_tensor (f->model, names[i], NULL)->ne[0];
      g_autofree double *a = copy_gram (one, names[i], n);
      g_autofree double *b = copy_gram (many, names[i], n);
      g_assert_cmpmem (a, n * n * 8, b, n * n * 8);
    }
  qb_activation_stats_free (one);
  qb_activation_stats_free (many);  g_assert_true (qb_device_set_default (device ? device : "cpu", NULL));
}

typedef struct {
  GCancellable *cancellable;
  guint         at_pass;
  double        at;
} Canceller;

static void
cancel_at (const QbStatsProgress *p, gpointer data)
{
  Canceller *c = data;

  if (p->pass >= c->at_pass && p->fraction >= c->at)
    g_cancellable_cancel (c->cancellable);
}

/* Cancelled midway: nothing half-written.  Passes that finished keep their
 * files, and the next run computes only the rest. */
static void
test_cancel (Fixture *f, gconstpointer data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *stats_dir = g_build_filename (f->cache, "stats", NULL);
  Canceller c = { cancellable, 0, 0.4 };
  QbStatsOptions so;
  QbActivationStats *s;

  qb_stats_options_init (&so);
  so.gram_all = TRUE;
  so.cache_dir = f->cache;
  s = qb_activation_stats_compute (f->llama, f->calib, &so, cancel_at, &c, cancellable, &error);
  g_assert_null (s);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (count_files (stats_dir), ==, 0);

  /* At most 100 000 bytes of XᵀX at once: five passes (layer 0's three
   * 64-column inputs, its 96-column one, layer 1's three, its 96-column one
   * with nothing else, the output's), cancelled in the third. */
  g_clear_error (&error);
  g_cancellable_reset (cancellable);
  so.max_gram_bytes = 100000;
  c.at_pass = 2;
  c.at = 0;
  s = qb_activation_stats_compute (f->llama, f->calib, &so, cancel_at, &c, cancellable, &error);
  g_assert_null (s);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* imatrix.gguf and the XᵀX of the first two passes' four inputs. */
  g_assert_cmpuint (count_files (stats_dir), ==, 5);

  s = compute (f, &so);
  g_assert_cmpuint (qb_activation_stats_get_n_passes (s), ==, 3);
  g_assert_cmpuint (qb_activation_stats_get_n_forward (s), ==, 3 * N_CHUNKS);
  qb_activation_stats_free (s);
  s = compute (f, &so);
  g_assert_cmpuint (qb_activation_stats_get_n_forward (s), ==, 0);
  qb_activation_stats_free (s);
}

/* ---- llama.cpp's layouts ------------------------------------------------------ */

static gint32
le32 (const guint8 *p)
{
  guint32 v;
  memcpy (&v, p, 4);
  return (gint32) GUINT32_FROM_LE (v);
}

static float
lef32 (const guint8 *p)
{
  guint32 v = (guint32) le32 (p);
  float f;
  memcpy (&f, &v, 4);
  return f;
}

/* The statistics exported as .dat, read back byte by byte as llama-quantize
 * does (value / ncall), and as GGUF, read with the GGUF reader. */
static void
test_export_layouts (Fixture *f, gconstpointer data)
{
  g_autofree char *dat = g_build_filename (f->dir, "im.dat", NULL);
  g_autofree char *gguf_path = g_build_filename (f->dir, "im.gguf", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbImatrix) im = NULL, back = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(QbGguf) gguf = NULL;
  QbStatsOptions so;
  QbActivationStats *s;
  const guint8 *p;
  gsize size, pos = 4;
  gint32 n_entries;
  guint64 v;

  qb_stats_options_init (&so);
  so.no_cache = TRUE;
  s = compute (f, &so);
  im = qb_activation_stats_get_imatrix (s, FALSE);
  qb_activation_stats_free (s);
  g_assert_true (qb_imatrix_save_dat (im, dat, &error));
  g_assert_no_error (error);

  bytes = qb_test_read_file (dat);
  p = g_bytes_get_data (bytes, &size);
  n_entries = le32 (p);
  g_assert_cmpint (n_entries, ==, 14);
  for (gint32 e = 0; e < n_entries; e++)
    {
      gint32 len = le32 (p + pos), ncall, nval;
      g_autofree char *name = g_strndup ((const char *) p + pos + 4, len);
      const float *imp;
      guint n;

      pos += 4 + len;
      ncall = le32 (p + pos);
      nval = le32 (p + pos + 4);
      pos += 8;
      imp = qb_imatrix_get (im, name, &n);
      g_assert_nonnull (imp);
      g_assert_cmpint (nval, ==, (gint32) n);
      g_assert_cmpint (ncall, >, 0);
      for (gint32 j = 0; j < nval; j++)
        assert_close (lef32 (p + pos + 4 * j) / ncall, imp[j], 1e-6);
      pos += 4 * (gsize) nval;
    }
  /* Trailer: chunks, then the dataset's name. */
  g_assert_cmpint (le32 (p + pos), ==, N_CHUNKS);
  g_assert_cmpint (le32 (p + pos + 4), ==, (gint32) strlen ("tokens"));
  g_assert_cmpmem (p + pos + 8, 6, "tokens", 6);
  g_assert_cmpuint (pos + 14, ==, size);
  back = qb_imatrix_load (dat, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (qb_imatrix_get_n_entries (back), ==, 14);
  g_clear_pointer (&back, qb_imatrix_unref);

  /* GGUF: NAME.in_sum2 [n, 1] and NAME.counts [1, 1], F32, and the metadata. */
  g_assert_true (qb_imatrix_save_gguf (im, gguf_path, &error));
  gguf = qb_gguf_open (gguf_path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (qb_gguf_get_string (gguf, "general.type"), ==, "imatrix");
  g_assert_true (qb_gguf_get_uint (gguf, "imatrix.chunk_count", &v));
  g_assert_cmpuint (v, ==, N_CHUNKS);
  g_assert_true (qb_gguf_get_uint (gguf, "imatrix.chunk_size", &v));
  g_assert_cmpuint (v, ==, N_CTX);
  g_assert_cmpuint (qb_gguf_get_n_tensors (gguf), ==, 28);
  for (guint64 i = 0; i < qb_gguf_get_n_tensors (gguf); i++)
    {
      const QbGgufTensorInfo *t = qb_gguf_get_tensor (gguf, i);
      g_autofree char *name = g_strndup (t->name.str, t->name.len);
      const float *values = t->data;

      g_assert_cmpint (t->dtype, ==, QB_DTYPE_F32);
      if (g_str_has_suffix (name, ".counts"))
        {
          g_assert_cmpint (t->ne[0], ==, 1);
          g_assert_cmpint (t->ne[1], ==, 1);
          g_assert_cmpfloat (values[0], ==, N_CHUNKS * N_CTX);
        }
      else
        {
          g_autofree char *base = g_strndup (name, strlen (name) - strlen (".in_sum2"));
          guint n;
          const float *imp = qb_imatrix_get (im, base, &n);

          g_assert_true (g_str_has_suffix (name, ".in_sum2"));
          g_assert_nonnull (imp);
          g_assert_cmpint (t->ne[0], ==, n);
          g_assert_cmpint (t->ne[1], ==, 1);
          for (guint j = 0; j < n; j++)
            assert_close (values[j] / (N_CHUNKS * N_CTX), imp[j], 1e-6);
        }
    }
  back = qb_imatrix_load (gguf_path, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < qb_imatrix_get_n_entries (im); i++)
    {
      const char *name = qb_imatrix_get_name (im, i);
      guint n = 0, n_back = 0;
      const float *a = qb_imatrix_get (im, name, &n), *b2 = qb_imatrix_get (back, name, &n_back);

      g_assert_cmpuint (n, ==, n_back);
      for (guint j = 0; j < n; j++)
        assert_close (a[j], b2[j], 1e-6);
    }
}

/* A file as llama-imatrix writes it (ncall = chunks, values = mean × ncall). */
static void
test_import_llama_dat (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "llama.dat", NULL);
  g_autoptr(GByteArray) b = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(QbImatrix) im = NULL;
  const char *name = "blk.0.attn_q.weight";
  const float values[4] = { 3.0f, 7.5f, 0.0f, 12.0f };   /* means 1, 2.5, 0, 4 over 3 calls */
  const float *imp;
  guint n;
  gint32 i32;

#define PUT_I32(v) (i32 = GINT32_TO_LE (v), g_byte_array_append (b, (guint8 *) &i32, 4))
  PUT_I32 (1);
  PUT_I32 ((gint32) strlen (name));
  g_byte_array_append (b, (const guint8 *) name, strlen (name));
  PUT_I32 (3);
  PUT_I32 (4);
  g_byte_array_append (b, (const guint8 *) values, sizeof values);
  PUT_I32 (3);
  PUT_I32 (8);
  g_byte_array_append (b, (const guint8 *) "text.txt", 8);
#undef PUT_I32
  g_assert_true (g_file_set_contents (path, (char *) b->data, b->len, NULL));
  im = qb_imatrix_load (path, &error);
  g_assert_no_error (error);
  imp = qb_imatrix_get (im, name, &n);
  g_assert_cmpuint (n, ==, 4);
  g_assert_cmpfloat (imp[0], ==, 1.0f);
  g_assert_cmpfloat (imp[1], ==, 2.5f);
  g_assert_cmpfloat (imp[2], ==, 0.0f);
  g_assert_cmpfloat (imp[3], ==, 4.0f);
  g_assert_cmpstr (qb_imatrix_get_dataset (im), ==, "text.txt");
  g_assert_cmpuint (qb_imatrix_get_n_chunks (im), ==, 3);
}

/* ---- the output error a job measures ------------------------------------------- */

/* ‖(W − Ŵ)X‖² / ‖WX‖² through XᵀX, directly from the kept bytes. */
static double
direct_out_err (QbModel *model, QbJob *job, guint index, const double *gram)
{
  const QbTensor *t = qb_model_get_tensor (model, index);
  gint64 n = t->ne[0], rows = qb_tensor_n_rows (t);
  g_autoptr(GBytes) bytes = qb_job_get_tensor_data (job, index, NULL);
  g_autofree float *w = g_new (float, n * rows);
  g_autofree float *y = g_new (float, n);
  QbQuantParams p;
  guint64 rb;
  double num = 0, den = 0;

  g_assert_true (qb_job_get_dequant_params (job, index, &p));
  g_assert_true (qb_format_row_bytes (p.format, n, &rb));
  g_assert_true (qb_model_read_rows (model, index, 0, rows, w, NULL));
  for (gint64 r = 0; r < rows; r++)
    {
      const float *wr = w + r * n;
      p.format->dequantize_row (&p, (const guint8 *) g_bytes_get_data (bytes, NULL) + r * rb, y, n);
      for (gint64 i = 0; i < n; i++)
        for (gint64 j = 0; j < n; j++)
          {
            num += ((double) wr[i] - y[i]) * gram[i * n + j] * ((double) wr[j] - y[j]);
            den += (double) wr[i] * gram[i * n + j] * wr[j];
          }
    }
  return num / den;
}

static QbJob *
run_job_threads (Fixture *f, QbActivationStats *s, const char *format, const char *rule_method,
                 guint threads)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(GError) error = NULL;
  QbJob *job;

  qb_plan_set_default_format (plan, format);
  g_assert_true (qb_plan_insert_rule (plan, -1, "*.ffn_up.*", QB_RULE_GLOB, format, rule_method, &error));
  job = qb_job_new (f->model, plan);
  qb_job_set_keep_data (job, TRUE);
  qb_job_set_threads (job, threads);
  qb_activation_stats_attach (s, job, FALSE);
  g_assert_true (qb_job_run (job, NULL, &error));
  g_assert_no_error (error);
  return job;
}

static QbJob *
run_job (Fixture *f, QbActivationStats *s, const char *format, const char *rule_method)
{
  return run_job_threads (f, s, format, rule_method, 2);
}

/* With XᵀX the job's out_rel_err is the exact quadratic form; with the
 * importance only, the diagonal estimate; GPTQ lowers it. */
static void
test_job_output_error (Fixture *f, gconstpointer data)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) grams = NULL;
  g_autoptr(QbJob) gptq = NULL, rtn = NULL;
  QbStatsOptions so;
  QbActivationStats *s;
  guint up, q;

  qb_plan_set_default_format (plan, "INT4_G32");
  g_assert_true (qb_plan_insert_rule (plan, -1, "*.ffn_up.*", QB_RULE_GLOB, "INT4_G32", "gptq", &error));
  grams = qb_activation_stats_gram_tensors (plan, f->model, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (grams), ==, 2);   /* ffn_up of each layer */

  qb_stats_options_init (&so);
  so.gram_tensors = (const char * const *) grams;
  so.cache_dir = f->cache;
  s = compute (f, &so);
  gptq = run_job (f, s, "INT4_G32", "gptq");
  rtn = run_job (f, s, "INT4_G32", "rtn");

  g_assert_nonnull (qb_model_find_tensor (f->model, "blk.1.ffn_up.weight", &up));
  g_assert_nonnull (qb_model_find_tensor (f->model, "blk.1.attn_q.weight", &q));
  {
    const QbTensorResult *rg = qb_job_get_result (gptq, up), *rr = qb_job_get_result (rtn, up);
    const QbTensorResult *rq = qb_job_get_result (gptq, q);
    guint64 rows;
    const double *gram = qb_activation_stats_get_gram (s, "blk.1.ffn_up.weight", &rows);

    g_assert_cmpstr (rg->method, ==, "gptq");
    g_assert_false (rg->metrics.out_rel_err_diag);
    g_assert_false (rr->metrics.out_rel_err_diag);
    assert_close (rg->metrics.out_rel_err, direct_out_err (f->model, gptq, up, gram), 1e-6);
    assert_close (rr->metrics.out_rel_err, direct_out_err (f->model, rtn, up, gram), 1e-6);
    g_test_message ("ffn_up output error: rtn %.5f, gptq %.5f", rr->metrics.out_rel_err,
                    rg->metrics.out_rel_err);
    g_assert_cmpfloat (rg->metrics.out_rel_err, <, rr->metrics.out_rel_err);
    /* No XᵀX for attn_q: the importance's diagonal estimate. */
    g_assert_true (rq->metrics.out_rel_err_diag);
    g_assert_true (isfinite (rq->metrics.out_rel_err) && rq->metrics.out_rel_err > 0);
    /* The embedding, which is no layer's input, is rounded without. */
    g_assert_true (isnan (qb_job_get_result (gptq, 0)->metrics.out_rel_err));
  }
  /* GPTQ's bytes and the output error do not depend on the thread count. */
  {
    g_autoptr(QbJob) one = run_job_threads (f, s, "Q4_0", "gptq", 1);
    g_autoptr(QbJob) two = run_job_threads (f, s, "Q4_0", "gptq", 2);
    g_autoptr(GBytes) a = qb_job_get_tensor_data (one, up, NULL);
    g_autoptr(GBytes) b = qb_job_get_tensor_data (two, up, NULL);

    g_assert_true (g_bytes_equal (a, b));
    g_assert_cmpfloat (qb_job_get_result (one, up)->metrics.out_rel_err, ==,
                       qb_job_get_result (two, up)->metrics.out_rel_err);
  }
  qb_activation_stats_free (s);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/calibration/chunks", test_chunks);
  g_test_add_func ("/calibration/text-and-cache", test_text_and_cache);
  g_test_add_func ("/calibration/store-record", test_store_record);
  g_test_add_func ("/calibration/rebuild-from-record", test_rebuild_from_record);
  g_test_add ("/calibration/stats/against-hook", Fixture, NULL, fixture_setup, test_against_hook, fixture_teardown);
  g_test_add ("/calibration/stats/first-layer", Fixture, NULL, fixture_setup, test_first_layer, fixture_teardown);
  g_test_add ("/calibration/stats/cache", Fixture, NULL, fixture_setup, test_cache, fixture_teardown);
  g_test_add ("/calibration/stats/passes", Fixture, NULL, fixture_setup, test_passes, fixture_teardown);
  g_test_add ("/calibration/stats/cancel", Fixture, NULL, fixture_setup, test_cancel, fixture_teardown);
  g_test_add ("/calibration/imatrix/export-layouts", Fixture, NULL, fixture_setup, test_export_layouts, fixture_teardown);
  g_test_add_func ("/calibration/imatrix/import-llama-dat", test_import_llama_dat);
  g_test_add ("/calibration/job/output-error", Fixture, NULL, fixture_setup, test_job_output_error, fixture_teardown);
  return g_test_run ();
}
