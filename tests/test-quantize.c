/* SPDX-License-Identifier: MIT */
/* test-quantize.c — one tensor quantized and measured: metrics against a
 * direct computation, shared histogram edges, thread-count independence. */
#include <math.h>
#include <string.h>

#include "qb-experiment.h"
#include "qb-job.h"
#include "qb-model.h"
#include "qb-tensor-quantizer.h"
#include "qb-test-model.h"
#include "qb-test-util.h"

typedef QbTestModelFixture Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  /* token_embd is 256 x 2048: eight chunks of rows. */
  QbTestLlama spec = { .n_layer = 2, .n_embd = 256, .n_ff = 1024, .n_vocab = 2048,
                       .n_head = 4, .n_head_kv = 4, .dtype = QB_DTYPE_F16, .seed = 11 };
  qb_test_model_fixture_open (f, &spec);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  qb_test_model_fixture_close (f);
}

static guint
tensor_index (QbModel *model, const char *name)
{
  guint index;

  g_assert_nonnull (qb_model_find_tensor (model, name, &index));
  return index;
}

/* Same binning as QbHistogram, in the float arithmetic the engine uses. */
static guint
bin_of (const QbHistogram *h, float v)
{
  float scale = (float) (h->n_bins / (h->hi - h->lo));
  float p = (v - (float) h->lo) * scale;

  p = p > 0.0f ? p : 0.0f;
  p = p < (float) (h->n_bins - 1) ? p : (float) (h->n_bins - 1);
  return (guint) p;
}

static void
assert_close (double got, double want, double rel, const char *what, const char *format)
{
  if (fabs (got - want) > rel * fabs (want) + 1e-30)
    g_error ("%s %s: got %.10g, direct computation %.10g", format, what, got, want);
}

/* Quantizes rows directly with the format's own functions and checks the
 * engine's result against sums in double. */
