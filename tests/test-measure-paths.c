/* SPDX-License-Identifier: MIT */
/* test-measure-paths.c — the fast measurement of F16 and BF16 tensors
 * (counts of raw 16-bit patterns, two histograms in the main pass) against
 * the reference path every other source type takes: the same bytes, the
 * same histograms, the same error metrics bit for bit, the same range and
 * counts, and moments that agree to rounding (the fast path sums exactly
 * in double, the reference in float lanes).
 *
 * On stories260K (../shared) converted to F16 and to BF16, on a generated
 * demo model (QB_TEST_DEMO_PARAMS=370M for the benchmark's model; a small
 * one by default), and on a tensor holding NaN and infinities; and the
 * scan cache (the pre-pass kept across runs) against no cache. */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "qb-demo-model.h"
#include "qb-job.h"
#include "qb-model.h"
#include "qb-tensor-quantizer.h"
#include "qb-tensor-quantizer-private.h"
#include "qb-scan-cache-private.h"
#include "qb-test-util.h"

static const char *formats[] = { "Q8_0", "Q4_0", "Q4_K", "Q6_K", NULL };

/* Both NaN, or the same bits. */
static void
assert_same (double got, double want, const char *what, const char *where)
{
  if (isnan (got) && isnan (want))
    return;
  if (memcmp (&got, &want, sizeof got) != 0 && got != want)
    g_error ("%s: %s: fast path %.17g, reference %.17g", where, what, got, want);
}

static void
assert_close (double got, double want, double rel, const char *what, const char *where)
{
  if (isnan (got) && isnan (want))
    return;
  if (!(fabs (got - want) <= rel * fabs (want) + 1e-300))
    g_error ("%s: %s: fast path %.17g, reference %.17g", where, what, got, want);
}

static void
assert_same_histogram (const QbHistogram *a, const QbHistogram *b, const char *what,
                       const char *where)
{
  g_assert_nonnull (a);
  g_assert_nonnull (b);
  g_assert_cmpuint (a->n_bins, ==, b->n_bins);
  assert_same (a->lo, b->lo, what, where);
  assert_same (a->hi, b->hi, what, where);
  for (guint k = 0; k < a->n_bins; k++)
    if (a->counts[k] != b->counts[k])
      g_error ("%s: %s bin %u: fast path %" G_GUINT64_FORMAT ", reference %" G_GUINT64_FORMAT,
               where, what, k, a->counts[k], b->counts[k]);
}

static QbTensorResult *
quantize (QbModel *model, guint index, const QbFormat *format, QbWorkers *workers,
          QbMeasurePath path, guint8 *data)
{
  QbQuantizeSpec spec = { .format = format };
  QbQuantizeOutput output = { .data = data };
  g_autoptr(GError) error = NULL;
  QbTensorResult *r;

  qb_tensor_quantizer_set_measure_path (path);
  r = qb_tensor_quantize (model, index, &spec, workers, &output, NULL, NULL, NULL, &error);
  qb_tensor_quantizer_set_measure_path (QB_MEASURE_PATH_AUTO);
  g_assert_no_error (error);
  g_assert_nonnull (r);
  return r;
}

