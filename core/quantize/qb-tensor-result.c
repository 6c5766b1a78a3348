/* SPDX-License-Identifier: MIT */
/* qb-tensor-result.c — histograms and per-tensor results. */
#include "qb-tensor-result.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

QbHistogram *
qb_histogram_new (guint n_bins, double lo, double hi)
{
  QbHistogram *h = g_new0 (QbHistogram, 1);

  g_return_val_if_fail (n_bins > 0, NULL);
  /* A degenerate range (constant tensor) still gets a bin of some width. */
  if (!(hi > lo))
    {
      double pad = fabs (lo) > 0 ? fabs (lo) * 1e-3 : 1e-6;
      lo -= pad;
      hi += pad;
    }
  h->n_bins = n_bins;
  h->lo = lo;
  h->hi = hi;
  h->counts = g_new0 (guint64, n_bins);
  return h;
}

QbHistogram *
qb_histogram_copy (const QbHistogram *h)
{
  QbHistogram *c;

  if (h == NULL)
    return NULL;
  c = g_new (QbHistogram, 1);
  *c = *h;
  c->counts = g_memdup2 (h->counts, sizeof (guint64) * h->n_bins);
  return c;
}

void
qb_histogram_free (QbHistogram *h)
{
  if (h == NULL)
    return;
  g_free (h->counts);
  g_free (h);
}

void
qb_histogram_add (QbHistogram *h, const float *x, gint64 n)
{
  const double scale = h->n_bins / (h->hi - h->lo);
  const double lo = h->lo;
  const gint64 last = h->n_bins - 1;

  for (gint64 i = 0; i < n; i++)
    {
      double pos = (x[i] - lo) * scale;
      gint64 bin;

      if (!(pos >= 0))            /* below the range, or NaN */
        bin = 0;
      else if (pos >= (double) last)
        bin = last;
      else
        bin = (gint64) pos;
      h->counts[bin]++;
    }
}

guint64
qb_histogram_total (const QbHistogram *h)
{
  guint64 total = 0;

  for (guint i = 0; i < h->n_bins; i++)
    total += h->counts[i];
  return total;
}

typedef struct {
  double  key;
  guint64 count;
} KeyCount;

static int
compare_key (const void *a, const void *b)
{
  double x = ((const KeyCount *) a)->key, y = ((const KeyCount *) b)->key;
  return (x > y) - (x < y);
}

double
qb_histogram_quantile (const QbHistogram *h, double q, gboolean absolute)
{
  g_autofree KeyCount *bins = g_new (KeyCount, h->n_bins);
  double w = (h->hi - h->lo) / h->n_bins;
  guint64 total = qb_histogram_total (h), target, seen = 0;

  for (guint i = 0; i < h->n_bins; i++)
    {
      double center = h->lo + (i + 0.5) * w;
      bins[i].key = absolute ? fabs (center) : center;
      bins[i].count = h->counts[i];
    }
  if (absolute)
    qsort (bins, h->n_bins, sizeof (KeyCount), compare_key);
  target = (guint64) ceil (CLAMP (q, 0, 1) * total);
  for (guint i = 0; i < h->n_bins; i++)
    {
      seen += bins[i].count;
      if (seen >= target && seen > 0)
        return bins[i].key;
    }
  return bins[h->n_bins - 1].key;
}

gint64
qb_channel_rows_per_bucket (gint64 n_rows)
{
  if (n_rows <= QB_CHANNEL_MAX_BUCKETS)
    return 1;
  return (n_rows + QB_CHANNEL_MAX_BUCKETS - 1) / QB_CHANNEL_MAX_BUCKETS;
}

guint
qb_channel_n_buckets (gint64 n_rows)
{
  gint64 per = qb_channel_rows_per_bucket (n_rows);

  return n_rows <= 0 ? 0 : (guint) ((n_rows + per - 1) / per);
}

QbTensorResult *
qb_tensor_result_new (void)
{
  QbTensorResult *r = g_new0 (QbTensorResult, 1);

  r->n_nonfinite = -1;
  r->metrics.wmse = NAN;
  r->metrics.out_rel_err = NAN;
  return r;
}

