/* SPDX-License-Identifier: MIT */
/* test-quantize-device.c — quantization, metrics and histograms on an
 * OpenCL device (PoCL's CPU device in CI) give the CPU path's bytes,
 * dequantized values, histograms and channel ranges, and its metrics
 * within float tolerance: on llama.cpp's golden inputs, on adversarial
 * blocks, on a synthetic F16 model and on stories260K.  The kernels
 * compile once (PoCL takes ~20 s) and are cached under the build folder. */
#include <math.h>
#include <string.h>

#include "qb-activation-stats.h"
#include "qb-device-private.h"
#include "qb-format.h"
#include "qb-ggml-quants.h"
#include "qb-imatrix.h"
#include "qb-llama.h"
#include "qb-quantize-device-private.h"
#include "qb-tensor-quantizer.h"
#include "qb-test-model.h"
#include "qb-test-util.h"

/* The ggml formats have llama.cpp's golden files; the INTn formats on the
 * models are a sample (every one of them on awkward blocks). */
static const char *const formats[] = { "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                                       "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
                                       "IQ4_NL", "IQ4_XS", "NF4", "MXFP4",
                                       "FP8_E4M3_CH", "FP8_E5M2_CH", "FP8_E4M3_T", "FP8_E5M2_T",
                                       "INT4_G128", "INT4_G32_ASYM", "INT8_G32", "INT3_G64",
                                       "INT2_G256_ASYM", "INT5_G128_ASYM", "INT6_G32", "INT7_G64_ASYM",
                                       "INT4_CH", "INT3_CH_ASYM", "INT8_CH", "INT4_T", "INT8_T" };

/* max |x|: the scale of the per-tensor formats. */
static float
absmax_of (const float *x, gint64 n)
{
  float m = 0;
  for (gint64 i = 0; i < n; i++)
    m = fabsf (x[i]) > m ? fabsf (x[i]) : m;
  return m;
}

#define GOLDEN_ROWS 16
#define GOLDEN_COLS 4096

/* The test device, opened once; NULL after g_test_skip when none. */
static QbDevice *
test_device (void)
{
  static QbDevice *dev;
  static gboolean tried;

  if (!tried)
    {
      g_autoptr(GPtrArray) list = qb_device_list (NULL);
      g_autoptr(GError) error = NULL;
      tried = TRUE;
      if (list->len > 0)
        {
          dev = qb_device_open ("opencl:0", &error);
          g_assert_no_error (error);
          if (!qb_device_get_info (dev)->exact_float)
            g_clear_pointer (&dev, qb_device_unref);
        }
    }
  if (dev == NULL)
    g_test_skip ("no OpenCL device with exact float (install pocl-opencl-icd)");
  return dev;
}

/* The formats whose importance path the device has (Q8_0 ignores it). */
static const char *const imatrix_formats[] = { "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K",
                                               "Q6_K", "Q8_0" };

/* The CPU's bytes for rows of x (rounded with importance imp when not
 * NULL: n_cols weights). */
static guint8 *
cpu_quantize_imp (const QbFormat *f, const float *x, gint64 n_rows, gint64 n_cols,
                  const float *imp)
{
  QbQuantParams p = { .format = f, .tensor_absmax = absmax_of (x, n_rows * n_cols),
                      .importance = imp };
  guint64 row_bytes = 0;
  guint8 *q;

  g_assert_true (qb_format_row_bytes (f, n_cols, &row_bytes));
  q = g_malloc (row_bytes * n_rows);
  for (gint64 r = 0; r < n_rows; r++)
    f->quantize_row (&p, x + r * n_cols, q + r * row_bytes, n_cols);
  return q;
}

static guint8 *
cpu_quantize (const QbFormat *f, const float *x, gint64 n_rows, gint64 n_cols)
{
  return cpu_quantize_imp (f, x, n_rows, n_cols, NULL);
}

/* Bytes and dequantized values of the device for rows of x (with
 * importance imp when not NULL); FALSE when the device reported
 * non-finite values. */
