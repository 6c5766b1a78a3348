/* SPDX-License-Identifier: MIT */
/* qb-test-store.c — records for the experiment store's tests. */
#include "qb-test-store.h"

#include <math.h>
#include <string.h>

QbModelRecord *
qb_test_model_record (const char *fingerprint, const char *name)
{
  QbModelRecord *m = qb_model_record_new ();

  m->fingerprint = g_strdup (fingerprint);
  m->path = g_strdup_printf ("/models/%s.gguf", name);
  m->file_size = 1048576 + strlen (name);
  m->name = g_strdup (name);
  m->family = g_strdup ("llama");
  m->n_params = 260000;
  m->n_tensors = 48;
  g_free (m->arch_json);
  m->arch_json = g_strdup ("{\"family\":\"llama\",\"n_layer\":5,\"n_embd\":64,\"rms_eps\":1.0000000000000001e-05}");
  return m;
}

QbTensorResult *
qb_test_tensor_result (const char *name, guint seed, gboolean with_data, guint n_channels)
{
  QbTensorResult *r = qb_tensor_result_new ();
  g_autoptr(GRand) rand = g_rand_new_with_seed (seed + 1);
  double rmse = 0.01 + 0.001 * (seed % 17);

  r->tensor_name = g_strdup (name);
  r->format = g_strdup (seed % 5 == 4 ? "Q8_0" : "Q4_K");
  r->requested_format = g_strdup ("Q4_K");
  r->fallback_reason = seed % 5 == 4 ? g_strdup ("rows of 172 values do not fit 256-value blocks") : NULL;
  r->method = g_strdup ("rtn");
  r->n_params = 4096 * (1 + seed % 7);
  r->n_nonfinite = 0;
  r->bytes = r->n_params * (seed % 5 == 4 ? 34 : 18) / 32;
  r->bpw = r->bytes * 8.0 / r->n_params;
  r->seconds = 0.001 * (1 + seed % 11);
  r->metrics.mse = rmse * rmse * 1e-4;
  r->metrics.rmse_rel = rmse;
  r->metrics.sqnr_db = -20 * log10 (rmse);
  r->metrics.cosine = 1 - rmse * rmse / 2;
  r->metrics.max_abs_err = 0.05 + 0.001 * seed;
  r->metrics.wmse = NAN;
  r->metrics.out_rel_err = seed % 3 ? 0.001 * seed : NAN;
  r->metrics.mean = 1e-4 * seed;
  r->metrics.std = 0.02;
  r->metrics.min = -0.1 - 1.0 / (seed + 3);
  r->metrics.max = 0.1 + 1.0 / (seed + 7);
  r->metrics.kurtosis = 0.3;
  r->metrics.outlier_share = 1e-5;
  if (with_data)
    {
      float sample[4096];

      for (guint i = 0; i < G_N_ELEMENTS (sample); i++)
        {
          double u = g_rand_double (rand), v = g_rand_double (rand);
          sample[i] = 0.02 * sqrt (-2 * log (u + 1e-300)) * cos (2 * G_PI * v);
        }
      r->hist_original = qb_histogram_new (QB_HISTOGRAM_BINS, r->metrics.min, r->metrics.max);
      qb_histogram_add (r->hist_original, sample, G_N_ELEMENTS (sample));
      r->hist_quantized = qb_histogram_copy (r->hist_original);
      r->hist_quantized->counts[QB_HISTOGRAM_BINS / 2] += 1000 + seed;
      r->hist_error = qb_histogram_new (QB_HISTOGRAM_BINS, -r->metrics.max_abs_err, r->metrics.max_abs_err);
      for (guint i = 0; i < G_N_ELEMENTS (sample); i++)
        sample[i] *= 0.1;
      qb_histogram_add (r->hist_error, sample, G_N_ELEMENTS (sample));
      r->n_channels = n_channels;
      r->channel_min = n_channels ? g_new (float, n_channels) : NULL;
      r->channel_max = n_channels ? g_new (float, n_channels) : NULL;
      for (guint i = 0; i < n_channels; i++)
        {
          r->channel_min[i] = -0.05f - (float) g_rand_double (rand) / 7;
          r->channel_max[i] = 0.05f + (float) g_rand_double (rand) / 3;
        }
    }
  return r;
}