/* One tensor in one format (NULL: kept) by both paths. */
static void
compare_tensor (QbModel *model, guint index, const QbFormat *format, QbWorkers *workers,
                QbMeasurePath fast_path)
{
  const QbTensor *t = qb_model_get_tensor (model, index);
  g_autofree char *where = g_strdup_printf ("%s %s", t->name, format ? format->name : "keep");
  g_autoptr(QbTensorResult) fast = NULL;
  g_autoptr(QbTensorResult) ref = NULL;
  g_autofree guint8 *fast_bytes = NULL;
  g_autofree guint8 *ref_bytes = NULL;
  const QbTensorMetrics *a, *b;
  guint64 bytes = 0;

  if (format != NULL)
    {
      if (!qb_format_tensor_bytes (format, t->ne[0], qb_tensor_n_rows (t), &bytes))
        return;   /* rows that do not fit the format */
      fast_bytes = g_malloc0 (MAX (bytes, 1));
      ref_bytes = g_malloc0 (MAX (bytes, 1));
    }
  fast = quantize (model, index, format, workers, fast_path, fast_bytes);
  ref = quantize (model, index, format, workers, QB_MEASURE_PATH_REFERENCE, ref_bytes);
  if (bytes > 0)
    g_assert_true (memcmp (fast_bytes, ref_bytes, bytes) == 0);

  a = &fast->metrics;
  b = &ref->metrics;
  assert_same (a->mse, b->mse, "mse", where);
  assert_same (a->rmse_rel, b->rmse_rel, "rmse_rel", where);
  assert_same (a->sqnr_db, b->sqnr_db, "sqnr_db", where);
  assert_same (a->cosine, b->cosine, "cosine", where);
  assert_same (a->max_abs_err, b->max_abs_err, "max_abs_err", where);
  assert_same (a->wmse, b->wmse, "wmse", where);
  assert_same (a->out_rel_err, b->out_rel_err, "out_rel_err", where);
  assert_same (a->min, b->min, "min", where);
  assert_same (a->max, b->max, "max", where);
  assert_same (a->outlier_share, b->outlier_share, "outlier_share", where);
  /* The reference sums in float lanes over groups of 4K values: its
   * moments carry float rounding, the fast path's do not. */
  assert_close (a->mean, b->mean, 1e-5, "mean", where);
  assert_close (a->std, b->std, 1e-6, "std", where);
  /* kurtosis + 3 = n m4 / m2^2: relative to that, as excess kurtosis
   * may be near 0 */
  assert_close (a->kurtosis + 3, b->kurtosis + 3, 1e-5, "kurtosis", where);

  assert_same_histogram (fast->hist_original, ref->hist_original, "original histogram", where);
  assert_same_histogram (fast->hist_quantized, ref->hist_quantized, "quantized histogram", where);
  assert_same_histogram (fast->hist_error, ref->hist_error, "error histogram", where);
  g_assert_cmpuint (qb_histogram_total (fast->hist_original), ==, t->n_params);
  g_assert_cmpint (fast->n_nonfinite, ==, ref->n_nonfinite);
  g_assert_cmpuint (fast->n_channels, ==, ref->n_channels);
  g_assert_true (memcmp (fast->channel_min, ref->channel_min, sizeof (float) * fast->n_channels) == 0);
  g_assert_true (memcmp (fast->channel_max, ref->channel_max, sizeof (float) * fast->n_channels) == 0);
}

/* Every 16-bit tensor of the model, kept and in each format. */
static guint
compare_model (QbModel *model, QbMeasurePath fast_path, guint n_threads)
{
  g_autoptr(QbWorkers) workers = qb_workers_new (n_threads);
  guint n_compared = 0;

  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);

      if (t->dtype != QB_DTYPE_F16 && t->dtype != QB_DTYPE_BF16)
        continue;
      compare_tensor (model, i, NULL, workers, fast_path);
      for (guint f = 0; formats[f]; f++)
        compare_tensor (model, i, qb_format_find (formats[f]), workers, fast_path);
      n_compared++;
    }
  return n_compared;
}

/* stories260K with every tensor (norms included) stored as dtype. */
static char *
convert_stories (const char *dir, const char *dtype)
{
  g_autofree char *src = qb_test_shared_path ("models/stories260K.gguf");
  g_autofree char *name = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbPlan) plan = NULL;
  g_autoptr(QbJob) job = NULL;
  g_autoptr(GError) error = NULL;
  char *out;

  if (src == NULL)
    return NULL;
  model = qb_model_open (src, &error);
  g_assert_no_error (error);
  plan = qb_plan_new ();
  qb_plan_set_default_format (plan, dtype);
  qb_plan_set_keep_1d (plan, FALSE);
  name = g_strdup_printf ("stories260K-%s.gguf", dtype);
  out = g_build_filename (dir, name, NULL);
  job = qb_job_new (model, plan);
  qb_job_set_metrics (job, FALSE);
  qb_job_set_export (job, QB_EXPORT_GGUF, out);
  g_assert_true (qb_job_run (job, NULL, &error));
  g_assert_no_error (error);
  return out;
}