static gboolean
device_quantize_imp (const QbFormat *f, const float *x, gint64 n_rows, gint64 n_cols,
                     const float *imp, guint8 *q, float *y)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbDeviceQuantizer) dq = qb_device_quantizer_new (test_device (), f, n_cols, n_rows,
                                                             absmax_of (x, n_rows * n_cols),
                                                             NULL, &error);
  gint64 slab;
  guint64 row_bytes = 0;
  gboolean nonfinite = FALSE;

  g_assert_no_error (error);
  if (imp != NULL)
    g_assert_true (qb_device_quantizer_set_importance (dq, imp, &error));
  g_assert_no_error (error);
  slab = qb_device_quantizer_slab_rows (dq);
  qb_format_row_bytes (f, n_cols, &row_bytes);
  for (gint64 r = 0; r < n_rows; r += slab)
    {
      gint64 n = MIN (slab, n_rows - r);
      g_assert_true (qb_device_quantizer_run (dq, x + r * n_cols, n, q + r * row_bytes,
                                              y + r * n_cols, NULL, NULL, &nonfinite, &error));
      g_assert_no_error (error);
      if (nonfinite)
        return FALSE;
    }
  return TRUE;
}

static gboolean
device_quantize (const QbFormat *f, const float *x, gint64 n_rows, gint64 n_cols,
                 guint8 *q, float *y)
{
  return device_quantize_imp (f, x, n_rows, n_cols, NULL, q, y);
}

/* The device reproduces llama.cpp's TYPE.bin and TYPE.dequant.f32. */
static void
test_golden (gconstpointer data)
{
  const QbFormat *f = qb_format_find (data);
  g_autofree char *bin_name = g_strdup_printf ("%s.bin", f->name);
  g_autofree char *deq_name = g_strdup_printf ("%s.dequant.f32", f->name);
  g_autoptr(GBytes) input = NULL, bin = NULL, deq = NULL;
  g_autofree guint8 *q = NULL;
  g_autofree float *y = NULL;
  gsize n_bin = 0;

  if (test_device () == NULL || (input = qb_test_golden ("input.f32")) == NULL)
    return;
  bin = qb_test_golden (bin_name);
  deq = qb_test_golden (deq_name);
  g_assert_cmpuint (g_bytes_get_size (input), ==, sizeof (float) * GOLDEN_ROWS * GOLDEN_COLS);
  q = g_malloc (g_bytes_get_size (bin));
  y = g_new (float, GOLDEN_ROWS * GOLDEN_COLS);
  g_assert_true (device_quantize (f, g_bytes_get_data (input, NULL), GOLDEN_ROWS, GOLDEN_COLS, q, y));
  g_assert_cmpmem (q, g_bytes_get_size (bin), g_bytes_get_data (bin, &n_bin), n_bin);
  g_assert_cmpmem (y, sizeof (float) * GOLDEN_ROWS * GOLDEN_COLS,
                   g_bytes_get_data (deq, NULL), g_bytes_get_size (deq));
}

/* With llama.cpp's importance weights: TYPE-IMATRIX.bin and its
 * dequantized values (Q8_0 ignores them: TYPE.bin). */