static void
check_against_direct (QbModel *model, guint index, const QbFormat *format,
                      const float *importance, const QbTensorResult *r, const guint8 *data)
{
  const QbTensor *t = qb_model_get_tensor (model, index);
  gint64 n_cols = t->ne[0], n_rows = qb_tensor_n_rows (t), n = t->n_params;
  g_autofree float *x = g_new (float, n);
  g_autofree float *y = g_new (float, n);
  g_autofree guint8 *q = NULL;
  guint64 row_bytes;
  double sxx = 0, syy = 0, sxy = 0, see = 0, swee = 0, wsum = 0, maxe = 0;
  double mean = 0, m2 = 0, m4 = 0, lo, hi;
  gint64 outliers = 0;
  QbQuantParams params = { 0 };
  float absmax = 0;

  g_assert_true (qb_model_read_rows (model, index, 0, n_rows, x, NULL));
  for (gint64 i = 0; i < n; i++)
    absmax = MAX (absmax, fabsf (x[i]));
  g_assert_true (qb_format_row_bytes (format, n_cols, &row_bytes));
  q = g_malloc (row_bytes * n_rows);
  params.format = format;
  params.importance = importance;
  params.tensor_absmax = absmax;
  for (gint64 r0 = 0; r0 < n_rows; r0++)
    {
      format->quantize_row (&params, x + r0 * n_cols, q + r0 * row_bytes, n_cols);
      format->dequantize_row (&params, q + r0 * row_bytes, y + r0 * n_cols, n_cols);
    }
  /* The engine's bytes are the format's bytes. */
  if (data != NULL)
    g_assert_cmpmem (data, row_bytes * n_rows, q, row_bytes * n_rows);

  for (gint64 i = 0; i < n; i++)
    {
      double e = (double) x[i] - y[i];
      sxx += (double) x[i] * x[i];
      syy += (double) y[i] * y[i];
      sxy += (double) x[i] * y[i];
      see += e * e;
      maxe = MAX (maxe, fabs (e));
      mean += x[i];
      if (importance)
        swee += importance[i % n_cols] * e * e;
    }
  mean /= n;
  for (gint64 i = 0; i < n; i++)
    {
      double d = x[i] - mean;
      m2 += d * d;
      m4 += d * d * d * d;
    }
  lo = mean - 6 * sqrt (m2 / n);
  hi = mean + 6 * sqrt (m2 / n);
  for (gint64 i = 0; i < n; i++)
    outliers += x[i] < (float) lo || x[i] > (float) hi;
  for (gint64 j = 0; importance && j < n_cols; j++)
    wsum += importance[j];

  assert_close (r->metrics.mse, see / n, 1e-5, "mse", format->name);
  if (see > 0)
    {
      assert_close (r->metrics.sqnr_db, 10 * log10 (sxx / see), 1e-5, "sqnr", format->name);
      assert_close (r->metrics.rmse_rel, sqrt (see / sxx), 1e-5, "rmse_rel", format->name);
    }
  else
    g_assert_true (isinf (r->metrics.sqnr_db));
  assert_close (r->metrics.cosine, sxy / sqrt (sxx * syy), 1e-6, "cosine", format->name);
  g_assert_cmpfloat (r->metrics.max_abs_err, ==, (float) maxe);
  if (importance)
    assert_close (r->metrics.wmse, swee / (wsum * n_rows), 1e-5, "wmse", format->name);
  else
    g_assert_true (isnan (r->metrics.wmse));
  assert_close (r->metrics.mean, mean, 1e-6, "mean", format->name);
  assert_close (r->metrics.std, sqrt (m2 / n), 1e-6, "std", format->name);
  assert_close (r->metrics.kurtosis, n * m4 / (m2 * m2) - 3, 1e-5, "kurtosis", format->name);
  assert_close (r->metrics.outlier_share, (double) outliers / n, 1e-12, "outlier share", format->name);

  /* Histograms: shared edges, every value counted, counts as direct binning. */
  g_assert_cmpfloat (r->hist_original->lo, ==, r->hist_quantized->lo);
  g_assert_cmpfloat (r->hist_original->hi, ==, r->hist_quantized->hi);
  g_assert_cmpuint (r->hist_original->n_bins, ==, QB_HISTOGRAM_BINS);
  g_assert_cmpuint (qb_histogram_total (r->hist_original), ==, n);
  g_assert_cmpuint (qb_histogram_total (r->hist_quantized), ==, n);
  g_assert_cmpuint (qb_histogram_total (r->hist_error), ==, n);
  {
    g_autofree guint64 *ho = g_new0 (guint64, QB_HISTOGRAM_BINS);
    g_autofree guint64 *hq = g_new0 (guint64, QB_HISTOGRAM_BINS);
    g_autofree guint64 *he = g_new0 (guint64, QB_HISTOGRAM_BINS);
    for (gint64 i = 0; i < n; i++)
      {
        ho[bin_of (r->hist_original, x[i])]++;
        hq[bin_of (r->hist_quantized, y[i])]++;
        he[bin_of (r->hist_error, x[i] - y[i])]++;
      }
    g_assert_cmpmem (ho, 8 * QB_HISTOGRAM_BINS, r->hist_original->counts, 8 * QB_HISTOGRAM_BINS);
    g_assert_cmpmem (hq, 8 * QB_HISTOGRAM_BINS, r->hist_quantized->counts, 8 * QB_HISTOGRAM_BINS);
    g_assert_cmpmem (he, 8 * QB_HISTOGRAM_BINS, r->hist_error->counts, 8 * QB_HISTOGRAM_BINS);
  }
  /* The original's edges are its range. */
  {
    float mn = INFINITY, mx = -INFINITY;
    for (gint64 i = 0; i < n; i++)
      {
        mn = MIN (mn, x[i]);
        mx = MAX (mx, x[i]);
      }
    g_assert_cmpfloat (r->hist_original->lo, ==, mn);
    g_assert_cmpfloat (r->hist_original->hi, ==, mx);
    g_assert_cmpfloat (r->metrics.min, ==, mn);
    g_assert_cmpfloat (r->metrics.max, ==, mx);
  }
  /* Per-channel ranges (rows <= 4096: one per row). */
  g_assert_cmpuint (r->n_channels, ==, n_rows);
  for (gint64 r0 = 0; r0 < n_rows; r0++)
    {
      float mn = INFINITY, mx = -INFINITY;
      for (gint64 j = 0; j < n_cols; j++)
        {
          mn = MIN (mn, x[r0 * n_cols + j]);
          mx = MAX (mx, x[r0 * n_cols + j]);
        }
      g_assert_cmpfloat (r->channel_min[r0], ==, mn);
      g_assert_cmpfloat (r->channel_max[r0], ==, mx);
    }
}

