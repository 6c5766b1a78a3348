/* SPDX-License-Identifier: MIT */
/* test-calib-device.c — calibration statistics and GPTQ on an OpenCL device
 * (PoCL's CPU device in CI) against the CPU on stories260K: the importance
 * matrix and XᵀX within tolerance, GPTQ's output in the same formats and
 * layout with its output error within tolerance, cancel midway, a device
 * failure (injected) that falls back to the CPU with a message, and the
 * sensitivity study's passes (kept and resumed residual streams) there. */
#include <math.h>
#include <string.h>

#include "qb-activation-stats.h"
#include "qb-device-private.h"
#include "qb-gptq-device-private.h"
#include "qb-job.h"
#include "qb-llama-device-private.h"
#include "qb-test-util.h"

#define CTX    64
#define CHUNKS 8

typedef struct {
  QbModel       *model;
  QbLlama       *llama;
  QbCalibration *calib;
} Stories;

static gboolean
stories_open (Stories *s)
{
  g_autofree char *model_path = NULL, *text = NULL;
  g_autoptr(GPtrArray) devices = qb_device_list (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  const char *paths[2] = { NULL, NULL };
  QbCalibrationOptions co;

  memset (s, 0, sizeof *s);
  if (devices->len == 0)
    {
      g_test_skip ("no OpenCL device (install pocl-opencl-icd)");
      return FALSE;
    }
  if ((model_path = qb_test_shared_path ("models/stories260K.gguf")) == NULL
      || (text = qb_test_shared_path ("text/tinystories-val.txt")) == NULL)
    return FALSE;
  s->model = qb_model_open (model_path, &error);
  g_assert_no_error (error);
  s->llama = qb_llama_new (s->model, &error);
  g_assert_no_error (error);
  qb_llama_set_threads (s->llama, 2);
  tok = qb_tokenizer_new_for_model (s->model, &error);
  g_assert_no_error (error);
  qb_calibration_options_init (&co);
  co.n_ctx = CTX;
  co.n_chunks = CHUNKS;
  co.no_cache = TRUE;
  paths[0] = text;
  s->calib = qb_calibration_new (s->model, tok, paths, &co, NULL, &error);
  g_assert_no_error (error);
  return TRUE;
}

static void
stories_close (Stories *s)
{
  g_assert_true (qb_device_set_default ("cpu", NULL));
  qb_device_inject_fault (0);
  g_clear_pointer (&s->calib, qb_calibration_unref);
  g_clear_pointer (&s->llama, qb_llama_free);
  g_clear_object (&s->model);
}

/* Every input's importance and XᵀX, on device (no cache). */
static QbActivationStats *
stats_on (Stories *s, const char *device, GCancellable *cancellable, GError **error)
{
  QbStatsOptions so;

  g_assert_true (qb_device_set_default (device, NULL));
  qb_stats_options_init (&so);
  so.gram_all = TRUE;
  so.no_cache = TRUE;
  return qb_activation_stats_compute (s->llama, s->calib, &so, NULL, NULL, cancellable, error);
}

/* The largest difference between the two statistics, relative to the
 * importance's mean (imatrix) and to √(XᵀX_ii · XᵀX_jj) (XᵀX). */
static void
compare_stats (Stories *s, QbActivationStats *a, QbActivationStats *b, double *imp_err,
               double *gram_err)
{
  g_autoptr(QbImatrix) ia = qb_activation_stats_get_imatrix (a, TRUE);
  g_autoptr(QbImatrix) ib = qb_activation_stats_get_imatrix (b, TRUE);
  guint entries = 0;

  *imp_err = *gram_err = 0;
  g_assert_cmpuint (qb_imatrix_get_n_entries (ia), ==, qb_imatrix_get_n_entries (ib));
  for (guint t = 0; t < qb_model_get_n_tensors (s->model); t++)
    {
      const char *name = qb_model_get_tensor (s->model, t)->name;
      guint n = 0, m = 0;
      const float *x = qb_imatrix_get (ia, name, &n), *y = qb_imatrix_get (ib, name, &m);
      guint64 ra = 0, rb = 0;
      const double *ga, *gb;
      g_autofree double *gcopy = NULL;
      double mean = 0;

      if (x == NULL)
        {
          g_assert_null (y);
          continue;
        }
      entries++;
      g_assert_cmpuint (n, ==, m);
      g_assert_cmpuint (qb_imatrix_get_samples (ia, name), ==, qb_imatrix_get_samples (ib, name));
      for (guint j = 0; j < n; j++)
        mean += x[j] / n;
      for (guint j = 0; j < n; j++)
        *imp_err = MAX (*imp_err, fabs (x[j] - y[j]) / mean);
      /* One mapping at a time: copy the first. */
      ga = qb_activation_stats_get_gram (a, name, &ra);
      g_assert_nonnull (ga);
      gcopy = g_memdup2 (ga, sizeof (double) * n * n);
      gb = qb_activation_stats_get_gram (b, name, &rb);
      g_assert_nonnull (gb);
      g_assert_cmpuint (ra, ==, rb);
      for (guint i = 0; i < n; i++)
        for (guint j = 0; j < n; j++)
          *gram_err = MAX (*gram_err, fabs (gcopy[i * n + j] - gb[i * n + j])
                                      / sqrt (gcopy[i * n + i] * gcopy[j * n + j]));
    }
  g_assert_cmpuint (entries, >, 0);
}

/* The importance matrix and XᵀX of every input, device against CPU. */
static void
test_stats (void)
{
  Stories s;
  g_autoptr(GError) error = NULL;
  QbActivationStats *cpu, *dev;
  guint64 passes;
  double imp_err, gram_err;

  if (!stories_open (&s))
    return;
  cpu = stats_on (&s, "cpu", NULL, &error);
  g_assert_no_error (error);
  passes = qb_llama_device_passes ();
  dev = stats_on (&s, "opencl:0", NULL, &error);
  g_assert_no_error (error);
  /* Every chunk ran on the device (no silent fallback). */
  g_assert_cmpuint (qb_llama_device_passes () - passes, ==, CHUNKS);
  compare_stats (&s, cpu, dev, &imp_err, &gram_err);
  g_test_message ("device vs CPU: importance within %.3g of its mean, XᵀX within %.3g of "
                  "sqrt(diag·diag)", imp_err, gram_err);
  /* The two forward passes differ in float rounding only. */
  g_assert_cmpfloat (imp_err, <, 1e-4);
  g_assert_cmpfloat (gram_err, <, 1e-4);
  qb_activation_stats_free (cpu);
  qb_activation_stats_free (dev);
  stories_close (&s);
}

static void
cancel_midway (const QbStatsProgress *p, gpointer data)
{
  if (p->fraction >= 0.5)
    g_cancellable_cancel (data);
}

/* Cancelled midway on the device: the cancel error, nothing returned. */
static void
test_cancel (void)
{
  Stories s;
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  QbStatsOptions so;
  guint64 passes;

  if (!stories_open (&s))
    return;
  g_assert_true (qb_device_set_default ("opencl:0", NULL));
  qb_stats_options_init (&so);
  so.gram_all = TRUE;
  so.no_cache = TRUE;
  passes = qb_llama_device_passes ();
  g_assert_null (qb_activation_stats_compute (s.llama, s.calib, &so, cancel_midway, cancellable,
                                              cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* It ran on the device, and stopped within a chunk of the cancel. */
  g_assert_cmpuint (qb_llama_device_passes () - passes, >=, CHUNKS / 2 - 1);
  g_assert_cmpuint (qb_llama_device_passes () - passes, <=, CHUNKS / 2 + 1);
  stories_close (&s);
}

/* A device that fails midway (the third step of the statistics: an
 * out-of-resources error) leaves the pass to the CPU: a message, and the
 * CPU's statistics exactly. */
static void
test_fault (void)
{
  Stories s;
  g_autoptr(GError) error = NULL;
  QbActivationStats *cpu, *dev;
  double imp_err, gram_err;

  if (!stories_open (&s))
    return;
  cpu = stats_on (&s, "cpu", NULL, &error);
  g_assert_no_error (error);
  qb_test_log_clear ();
  qb_device_inject_fault (30);
  dev = stats_on (&s, "opencl:0", NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (qb_test_log_text (), "injected fault"));
  g_assert_nonnull (strstr (qb_test_log_text (), "calibrating on the CPU"));
  compare_stats (&s, cpu, dev, &imp_err, &gram_err);
  g_assert_cmpfloat (imp_err, ==, 0);
  g_assert_cmpfloat (gram_err, ==, 0);
    qb_activation_stats_free (cpu);
  qb_activation_stats_free (dev);
  stories_close (&s);
}

/* ---- the sensitivity study's passes ------------------------------------------ */

/* Passes that keep the residual stream, and passes from it (what a
 * sensitivity study runs), on the device: the streams within float
 * rounding of the CPU's, a pass from a kept stream gives the whole pass's
 * logits bit for bit, and both ran there. */
static void
test_resumable (void)
{
  Stories s;
  g_autoptr(GError) error = NULL;
  const QbLlamaParams *p;
  gint32 tokens[CTX];
  gsize stream, V;
  g_autofree float *hc = NULL, *hd = NULL, *lc = NULL, *ld = NULL, *again = NULL;
  guint64 passes;
  double worst = 0, scale = 0;

  if (!stories_open (&s))
    return;
  p = qb_llama_get_params (s.llama);
  stream = (gsize) CTX * p->n_embd;
  V = p->n_vocab;
  hc = g_new (float, stream * (p->n_layer + 1));
  hd = g_new (float, stream * (p->n_layer + 1));
  lc = g_new (float, 16 * V);
  ld = g_new (float, 16 * V);
  again = g_new (float, 16 * V);
  qb_calibration_get_chunk (s.calib, 0, tokens);
  g_assert_true (qb_device_set_default ("cpu", NULL));
  g_assert_true (qb_llama_forward_keep (s.llama, tokens, CTX, CTX - 16, lc, hc, NULL, &error));
  g_assert_true (qb_device_set_default ("opencl:0", NULL));
  passes = qb_llama_device_passes ();
  g_assert_true (qb_llama_forward_keep (s.llama, tokens, CTX, CTX - 16, ld, hd, NULL, &error));
  g_assert_no_error (error);
  for (gsize i = 0; i < stream * (p->n_layer + 1); i++)
    {
      worst = MAX (worst, fabs (hc[i] - hd[i]));
      scale = MAX (scale, fabs (hc[i]));
    }
  g_test_message ("kept streams: device within %.3g of the CPU's (largest value %.3g)", worst, scale);
  g_assert_cmpfloat (worst, <=, 1e-4 * scale);
  g_assert_true (qb_llama_forward_from (s.llama, 2, hd + 2 * stream, CTX, CTX - 16, again, NULL,
                                        &error));
  g_assert_no_error (error);
  g_assert_cmpmem (ld, sizeof (float) * 16 * V, again, sizeof (float) * 16 * V);
  g_assert_cmpuint (qb_llama_device_passes () - passes, ==, 2);
  stories_close (&s);
}

/* ---- GPTQ ------------------------------------------------------------------- */

static QbJob *
gptq_on (Stories *s, QbActivationStats *stats, const char *device, gboolean act_order)
{
  g_autoptr(QbPlan) plan = qb_plan_new ();
  g_autoptr(GError) error = NULL;
  QbJob *job;

  g_assert_true (qb_device_set_default (device, NULL));
  qb_plan_set_default_format (plan, "Q4_0");
  qb_plan_set_default_method (plan, "gptq");
  /* Batches of 16 columns: several updates even in 64-column rows. */
  qb_plan_set_option (plan, "gptq.block", "16");
  qb_plan_set_option (plan, "gptq.act_order", act_order ? "true" : "false");
  job = qb_job_new (s->model, plan);
  qb_job_set_keep_data (job, TRUE);
  qb_job_set_threads (job, 2);
  qb_activation_stats_attach (stats, job, FALSE);
  g_assert_true (qb_job_run (job, NULL, &error));
  g_assert_no_error (error);
  return job;
}

/* Same formats and bytes layout; output error (through XᵀX) per tensor
 * within 2 % of the CPU's, and at least 99 % of the bytes the same. */
static void
compare_jobs (Stories *s, QbJob *cpu, QbJob *dev, guint *n_gptq)
{
  guint64 same = 0, total = 0;
  double worst = 0;

  *n_gptq = 0;
  for (guint t = 0; t < qb_model_get_n_tensors (s->model); t++)
    {
      const QbTensorResult *rc = qb_job_get_result (cpu, t), *rd = qb_job_get_result (dev, t);
      const QbFormat *fc = NULL, *fd = NULL;
      g_autoptr(GBytes) bc = qb_job_get_tensor_data (cpu, t, &fc);
      g_autoptr(GBytes) bd = qb_job_get_tensor_data (dev, t, &fd);
      const guint8 *a, *b;
      gsize n;

      g_assert_nonnull (rc);
      g_assert_nonnull (rd);
      g_assert_cmpstr (rc->method, ==, rd->method);
      g_assert_true (fc == fd);
      g_assert_true ((bc == NULL) == (bd == NULL));
      if (bc == NULL)
        continue;
      g_assert_cmpuint (g_bytes_get_size (bc), ==, g_bytes_get_size (bd));
      a = g_bytes_get_data (bc, &n);
      b = g_bytes_get_data (bd, NULL);
      for (gsize i = 0; i < n; i++)
        same += a[i] == b[i];
      total += n;
      if (g_strcmp0 (rc->method, "gptq") != 0 || isnan (rc->metrics.out_rel_err))
        continue;
      (*n_gptq)++;
      worst = MAX (worst, fabs (rd->metrics.out_rel_err - rc->metrics.out_rel_err)
                          / rc->metrics.out_rel_err);
    }
  g_test_message ("GPTQ device vs CPU: %u tensors, output error within %.3g relative, "
                  "%.2f %% of the bytes identical", *n_gptq, worst, 100.0 * same / total);
  g_assert_cmpuint (*n_gptq, >, 0);
  g_assert_cmpfloat (worst, <, 0.02);
  g_assert_cmpfloat ((double) same / total, >, 0.99);
}

static void
test_gptq (void)
{
  Stories s;
  g_autoptr(GError) error = NULL;
  QbActivationStats *stats;
  guint n_gptq;

  if (!stories_open (&s))
    return;
  stats = stats_on (&s, "cpu", NULL, &error);
  g_assert_no_error (error);
  for (int act_order = 0; act_order < 2; act_order++)
    {
      g_autoptr(QbJob) cpu = gptq_on (&s, stats, "cpu", act_order);
      guint64 updates = qb_gptq_device_updates ();
      g_autoptr(QbJob) dev = gptq_on (&s, stats, "opencl:0", act_order);

      /* The updates ran on the device (no silent fallback). */
      g_assert_cmpuint (qb_gptq_device_updates (), >, updates);
      compare_jobs (&s, cpu, dev, &n_gptq);
    }
  qb_activation_stats_free (stats);
  stories_close (&s);
}

/* A device that fails at GPTQ's first update: a message, that tensor on
 * the CPU, the output still within tolerance. */
static void
test_gptq_fault (void)
{
  Stories s;
  g_autoptr(GError) error = NULL;
  QbActivationStats *stats;
  guint n_gptq;

  if (!stories_open (&s))
    return;
  stats = stats_on (&s, "cpu", NULL, &error);
  g_assert_no_error (error);
  {
    g_autoptr(QbJob) cpu = gptq_on (&s, stats, "cpu", FALSE);
    g_autoptr(QbJob) dev = NULL;

    qb_test_log_clear ();
    qb_device_inject_fault (20);
    dev = gptq_on (&s, stats, "opencl:0", FALSE);
    g_assert_nonnull (strstr (qb_test_log_text (), "running on the CPU"));
    g_assert_nonnull (strstr (qb_test_log_text (), "GPTQ of "));
    g_assert_nonnull (strstr (qb_test_log_text (), "injected fault"));
    compare_jobs (&s, cpu, dev, &n_gptq);
      }
  qb_activation_stats_free (stats);
  stories_close (&s);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  qb_test_log_keep ();
  g_test_add_func ("/calib-device/stats", test_stats);
  g_test_add_func ("/calib-device/cancel", test_cancel);
  g_test_add_func ("/calib-device/fault", test_fault);
  g_test_add_func ("/calib-device/resumable", test_resumable);
  g_test_add_func ("/calib-device/gptq", test_gptq);
  g_test_add_func ("/calib-device/gptq-fault", test_gptq_fault);
  return g_test_run ();
}
