/* SPDX-License-Identifier: MIT */
/* test-ui-experiments.c — runs saved as experiments; review and compare. */
#include <math.h>
#include <string.h>
#include <gtk/gtk.h>

#include "qb-test-model.h"
#include "qb-test-ui.h"
#include "qb-test-util.h"

#define STORIES "models/stories260K.gguf"

typedef QbTestWindow Fixture;

static QbExperimentsPage *
page (Fixture *f)
{
  return qb_window_get_experiments_page (f->window);
}

static guint
n_experiments (Fixture *f)
{
  return g_list_model_get_n_items (qb_experiments_page_get_rows (page (f)));
}

/* The listed experiment with this id. */
static const QbExperiment *
experiment (Fixture *f,
            gint64   id)
{
  GListModel *rows = qb_experiments_page_get_rows (page (f));

  for (guint i = 0; i < g_list_model_get_n_items (rows); i++)
    {
      g_autoptr(QbExperimentRow) row = g_list_model_get_item (rows, i);
      if (qb_experiment_row_get_id (row) == id)
        return qb_experiment_row_get_experiment (row);
    }
  g_error ("experiment %" G_GINT64_FORMAT " is not listed", id);
  return NULL;
}

static gint64
run_with_default (Fixture    *f,
                  const char *format)
{
  QbRun *run;

  qb_test_window_activate (f, "set-default-format", g_variant_new_string (format));
  run = qb_test_window_run (f);
  g_assert_cmpint (qb_run_get_status (run), ==, QB_RUN_DONE);
  return qb_test_window_newest_experiment (f);
}

/* -- tests ---------------------------------------------------------------- */

/* A finished run is stored with every tensor and the plan's totals. */
static void
test_run_saved (Fixture       *f,
                gconstpointer  data)
{
  const QbPlanResolution *res;
  const QbExperiment *e;
  g_autofree char *note = NULL;
  gint64 id;

  if (!qb_test_window_open_shared (f, STORIES))
    return;
  g_assert_cmpuint (n_experiments (f), ==, 0);
  id = run_with_default (f, "Q8_0");
  g_assert_cmpint (id, >, 0);
  g_assert_cmpuint (n_experiments (f), ==, 1);

  e = experiment (f, id);
  res = qb_document_get_resolution (qb_window_get_document (f->window));
  g_assert_cmpint (e->status, ==, QB_EXPERIMENT_DONE);
  g_assert_cmpuint (e->n_tensors, ==, 48);
  g_assert_cmpuint (e->n_tensors_done, ==, 48);
  g_assert_cmpstr (e->name, ==, "Q8_0");
  g_assert_cmpuint (e->totals.quantized_bytes, ==, res->quantized_bytes);
  g_assert_cmpfloat_with_epsilon (e->totals.bpw, res->bpw, 1e-9);
  g_assert_cmpfloat (e->totals.sqnr_db, >, 20);
  note = g_strdup_printf ("saved as experiment #%" G_GINT64_FORMAT, id);
  g_assert_nonnull (strstr (qb_run_panel_get_status_text (qb_window_get_run_panel (f->window)), note));
}

/* Rename, tag, annotate and delete go through actions to the store. */
static void
test_edit_experiment (Fixture       *f,
                      gconstpointer  data)
{
  const QbExperiment *e;
  gint64 id, other;

  if (!qb_test_window_open_shared (f, STORIES))
    return;
  id = run_with_default (f, "Q8_0");
  other = run_with_default (f, "Q4_0");
  g_assert_cmpuint (n_experiments (f), ==, 2);

  qb_test_window_activate (f, "rename-experiment", g_variant_new ("(xs)", id, "baseline 8-bit"));
  qb_test_window_activate (f, "set-experiment-tags", g_variant_new ("(xs)", id, " baseline , ship ,"));
  qb_test_window_activate (f, "set-experiment-notes", g_variant_new ("(xs)", id, "Reference for the 4-bit runs."));
  qb_test_window_settle (f);
  e = experiment (f, id);
  g_assert_cmpstr (e->name, ==, "baseline 8-bit");
  g_assert_cmpuint (g_strv_length (e->tags), ==, 2);
  g_assert_true (g_strv_contains ((const char * const *) e->tags, "baseline"));
  g_assert_true (g_strv_contains ((const char * const *) e->tags, "ship"));
  g_assert_cmpstr (e->notes, ==, "Reference for the 4-bit runs.");

  /* Tags are replaced, not appended. */
  qb_test_window_activate (f, "set-experiment-tags", g_variant_new ("(xs)", id, "ship"));
  qb_test_window_settle (f);
  e = experiment (f, id);
  g_assert_cmpuint (g_strv_length (e->tags), ==, 1);
  g_assert_cmpstr (e->tags[0], ==, "ship");

  /* An empty name is refused by the store: the message shows, nothing changes. */
  qb_test_window_activate (f, "rename-experiment", g_variant_new ("(xs)", id, ""));
  qb_test_window_settle (f);
  g_assert_nonnull (qb_window_get_error_message (f->window));
  g_assert_cmpstr (experiment (f, id)->name, ==, "baseline 8-bit");

  qb_test_window_activate (f, "delete-experiment", g_variant_new_int64 (other));
  qb_test_window_settle (f);
  g_assert_cmpuint (n_experiments (f), ==, 1);
  g_assert_cmpint (qb_test_window_newest_experiment (f), ==, id);
}