static void
test_golden_imatrix (gconstpointer data)
{
  const QbFormat *f = qb_format_find (data);
  const char *sfx = f->dtype == QB_DTYPE_Q8_0 ? "" : "-IMATRIX";
  g_autofree char *bin_name = g_strdup_printf ("%s%s.bin", f->name, sfx);
  g_autofree char *deq_name = g_strdup_printf ("%s%s.dequant.f32", f->name, sfx);
  g_autoptr(GBytes) input = NULL, imatrix = NULL, bin = NULL, deq = NULL;
  g_autofree guint8 *q = NULL;
  g_autofree float *y = NULL;
  gsize n_bin = 0;

  if (test_device () == NULL || (input = qb_test_golden ("input.f32")) == NULL)
    return;
  imatrix = qb_test_golden ("imatrix.f32");
  bin = qb_test_golden (bin_name);
  deq = qb_test_golden (deq_name);
  g_assert_cmpuint (g_bytes_get_size (imatrix), ==, sizeof (float) * GOLDEN_COLS);
  q = g_malloc (g_bytes_get_size (bin));
  y = g_new (float, GOLDEN_ROWS * GOLDEN_COLS);
  g_assert_true (device_quantize_imp (f, g_bytes_get_data (input, NULL), GOLDEN_ROWS, GOLDEN_COLS,
                                      g_bytes_get_data (imatrix, NULL), q, y));
  g_assert_cmpmem (q, g_bytes_get_size (bin), g_bytes_get_data (bin, &n_bin), n_bin);
  g_assert_cmpmem (y, sizeof (float) * GOLDEN_ROWS * GOLDEN_COLS,
                   g_bytes_get_data (deq, NULL), g_bytes_get_size (deq));
}

/* Values that take every branch of the kernels: exact halves, ties of
 * opposite sign, zeros of both signs, zero and constant blocks,
 * subnormals, blocks so small that 1/d overflows, huge values. */
static float
awkward_value (GRand *rand, int block)
{
  float scale = ldexpf (1.0f, g_rand_int_range (rand, -30, 30));

  switch (block % 8)
    {
    case 0: return 0.0f;                                   /* zero block */
    case 1: return (block & 8) ? -0.0f : 0.25f;            /* constant, or -0 */
    case 2: return 1e-40f * g_rand_int_range (rand, -8, 9);    /* subnormal block */
    case 3: return g_rand_boolean (rand) ? 2.0f : -2.0f;   /* opposite-sign ties */
    case 4: return scale * (g_rand_int_range (rand, -16, 17) + 0.5f) / 16.0f;
    case 5: return g_rand_int_range (rand, 0, 4) == 0 ? -0.0f : scale * (float) g_rand_double_range (rand, -1, 1);
    case 6: return 3e37f * (float) g_rand_double_range (rand, -1, 1);
    default: return (float) g_rand_double_range (rand, -1, 1);
    }
}

/* Importance for awkward blocks: zeros, subnormals, huge and plain
 * weights, column by column. */
static float *
awkward_importance (gint64 n_cols)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (31);
  float *imp = g_new (float, n_cols);

  for (gint64 j = 0; j < n_cols; j++)
    switch (g_rand_int_range (rand, 0, 6))
      {
      case 0:  imp[j] = 0.0f; break;
      case 1:  imp[j] = 1e-41f; break;
      case 2:  imp[j] = 1e30f; break;
      default: imp[j] = (float) g_rand_double_range (rand, 0, 4); break;
      }
  return imp;
}

static void
awkward_compare (const QbFormat *f, gboolean with_importance)
{
  /* Whole-row formats: a row whose codes end inside a byte. */
  const gint64 n_rows = 37, n_cols = f->scope == QB_SCOPE_BLOCK ? 256 * 3 : 773;
  g_autoptr(GRand) rand = g_rand_new_with_seed (13);
  g_autofree float *x = g_new (float, n_rows * n_cols);
  g_autofree float *y = g_new (float, n_rows * n_cols);
  g_autofree float *y_cpu = g_new (float, n_rows * n_cols);
  g_autofree float *imp = with_importance ? awkward_importance (n_cols) : NULL;
  g_autofree guint8 *q_cpu = NULL, *q = NULL;
  guint64 row_bytes = 0;

  if (test_device () == NULL)
    return;
  for (gint64 i = 0; i < n_rows * n_cols; i++)
    x[i] = awkward_value (rand, (int) (i / 32 + i / n_cols));
  q_cpu = cpu_quantize_imp (f, x, n_rows, n_cols, imp);
  qb_format_row_bytes (f, n_cols, &row_bytes);
  q = g_malloc (row_bytes * n_rows);
  g_assert_true (device_quantize_imp (f, x, n_rows, n_cols, imp, q, y));
  g_assert_cmpmem (q, row_bytes * n_rows, q_cpu, row_bytes * n_rows);
  for (gint64 r = 0; r < n_rows; r++)
    f->dequantize_row (&(QbQuantParams) { .format = f, .tensor_absmax = absmax_of (x, n_rows * n_cols) },
                       q_cpu + r * row_bytes, y_cpu + r * n_cols, n_cols);
  g_assert_cmpmem (y, sizeof (float) * n_rows * n_cols, y_cpu, sizeof (float) * n_rows * n_cols);
}