/* The scale stored after the rows of a per-tensor format (qb-format.h). */
static void
check_tensor_scale (const QbFormat *format, const QbTensorResult *r, const guint8 *tail)
{
  float absmax = (float) MAX (fabs (r->metrics.min), fabs (r->metrics.max));

  if (format->family == QB_FAMILY_INT)
    {
      guint16 h;
      memcpy (&h, tail, 2);
      g_assert_cmpuint (h, ==, qb_fp32_to_fp16 (absmax / ((1 << (format->bits - 1)) - 1)));
    }
  else
    {
      float s;
      g_assert_cmpint (format->family, ==, QB_FAMILY_FP8);
      memcpy (&s, tail, 4);
      g_assert_cmpfloat (s, ==, absmax / (strstr (format->name, "E4M3") ? 448.0f : 57344.0f));
    }
}

static void
test_metrics_direct (Fixture *f, gconstpointer data)
{
  g_autoptr(QbWorkers) workers = qb_workers_new (2);
  guint index = tensor_index (f->model, "blk.0.attn_q.weight");
  const QbTensor *t = qb_model_get_tensor (f->model, index);
  g_autofree float *importance = g_new (float, t->ne[0]);
  guint64 state = 3;
  guint n_checked = 0;

  qb_test_gaussian (&state, importance, t->ne[0], 1.0f);
  for (gint64 j = 0; j < t->ne[0]; j++)
    importance[j] = importance[j] * importance[j] + 0.01f;

  for (guint k = 0; k < qb_format_count (); k++)
    {
      const QbFormat *format = qb_format_get (k);
      guint64 bytes;

      if (!qb_format_fits (format, t->ne[0]))
        continue;
      g_assert_true (qb_format_tensor_bytes (format, t->ne[0], qb_tensor_n_rows (t), &bytes));
      for (int with_imp = 0; with_imp < 2; with_imp++)
        {
          g_autoptr(GError) error = NULL;
          g_autoptr(QbTensorResult) r = NULL;
          g_autofree guint8 *out = g_malloc (bytes);
          QbQuantizeSpec spec = { .format = format, .importance = with_imp ? importance : NULL };
          QbQuantizeOutput output = { .data = out };

          r = qb_tensor_quantize (f->model, index, &spec, workers, &output, NULL, NULL, NULL, &error);
          g_assert_no_error (error);
          g_assert_cmpstr (r->format, ==, format->name);
          g_assert_cmpstr (r->method, ==, "rtn");
          g_assert_cmpuint (r->bytes, ==, bytes);
          check_against_direct (f->model, index, format, spec.importance, r, out);
          if (format->scope == QB_SCOPE_TENSOR)
            check_tensor_scale (format, r, out + bytes - format->scale_bytes);
          n_checked++;
        }
    }
  g_test_message ("checked %u format/importance combinations", n_checked);
  g_assert_cmpuint (n_checked, >=, 20);
}