/* Opening an experiment brings its plan and per-tensor results back. */
static void
test_open_experiment (Fixture       *f,
                      gconstpointer  data)
{
  QbDocument *doc;
  QbTensorRow *row;
  double sqnr;
  gint64 id;

  if (!qb_test_window_open_shared (f, STORIES))
    return;
  doc = qb_window_get_document (f->window);
  qb_test_window_activate (f, "add-rule", g_variant_new ("(sss)", "output.weight", "glob", "Q8_0"));
  id = run_with_default (f, "Q4_0");
  row = qb_test_window_row (f, "blk.1.attn_q.weight");
  sqnr = qb_tensor_row_get_sqnr (row);
  g_assert_false (isnan (sqnr));

  /* Change the plan and forget the results, then open the experiment. */
  qb_test_window_activate (f, "remove-rule", g_variant_new_uint32 (0));
  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q8_0"));
  qb_document_clear_results (doc);
  g_assert_true (isnan (qb_tensor_row_get_sqnr (row)));

  qb_test_window_activate (f, "open-experiment", g_variant_new_int64 (id));
  qb_test_window_settle (f);
  g_assert_null (qb_window_get_error_message (f->window));
  doc = qb_window_get_document (f->window);
  g_assert_cmpstr (qb_plan_get_default_format (qb_document_get_plan (doc)), ==, "Q4_0");
  g_assert_cmpuint (qb_plan_get_n_rules (qb_document_get_plan (doc)), ==, 1);
  g_assert_cmpstr (qb_tensor_row_get_requested (row), ==, "Q4_0");
  g_assert_cmpfloat (qb_tensor_row_get_sqnr (row), ==, sqnr);
  g_assert_nonnull (qb_tensor_row_get_result (row)->hist_quantized);
  g_assert_false (qb_tensor_row_get_stale (row));
}