static void
test_stories (gconstpointer data)
{
  const char *dtype = data;
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = convert_stories (dir, dtype);
  g_autoptr(QbModel) model = NULL;
  g_autoptr(GError) error = NULL;

  if (path == NULL)
    return;   /* skipped: no ../shared */
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (qb_model_get_tensor (model, 0)->dtype, ==,
                    g_str_equal (dtype, "F16") ? QB_DTYPE_F16 : QB_DTYPE_BF16);
  /* Every tensor is small: force the pattern path on all of them (the
   * 37 matrices; the export keeps the norms F32). */
  g_assert_cmpuint (compare_model (model, QB_MEASURE_PATH_PATTERNS, 1), >=, 37);
  /* The pre-pass itself on 3 threads, not its figures from the scan cache. */
  g_setenv ("QB_SCAN_CACHE", "0", TRUE);
  compare_model (model, QB_MEASURE_PATH_PATTERNS, 3);
  g_unsetenv ("QB_SCAN_CACHE");
}

/* The generated demo model as the benchmark runs it: the automatic
 * choice (patterns for the large tensors) on all CPUs. */
static void
test_demo (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "demo.gguf", NULL);
  const char *size = g_getenv ("QB_TEST_DEMO_PARAMS");
  g_autoptr(QbModel) model = NULL;
  g_autoptr(GError) error = NULL;
  QbDemoModelSpec spec;

  qb_demo_model_spec_init (&spec);
  if (size != NULL)
    g_assert_true (qb_demo_model_parse_size (size, &spec.n_params));
  g_assert_true (qb_demo_model_write (&spec, path, NULL, NULL, &error));
  g_assert_no_error (error);
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (compare_model (model, QB_MEASURE_PATH_AUTO, 0), >, 0);
}

/* A copy of stories260K in F16 with NaN and infinities in one tensor:
 * counted as the reference counts them, and never a perfect score. */
static void
test_non_finite (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = convert_stories (dir, "F16");
  g_autofree char *bad = NULL;
  g_autofree guint8 *file = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbWorkers) workers = qb_workers_new (2);
  g_autoptr(GError) error = NULL;
  const guint16 specials[] = { 0x7e00, 0x7c00, 0xfc00, 0xfe01 };   /* NaN, +inf, -inf, NaN */
  const QbTensor *t;
  gsize size;
  guint index;
  guint8 *at;

  if (path == NULL)
    return;
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (qb_model_find_tensor (model, "blk.0.ffn_gate.weight", &index));
  t = qb_model_get_tensor (model, index);
  /* The tensor's bytes in the file: where its first 256 bytes are. */
  g_assert_true (g_file_get_contents (path, (char **) &file, &size, NULL));
  at = memmem (file, size, t->data, 256);
  g_assert_nonnull (at);
  for (guint k = 0; k < G_N_ELEMENTS (specials); k++)
    {
      guint16 v = GUINT16_TO_LE (specials[k]);
      memcpy (at + 2 * (1000 * k + 7), &v, 2);
    }
  g_clear_object (&model);
  bad = g_build_filename (dir, "non-finite.gguf", NULL);
  g_assert_true (g_file_set_contents (bad, (char *) file, size, NULL));
  model = qb_model_open (bad, &error);
  g_assert_no_error (error);
  t = qb_model_get_tensor (model, index);

  for (guint f = 0; formats[f]; f++)
    {
      const QbFormat *format = qb_format_find (formats[f]);
      g_autoptr(QbTensorResult) fast = NULL;
      g_autoptr(QbTensorResult) ref = NULL;
      guint64 bytes;

      if (!qb_format_tensor_bytes (format, t->ne[0], qb_tensor_n_rows (t), &bytes))
        continue;
      fast = quantize (model, index, format, workers, QB_MEASURE_PATH_PATTERNS, NULL);
      ref = quantize (model, index, format, workers, QB_MEASURE_PATH_REFERENCE, NULL);
      compare_tensor (model, index, format, workers, QB_MEASURE_PATH_PATTERNS);
      /* The range and moments are of the finite values; the errors are not
       * a perfect score. */
      g_assert_true (isfinite (fast->metrics.min) && isfinite (fast->metrics.max));
      g_assert_true (isfinite (fast->metrics.std) && fast->metrics.std > 0);
      g_assert_cmpint (fast->n_nonfinite, ==, 4);
      g_assert_false (fast->metrics.mse == 0);
      g_assert_false (isinf (fast->metrics.sqnr_db) && fast->metrics.sqnr_db > 0);
      g_assert_cmpuint (qb_histogram_total (fast->hist_original), ==, t->n_params);
    }
  {
    QbTensorScan fast, ref;

    qb_tensor_quantizer_set_measure_path (QB_MEASURE_PATH_PATTERNS);
    g_assert_true (qb_tensor_scan (model, index, workers, NULL, &fast, &error));
    qb_tensor_quantizer_set_measure_path (QB_MEASURE_PATH_REFERENCE);
    g_assert_true (qb_tensor_scan (model, index, workers, NULL, &ref, &error));
    qb_tensor_quantizer_set_measure_path (QB_MEASURE_PATH_AUTO);
    g_assert_cmpuint (fast.n_nonfinite, ==, 4);
    g_assert_cmpuint (ref.n_nonfinite, ==, 4);
    g_assert_cmpuint (fast.n, ==, ref.n);
    g_assert_cmpuint (fast.n + fast.n_nonfinite, ==, t->n_params);
  }
}

