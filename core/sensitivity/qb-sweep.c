/* SPDX-License-Identifier: MIT */
/* qb-sweep.c — plans for a list of budgets and their baselines, each
 * quantized, stored and evaluated end to end (see qb-sweep.h). */
#include "qb-sweep.h"

#include <math.h>
#include <string.h>

#include "qb-allocation-plan.h"
#include "qb-allocator.h"
#include "qb-eval.h"
#include "qb-job-recorder.h"
#include "qb-job.h"
#include "qb-llama.h"
#include "qb-sensitivity-table.h"

void
qb_sweep_options_init (QbSweepOptions *opts)
{
  memset (opts, 0, sizeof *opts);
  opts->uniform = TRUE;
  opts->presets = TRUE;
}

void
qb_sweep_point_free (QbSweepPoint *p)
{
  if (p == NULL)
    return;
  g_free (p->label);
  g_free (p);
}

typedef struct {
  QbModel              *model;
  QbTokenizer          *tok;
  QbStore              *store;
  const QbSweepOptions *opts;
  QbSensitivityStudy   *study;
  QbCostTable          *table;
  char                 *tags[4];
  GPtrArray            *points;
  QbSweepProgressFunc   progress;
  gpointer              progress_data;
  QbSweepProgress       p;
} Sweep;

/* A plan with the study's method everywhere. */
static QbPlan *
new_plan (Sweep *s)
{
  QbPlan *plan = qb_plan_new ();

  qb_plan_set_default_method (plan, s->study->record->method);
  return plan;
}

static QbSweepPoint *
new_point (QbSweepKind kind, const char *label, double target)
{
  QbSweepPoint *p = g_new0 (QbSweepPoint, 1);

  p->kind = kind;
  p->label = g_strdup (label);
  p->target_bpw = target;
  p->predicted_kld = p->kld = p->kld_err = p->ppl = p->top1 = NAN;
  return p;
}

/* Quantizes the plan (stored as an experiment when store), runs the
 * quantized model on the study's evaluation chunks and fills the point. */
static gboolean
measure_plan (Sweep *s, QbPlan *plan, QbSweepPoint *pt, gboolean store, GCancellable *cancellable,
              GError **error)
{
  const QbStudyRecord *rec = s->study->record;
  g_autoptr(QbJob) job = qb_job_new (s->model, plan);
  g_autoptr(QbJobRecorder) recorder = NULL;
  g_autoptr(QbLlama) llama = NULL;
  g_autoptr(QbEvaluation) evaluation = NULL;
  g_autoptr(GError) local = NULL;
  QbExperimentSpec spec = { 0 };
  QbEvalOptions eo;
  QbEvalResult r;
  gboolean ok;

  s->p.label = pt->label;
  if (s->progress)
    s->progress (&s->p, s->progress_data);
  spec.name = pt->label;
  spec.tags = (const char * const *) s->tags;
  spec.calibration_set_id = s->opts->stats ? rec->calibration_set_id : 0;
  qb_job_set_keep_data (job, TRUE);
  qb_job_set_threads (job, s->opts->n_threads);
  if (s->opts->stats != NULL)
    qb_activation_stats_attach (s->opts->stats, job, TRUE);
  if (store)
    {
      recorder = qb_job_recorder_begin (s->store, s->model, plan, s->opts->n_threads, &spec, error);
      if (recorder == NULL)
        return FALSE;
      qb_job_recorder_attach (recorder, job);
    }
  ok = qb_job_run (job, cancellable, &local);
  if (recorder != NULL
      && !qb_job_recorder_finish (recorder, job, ok ? QB_EXPERIMENT_DONE : QB_EXPERIMENT_FAILED,
                                  local ? local->message : NULL, ok ? error : NULL) && ok)
    return FALSE;
  if (!ok)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  pt->experiment_id = recorder ? qb_job_recorder_get_id (recorder) : 0;
  pt->bpw = qb_job_get_resolution (job)->bpw;
  pt->bytes = qb_job_get_resolution (job)->quantized_bytes;
  pt->predicted_kld = qb_cost_table_predict (s->table, s->model, qb_job_get_resolution (job),
                                             &pt->n_estimated);

  if ((llama = qb_llama_new (s->model, error)) == NULL
      || !qb_llama_use_job (llama, job, NULL, error))
    return FALSE;
  qb_llama_set_threads (llama, s->opts->n_threads);
  qb_eval_options_init (&eo);
  eo.n_ctx = rec->eval_n_ctx;
  eo.n_chunks = rec->eval_n_chunks;
  eo.kld = TRUE;
  eo.cache_dir = s->opts->cache_dir;
  if (!qb_eval_run (llama, s->tok, s->opts->eval_text, &eo, NULL, NULL, cancellable, &r, error))
    return FALSE;
  pt->kld = r.kld_mean;
  pt->kld_err = r.kld_mean_err;
  pt->ppl = r.ppl;
  pt->top1 = r.same_top;
  if (!store)
    return TRUE;
  evaluation = qb_eval_result_to_evaluation (&r, s->opts->eval_text);
  s->p.done++;
  return qb_store_set_evaluation (s->store, pt->experiment_id, evaluation, NULL, error);
}