gint64
qb_test_store_run (QbStore *store, const QbModelRecord *model, const char *name,
                   const char *format, guint n_tensors, QbExperimentStatus status)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *plan = g_strdup_printf ("{\"version\":1,\"default_format\":\"%s\"}", format);
  QbExperimentSpec spec = { .name = name, .plan_json = plan, .threads = 2, .n_tensors = n_tensors };
  gint64 id = qb_store_begin_experiment (store, model, &spec, &error);

  g_assert_no_error (error);
  g_assert_cmpint (id, >, 0);
  for (guint i = 0; i < n_tensors; i++)
    {
      g_autofree char *tname = g_strdup_printf ("blk.%u.attn_q.weight", i);
      g_autoptr(QbTensorResult) r = qb_test_tensor_result (tname, i, FALSE, 0);

      g_free (r->format);
      r->format = g_strdup (format);
      g_free (r->requested_format);
      r->requested_format = g_strdup (format);
      g_clear_pointer (&r->fallback_reason, g_free);
      qb_store_add_tensor_result (store, id, i, r->n_params * 4, r, &error);
      g_assert_no_error (error);
    }
  if (status != QB_EXPERIMENT_RUNNING)
    {
      qb_store_finish_experiment (store, id, status, 1.5, status == QB_EXPERIMENT_FAILED ? "boom" : NULL,
                                  &error);
      g_assert_no_error (error);
    }
  return id;
}

gboolean
qb_test_same_double (double a, double b)
{
  if (isnan (a) || isnan (b))
    return isnan (a) && isnan (b);
  return a == b;
}

static void
assert_same_histogram (const QbHistogram *a, const QbHistogram *b)
{
  if (a == NULL || b == NULL)
    {
      g_assert_true (a == b);
      return;
    }
  g_assert_cmpuint (a->n_bins, ==, b->n_bins);
  g_assert_cmpfloat (a->lo, ==, b->lo);
  g_assert_cmpfloat (a->hi, ==, b->hi);
  g_assert_cmpmem (a->counts, a->n_bins * sizeof (guint64), b->counts, b->n_bins * sizeof (guint64));
}

void
qb_test_assert_same_result (const QbTensorResult *a, const QbTensorResult *b)
{
  const QbTensorMetrics *m = &a->metrics, *n = &b->metrics;

  g_assert_cmpstr (a->tensor_name, ==, b->tensor_name);
  g_assert_cmpstr (a->format, ==, b->format);
  g_assert_cmpstr (a->requested_format, ==, b->requested_format);
  g_assert_cmpstr (a->fallback_reason, ==, b->fallback_reason);
  g_assert_cmpstr (a->method, ==, b->method);
  g_assert_cmpint (a->n_params, ==, b->n_params);
  g_assert_cmpint (a->n_nonfinite, ==, b->n_nonfinite);
  g_assert_cmpuint (a->bytes, ==, b->bytes);
  g_assert_true (qb_test_same_double (a->bpw, b->bpw));
  g_assert_true (qb_test_same_double (a->seconds, b->seconds));
  g_assert_true (qb_test_same_double (m->mse, n->mse));
  g_assert_true (qb_test_same_double (m->rmse_rel, n->rmse_rel));
  g_assert_true (qb_test_same_double (m->sqnr_db, n->sqnr_db));
  g_assert_true (qb_test_same_double (m->cosine, n->cosine));
  g_assert_true (qb_test_same_double (m->max_abs_err, n->max_abs_err));
  g_assert_true (qb_test_same_double (m->wmse, n->wmse));
  g_assert_true (qb_test_same_double (m->out_rel_err, n->out_rel_err));
  g_assert_true (qb_test_same_double (m->mean, n->mean));
  g_assert_true (qb_test_same_double (m->std, n->std));
  g_assert_true (qb_test_same_double (m->min, n->min));
  g_assert_true (qb_test_same_double (m->max, n->max));
  g_assert_true (qb_test_same_double (m->kurtosis, n->kurtosis));
  g_assert_true (qb_test_same_double (m->outlier_share, n->outlier_share));
  assert_same_histogram (a->hist_original, b->hist_original);
  assert_same_histogram (a->hist_quantized, b->hist_quantized);
  assert_same_histogram (a->hist_error, b->hist_error);
  g_assert_cmpuint (a->n_channels, ==, b->n_channels);
  g_assert_cmpmem (a->channel_min, a->n_channels * sizeof (float), b->channel_min, b->n_channels * sizeof (float));
  g_assert_cmpmem (a->channel_max, a->n_channels * sizeof (float), b->channel_max, b->n_channels * sizeof (float));
}

GBytes *
qb_test_file_bytes (const char *path)
{
  g_autoptr(GError) error = NULL;
  char *contents = NULL;
  gsize len = 0;

  g_file_get_contents (path, &contents, &len, &error);
  g_assert_no_error (error);
  return g_bytes_new_take (contents, len);
}

gint64
qb_test_sql_int (sqlite3 *db, const char *sql)
{
  sqlite3_stmt *stmt = NULL;
  gint64 v;

  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  v = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  return v;
}