/* The original-weights histogram on its own (shown before any run) is the
 * one a run gives. */
static void
test_original_histogram (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = convert_stories (dir, "F16");
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbWorkers) workers = qb_workers_new (2);
  g_autoptr(GError) error = NULL;

  if (path == NULL)
    return;
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      g_autoptr(QbHistogram) fast = NULL;
      g_autoptr(QbHistogram) ref = NULL;

      qb_tensor_quantizer_set_measure_path (QB_MEASURE_PATH_PATTERNS);
      fast = qb_tensor_original_histogram (model, i, workers, NULL, &error);
      g_assert_no_error (error);
      qb_tensor_quantizer_set_measure_path (QB_MEASURE_PATH_REFERENCE);
      ref = qb_tensor_original_histogram (model, i, workers, NULL, &error);
      g_assert_no_error (error);
      qb_tensor_quantizer_set_measure_path (QB_MEASURE_PATH_AUTO);
      assert_same_histogram (fast, ref, "original histogram", qb_model_get_tensor (model, i)->name);
    }
}

/* Every field of two results, bit for bit. */
static void
assert_same_result (const QbTensorResult *a, const QbTensorResult *b, const char *where)
{
  const QbTensorMetrics *m = &a->metrics, *n = &b->metrics;

  assert_same (m->mse, n->mse, "mse", where);
  assert_same (m->sqnr_db, n->sqnr_db, "sqnr_db", where);
  assert_same (m->cosine, n->cosine, "cosine", where);
  assert_same (m->max_abs_err, n->max_abs_err, "max_abs_err", where);
  assert_same (m->mean, n->mean, "mean", where);
  assert_same (m->std, n->std, "std", where);
  assert_same (m->min, n->min, "min", where);
  assert_same (m->max, n->max, "max", where);
  assert_same (m->kurtosis, n->kurtosis, "kurtosis", where);
  assert_same (m->outlier_share, n->outlier_share, "outlier_share", where);
  g_assert_cmpint (a->n_nonfinite, ==, b->n_nonfinite);
  assert_same_histogram (a->hist_original, b->hist_original, "original histogram", where);
  assert_same_histogram (a->hist_quantized, b->hist_quantized, "quantized histogram", where);
  assert_same_histogram (a->hist_error, b->hist_error, "error histogram", where);
}

static guint
count_entries (const char *dir)
{
  g_autoptr(GDir) d = dir ? g_dir_open (dir, 0, NULL) : NULL;
  guint n = 0;

  while (d != NULL && g_dir_read_name (d) != NULL)
    n++;
  return n;
}

/* Quantizes tensor index of the model at path, with the scan cache on
 * (cache) or off. */