static gboolean
add_point (Sweep *s, QbPlan *plan, QbSweepPoint *pt, GCancellable *cancellable, GError **error)
{
  if (!measure_plan (s, plan, pt, TRUE, cancellable, error))
    {
      qb_sweep_point_free (pt);
      return FALSE;
    }
  g_ptr_array_add (s->points, pt);
  return TRUE;
}

/* The plan of an allocation over the study's costs; note (may be NULL)
 * follows the study in the plan's source. */
static QbPlan *
allocation_plan (Sweep *s, const QbAllocation *a, const char *note)
{
  g_autofree char *source = g_strdup_printf ("study %" G_GINT64_FORMAT "%s%s", s->study->record->id,
                                             note ? " " : "", note ? note : "");
  QbPlan *plan = new_plan (s);

  qb_allocation_apply (s->table, a, source, plan);
  return plan;
}

/* The allocator's plan for one budget; *allocation (may be NULL) keeps it. */
static QbPlan *
auto_plan (Sweep *s, double bpw, QbAllocation **allocation, GError **error)
{
  QbAllocBudget budget = { QB_ALLOC_TARGET_BPW, bpw };
  g_autoptr(QbAllocation) a = qb_allocate (s->table, &budget, NULL, error);
  QbPlan *plan;

  if (a == NULL)
    return NULL;
  plan = allocation_plan (s, a, NULL);
  if (allocation != NULL)
    *allocation = g_steal_pointer (&a);
  return plan;
}

static gboolean
near_budgets (Sweep *s, QbPlan *plan)
{
  g_autoptr(QbPlanResolution) res = NULL;
  double lo = G_MAXDOUBLE, hi = -G_MAXDOUBLE;

  if (s->opts->nearby <= 0 || s->opts->n_budgets == 0)
    return TRUE;
  if ((res = qb_plan_resolve (plan, s->model, NULL)) == NULL)
    return FALSE;
  for (guint i = 0; i < s->opts->n_budgets; i++)
    {
      lo = MIN (lo, s->opts->budgets[i]);
      hi = MAX (hi, s->opts->budgets[i]);
    }
  return res->bpw >= lo - s->opts->nearby && res->bpw <= hi + s->opts->nearby;
}

static gboolean
run_baselines (Sweep *s, GCancellable *cancellable, GError **error)
{
  const char * const *presets = qb_plan_list_presets ();

  for (guint k = 0; s->opts->uniform && k < s->study->n_candidates; k++)
    {
      g_autoptr(QbPlan) plan = new_plan (s);
      g_autofree char *label = g_strdup_printf ("uniform %s", s->study->candidates[k]);

      qb_plan_set_default_format (plan, s->study->candidates[k]);
      if (near_budgets (s, plan)
          && !add_point (s, plan, new_point (QB_SWEEP_UNIFORM, label, NAN), cancellable, error))
        return FALSE;
    }
  for (guint i = 0; s->opts->presets && presets[i] != NULL; i++)
    {
      g_autoptr(QbPlan) plan = new_plan (s);
      g_autofree char *label = g_strdup_printf ("preset %s", presets[i]);

      qb_plan_set_preset (plan, presets[i]);
      if (near_budgets (s, plan)
          && !add_point (s, plan, new_point (QB_SWEEP_PRESET, label, NAN), cancellable, error))
        return FALSE;
    }
  return TRUE;
}