static void
test_awkward (gconstpointer data)
{
  awkward_compare (qb_format_find (data), FALSE);
}

static void
test_awkward_imatrix (gconstpointer data)
{
  awkward_compare (qb_format_find (data), TRUE);
}

/* NF4 sends a value exactly on a midpoint between two levels down: blocks
 * of midpoints (and their neighbours) against absmax 1 and 2. */
static void
test_nf4_midpoints (void)
{
  const QbFormat *f = qb_format_find ("NF4");
  const QbQuantParams p = { .format = f };
  guint8 unit[36] = { 0 };
  float levels[64], x[4 * 64], y[4 * 64], y_cpu[4 * 64];
  g_autofree guint8 *q_cpu = NULL;
  guint8 q[4 * 36];

  if (test_device () == NULL)
    return;
  /* The levels, read back from a block of scale 1 holding indices 0..15. */
  memcpy (unit, &(float) { 1.0f }, sizeof (float));
  for (int j = 0; j < 32; j++)
    unit[4 + j] = (guint8) (((2 * j) % 16) << 4 | ((2 * j + 1) % 16));
  f->dequantize_row (&p, unit, levels, 64);
  for (int b = 0; b < 4; b++)
    for (int j = 0; j < 64; j++)
      {
        int k = j % 15;
        float mid = (levels[k] + levels[k + 1]) / 2, scale = b % 2 ? 2.0f : 1.0f;
        float v = j == 0 ? 1.0f : b < 2 ? mid : nextafterf (mid, j % 2 ? 2.0f : -2.0f);
        x[b * 64 + j] = scale * v;
      }
  q_cpu = cpu_quantize (f, x, 4, 64);
  g_assert_true (device_quantize (f, x, 4, 64, q, y));
  g_assert_cmpmem (q, sizeof q, q_cpu, sizeof q);
  for (int b = 0; b < 4; b++)
    f->dequantize_row (&p, q_cpu + 36 * b, y_cpu + 64 * b, 64);
  g_assert_cmpmem (y, sizeof y, y_cpu, sizeof y_cpu);
}

/* NaN or an infinity is reported, not quantized: the CPU decides. */
static void
test_nonfinite (void)
{
  const QbFormat *f = qb_format_find ("Q4_0");
  float x[64] = { 0 };
  float y[64];
  guint8 q[36];

  if (test_device () == NULL)
    return;
  x[40] = NAN;
  g_assert_false (device_quantize (f, x, 1, 64, q, y));
  x[40] = -INFINITY;
  g_assert_false (device_quantize (f, x, 1, 64, q, y));
  x[40] = 1;
  g_assert_true (device_quantize (f, x, 1, 64, q, y));
}

/* ---- whole tensors through qb_tensor_quantize ------------------------------ */

static void
assert_close (double a, double b, const char *what, const char *tensor)
{
  if (a == b || (isnan (a) && isnan (b)))
    return;
  if (!(fabs (a - b) <= 1e-6 * MAX (fabs (a), fabs (b))))
    g_error ("%s: %s differs: %.17g on CPU, %.17g on the device", tensor, what, a, b);
}

static void
assert_same_histogram (const QbHistogram *a, const QbHistogram *b)
{
  g_assert_cmpuint (a->n_bins, ==, b->n_bins);
  g_assert_cmpfloat (a->lo, ==, b->lo);
  g_assert_cmpfloat (a->hi, ==, b->hi);
  g_assert_cmpmem (a->counts, sizeof (guint64) * a->n_bins, b->counts, sizeof (guint64) * b->n_bins);
}