static void
test_keep_and_original_histogram (Fixture *f, gconstpointer data)
{
  g_autoptr(QbWorkers) workers = qb_workers_new (3);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbTensorResult) kept = NULL;
  g_autoptr(QbTensorResult) q8 = NULL;
  g_autoptr(QbHistogram) h = NULL;
  guint index = tensor_index (f->model, "token_embd.weight");
  QbQuantizeSpec keep = { 0 };
  QbQuantizeSpec spec = { .format = qb_format_find ("Q8_0") };
  QbTensorScan stats;

  kept = qb_tensor_quantize (f->model, index, &keep, workers, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (kept->method, ==, "keep");
  g_assert_cmpstr (kept->format, ==, "F16");
  g_assert_cmpfloat (kept->metrics.mse, ==, 0);
  g_assert_cmpfloat (kept->metrics.max_abs_err, ==, 0);
  g_assert_cmpfloat (kept->metrics.cosine, ==, 1);
  g_assert_true (isinf (kept->metrics.sqnr_db));
  g_assert_cmpuint (kept->bytes, ==, qb_model_get_tensor (f->model, index)->n_bytes);
  g_assert_cmpmem (kept->hist_original->counts, 8 * QB_HISTOGRAM_BINS,
                   kept->hist_quantized->counts, 8 * QB_HISTOGRAM_BINS);

  /* The histogram available before any run is the run's. */
  h = qb_tensor_original_histogram (f->model, index, workers, NULL, &error);
  g_assert_no_error (error);
  q8 = qb_tensor_quantize (f->model, index, &spec, workers, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (h->lo, ==, q8->hist_original->lo);
  g_assert_cmpfloat (h->hi, ==, q8->hist_original->hi);
  g_assert_cmpmem (h->counts, 8 * h->n_bins, q8->hist_original->counts, 8 * h->n_bins);

  g_assert_true (qb_tensor_scan (f->model, index, workers, NULL, &stats, &error));
  g_assert_cmpint (stats.n, ==, qb_model_get_tensor (f->model, index)->n_params);
  g_assert_cmpfloat (stats.min, ==, h->lo);
  g_assert_cmpfloat (stats.absmax, ==, MAX (-stats.min, stats.max));
  /* Gaussian with a few 8x outliers: heavy tails. */
  g_assert_cmpfloat (stats.kurtosis, >, 0.5);
}

/* Everything a run measured for a tensor, compared bit for bit. */
static void
assert_same_result (const QbTensorResult *a, const QbTensorResult *b)
{
  g_assert_cmpstr (a->format, ==, b->format);
  g_assert_cmpuint (a->bytes, ==, b->bytes);
  g_assert_cmpmem (&a->metrics, sizeof a->metrics, &b->metrics, sizeof b->metrics);
  g_assert_cmpfloat (a->hist_error->hi, ==, b->hist_error->hi);
  g_assert_cmpmem (a->hist_original->counts, 8 * QB_HISTOGRAM_BINS, b->hist_original->counts, 8 * QB_HISTOGRAM_BINS);
  g_assert_cmpmem (a->hist_quantized->counts, 8 * QB_HISTOGRAM_BINS, b->hist_quantized->counts, 8 * QB_HISTOGRAM_BINS);
  g_assert_cmpmem (a->hist_error->counts, 8 * QB_HISTOGRAM_BINS, b->hist_error->counts, 8 * QB_HISTOGRAM_BINS);
  g_assert_cmpuint (a->n_channels, ==, b->n_channels);
  g_assert_cmpmem (a->channel_min, 4 * a->n_channels, b->channel_min, 4 * b->n_channels);
  g_assert_cmpmem (a->channel_max, 4 * a->n_channels, b->channel_max, 4 * b->n_channels);
}

static QbJob *
run_job (QbModel *model, QbPlan *plan, guint threads, QbImatrix *imatrix)
{
  QbJob *job = qb_job_new (model, plan);
  g_autoptr(GError) error = NULL;

  qb_job_set_threads (job, threads);
  qb_job_set_keep_data (job, TRUE);
  qb_job_set_imatrix (job, imatrix);
  g_assert_true (qb_job_run (job, NULL, &error));
  g_assert_no_error (error);
  return job;
}

static void
test_thread_independence (Fixture *f, gconstpointer data)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbJob) one = NULL;
  g_autoptr(QbJob) three = NULL;
  guint n = qb_model_get_n_tensors (f->model);
  guint n_formats = 0;

  /* A mix: K-quants, a search method, and (when the registry has them) a
   * non-ggml format and a per-tensor-scale format. */
  qb_plan_set_preset (plan, "Q4_K_M");
  g_assert_true (qb_plan_insert_rule (plan, -1, "*.ffn_gate.*", QB_RULE_GLOB, "Q4_0", "search", NULL));
  for (guint k = 0; k < qb_format_count (); k++)
    {
      const QbFormat *fmt = qb_format_get (k);
      if (fmt->family == QB_FAMILY_INT && n_formats == 0)
        {
          g_assert_true (qb_plan_insert_rule (plan, -1, "*.ffn_up.*", QB_RULE_GLOB, fmt->name, NULL, NULL));
          n_formats++;
        }
      if (fmt->scope == QB_SCOPE_TENSOR && n_formats == 1)
        {
          g_assert_true (qb_plan_insert_rule (plan, -1, "*.attn_k.*", QB_RULE_GLOB, fmt->name, NULL, NULL));
          n_formats++;
        }
    }

  one = run_job (f->model, plan, 1, NULL);
  three = run_job (f->model, plan, 3, NULL);
  g_assert_cmpuint (qb_job_get_n_results (one), ==, n);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GBytes) a = qb_job_get_tensor_data (one, i, NULL);
      g_autoptr(GBytes) b = qb_job_get_tensor_data (three, i, NULL);

      g_assert_true (g_bytes_equal (a, b));
      assert_same_result (qb_job_get_result (one, i), qb_job_get_result (three, i));
    }
  g_assert_cmpuint (qb_job_get_quantized_bytes (one), ==, qb_job_get_quantized_bytes (three));
}