QbTensorResult *
qb_tensor_result_copy (const QbTensorResult *r)
{
  QbTensorResult *c = g_new (QbTensorResult, 1);

  *c = *r;
  c->tensor_name = g_strdup (r->tensor_name);
  c->format = g_strdup (r->format);
  c->requested_format = g_strdup (r->requested_format);
  c->fallback_reason = g_strdup (r->fallback_reason);
  c->method = g_strdup (r->method);
  c->hist_original = qb_histogram_copy (r->hist_original);
  c->hist_quantized = qb_histogram_copy (r->hist_quantized);
  c->hist_error = qb_histogram_copy (r->hist_error);
  c->channel_min = g_memdup2 (r->channel_min, sizeof (float) * r->n_channels);
  c->channel_max = g_memdup2 (r->channel_max, sizeof (float) * r->n_channels);
  c->expert_metrics = g_memdup2 (r->expert_metrics, sizeof (QbTensorMetrics) * r->n_experts);
  if (r->expert_hists != NULL)
    {
      c->expert_hists = g_new0 (QbHistogram *, 3 * (gsize) r->n_experts);
      for (gsize i = 0; i < 3 * (gsize) r->n_experts; i++)
        c->expert_hists[i] = qb_histogram_copy (r->expert_hists[i]);
    }
  return c;
}

static void
free_expert_hists (QbTensorResult *r)
{
  if (r->expert_hists == NULL)
    return;
  for (gsize i = 0; i < 3 * (gsize) r->n_experts; i++)
    qb_histogram_free (r->expert_hists[i]);
  g_clear_pointer (&r->expert_hists, g_free);
}

void
qb_tensor_result_free (QbTensorResult *r)
{
  if (r == NULL)
    return;
  g_free (r->tensor_name);
  g_free (r->format);
  g_free (r->requested_format);
  g_free (r->fallback_reason);
  g_free (r->method);
  qb_histogram_free (r->hist_original);
  qb_histogram_free (r->hist_quantized);
  qb_histogram_free (r->hist_error);
  g_free (r->channel_min);
  g_free (r->channel_max);
  g_free (r->expert_metrics);
  free_expert_hists (r);
  g_free (r);
}

const QbHistogram *
qb_tensor_result_expert_histogram (const QbTensorResult *r, guint e, guint k)
{
  if (r == NULL || r->expert_hists == NULL || e >= r->n_experts || k > 2)
    return NULL;
  return r->expert_hists[3 * (gsize) e + k];
}

void
qb_tensor_result_set_n_experts (QbTensorResult *r, guint n)
{
  free_expert_hists (r);
  g_free (r->expert_metrics);
  r->n_experts = n;
  r->expert_metrics = n ? g_new0 (QbTensorMetrics, n) : NULL;   /* padding too: comparable */
  for (guint e = 0; e < n; e++)
    qb_tensor_metrics_init_nan (&r->expert_metrics[e]);
}

void
qb_tensor_metrics_init_nan (QbTensorMetrics *m)
{
  m->mse = m->rmse_rel = m->sqnr_db = m->cosine = m->max_abs_err = NAN;
  m->wmse = m->out_rel_err = NAN;
  m->out_rel_err_diag = FALSE;
  m->mean = m->std = m->min = m->max = m->kurtosis = m->outlier_share = NAN;
}

void
qb_tensor_result_set_n_experts_hists (QbTensorResult *r)
{
  free_expert_hists (r);
  if (r->n_experts > 0)
    r->expert_hists = g_new0 (QbHistogram *, 3 * (gsize) r->n_experts);
}

QbHistogram *
qb_histogram_coarsen (const QbHistogram *h, guint factor)
{
  QbHistogram *c;

  g_return_val_if_fail (h != NULL && factor > 0 && h->n_bins % factor == 0, NULL);
  c = qb_histogram_new (h->n_bins / factor, h->lo, h->hi);
  for (guint b = 0; b < h->n_bins; b++)
    c->counts[b / factor] += h->counts[b];
  return c;
}