static QbTensorResult *
quantize_file (const char *path, guint index, const QbFormat *format, gboolean cache,
               char **cache_dir)
{
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbWorkers) workers = qb_workers_new (2);
  g_autoptr(GError) error = NULL;
  QbTensorResult *r;

  if (!cache)
    g_setenv ("QB_SCAN_CACHE", "0", TRUE);
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  r = quantize (model, index, format, workers, QB_MEASURE_PATH_PATTERNS, NULL);
  if (cache_dir)
    *cache_dir = qb_scan_cache_dir (model);
  g_unsetenv ("QB_SCAN_CACHE");
  return r;
}

/* The scan cache: a second run takes the pre-pass from it and gives the
 * same figures bit for bit; a rewritten model file, a damaged entry and
 * QB_SCAN_CACHE=0 each mean the tensor is read again. */
static void
test_scan_cache (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = convert_stories (dir, "F16");
  g_autofree char *cache_home = g_build_filename (dir, "cache", NULL);
  g_autofree char *old_home = g_strdup (g_getenv ("XDG_CACHE_HOME"));
  g_autofree char *cache_dir = NULL;
  g_autofree char *second_dir = NULL;
  g_autofree char *entry = NULL;
  g_autofree guint8 *file = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(GError) error = NULL;
  const QbFormat *q4 = qb_format_find ("Q4_0");
  const QbTensor *t;
  guint index;
  gsize size;

  if (path == NULL)
    return;
  g_setenv ("XDG_CACHE_HOME", cache_home, TRUE);
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (qb_model_find_tensor (model, "blk.1.ffn_up.weight", &index));
  t = qb_model_get_tensor (model, index);
  g_assert_cmpuint (t->dtype, ==, QB_DTYPE_F16);

  {
    g_autoptr(QbTensorResult) off = quantize_file (path, index, q4, FALSE, NULL);
    g_autoptr(QbTensorResult) first = NULL;
    g_autoptr(QbTensorResult) second = NULL;
    g_autoptr(QbTensorResult) kept = NULL;

    /* off: nothing written */
    g_assert_false (g_file_test (cache_home, G_FILE_TEST_EXISTS));
    first = quantize_file (path, index, q4, TRUE, &cache_dir);
    g_assert_nonnull (cache_dir);
    g_assert_cmpuint (count_entries (cache_dir), ==, 1);
    second = quantize_file (path, index, q4, TRUE, NULL);
    kept = quantize_file (path, index, NULL, TRUE, NULL);
    assert_same_result (first, off, "first run with the cache");
    assert_same_result (second, off, "second run, from the cache");
    assert_same_histogram (kept->hist_original, off->hist_original, "original (kept)", "cache");
  }

  /* A damaged entry (one count changed) is not used. */
  {
    g_autofree char *name = g_strdup_printf ("%u.scan", index);
    g_autofree char *bytes = NULL;
    g_autoptr(QbTensorResult) off = quantize_file (path, index, q4, FALSE, NULL);
    g_autoptr(QbTensorResult) r = NULL;

    entry = g_build_filename (cache_dir, name, NULL);
    g_assert_true (g_file_get_contents (entry, &bytes, &size, NULL));
    bytes[200] ^= 1;
    g_assert_true (g_file_set_contents (entry, bytes, size, NULL));
    r = quantize_file (path, index, q4, TRUE, NULL);
    assert_same_result (r, off, "damaged cache entry");
  }

  /* The file rewritten (one weight of the tensor changed): a new key, and
   * the new figures. */
  g_assert_true (g_file_get_contents (path, (char **) &file, &size, NULL));
  {
    guint8 *at = memmem (file, size, t->data, 256);
    g_autoptr(QbTensorResult) before = quantize_file (path, index, q4, TRUE, NULL);
    g_autoptr(QbTensorResult) after = NULL;
    g_autoptr(QbTensorResult) off = NULL;
    guint16 v = GUINT16_TO_LE (0x5640);   /* 100.0, a new maximum */

    g_assert_nonnull (at);
    memcpy (at + 2 * 5, &v, 2);
    g_clear_object (&model);
    g_usleep (20000);
    g_assert_true (g_file_set_contents (path, (char *) file, size, NULL));
    after = quantize_file (path, index, q4, TRUE, &second_dir);
    off = quantize_file (path, index, q4, FALSE, NULL);
    g_assert_nonnull (second_dir);
    g_assert_cmpstr (second_dir, !=, cache_dir);
    g_assert_cmpfloat (after->metrics.max, ==, 100.0);
    g_assert_cmpfloat (before->metrics.max, <, 100.0);
    assert_same_result (after, off, "rewritten model file");
  }
  g_setenv ("XDG_CACHE_HOME", old_home, TRUE);
}