/* One tensor on the CPU and on the device, measured or not, with
 * importance imp (ne[0] weights) or without. */
static void
compare_tensor (QbModel *model, guint index, const QbFormat *f, QbWorkers *workers,
                gboolean no_metrics, const float *imp)
{
  const QbTensor *t = qb_model_get_tensor (model, index);
  QbQuantizeSpec spec = { .format = f, .no_metrics = no_metrics, .importance = imp };
  guint64 bytes = 0, slabs;
  g_autofree guint8 *q_cpu = NULL, *q_dev = NULL;
  g_autofree float *y_cpu = g_new (float, t->n_params), *y_dev = g_new (float, t->n_params);
  g_autoptr(QbTensorResult) cpu = NULL, dev = NULL;
  g_autoptr(GError) error = NULL;
  const QbTensorMetrics *a, *b;

  g_assert_true (qb_format_tensor_bytes (f, t->ne[0], qb_tensor_n_rows (t), &bytes));
  q_cpu = g_malloc (bytes);
  q_dev = g_malloc (bytes);

  g_assert_true (qb_device_set_default ("cpu", NULL));
  slabs = qb_device_quantize_slabs ();
  cpu = qb_tensor_quantize (model, index, &spec, workers,
                            &(QbQuantizeOutput) { .data = q_cpu, .f32 = y_cpu },
                            NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (qb_device_quantize_slabs (), ==, slabs);

  g_assert_true (qb_device_set_default ("opencl:0", NULL));
  dev = qb_tensor_quantize (model, index, &spec, workers,
                            &(QbQuantizeOutput) { .data = q_dev, .f32 = y_dev },
                            NULL, NULL, NULL, &error);
  g_assert_true (qb_device_set_default ("cpu", NULL));
  g_assert_no_error (error);
  /* It ran on the device, not on a silent fallback. */
  g_assert_cmpuint (qb_device_quantize_slabs (), >, slabs);

  g_assert_cmpmem (q_dev, bytes, q_cpu, bytes);
  g_assert_cmpmem (y_dev, sizeof (float) * t->n_params, y_cpu, sizeof (float) * t->n_params);
  a = &cpu->metrics;
  b = &dev->metrics;
  assert_close (a->mse, b->mse, "mse", t->name);
  assert_close (a->rmse_rel, b->rmse_rel, "rmse_rel", t->name);
  assert_close (a->sqnr_db, b->sqnr_db, "sqnr_db", t->name);
  assert_close (a->cosine, b->cosine, "cosine", t->name);
  assert_close (a->max_abs_err, b->max_abs_err, "max_abs_err", t->name);
  assert_close (a->outlier_share, b->outlier_share, "outlier_share", t->name);
  assert_close (a->kurtosis, b->kurtosis, "kurtosis", t->name);
  assert_close (a->wmse, b->wmse, "wmse", t->name);
  assert_close (a->out_rel_err, b->out_rel_err, "out_rel_err", t->name);
  g_assert_true (imp == NULL || no_metrics || !isnan (b->wmse));
  if (no_metrics)
    {
      g_assert_null (dev->hist_original);
      return;
    }
  assert_same_histogram (cpu->hist_original, dev->hist_original);
  assert_same_histogram (cpu->hist_quantized, dev->hist_quantized);
  assert_same_histogram (cpu->hist_error, dev->hist_error);
  g_assert_cmpuint (cpu->n_channels, ==, dev->n_channels);
  g_assert_cmpmem (cpu->channel_min, sizeof (float) * cpu->n_channels,
                   dev->channel_min, sizeof (float) * dev->n_channels);
  g_assert_cmpmem (cpu->channel_max, sizeof (float) * cpu->n_channels,
                   dev->channel_max, sizeof (float) * dev->n_channels);
}

/* Every tensor whose rows fit the format, in every ported format. */
static void
compare_model (QbModel *model, gboolean no_metrics)
{
  g_autoptr(QbWorkers) workers = qb_workers_new (2);
  guint n = 0;

  for (gsize k = 0; k < G_N_ELEMENTS (formats); k++)
    {
      const QbFormat *f = qb_format_find (formats[k]);
      for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
        {
          const QbTensor *t = qb_model_get_tensor (model, i);
          if (t->n_dims < 2 || !qb_format_fits (f, t->ne[0]))
            continue;
          compare_tensor (model, i, f, workers, no_metrics, NULL);
          n++;
        }
    }
  g_test_message ("%u tensor×format pairs identical", n);
  g_assert_cmpuint (n, >, 0);
}

/* Every tensor the importance matrix has an entry for, in every format
 * whose importance path the device has. */
static void
compare_model_imatrix (QbModel *model, QbImatrix *im, gboolean no_metrics)
{
  g_autoptr(QbWorkers) workers = qb_workers_new (2);
  guint n = 0;

  for (gsize k = 0; k < G_N_ELEMENTS (imatrix_formats); k++)
    {
      const QbFormat *f = qb_format_find (imatrix_formats[k]);
      for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
        {
          const QbTensor *t = qb_model_get_tensor (model, i);
          guint n_cols = 0;
          const float *imp = qb_imatrix_get (im, t->name, &n_cols);
          if (imp == NULL || n_cols != t->ne[0] || t->n_dims < 2 || !qb_format_fits (f, t->ne[0]))
            continue;
          compare_tensor (model, i, f, workers, no_metrics, imp);
          n++;
        }
    }
  g_test_message ("%u tensor×format pairs with importance identical", n);
  g_assert_cmpuint (n, >, 0);
}

/* stories260K's importance matrix from its own forward pass (CPU). */
static QbImatrix *
stories_imatrix (QbModel *model)
{
  g_autoptr(GError) error = NULL;
  QbLlama *llama = qb_llama_new (model, &error);
  QbActivationStats *stats;
  QbImatrix *im;

  g_assert_no_error (error);
  g_assert_true (qb_device_set_default ("cpu", NULL));
  stats = qb_test_activation_stats (llama, 64, 4);
  im = qb_activation_stats_get_imatrix (stats, FALSE);
  qb_activation_stats_free (stats);
  qb_llama_free (llama);
  return im;
}

static void
test_synthetic_model (void)
{
  /* F16 matrices: the host converts as it reads; rows of 288 values end
   * in a short stripe; the 16001 rows of the embedding span two slabs and
   * share channel buckets of 4 rows, the last one short. */
  QbTestLlama spec = { .n_layer = 1, .n_embd = 288, .n_ff = 512, .n_vocab = 16001,
                       .n_head = 4, .n_head_kv = 4, .dtype = QB_DTYPE_F16, .seed = 7 };
  QbTestModelFixture f;

  if (test_device () == NULL)
    return;
  qb_test_model_fixture_open (&f, &spec);
  compare_model (f.model, FALSE);
  compare_model (f.model, TRUE);
  qb_test_model_fixture_close (&f);
}

static void
test_stories (void)
{
  g_autofree char *path = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(GError) error = NULL;

  if (test_device () == NULL || (path = qb_test_shared_path ("models/stories260K.gguf")) == NULL)
    return;
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  compare_model (model, FALSE);
}

/* stories260K with its importance matrix, whole tensors through
 * qb_tensor_quantize: bytes, dequantized values, histograms and ranges
 * identical, metrics (weighted MSE and the output error estimate
 * included) within 1e-6, measured and not. */
static void
test_stories_imatrix (void)
{
  g_autofree char *path = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbImatrix) im = NULL;
  g_autoptr(GError) error = NULL;

  if (test_device () == NULL || (path = qb_test_shared_path ("models/stories260K.gguf")) == NULL)
    return;
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  im = stories_imatrix (model);
  compare_model_imatrix (model, im, FALSE);
  compare_model_imatrix (model, im, TRUE);
}