/* Tall tensors: the channel buckets of core's one rule, the same before a
 * run (qb_tensor_describe_original) and after it (qb_tensor_quantize). */
static void
tall_setup (Fixture *f, gconstpointer data)
{
  /* token_embd is 64 x 10000: 3334 buckets of 3 rows, the last of 1. */
  QbTestLlama spec = { .n_layer = 1, .n_embd = 64, .n_ff = 128, .n_vocab = 10000,
                       .n_head = 2, .n_head_kv = 2, .dtype = QB_DTYPE_F32, .seed = 5 };
  qb_test_model_fixture_open (f, &spec);
}

static void
test_channel_buckets (Fixture *f, gconstpointer data)
{
  g_autoptr(QbWorkers) workers = qb_workers_new (3);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbTensorResult) before = NULL;
  g_autoptr(QbTensorResult) after = NULL;
  guint index = tensor_index (f->model, "token_embd.weight");
  QbQuantizeSpec spec = { .format = qb_format_find ("Q8_0") };
  float x[3 * 64];

  g_assert_cmpint (qb_channel_rows_per_bucket (4096), ==, 1);
  g_assert_cmpuint (qb_channel_n_buckets (4096), ==, 4096);
  g_assert_cmpint (qb_channel_rows_per_bucket (4097), ==, 2);
  g_assert_cmpuint (qb_channel_n_buckets (4097), ==, 2049);
  g_assert_cmpint (qb_channel_rows_per_bucket (32000), ==, 8);
  g_assert_cmpuint (qb_channel_n_buckets (32000), ==, 4000);
  g_assert_cmpuint (qb_channel_n_buckets (0), ==, 0);

  before = qb_tensor_describe_original (f->model, index, workers, NULL, &error);
  g_assert_no_error (error);
  after = qb_tensor_quantize (f->model, index, &spec, workers, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (before->n_channels, ==, 3334);
  g_assert_cmpuint (after->n_channels, ==, before->n_channels);
  g_assert_cmpmem (before->channel_min, 4 * before->n_channels, after->channel_min, 4 * after->n_channels);
  g_assert_cmpmem (before->channel_max, 4 * before->n_channels, after->channel_max, 4 * after->n_channels);

  /* Bucket 1 is rows 3..5; the last, row 9999 alone. */
  g_assert_true (qb_model_read_rows (f->model, index, 3, 3, x, &error));
  {
    float mn = INFINITY, mx = -INFINITY;
    for (guint i = 0; i < G_N_ELEMENTS (x); i++)
      {
        mn = MIN (mn, x[i]);
        mx = MAX (mx, x[i]);
      }
    g_assert_cmpfloat (before->channel_min[1], ==, mn);
    g_assert_cmpfloat (before->channel_max[1], ==, mx);
  }
  g_assert_true (qb_model_read_rows (f->model, index, 9999, 1, x, &error));
  {
    float mn = INFINITY, mx = -INFINITY;
    for (guint i = 0; i < 64; i++)
      {
        mn = MIN (mn, x[i]);
        mx = MAX (mx, x[i]);
      }
    g_assert_cmpfloat (before->channel_min[3333], ==, mn);
    g_assert_cmpfloat (before->channel_max[3333], ==, mx);
  }

  /* The moments and the histogram are the run's too. */
  g_assert_cmpfloat (before->metrics.mean, ==, after->metrics.mean);
  g_assert_cmpfloat (before->metrics.std, ==, after->metrics.std);
  g_assert_cmpfloat (before->metrics.min, ==, after->metrics.min);
  g_assert_cmpfloat (before->metrics.max, ==, after->metrics.max);
  g_assert_cmpfloat (before->metrics.outlier_share, ==, after->metrics.outlier_share);
  g_assert_cmpmem (before->hist_original->counts, 8 * QB_HISTOGRAM_BINS,
                   after->hist_original->counts, 8 * QB_HISTOGRAM_BINS);
  g_assert_true (isnan (before->metrics.sqnr_db));
}