/* The candidate nearest in bytes above (up) or below the chosen one; -1: none. */
static int
next_candidate (const QbCostTensor *ct, guint now, gboolean up)
{
  guint64 n = ct->candidates[now].bytes;
  int best = -1;

  for (guint k = 0; k < ct->n_candidates; k++)
    {
      guint64 b = ct->candidates[k].bytes;
      if ((up ? b > n : b < n)
          && (best < 0 || (up ? b < ct->candidates[best].bytes : b > ct->candidates[best].bytes)))
        best = (int) k;
    }
  return best;
}

/* Swaps of one tensor each in the middle budget's plan, spread over the
 * table: tensor i·(prime) mod n takes its next candidate up or down in
 * bytes, alternately. */
static gboolean
run_swaps (Sweep *s, GCancellable *cancellable, GError **error)
{
  double bpw = s->opts->budgets[s->opts->n_budgets / 2];
  g_autoptr(QbAllocation) a = NULL;
  g_autoptr(QbPlan) base = auto_plan (s, bpw, &a, error);

  if (base == NULL)
    return FALSE;
  for (guint i = 0; i < s->opts->n_swaps && s->table->n_tensors > 0; i++)
    {
      guint t = (guint) (((guint64) i * 7919 + 3) % s->table->n_tensors);
      const QbCostTensor *ct = &s->table->tensors[t];
      const QbCostCandidate *now = &ct->candidates[a->choice[t]];
      int k = next_candidate (ct, a->choice[t], i % 2 == 0);   /* up for even i */
      g_autoptr(QbPlan) plan = NULL;
      g_autofree char *label = NULL;

      if (k < 0)
        continue;
      const QbCostCandidate *to = &ct->candidates[k];
      plan = qb_plan_copy (base);
      qb_plan_set_override (plan, ct->name, to->format->name, NULL);
      label = g_strdup_printf ("swap %.2f %s %s->%s", bpw, ct->name, now->format->name,
                               to->format->name);
      if (!add_point (s, plan, new_point (QB_SWEEP_SWAP, label, bpw), cancellable, error))
        return FALSE;
    }
  return TRUE;
}

/* ---- measured refinement ------------------------------------------------ */

typedef struct {
  guint  up, down;   /* table tensors: one a candidate up in bytes, one down */
  guint  to_up, to_down;
  double delta;      /* predicted change of the KLD */
} Pair;

static int
compare_pairs (gconstpointer a, gconstpointer b)
{
  const Pair *x = a, *y = b;

  if (x->delta != y->delta)
    return x->delta < y->delta ? -1 : 1;
  if (x->up != y->up)
    return x->up < y->up ? -1 : 1;
  return (x->down > y->down) - (x->down < y->down);
}

/* Every pair that keeps the allocation within limit bytes, least predicted
 * harm first (the allocator's plan is optimal for the additive model, so
 * none is predicted to help: measurement says where the model is wrong). */
static GArray *
budget_neutral_pairs (const QbCostTable *table, const QbAllocation *a, guint64 limit)
{
  GArray *pairs = g_array_new (FALSE, FALSE, sizeof (Pair));

  for (guint u = 0; u < table->n_tensors; u++)
    {
      const QbCostTensor *tu = &table->tensors[u];
      int ku = a->pinned[u] ? -1 : next_candidate (tu, a->choice[u], TRUE);
      if (ku < 0)
        continue;
      guint64 grow = tu->candidates[ku].bytes - tu->candidates[a->choice[u]].bytes;
      for (guint d = 0; d < table->n_tensors; d++)
        {
          const QbCostTensor *td = &table->tensors[d];
          int kd = d == u || a->pinned[d] ? -1 : next_candidate (td, a->choice[d], FALSE);
          if (kd < 0)
            continue;
          guint64 shrink = td->candidates[a->choice[d]].bytes - td->candidates[kd].bytes;
          if (a->bytes + grow - shrink > limit)
            continue;
          Pair p = { u, d, (guint) ku, (guint) kd,
                     tu->candidates[ku].cost - tu->candidates[a->choice[u]].cost
                     + td->candidates[kd].cost - td->candidates[a->choice[d]].cost };
          g_array_append_val (pairs, p);
        }
    }
  g_array_sort (pairs, compare_pairs);
  return pairs;
}