/* ---- golden digests: the figures the measurement gave before it was made
 * faster (issue 17) ------------------------------------------------------- */

/* Every figure a run stores for its tensors, and the quantized bytes, into
 * one SHA-256: metric values by their bits, the three histograms (edges and
 * every count), the channel ranges, the non-finite count. */
static void
digest_double (GChecksum *sum, double v)
{
  g_checksum_update (sum, (const guchar *) &v, sizeof v);
}

static void
digest_histogram (GChecksum *sum, const QbHistogram *h)
{
  if (h == NULL)
    {
      g_checksum_update (sum, (const guchar *) "none", 4);
      return;
    }
  g_checksum_update (sum, (const guchar *) &h->n_bins, sizeof h->n_bins);
  digest_double (sum, h->lo);
  digest_double (sum, h->hi);
  g_checksum_update (sum, (const guchar *) h->counts, sizeof (guint64) * h->n_bins);
}

static void
digest_result (GChecksum *sum, const QbTensorResult *r)
{
  const QbTensorMetrics *m = &r->metrics;
  const double v[] = { m->mse, m->rmse_rel, m->sqnr_db, m->cosine, m->max_abs_err, m->wmse,
                       m->out_rel_err, m->mean, m->std, m->min, m->max, m->kurtosis,
                       m->outlier_share };

  g_checksum_update (sum, (const guchar *) r->tensor_name, -1);
  g_checksum_update (sum, (const guchar *) r->format, -1);
  for (guint k = 0; k < G_N_ELEMENTS (v); k++)
    digest_double (sum, v[k]);
  g_checksum_update (sum, (const guchar *) &r->n_nonfinite, sizeof r->n_nonfinite);
  digest_histogram (sum, r->hist_original);
  digest_histogram (sum, r->hist_quantized);
  digest_histogram (sum, r->hist_error);
  g_checksum_update (sum, (const guchar *) &r->n_channels, sizeof r->n_channels);
  g_checksum_update (sum, (const guchar *) r->channel_min, sizeof (float) * r->n_channels);
  g_checksum_update (sum, (const guchar *) r->channel_max, sizeof (float) * r->n_channels);
}

/* A whole job (metrics on, the bytes kept) in one default format. */
static char *
job_digest (QbModel *model, const char *format, guint n_threads)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(QbJob) job = NULL;
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr(GError) error = NULL;

  qb_plan_set_default_format (plan, format);
  job = qb_job_new (model, plan);
  qb_job_set_threads (job, n_threads);
  qb_job_set_keep_data (job, TRUE);
  g_assert_true (qb_job_run (job, NULL, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      g_autoptr(GBytes) bytes = qb_job_get_tensor_data (job, i, NULL);
      gsize n = 0;
      gconstpointer p = bytes ? g_bytes_get_data (bytes, &n) : NULL;

      digest_result (sum, qb_job_get_result (job, i));
      if (n > 0)
        g_checksum_update (sum, p, n);
    }
  return g_strdup (g_checksum_get_string (sum));
}

/* want[f] is formats[f]'s digest, made by the build of main at 090b9b5
 * (before issue 17's fourth session changed the measurement) with
 * QB_TEST_PRINT_DIGESTS=1, which prints them instead of comparing.  Each
 * format runs three times: on 2 threads with an empty scan cache, on 3
 * threads from the cache the first run filled, and on 1 thread without
 * the cache: every run must give the same figures. */
