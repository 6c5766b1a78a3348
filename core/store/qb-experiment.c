/* SPDX-License-Identifier: MIT */
/* qb-experiment.c — the store's records, totals, metrics and Pareto fronts. */
#include "qb-experiment.h"
#include "qb-json.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char * const status_names[QB_EXPERIMENT_N_STATUS] = {
  [QB_EXPERIMENT_RUNNING]     = "running",
  [QB_EXPERIMENT_DONE]        = "done",
  [QB_EXPERIMENT_CANCELLED]   = "cancelled",
  [QB_EXPERIMENT_FAILED]      = "failed",
  [QB_EXPERIMENT_INTERRUPTED] = "interrupted",
};

const char *
qb_experiment_status_name (QbExperimentStatus status)
{
  if ((guint) status >= QB_EXPERIMENT_N_STATUS)
    return "unknown";
  return status_names[status];
}

gboolean
qb_experiment_status_parse (const char *name, QbExperimentStatus *status)
{
  for (guint i = 0; name != NULL && i < QB_EXPERIMENT_N_STATUS; i++)
    if (g_ascii_strcasecmp (name, status_names[i]) == 0)
      {
        *status = i;
        return TRUE;
      }
  return FALSE;
}

/* -- models ------------------------------------------------------------ */

QbModelRecord *
qb_model_record_new (void)
{
  QbModelRecord *m = g_new0 (QbModelRecord, 1);

  m->arch_json = g_strdup ("{}");
  return m;
}

void
qb_model_record_free (QbModelRecord *m)
{
  if (m == NULL)
    return;
  g_free (m->fingerprint);
  g_free (m->path);
  g_free (m->name);
  g_free (m->family);
  g_free (m->arch_json);
  g_free (m);
}

char *
qb_arch_info_to_json (const QbArchInfo *arch)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  const struct { const char *key; guint value; } counts[] = {
    { "n_layer", arch->n_layer }, { "n_embd", arch->n_embd }, { "n_head", arch->n_head },
    { "n_head_kv", arch->n_head_kv }, { "n_ff", arch->n_ff }, { "n_vocab", arch->n_vocab },
    { "n_ctx", arch->n_ctx }, { "head_dim", arch->head_dim },
  };

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "family");
  json_builder_add_string_value (b, arch->family ? arch->family : "unknown");
  if (arch->name != NULL)
    {
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, arch->name);
    }
  for (guint i = 0; i < G_N_ELEMENTS (counts); i++)
    {
      json_builder_set_member_name (b, counts[i].key);
      json_builder_add_int_value (b, counts[i].value);
    }
  json_builder_set_member_name (b, "rms_eps");
  json_builder_add_double_value (b, arch->rms_eps);
  json_builder_set_member_name (b, "rope_freq_base");
  json_builder_add_double_value (b, arch->rope_freq_base);
  json_builder_set_member_name (b, "tied_embeddings");
  json_builder_add_boolean_value (b, arch->tied_embeddings);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  return qb_json_to_string (root);
}

/* -- calibration sets ---------------------------------------------------- */

QbCalibrationSet *
qb_calibration_set_new (void)
{
  QbCalibrationSet *c = g_new0 (QbCalibrationSet, 1);

  c->sources = g_new0 (char *, 1);
  return c;
}

QbCalibrationSet *
qb_calibration_set_copy (const QbCalibrationSet *c)
{
  QbCalibrationSet *d = g_new (QbCalibrationSet, 1);

  *d = *c;
  d->name = g_strdup (c->name);
  d->sources = c->sources ? g_strdupv (c->sources) : g_new0 (char *, 1);
  d->hash = g_strdup (c->hash);
  return d;
}

void
qb_calibration_set_free (QbCalibrationSet *c)
{
  if (c == NULL)
    return;
  g_free (c->name);
  g_strfreev (c->sources);
  g_free (c->hash);
  g_free (c);
}

/* -- evaluations --------------------------------------------------------- */