/* Two experiments side by side: scatter with front, bars, format table. */
static void
test_compare (Fixture       *f,
              gconstpointer  data)
{
  QbComparePage *compare;
  const QbComparison *c;
  gint64 ids[2];
  guint differ = 0;
  GListModel *format_rows;

  if (!qb_test_window_open_shared (f, STORIES))
    return;
  ids[0] = run_with_default (f, "Q8_0");
  ids[1] = run_with_default (f, "Q4_0");

  /* With one selected, Compare is disabled and the page says why; no banner. */
  g_assert_true (qb_experiments_page_select_id (page (f), ids[0], FALSE));
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "compare"));
  g_assert_nonnull (strstr (qb_experiments_page_get_count_text (page (f)), "select two or more"));
  g_assert_null (qb_window_get_error_message (f->window));

  g_assert_true (qb_experiments_page_select_id (page (f), ids[1], TRUE));
  g_assert_null (strstr (qb_experiments_page_get_count_text (page (f)), "two or more"));
  qb_test_window_activate (f, "compare", NULL);
  qb_test_window_settle (f);
  compare = qb_window_get_compare_page (f->window);
  c = qb_compare_page_get_comparison (compare);
  g_assert_nonnull (c);
  g_assert_cmpuint (c->n_experiments, ==, 2);
  g_assert_cmpuint (c->n_rows, ==, 48);
  for (guint r = 0; r < c->n_rows; r++)
    differ += c->rows[r].differs;
  g_assert_cmpuint (differ, >, 0);

  /* The format table lists exactly the differing tensors. */
  qb_compare_page_show_view (compare, "formats");
  format_rows = qb_compare_page_get_format_rows (compare);
  g_assert_cmpuint (g_list_model_get_n_items (format_rows), ==, differ);

  /* 8-bit is larger and better, 4-bit smaller and worse: both on the front. */
  qb_compare_page_show_view (compare, "scatter");
  qb_compare_page_set_metric (compare, QB_METRIC_SQNR);
  g_assert_cmpuint (qb_scatter_view_get_n_points (qb_compare_page_get_scatter (compare)), ==, 2);
  g_assert_true (qb_scatter_view_is_on_front (qb_compare_page_get_scatter (compare), 0));
  g_assert_true (qb_scatter_view_is_on_front (qb_compare_page_get_scatter (compare), 1));
  {
    g_autofree char *a = qb_scatter_view_describe_point (qb_compare_page_get_scatter (compare), 0);
    g_autofree char *b = qb_scatter_view_describe_point (qb_compare_page_get_scatter (compare), 1);
    g_autofree char *both = g_strconcat (a, b, NULL);
    g_assert_nonnull (strstr (both, "Q8_0"));
    g_assert_nonnull (strstr (both, "Q4_0"));
    g_assert_nonnull (strstr (a, "Pareto"));
    g_assert_nonnull (strstr (b, "Pareto"));
  }

  /* Per layer: each experiment has a bar for layer 0; 8-bit's SQNR is higher. */
  qb_compare_page_show_view (compare, "layers");
  {
    QbLayerBarsView *bars = qb_compare_page_get_layer_bars (compare);
    guint s8 = g_str_equal (c->experiments[0]->name, "Q8_0") ? 0 : 1;
    g_autofree char *q8 = qb_layer_bars_view_describe (bars, s8, 1);
    g_autofree char *q4 = qb_layer_bars_view_describe (bars, 1 - s8, 1);
    double v8, v4;

    g_assert_nonnull (q8);
    g_assert_nonnull (q4);
    g_assert_nonnull (strstr (q8, "0 · Q8_0"));
    v8 = g_ascii_strtod (strrchr (q8, ':') + 1, NULL);
    v4 = g_ascii_strtod (strrchr (q4, ':') + 1, NULL);
    g_assert_cmpfloat (v8, >, v4 + 10);
  }

  /* The same through the action with ids, and the chart exports. */
  qb_test_window_activate (f, "compare-experiments",
                           g_variant_new_fixed_array (G_VARIANT_TYPE_INT64, ids, 2, sizeof (gint64)));
  qb_test_window_settle (f);
  {
    g_autofree char *svg = g_build_filename (f->dir, "layers.svg", NULL);
    qb_test_window_activate (f, "export-chart-to", g_variant_new_string (svg));
    g_assert_true (g_file_test (svg, G_FILE_TEST_IS_REGULAR));
  }
}

/* Cancelling midway keeps what finished, in the table and in the store. */
static gboolean cancel_sent;

static void
cancel_after_two (QbRun        *run,
                  QbTestWindow *f)
{
  if (!cancel_sent && qb_run_get_tensors_done (run) >= 2)
    {
      cancel_sent = TRUE;
      g_action_group_activate_action (G_ACTION_GROUP (f->window), "cancel", NULL);
    }
}

