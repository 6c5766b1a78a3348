/* SPDX-License-Identifier: MIT */
/* test-sweep.c — a sweep on stories260K: the automatic plan for a budget
 * stays within it and beats the uniform format of the same candidates at
 * or below its size; every plan is stored as an experiment tagged with the
 * study, with its evaluation; predicted KLD is close to measured; measured
 * refinement keeps the budget and never ends above the plan it started
 * from; the `sweep` command prints the comparison. */
#include <math.h>
#include <string.h>

#include "qb-sensitivity.h"
#include "qb-store.h"
#include "qb-study-record.h"
#include "qb-sweep.h"
#include "qb-test-util.h"
#include "qb-tokenizer.h"

static void
test_sweep (void)
{
  g_autofree char *path = qb_test_shared_path ("models/stories260K.gguf");
  g_autofree char *text = qb_test_shared_path ("text/tinystories-val.txt");
  g_autofree char *dir = NULL, *db = NULL, *cache = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  g_autoptr(QbStore) store = NULL;
  g_autoptr(GPtrArray) points = NULL;
  static const char *names[] = { "INT3_G32", "INT4_CH", "Q4_0", "INT5_CH", "Q8_0" };
  const QbFormat *cands[G_N_ELEMENTS (names)];
  const double budgets[] = { 4.5, 5.5 };
  QbSensitivityOptions so;
  QbSweepOptions o;
  gint64 id = 0;
  guint n_auto = 0, n_uniform = 0, n_swap = 0, n_refined = 0;

  if (path == NULL || text == NULL)
    return;
  dir = qb_test_tmpdir ();
  db = g_build_filename (dir, "qb.db", NULL);
  cache = g_build_filename (dir, "logprobs", NULL);
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  tok = qb_tokenizer_new_for_model (model, &error);
  store = qb_store_open (db, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    cands[i] = qb_format_find (names[i]);
  qb_sensitivity_options_init (&so);
  so.candidates = cands;
  so.n_candidates = G_N_ELEMENTS (names);
  so.eval_text = text;
  so.eval_n_chunks = 4;
  so.n_threads = 2;
  g_assert_true (qb_sensitivity_run (model, tok, store, &so, NULL, NULL, NULL, &id, &error));
  g_assert_no_error (error);

  qb_sweep_options_init (&o);
  o.budgets = budgets;
  o.n_budgets = G_N_ELEMENTS (budgets);
  o.presets = FALSE;
  o.n_swaps = 4;
  o.refine_seconds = 4;
  o.eval_text = text;
  o.cache_dir = cache;
  o.n_threads = 2;
  points = qb_sweep_run (model, tok, store, id, &o, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (points);
  for (guint i = 0; i < points->len; i++)
    {
      const QbSweepPoint *p = g_ptr_array_index (points, i);
      g_autoptr(QbExperiment) e = qb_store_get_experiment (store, p->experiment_id, &error);
      g_autoptr(GPtrArray) evals = qb_store_list_evaluations (store, p->experiment_id, &error);
      g_autofree char *tag = g_strdup_printf ("study:%" G_GINT64_FORMAT, id);

      g_assert_no_error (error);
      g_test_message ("%s: %.3f bpw, predicted %.4g, measured %.4g", p->label, p->bpw,
                      p->predicted_kld, p->kld);
      g_assert_true (g_strv_contains ((const char * const *) e->tags, tag));
      g_assert_true (g_strv_contains ((const char * const *) e->tags, "sweep"));
      g_assert_cmpuint (evals->len, ==, 1);
      g_assert_cmpfloat (((QbEvaluation *) g_ptr_array_index (evals, 0))->kld_mean, ==, p->kld);
      g_assert_cmpfloat (p->kld, >, 0);
      g_assert_cmpfloat (p->predicted_kld, >, 0);
      /* The additive model lands within a factor of 3 of the measurement
       * where the study has every tensor's format (uniform Q8_0 sends
       * ffn_down to F16, which the ladder lacks). */
      if (p->n_estimated == 0)
        {
          g_assert_cmpfloat (p->predicted_kld, <, 3 * p->kld);
          g_assert_cmpfloat (p->predicted_kld, >, p->kld / 3);
        }
      n_auto += p->kind == QB_SWEEP_AUTO;
      n_uniform += p->kind == QB_SWEEP_UNIFORM;
      n_swap += p->kind == QB_SWEEP_SWAP;
      n_refined += p->kind == QB_SWEEP_REFINED;
      if (p->kind == QB_SWEEP_AUTO || p->kind == QB_SWEEP_REFINED)
        g_assert_cmpfloat (p->bpw, <=, p->target_bpw + 1e-9);
    }
  g_assert_cmpuint (n_auto, ==, 2);
  g_assert_cmpuint (n_refined, ==, 1);
  /* Refinement of the middle (5.5 bpw) plan: pairs were measured; a kept
   * pair lowered the measured KLD, none kept leaves the plan as it was. */
  {
    const QbSweepPoint *start = g_ptr_array_index (points, 1);
    const QbSweepPoint *refined = g_ptr_array_index (points, 2);
    g_assert_cmpint (refined->kind, ==, QB_SWEEP_REFINED);
    g_assert_cmpfloat (refined->target_bpw, ==, start->target_bpw);
    g_assert_cmpuint (refined->n_tried, >, 0);
    g_assert_cmpuint (refined->n_kept, <=, refined->n_tried);
    if (refined->n_kept > 0)
      g_assert_cmpfloat (refined->kld, <, start->kld);
    else
      g_assert_cmpfloat (fabs (refined->kld - start->kld), <=, 1e-9 * start->kld);
  }
  g_assert_cmpuint (n_uniform, ==, 5);
  g_assert_cmpuint (n_swap, ==, 4);
  /* At 4.5 bpw the plan beats every uniform format at or below 4.5 bpw. */
  for (guint i = 0; i < points->len; i++)
    {
      const QbSweepPoint *a = g_ptr_array_index (points, 0);
      const QbSweepPoint *u = g_ptr_array_index (points, i);
      if (u->kind == QB_SWEEP_UNIFORM && u->bpw <= 4.5)
        g_assert_cmpfloat (a->kld, <, u->kld);
    }
  g_assert_cmpfloat (qb_sweep_spearman (points, (1u << QB_SWEEP_AUTO) | (1u << QB_SWEEP_UNIFORM)),
                     >, 0.8);

  /* A text other than the study's is refused. */
  {
    g_autofree char *other = g_build_filename (dir, "other.txt", NULL);
    g_assert_true (g_file_set_contents (other, "Once upon a time.", -1, NULL));
    o.eval_text = other;
    g_assert_null (qb_sweep_run (model, tok, store, id, &o, NULL, NULL, NULL, &error));
    g_assert_error (error, QB_SENSITIVITY_ERROR, QB_SENSITIVITY_ERROR_MISMATCH);
  }
}

static void
test_cli (void)
{
  g_autofree char *model = qb_test_shared_path ("models/stories260K.gguf");
  g_autofree char *text = qb_test_shared_path ("text/tinystories-val.txt");
  g_autofree char *exe = NULL, *dir = NULL, *db = NULL, *out = NULL;

  if (model == NULL || text == NULL || (exe = qb_test_quantbench_path ()) == NULL)
    return;
  dir = qb_test_tmpdir ();
  db = g_build_filename (dir, "qb.db", NULL);
  {
    const char *args[] = { "sensitivity", model, "--eval-text", text, "--eval-chunks", "2",
                           "--candidates", "INT3_G32,INT4_CH,Q4_0", "--db", db, "-t", "2", NULL };
    g_assert_cmpint (qb_test_quantbench_argv (args, NULL, NULL, NULL), ==, 0);
  }
  {
    const char *args[] = { "sweep", model, "--study", "1", "--eval-text", text, "--budgets", "4.4",
                           "--no-presets", "--db", db, "-t", "2", NULL };
    g_assert_cmpint (qb_test_quantbench_argv (args, NULL, &out, NULL), ==, 0);
  }
  g_assert_nonnull (strstr (out, "auto 4.40 bpw"));
  g_assert_nonnull (strstr (out, "uniform INT4_CH"));
  g_assert_nonnull (strstr (out, "best baseline at or below"));

  /* The study's costs drive --target-bpw on plan (and quantize, eval). */
  {
    g_autofree char *plan_out = NULL;
    const char *args[] = { "plan", model, "--target-bpw", "4.4", "--study", "1", "--db", db, NULL };
    g_assert_cmpint (qb_test_quantbench_argv (args, NULL, &plan_out, NULL), ==, 0);
    g_assert_nonnull (strstr (plan_out, "costs from sensitivity study 1"));
    g_assert_null (strstr (plan_out, "weight proxies"));
    g_assert_nonnull (strstr (plan_out, "predicted KLD"));
  }
  {
    g_autofree char *err = NULL;
    const char *args[] = { "plan", model, "--target-bpw", "4.4", "--study", "99", "--db", db, NULL };
    g_assert_cmpint (qb_test_quantbench_argv (args, NULL, NULL, &err), ==, 1);
    g_assert_nonnull (strstr (err, "--study 99"));
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sweep/run", test_sweep);
  g_test_add_func ("/sweep/cli", test_cli);
  return g_test_run ();
}