QbEvaluation *
qb_evaluation_new (void)
{
  QbEvaluation *e = g_new0 (QbEvaluation, 1);

  e->perplexity = e->perplexity_err = e->base_perplexity = NAN;
  e->kld_mean = e->kld_median = e->kld_p90 = e->kld_p95 = e->kld_p99 = e->kld_max = NAN;
  e->top1_agreement = e->dp_mean = e->dp_rms = e->seconds = NAN;
  return e;
}

QbEvaluation *
qb_evaluation_copy (const QbEvaluation *e)
{
  QbEvaluation *c = g_new (QbEvaluation, 1);

  *c = *e;
  c->text_name = g_strdup (e->text_name);
  c->text_hash = g_strdup (e->text_hash);
  c->device = g_strdup (e->device);
  c->chunk_ppl = g_memdup2 (e->chunk_ppl, sizeof (double) * e->n_chunk_results);
  c->chunk_kld = g_memdup2 (e->chunk_kld, sizeof (double) * e->n_chunk_results);
  return c;
}

void
qb_evaluation_free (QbEvaluation *e)
{
  if (e == NULL)
    return;
  g_free (e->text_name);
  g_free (e->text_hash);
  g_free (e->device);
  g_free (e->chunk_ppl);
  g_free (e->chunk_kld);
  g_free (e);
}

void
qb_evaluation_set_chunks (QbEvaluation *e, guint n, const double *ppl, const double *kld)
{
  g_clear_pointer (&e->chunk_ppl, g_free);
  g_clear_pointer (&e->chunk_kld, g_free);
  e->n_chunk_results = n;
  if (n == 0)
    return;
  e->chunk_ppl = g_memdup2 (ppl, sizeof (double) * n);
  e->chunk_kld = g_new (double, n);
  for (guint i = 0; i < n; i++)
    e->chunk_kld[i] = kld ? kld[i] : NAN;
}

/* -- experiments --------------------------------------------------------- */

void
qb_experiment_totals_clear (QbExperimentTotals *t)
{
  memset (t, 0, sizeof *t);
  t->bpw = t->compression = t->seconds = NAN;
  t->sqnr_db = t->rmse_rel = t->cosine_min = t->max_abs_err = t->out_rel_err = NAN;
}

QbExperiment *
qb_experiment_new (void)
{
  QbExperiment *e = g_new0 (QbExperiment, 1);

  qb_experiment_totals_clear (&e->totals);
  e->notes = g_strdup ("");
  e->tags = g_new0 (char *, 1);
  return e;
}

QbExperiment *
qb_experiment_copy (const QbExperiment *e)
{
  QbExperiment *c = g_new (QbExperiment, 1);

  *c = *e;
  c->uuid = g_strdup (e->uuid);
  c->name = g_strdup (e->name);
  c->model_name = g_strdup (e->model_name);
  c->model_fingerprint = g_strdup (e->model_fingerprint);
  c->plan_json = g_strdup (e->plan_json);
  c->backend = g_strdup (e->backend);
  c->evaluation = e->evaluation ? qb_evaluation_copy (e->evaluation) : NULL;
  c->notes = g_strdup (e->notes);
  c->tags = g_strdupv (e->tags);
  c->error_message = g_strdup (e->error_message);
  c->owner_host = g_strdup (e->owner_host);
  return c;
}

void
qb_experiment_free (QbExperiment *e)
{
  if (e == NULL)
    return;
  g_free (e->uuid);
  g_free (e->name);
  g_free (e->model_name);
  g_free (e->model_fingerprint);
  g_free (e->plan_json);
  g_free (e->backend);
  qb_evaluation_free (e->evaluation);
  g_free (e->notes);
  g_strfreev (e->tags);
  g_free (e->error_message);
  g_free (e->owner_host);
  g_free (e);
}

QbStoredTensor *
qb_stored_tensor_new (void)
{
  QbStoredTensor *t = g_new0 (QbStoredTensor, 1);

  t->result = qb_tensor_result_new ();
  return t;
}

void
qb_stored_tensor_free (QbStoredTensor *t)
{
  if (t == NULL)
    return;
  qb_tensor_result_free (t->result);
  g_free (t);
}