static void
set_choice (const QbCostTable *table, QbAllocation *a, guint t, guint k, double weights)
{
  const QbCostCandidate *was = &table->tensors[t].candidates[a->choice[t]];
  const QbCostCandidate *now = &table->tensors[t].candidates[k];

  a->bytes = a->bytes - was->bytes + now->bytes;
  a->predicted_kld += now->cost - was->cost;
  a->bpw = a->bytes * 8.0 / weights;
  a->choice[t] = k;
}

/* Tries the pairs in order until one lowers the measured KLD by more than
 * its standard error (kept: TRUE) or the time is up.  Trials are measured,
 * not stored. */
static gboolean
try_pairs (Sweep *s, QbAllocation *a, guint64 limit, double weights, GTimer *timer, double *kld,
           guint *tried, gboolean *kept, GCancellable *cancellable, GError **error)
{
  g_autoptr(GArray) pairs = budget_neutral_pairs (s->table, a, limit);

  *kept = FALSE;
  for (guint i = 0; i < pairs->len && g_timer_elapsed (timer, NULL) < s->opts->refine_seconds; i++)
    {
      const Pair *p = &g_array_index (pairs, Pair, i);
      guint was_up = a->choice[p->up], was_down = a->choice[p->down];
      QbSweepPoint *pt = new_point (QB_SWEEP_REFINED, "refining", NAN);
      g_autoptr(QbPlan) trial = NULL;
      gboolean ok;

      set_choice (s->table, a, p->up, p->to_up, weights);
      set_choice (s->table, a, p->down, p->to_down, weights);
      trial = allocation_plan (s, a, "refined");
      ok = measure_plan (s, trial, pt, FALSE, cancellable, error);
      (*tried)++;
      /* Kept only when the fall exceeds the measurement's standard error:
       * smaller falls are noise of the evaluation chunks and do not hold
       * on other text. */
      *kept = ok && pt->kld < *kld - (isfinite (pt->kld_err) ? pt->kld_err : 0);
      if (*kept)
        *kld = pt->kld;
      qb_sweep_point_free (pt);
      if (!ok || *kept)
        return ok;
      set_choice (s->table, a, p->up, was_up, weights);
      set_choice (s->table, a, p->down, was_down, weights);
    }
  return TRUE;
}

/* The middle budget's plan (start, already measured), refined within the
 * time limit; the final plan is stored as a point of its own. */
static gboolean
run_refine (Sweep *s, const QbSweepPoint *start, GCancellable *cancellable, GError **error)
{
  double bpw = start->target_bpw, kld = start->kld;
  double weights = (double) qb_cost_table_n_weights (s->table);
  guint64 limit = (guint64) floor (bpw * weights / 8.0);   /* as the allocator's budget */
  QbAllocBudget budget = { QB_ALLOC_TARGET_BPW, bpw };
  g_autoptr(QbAllocation) a = qb_allocate (s->table, &budget, NULL, error);
  g_autoptr(GTimer) timer = g_timer_new ();
  g_autoptr(QbPlan) plan = NULL;
  g_autofree char *label = NULL;
  guint tried = 0, kept = 0;
  gboolean more = TRUE;
  QbSweepPoint *pt;

  if (a == NULL)
    return FALSE;
  while (more && g_timer_elapsed (timer, NULL) < s->opts->refine_seconds)
    {
      if (!try_pairs (s, a, limit, weights, timer, &kld, &tried, &more, cancellable, error))
        return FALSE;
      kept += more;
    }
  plan = allocation_plan (s, a, "refined");
  label = g_strdup_printf ("refined %.2f bpw (study %" G_GINT64_FORMAT "): %u of %u kept", bpw,
                           s->study->record->id, kept, tried);
  pt = new_point (QB_SWEEP_REFINED, label, bpw);
  pt->n_tried = tried;
  pt->n_kept = kept;
  return add_point (s, plan, pt, cancellable, error);
}

