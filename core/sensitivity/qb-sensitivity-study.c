/* SPDX-License-Identifier: MIT */
/* qb-sensitivity-study.c — reading a stored study: its table of costs, the
 * fit that maps each tensor's proxy to end-to-end KLD, and the cost table
 * the allocator takes. */
#include "qb-sensitivity-private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Measured KLD below this is indistinguishable from float rounding: kept
 * as a cost, left out of the fit. */
#define KLD_FLOOR 1e-10

/* ---- Spearman --------------------------------------------------------- */

typedef struct {
  double v;
  guint  i;
} Ranked;

static int
compare_ranked (const void *a, const void *b)
{
  const Ranked *x = a, *y = b;

  if (x->v != y->v)
    return x->v < y->v ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

/* Average ranks (ties share the mean of their positions). */
static double *
ranks (const double *v, guint n)
{
  g_autofree Ranked *r = g_new (Ranked, n);
  double *out = g_new (double, n);

  for (guint i = 0; i < n; i++)
    r[i] = (Ranked) { v[i], i };
  qsort (r, n, sizeof *r, compare_ranked);
  for (guint i = 0; i < n;)
    {
      guint j = i;
      while (j + 1 < n && r[j + 1].v == r[i].v)
        j++;
      for (guint k = i; k <= j; k++)
        out[r[k].i] = 0.5 * (i + j);
      i = j + 1;
    }
  return out;
}

double
qb_sensitivity_spearman (const double *a, const double *b, guint n)
{
  g_autofree double *ra = NULL, *rb = NULL;
  double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;

  if (n < 3)
    return NAN;
  ra = ranks (a, n);
  rb = ranks (b, n);
  for (guint i = 0; i < n; i++)
    {
      ma += ra[i] / n;
      mb += rb[i] / n;
    }
  for (guint i = 0; i < n; i++)
    {
      sab += (ra[i] - ma) * (rb[i] - mb);
      saa += (ra[i] - ma) * (ra[i] - ma);
      sbb += (rb[i] - mb) * (rb[i] - mb);
    }
  return saa > 0 && sbb > 0 ? sab / sqrt (saa * sbb) : NAN;
}

/* ---- the table -------------------------------------------------------- */

void
qb_sensitivity_study_free (QbSensitivityStudy *st)
{
  if (st == NULL)
    return;
  qb_study_record_free (st->record);
  g_clear_pointer (&st->costs, g_ptr_array_unref);
  g_clear_pointer (&st->expert_costs, g_ptr_array_unref);
  g_strfreev (st->candidates);
  g_free (st->positions);
  g_free (st->entries);
  g_free (st);
}

const QbSensitivityEntry *
qb_sensitivity_study_get (QbSensitivityStudy *st, guint tensor, guint rung)
{
  g_return_val_if_fail (tensor < st->n_tensors && rung < st->n_candidates, NULL);
  return &st->entries[tensor * st->n_candidates + rung];
}

static double
proxy_value (const QbStudyCost *c, const char *which)
{
  if (g_strcmp0 (which, "out_err") == 0)
    return c->out_err;
  if (g_strcmp0 (which, "wmse") == 0)
    return c->wmse;
  return c->mse;
}

/* The study's proxy where the tensor has it, else the next available
 * (the fit is per tensor, so each tensor needs one proxy throughout). */
static const char *
tensor_proxy (QbSensitivityStudy *st, guint t)
{
  const char *order[] = { st->record->proxy, "out_err", "wmse", "mse" };

  for (gsize k = 0; k < G_N_ELEMENTS (order); k++)
    {
      gboolean all = TRUE, any = FALSE;
      for (guint r = 0; r < st->n_candidates; r++)
        {
          const QbStudyCost *c = st->entries[t * st->n_candidates + r].cost;
          if (c == NULL || c->skipped)
            continue;
          any = TRUE;
          all &= isfinite (proxy_value (c, order[k]));
        }
      if (any && all)
        return order[k];
    }
  return "mse";
}

static gboolean
usable (const QbSensitivityEntry *e)
{
  return e->cost != NULL && !e->cost->skipped && isfinite (e->cost->kld)
         && e->cost->kld > KLD_FLOOR && e->proxy > 0 && isfinite (e->proxy);
}

static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

/* α from the tensors with two or more usable measurements (each tensor
 * its own intercept), then log S_t per tensor. */
static void
fit (QbSensitivityStudy *st, double *log_s, gboolean *has_s)
{
  guint nc = st->n_candidates;
  double sxy = 0, sxx = 0;
  g_autoptr(GArray) all_s = g_array_new (FALSE, FALSE, sizeof (double));
  double median;

  for (guint t = 0; t < st->n_tensors; t++)
    {
      double mx = 0, my = 0;
      guint n = 0;
      for (guint r = 0; r < nc; r++)
        {
          const QbSensitivityEntry *e = &st->entries[t * nc + r];
          if (!usable (e))
            continue;
          mx += log (e->proxy);
          my += log (e->cost->kld);
          n++;
        }
      if (n < 2)
        continue;
      mx /= n;
      my /= n;
      for (guint r = 0; r < nc; r++)
        {
          const QbSensitivityEntry *e = &st->entries[t * nc + r];
          if (!usable (e))
            continue;
          sxy += (log (e->proxy) - mx) * (log (e->cost->kld) - my);
          sxx += (log (e->proxy) - mx) * (log (e->proxy) - mx);
        }
    }
  st->alpha = sxx > 0 && sxy > 0 ? sxy / sxx : 1.0;

  for (guint t = 0; t < st->n_tensors; t++)
    {
      double sum = 0;
      guint n = 0;
      for (guint r = 0; r < nc; r++)
        {
          const QbSensitivityEntry *e = &st->entries[t * nc + r];
          if (!usable (e))
            continue;
          sum += log (e->cost->kld) - st->alpha * log (e->proxy);
          n++;
        }
      has_s[t] = n > 0;
      if (n > 0)
        {
          log_s[t] = sum / n;
          g_array_append_val (all_s, log_s[t]);
        }
    }
  if (all_s->len == 0)
    median = 0;   /* nothing measured: the proxy itself is the cost */
  else
    {
      qsort (all_s->data, all_s->len, sizeof (double), compare_doubles);
      median = g_array_index (all_s, double, all_s->len / 2);
    }
  for (guint t = 0; t < st->n_tensors; t++)
    if (!has_s[t])
      log_s[t] = median;
}

/* Each measured point predicted from its tensor's other points. */
static void
leave_one_out (QbSensitivityStudy *st)
{
  guint nc = st->n_candidates;
  g_autoptr(GArray) pred = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) meas = g_array_new (FALSE, FALSE, sizeof (double));

  for (guint t = 0; t < st->n_tensors; t++)
    for (guint r = 0; r < nc; r++)
      {
        const QbSensitivityEntry *e = &st->entries[t * nc + r];
        double sum = 0, p;
        guint n = 0;

        if (!usable (e))
          continue;
        for (guint q = 0; q < nc; q++)
          {
            const QbSensitivityEntry *o = &st->entries[t * nc + q];
            if (q == r || !usable (o))
              continue;
            sum += log (o->cost->kld) - st->alpha * log (o->proxy);
            n++;
          }
        if (n == 0)
          continue;
        p = exp (sum / n + st->alpha * log (e->proxy));
        g_array_append_val (pred, p);
        g_array_append_val (meas, e->cost->kld);
      }
  st->loo_spearman = qb_sensitivity_spearman ((double *) (void *) pred->data,
                                              (double *) (void *) meas->data, pred->len);
}