static void
test_cancel_saved (Fixture       *f,
                   gconstpointer  data)
{
  QbTestLlama spec = { 6, 512, 1408, 4000, 8, 8, FALSE, QB_DTYPE_F32, 11 };
  g_autofree char *path = qb_test_write_llama (f->dir, "cancel.gguf", &spec);
  g_autoptr(GSettings) settings = g_settings_new ("org.quantbench.Quantbench");
  QbDocument *doc;
  QbRun *run;
  const QbExperiment *e;
  guint done, with_result = 0, n;

  /* One thread and a searching method: slow enough to stop midway. */
  g_settings_set_uint (settings, "threads", 1);
  qb_test_window_open (f, path);
  doc = qb_window_get_document (f->window);
  g_assert_nonnull (doc);
  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q4_K"));
  qb_test_window_activate (f, "set-method", g_variant_new_string ("search"));

  cancel_sent = FALSE;
  g_action_group_activate_action (G_ACTION_GROUP (f->window), "quantize", NULL);
  run = qb_window_get_run (f->window);
  g_signal_connect (run, "progress", G_CALLBACK (cancel_after_two), f);
  qb_test_window_settle (f);

  g_assert_true (cancel_sent);
  g_assert_cmpint (qb_run_get_status (run), ==, QB_RUN_CANCELLED);
  done = qb_run_get_tensors_done (run);
  n = g_list_model_get_n_items (qb_document_get_rows (doc));
  g_assert_cmpuint (done, >=, 2);
  g_assert_cmpuint (done, <, n);
  for (guint i = 0; i < n; i++)
    with_result += qb_tensor_row_get_result (qb_document_get_row (doc, i)) != NULL;
  g_assert_cmpuint (with_result, ==, done);

  e = experiment (f, qb_test_window_newest_experiment (f));
  g_assert_cmpint (e->status, ==, QB_EXPERIMENT_CANCELLED);
  g_assert_cmpuint (e->n_tensors_done, ==, done);
  g_assert_cmpuint (e->n_tensors, ==, n);
}

/* An experiment evaluated on real text: perplexity and KLD are stored with
 * it, and the comparison can plot them. */
static void
test_evaluate (Fixture       *f,
               gconstpointer  data)
{
  g_autofree char *text = qb_test_shared_path ("text/tinystories-val.txt");
  const QbExperiment *e8, *e2;
  gint64 q8, q2;
  QbComparePage *compare;

  if (text == NULL || !qb_test_window_open_shared (f, STORIES))
    return;
  q8 = run_with_default (f, "Q8_0");
  q2 = run_with_default (f, "INT2_G32");

  qb_test_window_activate (f, "evaluate-experiment", g_variant_new ("(xsuub)", q8, text, 128, 4, TRUE));
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "evaluate-experiment"));
  qb_test_window_wait_evaluation (f, 300);
  g_assert_cmpint (qb_evaluator_get_status (qb_window_get_evaluator (f->window)), ==, QB_EVALUATOR_DONE);
  qb_test_window_activate (f, "evaluate-experiment", g_variant_new ("(xsuub)", q2, text, 128, 4, TRUE));
  qb_test_window_wait_evaluation (f, 300);
  qb_test_window_settle (f);

  e8 = experiment (f, q8);
  e2 = experiment (f, q2);
  g_assert_nonnull (e8->evaluation);
  g_assert_nonnull (e2->evaluation);
  g_assert_cmpuint (e8->evaluation->n_ctx, ==, 128);
  g_assert_cmpuint (e8->evaluation->n_chunks, ==, 4);
  g_assert_cmpstr (e8->evaluation->text_name, ==, "tinystories-val.txt");
  /* Both against the same float model; 8-bit is almost lossless, 2-bit is not. */
  g_assert_cmpfloat (e8->evaluation->base_perplexity, ==, e2->evaluation->base_perplexity);
  g_assert_cmpfloat (e8->evaluation->perplexity / e8->evaluation->base_perplexity, <, 1.02);
  g_assert_cmpfloat (e8->evaluation->kld_mean, >=, 0);
  g_assert_cmpfloat (e2->evaluation->kld_mean, >, 10 * e8->evaluation->kld_mean);
  g_assert_cmpfloat (e2->evaluation->perplexity, >, e8->evaluation->perplexity);
  g_assert_cmpfloat (e8->evaluation->top1_agreement, >, e2->evaluation->top1_agreement);

  /* The page shows the device of the quantization and of the evaluation. */
  {
    g_autofree char *device = NULL, *eval_device = NULL;

    g_assert_true (qb_experiments_page_select_id (page (f), q8, FALSE));
    device = qb_experiments_page_get_fact (page (f), "Device");
    eval_device = qb_experiments_page_get_fact (page (f), "Evaluation device");
    g_assert_nonnull (e8->evaluation->device);
    g_assert_cmpstr (device, ==, e8->backend ? e8->backend : "cpu");
    g_assert_cmpstr (eval_device, ==, e8->evaluation->device);
    g_assert_true (g_str_equal (eval_device, "cpu") || g_str_has_prefix (eval_device, "opencl:"));
  }

  /* The comparison plots perplexity and KLD now. */
  {
    gint64 ids[] = { q8, q2 };
    qb_test_window_activate (f, "compare-experiments",
                             g_variant_new_fixed_array (G_VARIANT_TYPE_INT64, ids, 2, sizeof (gint64)));
  }
  qb_test_window_settle (f);
  compare = qb_window_get_compare_page (f->window);
  qb_compare_page_set_metric (compare, QB_METRIC_KLD_MEAN);
  g_assert_cmpuint (qb_scatter_view_get_n_points (qb_compare_page_get_scatter (compare)), ==, 2);
  qb_compare_page_set_metric (compare, QB_METRIC_PERPLEXITY);
  g_assert_cmpuint (qb_scatter_view_get_n_points (qb_compare_page_get_scatter (compare)), ==, 2);
  g_assert_nonnull (strstr (qb_scatter_view_get_note (qb_compare_page_get_scatter (compare)),
                            "tinystories-val.txt, 4 chunks of 128 tokens"));

  /* Another chunking is not plotted with them, an experiment without an
   * evaluation neither, and the chart says so. */
  {
    gint64 q4 = run_with_default (f, "Q4_0");
    gint64 q5 = run_with_default (f, "Q5_0");
    gint64 ids[4];
    const char *note;

    qb_test_window_activate (f, "evaluate-experiment", g_variant_new ("(xsuub)", q4, text, 128, 2, TRUE));
    qb_test_window_wait_evaluation (f, 300);
    qb_test_window_settle (f);
    ids[0] = q8, ids[1] = q2, ids[2] = q4, ids[3] = q5;
    qb_test_window_activate (f, "compare-experiments",
                             g_variant_new_fixed_array (G_VARIANT_TYPE_INT64, ids, 4, sizeof (gint64)));
    qb_test_window_settle (f);
    qb_compare_page_set_metric (compare, QB_METRIC_KLD_MEAN);
    g_assert_cmpuint (qb_scatter_view_get_n_points (qb_compare_page_get_scatter (compare)), ==, 2);
    note = qb_scatter_view_get_note (qb_compare_page_get_scatter (compare));
    g_assert_nonnull (strstr (note, "4 chunks of 128 tokens"));
    g_assert_nonnull (strstr (note, "1 experiment left out: no evaluation"));
    g_assert_nonnull (strstr (note, "1 left out: evaluated on another text or chunking"));
    /* Measures of the run itself have every experiment. */
    qb_compare_page_set_metric (compare, QB_METRIC_SQNR);
    g_assert_cmpuint (qb_scatter_view_get_n_points (qb_compare_page_get_scatter (compare)), ==, 4);
    g_assert_null (qb_scatter_view_get_note (qb_compare_page_get_scatter (compare)));
  }
}