/* A tensor holding a NaN and an infinity: the count is reported, the
 * error metrics are undefined (NAN), never a perfect score, and so are the
 * run's totals; a clean tensor is measured as before. */
static void
test_non_finite_weights (void)
{
  QbTestLlama spec = { .n_layer = 1, .n_embd = 256, .n_ff = 512, .n_vocab = 512,
                       .n_head = 4, .n_head_kv = 4, .dtype = QB_DTYPE_F32, .seed = 5 };
  const char *formats[] = { "Q4_0", "Q5_0", "Q8_0", "Q4_K", "IQ4_NL", "F16", "INT8_CH", "FP8_E4M3_T" };
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = qb_test_write_llama (dir, "nan.gguf", &spec);
  g_autoptr(QbWorkers) workers = qb_workers_new (2);
  g_autoptr(QbModel) model = NULL;
  g_autoptr(GError) error = NULL;
  guint bad, good;

  qb_test_poison_tensor (path, "blk.0.attn_q.weight", 5, NAN);
  qb_test_poison_tensor (path, "blk.0.attn_q.weight", 300, INFINITY);
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  bad = tensor_index (model, "blk.0.attn_q.weight");
  good = tensor_index (model, "blk.0.attn_k.weight");
  for (guint i = 0; i < G_N_ELEMENTS (formats); i++)
    {
      QbQuantizeSpec qs = { .format = qb_format_find (formats[i]) };
      QbStoredTensor stored[2] = { { 0 } };
      QbStoredTensor *both[2] = { &stored[0], &stored[1] };
      QbExperimentTotals totals;

      g_assert_nonnull (qs.format);
      stored[0].result = qb_tensor_quantize (model, bad, &qs, workers, NULL, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      stored[1].result = qb_tensor_quantize (model, good, &qs, workers, NULL, NULL, NULL, NULL, &error);
      g_assert_no_error (error);

      g_assert_cmpint (stored[0].result->n_nonfinite, ==, 2);
      g_assert_true (isnan (stored[0].result->metrics.sqnr_db));
      g_assert_true (isnan (stored[0].result->metrics.rmse_rel));
      g_assert_true (isnan (stored[0].result->metrics.mse));
      g_assert_true (isnan (stored[0].result->metrics.cosine));
      g_assert_true (isnan (stored[0].result->metrics.max_abs_err));
      /* The finite weights' statistics are still there. */
      g_assert_true (isfinite (stored[0].result->metrics.std));

      g_assert_cmpint (stored[1].result->n_nonfinite, ==, 0);
      g_assert_true (isfinite (stored[1].result->metrics.sqnr_db));
      g_assert_cmpfloat (stored[1].result->metrics.rmse_rel, >, 0);

      qb_experiment_totals_compute (&totals, both + 1, 1);
      g_assert_true (isfinite (totals.sqnr_db));
      qb_experiment_totals_compute (&totals, both, 2);
      g_assert_true (isnan (totals.sqnr_db));
      g_assert_true (isnan (totals.rmse_rel));
      g_assert_true (isnan (totals.cosine_min));
      qb_tensor_result_free (stored[0].result);
      qb_tensor_result_free (stored[1].result);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define FIX(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  FIX ("/quantize/metrics-direct", test_metrics_direct);
  FIX ("/quantize/keep-and-original-histogram", test_keep_and_original_histogram);
  FIX ("/quantize/thread-independence", test_thread_independence);
#undef FIX
  g_test_add ("/quantize/channel-buckets", Fixture, NULL, tall_setup, test_channel_buckets, fixture_teardown);
  g_test_add_func ("/quantize/non-finite-weights", test_non_finite_weights);
  return g_test_run ();
}