static void
index_costs (QbSensitivityStudy *st)
{
  GArray *positions = g_array_new (FALSE, FALSE, sizeof (guint));

  for (guint i = 0; i < st->costs->len; i++)
    {
      const QbStudyCost *c = g_ptr_array_index (st->costs, i);
      if (positions->len == 0 || g_array_index (positions, guint, positions->len - 1) != c->position)
        g_array_append_val (positions, c->position);
    }
  st->n_tensors = positions->len;
  st->positions = (guint *) (void *) g_array_free (positions, FALSE);
  st->entries = g_new0 (QbSensitivityEntry, (gsize) MAX (st->n_tensors, 1) * st->n_candidates);
  for (guint i = 0, t = 0; i < st->costs->len; i++)
    {
      const QbStudyCost *c = g_ptr_array_index (st->costs, i);
      while (st->positions[t] != c->position)
        t++;
      if (c->rung < st->n_candidates)
        st->entries[t * st->n_candidates + c->rung].cost = c;
    }
}

QbSensitivityStudy *
qb_sensitivity_study_load (QbStore *store, gint64 id, GError **error)
{
  g_autoptr(QbSensitivityStudy) st = g_new0 (QbSensitivityStudy, 1);
  g_autofree double *log_s = NULL;
  g_autofree gboolean *has_s = NULL;
  guint nc;

  if ((st->record = qb_store_get_study (store, id, error)) == NULL
      || (st->costs = qb_store_get_study_costs (store, id, error)) == NULL
      || (st->expert_costs = qb_store_get_study_expert_costs (store, id, error)) == NULL)
    return NULL;
  st->candidates = g_strsplit (st->record->candidates, ",", -1);
  st->n_candidates = nc = g_strv_length (st->candidates);
  index_costs (st);

  for (guint t = 0; t < st->n_tensors; t++)
    {
      const char *which = tensor_proxy (st, t);
      for (guint r = 0; r < nc; r++)
        {
          QbSensitivityEntry *e = &st->entries[t * nc + r];
          e->proxy = e->cost && !e->cost->skipped ? proxy_value (e->cost, which) : NAN;
          if (e->cost && isfinite (e->cost->kld))
            st->n_measured++;
        }
    }
  log_s = g_new0 (double, MAX (st->n_tensors, 1));
  has_s = g_new0 (gboolean, MAX (st->n_tensors, 1));
  fit (st, log_s, has_s);
  leave_one_out (st);
  for (guint t = 0; t < st->n_tensors; t++)
    for (guint r = 0; r < nc; r++)
      {
        QbSensitivityEntry *e = &st->entries[t * nc + r];
        if (e->cost == NULL || e->cost->skipped)
          {
            e->predicted = e->value = NAN;
            continue;
          }
        /* A proxy of exactly 0 (a lossless candidate) predicts 0. */
        e->predicted = e->proxy > 0 ? exp (log_s[t] + st->alpha * log (e->proxy)) : 0;
        e->value = isfinite (e->cost->kld) ? e->cost->kld : e->predicted;
      }
  return g_steal_pointer (&st);
}