static gboolean
is_fallback (const QbTensorResult *r)
{
  return r->fallback_reason != NULL ||
         (r->requested_format != NULL && r->format != NULL &&
          g_ascii_strcasecmp (r->requested_format, r->format) != 0);
}

/* Weighted means skip tensors without the measure (NAN); SQNR also skips
 * lossless tensors (+inf), which would swamp any mean.  Any tensor with
 * non-finite weights leaves the error totals undefined (NAN). */
void
qb_experiment_totals_compute (QbExperimentTotals *t, QbStoredTensor * const *tensors, guint n)
{
  double seconds = t->seconds;
  double sqnr_sum = 0, sqnr_w = 0, rmse_sum = 0, rmse_w = 0, out_sum = 0, out_w = 0;
  gboolean lossless_seen = FALSE, original_known = n > 0, nonfinite_seen = FALSE;

  qb_experiment_totals_clear (t);
  t->seconds = seconds;
  for (guint i = 0; i < n; i++)
    {
      const QbTensorResult *r = tensors[i]->result;
      const QbTensorMetrics *m = &r->metrics;
      double w = (double) r->n_params;

      t->n_params += r->n_params;
      t->quantized_bytes += r->bytes;
      t->original_bytes += tensors[i]->original_bytes;
      original_known &= tensors[i]->original_bytes > 0;
      t->n_fallbacks += is_fallback (r);
      nonfinite_seen |= r->n_nonfinite > 0;
      if (isfinite (m->sqnr_db))
        sqnr_sum += w * m->sqnr_db, sqnr_w += w;
      else if (m->sqnr_db > 0)
        lossless_seen = TRUE;
      if (!isnan (m->rmse_rel))
        rmse_sum += w * m->rmse_rel, rmse_w += w;
      if (!isnan (m->out_rel_err))
        out_sum += w * m->out_rel_err, out_w += w;
      if (!isnan (m->cosine) && !(m->cosine >= t->cosine_min))
        t->cosine_min = m->cosine;
      if (!isnan (m->max_abs_err) && !(m->max_abs_err <= t->max_abs_err))
        t->max_abs_err = m->max_abs_err;
    }
  if (!original_known)
    t->original_bytes = 0;
  if (t->n_params > 0)
    t->bpw = t->quantized_bytes * 8.0 / t->n_params;
  if (t->original_bytes > 0 && t->quantized_bytes > 0)
    t->compression = (double) t->original_bytes / t->quantized_bytes;
  if (sqnr_w > 0)
    t->sqnr_db = sqnr_sum / sqnr_w;
  else if (lossless_seen)
    t->sqnr_db = INFINITY;
  if (rmse_w > 0)
    t->rmse_rel = rmse_sum / rmse_w;
  if (out_w > 0)
    t->out_rel_err = out_sum / out_w;
  /* A tensor with NaN or infinite weights has no error figures: a mean
   * over the others would flatter the model (and rank it on a front). */
  if (nonfinite_seen)
    t->sqnr_db = t->rmse_rel = t->cosine_min = t->max_abs_err = t->out_rel_err = NAN;
}

/* -- metrics ------------------------------------------------------------- */

static const struct {
  const char *name;
  const char *label;
  gboolean    higher_is_better;
} metrics[QB_METRIC_N] = {
  [QB_METRIC_SQNR]        = { "sqnr",    "SQNR (dB)",                 TRUE },
  [QB_METRIC_RMSE_REL]    = { "rmse",    "Relative RMSE",             FALSE },
  [QB_METRIC_COSINE_MIN]  = { "cosine",  "Lowest cosine similarity",  TRUE },
  [QB_METRIC_MAX_ABS_ERR] = { "maxerr",  "Largest absolute error",    FALSE },
  [QB_METRIC_OUT_REL_ERR] = { "outerr",  "Output error (calibrated)", FALSE },
  [QB_METRIC_PERPLEXITY]  = { "ppl",     "Perplexity",                FALSE },
  [QB_METRIC_KLD_MEAN]    = { "kld",     "Mean KL divergence",        FALSE },
  [QB_METRIC_KLD_P99]     = { "kld99",   "KL divergence, 99th pct.",  FALSE },
  [QB_METRIC_TOP1]        = { "top1",    "Same top token",            TRUE },
  [QB_METRIC_DP_RMS]      = { "dp",      "RMS Δp of the right token", FALSE },
};