/* A format whose importance path has no kernel (IQ4_NL here) says so
 * once and rounds on the CPU: the CPU's bytes, no slab on the device. */
static void
test_imatrix_fallback (void)
{
  g_autofree char *path = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbImatrix) im = NULL;
  g_autoptr(QbWorkers) workers = qb_workers_new (2);
  g_autoptr(GError) error = NULL;
  const QbFormat *f = qb_format_find ("IQ4_NL");
  guint n = 0;

  if (test_device () == NULL || (path = qb_test_shared_path ("models/stories260K.gguf")) == NULL)
    return;
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  im = stories_imatrix (model);
  qb_test_log_clear ();
  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      QbQuantizeSpec spec = { .format = f };
      guint n_cols = 0;
      guint64 bytes = 0, slabs = qb_device_quantize_slabs ();
      g_autofree guint8 *q_cpu = NULL, *q_dev = NULL;
      g_autoptr(QbTensorResult) a = NULL, b = NULL;

      spec.importance = qb_imatrix_get (im, t->name, &n_cols);
      if (spec.importance == NULL || n_cols != t->ne[0] || !qb_format_fits (f, t->ne[0]))
        continue;
      g_assert_true (qb_format_tensor_bytes (f, t->ne[0], qb_tensor_n_rows (t), &bytes));
      q_cpu = g_malloc (bytes);
      q_dev = g_malloc (bytes);
      a = qb_tensor_quantize (model, i, &spec, workers, &(QbQuantizeOutput) { .data = q_cpu },
                              NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (qb_device_set_default ("opencl:0", NULL));
      b = qb_tensor_quantize (model, i, &spec, workers, &(QbQuantizeOutput) { .data = q_dev },
                              NULL, NULL, NULL, &error);
      g_assert_true (qb_device_set_default ("cpu", NULL));
      g_assert_no_error (error);
      g_assert_cmpuint (qb_device_quantize_slabs (), ==, slabs);
      g_assert_cmpmem (q_dev, bytes, q_cpu, bytes);
      g_assert_cmpfloat (a->metrics.wmse, ==, b->metrics.wmse);
      n++;
    }
  g_assert_cmpuint (n, >, 1);
  /* Said once, however many tensors. */
  g_assert_nonnull (strstr (qb_test_log_text (), "IQ4_NL has no device kernel for rounding with an importance matrix"));
  g_assert_null (strstr (strstr (qb_test_log_text (), "IQ4_NL has no") + 1, "IQ4_NL has no"));
  }