static void
compare_digests (const char *path, const char *what, const char * const *want)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *cache_home = g_build_filename (dir, "cache", NULL);
  g_autofree char *old_home = g_strdup (g_getenv ("XDG_CACHE_HOME"));
  g_autoptr(QbModel) model = NULL;
  g_autoptr(GError) error = NULL;
  gboolean print = g_getenv ("QB_TEST_PRINT_DIGESTS") != NULL;

  g_setenv ("XDG_CACHE_HOME", cache_home, TRUE);
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  for (guint f = 0; formats[f]; f++)
    {
      g_autofree char *first = job_digest (model, formats[f], 2);
      g_autofree char *cached = job_digest (model, formats[f], 3);
      g_autofree char *uncached = NULL;

      g_setenv ("QB_SCAN_CACHE", "0", TRUE);
      uncached = job_digest (model, formats[f], 1);
      g_unsetenv ("QB_SCAN_CACHE");
      if (print)
        g_printerr ("%s %s: %s\n", what, formats[f], first);
      else
        g_assert_cmpstr (first, ==, want[f]);
      g_assert_cmpstr (cached, ==, first);
      g_assert_cmpstr (uncached, ==, first);
    }
  if (old_home)
    g_setenv ("XDG_CACHE_HOME", old_home, TRUE);
  else
    g_unsetenv ("XDG_CACHE_HOME");
}

/* stories260K as stored (F32: the moments pre-pass) and in F16 (the
 * pattern pre-pass), and the tiny demo model (F16): the same figures and
 * bytes as before, by format. */
static void
test_golden (void)
{
  /* Q6_K needs rows of 256: stories260K's (64) fall back to Q8_0, as in
   * llama-quantize, hence the same digest as Q8_0's. */
  static const char * const stories_f32[] = {
    "fe300f320475535dffdffa5b300670b1b67c3b43bc6f5f451fce82f8201a6932",
    "278263fb0c05ce4ba77d73ba2c465c160acafa182d3168b6498da4f3ed71325f",
    "52ff5ec9554d117fad45ace518f16a6c5afcab7403a8dbb36d52125e268414e2",
    "fe300f320475535dffdffa5b300670b1b67c3b43bc6f5f451fce82f8201a6932" };
  static const char * const stories_f16[] = {
    "a62d59aec52aa990211daf5a951cfeeba94a2e821025a36448d35cf0cf87a481",
    "4ceef01bf7bbe16d0bd4d7ab34ad60aa2297bf740eb2c7d84f8339743d2a4bd2",
    "300c3a1ee046d8dfd9784af916ce6e0f0708af615a9208003251d28e48b6d455",
    "a62d59aec52aa990211daf5a951cfeeba94a2e821025a36448d35cf0cf87a481" };
  static const char * const demo[] = {
    "96cc60157d15483d1bb8b07bbabd947c12e68132b65375e4e38425f258847e36",
    "cd14539b1801d3d20ca572592be766e6e4f6cc96b20ea267b16dda5e169d9cd6",
    "0e5f6f564a335ad9a0f6c10a2e5a3083ded521ebd7d4ee2b3e044efece6f9d35",
    "1eba090343aac658a36bfaa4ad1f42d7c4e0419684836ad0cdbebb256b3271fe" };
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *stories = qb_test_shared_path ("models/stories260K.gguf");
  g_autofree char *f16 = convert_stories (dir, "F16");
  g_autofree char *demo_path = g_build_filename (dir, "demo.gguf", NULL);
  g_autoptr(GError) error = NULL;
  QbDemoModelSpec spec;

  qb_demo_model_spec_init (&spec);
  g_assert_true (qb_demo_model_write (&spec, demo_path, NULL, NULL, &error));
  g_assert_no_error (error);
  compare_digests (demo_path, "demo", demo);
  if (stories == NULL)
    {
      g_test_skip ("no ../shared/models/stories260K.gguf: only the demo model compared");
      return;
    }
  compare_digests (stories, "stories260K", stories_f32);
  compare_digests (f16, "stories260K-F16", stories_f16);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_data_func ("/measure-paths/stories260K-F16", "F16", test_stories);
  g_test_add_data_func ("/measure-paths/stories260K-BF16", "BF16", test_stories);
  g_test_add_func ("/measure-paths/demo-model", test_demo);
  g_test_add_func ("/measure-paths/non-finite", test_non_finite);
  g_test_add_func ("/measure-paths/original-histogram", test_original_histogram);
  g_test_add_func ("/measure-paths/scan-cache", test_scan_cache);
  g_test_add_func ("/measure-paths/golden", test_golden);
  return g_test_run ();
}