/* Cancelled evaluations store nothing. */
static void
test_evaluate_cancel (Fixture       *f,
                      gconstpointer  data)
{
  g_autofree char *text = qb_test_shared_path ("text/tinystories-val.txt");
  QbEvaluator *evaluator;
  gint64 id;

  if (text == NULL || !qb_test_window_open_shared (f, STORIES))
    return;
  id = run_with_default (f, "Q4_0");
  g_action_group_activate_action (G_ACTION_GROUP (f->window), "evaluate-experiment",
                                  g_variant_new ("(xsuub)", id, text, 128, 0, TRUE));
  evaluator = qb_window_get_evaluator (f->window);
  g_assert_true (qb_evaluator_is_running (evaluator));
  g_action_group_activate_action (G_ACTION_GROUP (f->window), "cancel-evaluation", NULL);
  qb_test_window_wait_evaluation (f, 120);
  g_assert_cmpint (qb_evaluator_get_status (evaluator), ==, QB_EVALUATOR_CANCELLED);
  qb_test_window_settle (f);
  g_assert_null (experiment (f, id)->evaluation);
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "evaluate-experiment"));
}

int
main (int argc, char **argv)
{
  qb_test_ui_init (&argc, &argv);

#define ADD(path, func) g_test_add ("/ui/experiments/" path, Fixture, NULL, \
                                    qb_test_window_setup, func, qb_test_window_teardown)
  ADD ("run-saved", test_run_saved);
  ADD ("edit", test_edit_experiment);
  ADD ("open", test_open_experiment);
  ADD ("compare", test_compare);
  ADD ("cancel-saved", test_cancel_saved);
  ADD ("evaluate", test_evaluate);
  ADD ("evaluate-cancel", test_evaluate_cancel);
#undef ADD
  return g_test_run ();
}