/* stories260K's rows are 64 and 172 values long, shorter than a
 * K-quant super-block: its weights, each tensor read whole and cut into
 * rows of 256, go through every ported format on both sides. */
static void
stories_regrouped (gboolean with_importance)
{
  g_autofree char *path = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(GError) error = NULL;
  const gint64 n_cols = 256;
  g_autoptr(QbImatrix) im = NULL;
  guint n = 0;

  if (test_device () == NULL || (path = qb_test_shared_path ("models/stories260K.gguf")) == NULL)
    return;
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  if (with_importance)
    im = stories_imatrix (model);
  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);
      gint64 n_rows = t->n_params / n_cols;
      g_autofree float *x = NULL, *y = NULL, *y_cpu = NULL, *imp = NULL;

      if (t->n_dims < 2 || t->n_params % n_cols != 0)
        continue;
      if (with_importance)
        {
          /* The tensor's own columns' importance, repeated along the
           * longer rows. */
          guint n_imp = 0;
          const float *w = qb_imatrix_get (im, t->name, &n_imp);
          if (w == NULL || n_imp != t->ne[0])
            continue;
          imp = g_new (float, n_cols);
          for (gint64 j = 0; j < n_cols; j++)
            imp[j] = w[j % n_imp];
        }
      x = g_new (float, t->n_params);
      y = g_new (float, t->n_params);
      y_cpu = g_new (float, t->n_params);
      g_assert_true (qb_model_read_rows (model, i, 0, qb_tensor_n_rows (t), x, &error));
      g_assert_no_error (error);
      for (guint k = 0; k < qb_format_count (); k++)
        {
          const QbFormat *f = qb_format_get (k);
          g_autofree guint8 *q_cpu = NULL, *q = NULL;
          guint64 row_bytes = 0;

          if (!qb_device_quantize_supports (f) || !qb_format_fits (f, n_cols) ||
              (with_importance && !qb_device_quantize_supports_importance (f)))
            continue;
          q_cpu = cpu_quantize_imp (f, x, n_rows, n_cols, imp);
          qb_format_row_bytes (f, n_cols, &row_bytes);
          q = g_malloc (row_bytes * n_rows);
          g_assert_true (device_quantize_imp (f, x, n_rows, n_cols, imp, q, y));
          if (memcmp (q, q_cpu, row_bytes * n_rows) != 0)
            g_error ("%s in %s: the device's bytes differ from the CPU's", t->name, f->name);
          for (gint64 r = 0; r < n_rows; r++)
            f->dequantize_row (&(QbQuantParams) { .format = f, .tensor_absmax = absmax_of (x, t->n_params) },
                               q_cpu + r * row_bytes, y_cpu + r * n_cols, n_cols);
          g_assert_cmpmem (y, sizeof (float) * t->n_params, y_cpu, sizeof (float) * t->n_params);
          n++;
        }
    }
  g_test_message ("%u tensor×format pairs identical", n);
  g_assert_cmpuint (n, >, 0);
}