GPtrArray *
qb_sweep_run (QbModel *model, QbTokenizer *tok, QbStore *store, gint64 study_id,
              const QbSweepOptions *opts, QbSweepProgressFunc progress, gpointer progress_data,
              GCancellable *cancellable, GError **error)
{
  g_autoptr(QbSensitivityStudy) study = NULL;
  g_autoptr(QbCostTable) table = NULL;
  g_autofree char *text_sha = NULL;
  g_autofree char *text = NULL;
  gsize len = 0;
  Sweep s = { 0 };
  gboolean ok = TRUE;

  if ((study = qb_sensitivity_study_load (store, study_id, error)) == NULL
      || (table = qb_sensitivity_study_to_cost_table (study, model, error)) == NULL)
    return NULL;
  if (opts->eval_text == NULL || !g_file_get_contents (opts->eval_text, &text, &len, error))
    {
      if (opts->eval_text == NULL)
        g_set_error (error, QB_SENSITIVITY_ERROR, QB_SENSITIVITY_ERROR_INVALID,
                     "a sweep needs the study's evaluation text");
      return NULL;
    }
  text_sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) text, len);
  if (g_strcmp0 (text_sha, study->record->eval_text_hash) != 0)
    {
      g_set_error (error, QB_SENSITIVITY_ERROR, QB_SENSITIVITY_ERROR_MISMATCH,
                   "%s is not the text study %" G_GINT64_FORMAT " was evaluated on (%s)",
                   opts->eval_text, study_id, study->record->eval_text_name);
      return NULL;
    }
  if (study->record->calibration_set_id == 0 && opts->stats != NULL)
    {
      g_set_error (error, QB_SENSITIVITY_ERROR, QB_SENSITIVITY_ERROR_MISMATCH,
                   "study %" G_GINT64_FORMAT " had no calibration set", study_id);
      return NULL;
    }

  s.model = model;
  s.tok = tok;
  s.store = store;
  s.opts = opts;
  s.study = study;
  s.table = table;
  s.tags[0] = g_strdup ("sweep");
  s.tags[1] = g_strdup_printf ("study:%" G_GINT64_FORMAT, study_id);
  s.tags[2] = g_strdup_printf ("method:%s", study->record->method);
  s.points = g_ptr_array_new_with_free_func ((GDestroyNotify) qb_sweep_point_free);
  s.progress = progress;
  s.progress_data = progress_data;
  s.p.total = opts->n_budgets + opts->n_swaps + (opts->refine_seconds > 0 && opts->n_budgets > 0)
              + (opts->uniform ? study->n_candidates : 0)
              + (opts->presets ? g_strv_length ((char **) qb_plan_list_presets ()) : 0);

  for (guint i = 0; ok && i < opts->n_budgets; i++)
    {
      g_autofree char *label = g_strdup_printf ("auto %.2f bpw (study %" G_GINT64_FORMAT ")",
                                                opts->budgets[i], study_id);
      g_autoptr(QbPlan) plan = auto_plan (&s, opts->budgets[i], NULL, error);

      ok = plan != NULL
           && add_point (&s, plan, new_point (QB_SWEEP_AUTO, label, opts->budgets[i]),
                         cancellable, error);
    }
  ok = ok && (opts->refine_seconds <= 0 || opts->n_budgets == 0
              || run_refine (&s, g_ptr_array_index (s.points, opts->n_budgets / 2), cancellable, error));
  ok = ok && run_baselines (&s, cancellable, error);
  ok = ok && (opts->n_swaps == 0 || opts->n_budgets == 0 || run_swaps (&s, cancellable, error));
  for (guint i = 0; i < G_N_ELEMENTS (s.tags); i++)
    g_free (s.tags[i]);
  if (!ok)
    {
      g_ptr_array_unref (s.points);
      return NULL;
    }
  return s.points;
}

double
qb_sweep_spearman (GPtrArray *points, guint kinds)
{
  g_autofree double *a = g_new (double, MAX (points->len, 1));
  g_autofree double *b = g_new (double, MAX (points->len, 1));
  guint n = 0;

  for (guint i = 0; i < points->len; i++)
    {
      const QbSweepPoint *p = g_ptr_array_index (points, i);
      if (!(kinds & (1u << p->kind)) || !isfinite (p->predicted_kld) || !isfinite (p->kld))
        continue;
      a[n] = p->predicted_kld;
      b[n] = p->kld;
      n++;
    }
  return qb_sensitivity_spearman (a, b, n);
}