const char *
qb_metric_name (QbMetric metric)
{
  return (guint) metric < QB_METRIC_N ? metrics[metric].name : "unknown";
}

const char *
qb_metric_label (QbMetric metric)
{
  return (guint) metric < QB_METRIC_N ? metrics[metric].label : "unknown";
}

gboolean
qb_metric_parse (const char *name, QbMetric *metric)
{
  for (guint i = 0; name != NULL && i < QB_METRIC_N; i++)
    if (g_ascii_strcasecmp (name, metrics[i].name) == 0)
      {
        *metric = i;
        return TRUE;
      }
  return FALSE;
}

gboolean
qb_metric_higher_is_better (QbMetric metric)
{
  return (guint) metric < QB_METRIC_N && metrics[metric].higher_is_better;
}

double
qb_experiment_metric (const QbExperiment *e, QbMetric metric)
{
  const QbEvaluation *ev = e->evaluation;

  switch (metric)
    {
    case QB_METRIC_SQNR:        return e->totals.sqnr_db;
    case QB_METRIC_RMSE_REL:    return e->totals.rmse_rel;
    case QB_METRIC_COSINE_MIN:  return e->totals.cosine_min;
    case QB_METRIC_MAX_ABS_ERR: return e->totals.max_abs_err;
    case QB_METRIC_OUT_REL_ERR: return e->totals.out_rel_err;
    case QB_METRIC_PERPLEXITY:  return ev ? ev->perplexity : NAN;
    case QB_METRIC_KLD_MEAN:    return ev ? ev->kld_mean : NAN;
    case QB_METRIC_KLD_P99:     return ev ? ev->kld_p99 : NAN;
    case QB_METRIC_TOP1:        return ev ? ev->top1_agreement : NAN;
    case QB_METRIC_DP_RMS:      return ev ? ev->dp_rms : NAN;
    case QB_METRIC_N:           break;
    }
  return NAN;
}

/* -- Pareto fronts --------------------------------------------------------- */

static int
compare_points_higher (const void *a, const void *b)
{
  const QbParetoPoint *p = a, *q = b;

  if (p->x != q->x)
    return p->x < q->x ? -1 : 1;
  if (isnan (p->y) != isnan (q->y))
    return isnan (p->y) ? 1 : -1;
  if (p->y != q->y && !isnan (p->y))
    return p->y > q->y ? -1 : 1;
  return p->experiment_id < q->experiment_id ? -1 : p->experiment_id > q->experiment_id;
}

static int
compare_points_lower (const void *a, const void *b)
{
  const QbParetoPoint *p = a, *q = b;

  if (p->x != q->x)
    return p->x < q->x ? -1 : 1;
  if (isnan (p->y) != isnan (q->y))
    return isnan (p->y) ? 1 : -1;
  if (p->y != q->y && !isnan (p->y))
    return p->y < q->y ? -1 : 1;
  return p->experiment_id < q->experiment_id ? -1 : p->experiment_id > q->experiment_id;
}

/* Sorted by size, best first within a size, a point is on the front when
 * it is strictly better than every smaller point before it.  Of identical
 * points only the first is marked. */
void
qb_pareto_mark (QbParetoPoint *points, guint n, gboolean higher_is_better)
{
  double best = higher_is_better ? -INFINITY : INFINITY;
  gboolean any = FALSE;

  if (n == 0)
    return;
  qsort (points, n, sizeof *points, higher_is_better ? compare_points_higher : compare_points_lower);
  for (guint i = 0; i < n; i++)
    {
      double y = points[i].y;
      gboolean better = higher_is_better ? y > best : y < best;

      points[i].on_front = !isnan (y) && (better || !any);
      if (points[i].on_front)
        {
          best = y;
          any = TRUE;
        }
    }
}