static void
test_stories_regrouped (void)
{
  stories_regrouped (FALSE);
}

static void
test_stories_regrouped_imatrix (void)
{
  stories_regrouped (TRUE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  qb_test_log_keep ();
  for (gsize k = 0; k < G_N_ELEMENTS (formats); k++)
    {
      g_autofree char *p1 = g_strdup_printf ("/quantize-device/%s/golden", formats[k]);
      if (qb_format_find (formats[k])->family == QB_FAMILY_GGML)
        g_test_add_data_func (p1, formats[k], test_golden);
    }
  /* Awkward blocks in every format with a device kernel. */
  for (guint i = 0; i < qb_format_count (); i++)
    {
      const QbFormat *f = qb_format_get (i);
      g_autofree char *p = g_strdup_printf ("/quantize-device/%s/awkward", f->name);
      if (qb_device_quantize_supports (f))
        g_test_add_data_func (p, f->name, test_awkward);
    }
  /* With importance: llama.cpp's golden files and awkward blocks. */
  for (gsize k = 0; k < G_N_ELEMENTS (imatrix_formats); k++)
    {
      g_autofree char *p1 = g_strdup_printf ("/quantize-device/%s/golden-imatrix", imatrix_formats[k]);
      g_autofree char *p2 = g_strdup_printf ("/quantize-device/%s/awkward-imatrix", imatrix_formats[k]);
      g_test_add_data_func (p1, imatrix_formats[k], test_golden_imatrix);
      g_test_add_data_func (p2, imatrix_formats[k], test_awkward_imatrix);
    }
  g_test_add_func ("/quantize-device/nonfinite", test_nonfinite);
  g_test_add_func ("/quantize-device/nf4-midpoints", test_nf4_midpoints);
  g_test_add_func ("/quantize-device/synthetic-model", test_synthetic_model);
  g_test_add_func ("/quantize-device/stories260K", test_stories);
  g_test_add_func ("/quantize-device/stories260K-regrouped", test_stories_regrouped);
  g_test_add_func ("/quantize-device/stories260K-imatrix", test_stories_imatrix);
  g_test_add_func ("/quantize-device/stories260K-regrouped-imatrix", test_stories_regrouped_imatrix);
  g_test_add_func ("/quantize-device/imatrix-fallback", test_imatrix_fallback);
  return g_test_run ();
}
