/* SPDX-License-Identifier: MIT */
/* test-ui-window.c — the workbench window driven through its actions. */
#include <math.h>
#include <string.h>
#include <glib/gstdio.h>
#include <gtk/gtk.h>

#include "qb-application.h"
#include "qb-preferences-dialog.h"
#include "qb-store.h"
#include "qb-test-model.h"
#include "qb-test-ui.h"
#include "qb-test-util.h"
#include "qb-window.h"

#define STORIES "models/stories260K.gguf"

typedef QbTestWindow Fixture;


static gboolean
run_finished (gpointer data)
{
  QbRun *run = qb_window_get_run (data);
  return run && !qb_run_is_running (run);
}

static gboolean
has_stats (gpointer data)
{
  QbTensorRow *row = qb_tensor_details_get_row (qb_window_get_details (data));
  return row && qb_tensor_row_get_stats (row);
}

static gboolean
open_stories (Fixture *f)
{
  return qb_test_window_open_shared (f, STORIES);
}

/* -- tests ---------------------------------------------------------------- */

static void
test_open_model (Fixture       *f,
                 gconstpointer  data)
{
  g_autofree char *path = qb_test_shared_path (STORIES);
  QbDocument *doc;
  const char *subtitle;

  if (path == NULL)
    return;
  qb_test_window_open_watched (f, path, "stories260K");
  g_assert_null (qb_window_get_error_message (f->window));
  doc = qb_window_get_document (f->window);
  g_assert_cmpuint (g_list_model_get_n_items (qb_document_get_rows (doc)), ==, 48);
  g_assert_cmpuint (g_list_model_get_n_items (qb_layer_table_get_visible_rows (qb_window_get_layer_table (f->window))),
                    ==, 48);
  subtitle = qb_window_get_subtitle_text (f->window);
  g_assert_nonnull (strstr (subtitle, "5 layers"));
  g_assert_nonnull (strstr (subtitle, "64 hidden"));
  g_assert_nonnull (strstr (subtitle, "8 heads (4 KV)"));
  g_assert_nonnull (strstr (subtitle, "FFN 172"));
  g_assert_nonnull (strstr (subtitle, "vocab 512"));
  g_assert_nonnull (strstr (qb_window_get_totals_text (f->window), "params"));

  /* A tensor is selected at once and its original histogram arrives in
   * the background, before any run. */
  qb_test_ui_wait_for (has_stats, f->window, 30, "the original histogram");
  g_assert_true (qb_histogram_view_has_data (qb_tensor_details_get_histogram (qb_window_get_details (f->window))));
}

/* The per-row format and the selection action write overrides; totals
 * follow at once and add up from the rows. */
static void
test_set_formats (Fixture       *f,
                  gconstpointer  data)
{
  QbDocument *doc;
  QbLayerTable *table;
  const QbPlanResolution *res;
  QbTensorRow *q, *k;
  const char *format;
  guint64 sum = 0;
  guint64 before;

  if (!open_stories (f))
    return;
  doc = qb_window_get_document (f->window);
  table = qb_window_get_layer_table (f->window);

  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q4_0"));
  before = qb_document_get_resolution (doc)->quantized_bytes;

  qb_test_window_activate (f, "select-tensor", g_variant_new_string ("blk.0.attn_q.weight"));
  g_assert_true (qb_layer_table_get_focused_row (table) == qb_test_window_row (f, "blk.0.attn_q.weight"));
  qb_test_window_activate (f, "set-format", g_variant_new_string ("Q8_0"));

  q = qb_test_window_row (f, "blk.0.attn_q.weight");
  g_assert_cmpstr (qb_tensor_row_get_requested (q), ==, "Q8_0");
  g_assert_true (qb_tensor_row_get_overridden (q));
  g_assert_cmpstr (qb_tensor_row_get_source (q), ==, "override");
  g_assert_true (qb_plan_get_override (qb_document_get_plan (doc), "blk.0.attn_q.weight", &format, NULL));
  g_assert_cmpstr (format, ==, "Q8_0");
  /* 64 × 64 weights: Q8_0 is 34 bytes per 32, Q4_0 18. */
  g_assert_cmpuint (qb_tensor_row_get_bytes (q), ==, 4096 / 32 * 34);
  res = qb_document_get_resolution (doc);
  g_assert_cmpuint (res->quantized_bytes, ==, before + 4096 / 32 * (34 - 18));

  /* Several rows at once. */
  qb_layer_table_set_search (table, "attn_k");
  qb_layer_table_select_all (table);
  qb_test_window_activate (f, "set-format", g_variant_new_string ("Q5_0"));
  for (guint l = 0; l < 5; l++)
    {
      g_autofree char *name = g_strdup_printf ("blk.%u.attn_k.weight", l);
      k = qb_test_window_row (f, name);
      g_assert_cmpstr (qb_tensor_row_get_requested (k), ==, "Q5_0");
    }
  g_assert_cmpstr (qb_tensor_row_get_requested (q), ==, "Q8_0");

  /* The totals are the sum of the rows. */
  res = qb_document_get_resolution (doc);
  for (guint i = 0; i < res->n_tensors; i++)
    sum += qb_tensor_row_get_bytes (qb_document_get_row (doc, i));
  g_assert_cmpuint (sum, ==, res->quantized_bytes);
  g_assert_nonnull (strstr (qb_window_get_totals_text (f->window), "bpw"));

  /* A preset decides what overrides do not. */
  qb_test_window_activate (f, "clear-overrides", NULL);
  g_assert_false (qb_tensor_row_get_overridden (q));
  qb_test_window_activate (f, "set-preset", g_variant_new_string ("Q4_K_M"));
  g_assert_cmpstr (qb_tensor_row_get_source (qb_test_window_row (f, "output.weight")), ==, "preset Q4_K_M");

  /* An unknown format is refused with a message, not applied. */
  qb_test_window_activate (f, "set-format", g_variant_new_string ("Q9_9"));
  g_assert_nonnull (strstr (qb_window_get_error_message (f->window), "Q9_9"));
}

static void
test_rules (Fixture       *f,
            gconstpointer  data)
{
  QbDocument *doc;
  QbPlan *plan;
  QbRulesEditor *editor;

  if (!open_stories (f))
    return;
  doc = qb_window_get_document (f->window);
  plan = qb_document_get_plan (doc);
  editor = qb_plan_panel_get_rules_editor (qb_window_get_plan_panel (f->window));

  qb_test_window_activate (f, "add-rule", g_variant_new ("(sss)", "blk.*.attn_v.weight", "glob", "Q8_0"));
  g_assert_cmpuint (qb_plan_get_n_rules (plan), ==, 1);
  g_assert_cmpuint (qb_rules_editor_get_n_rows (editor), ==, 1);
  g_assert_cmpint (qb_rules_editor_get_active (editor), ==, 0);
  /* The new rule is the active one: its matches are highlighted. */
  g_assert_cmpuint (qb_rules_editor_get_match_count (editor, 0), ==, 5);
  g_assert_cmpuint (qb_document_count_highlighted (doc), ==, 5);
  g_assert_true (qb_tensor_row_get_highlighted (qb_test_window_row (f, "blk.3.attn_v.weight")));
  g_assert_cmpstr (qb_tensor_row_get_source (qb_test_window_row (f, "blk.3.attn_v.weight")), ==, "rule 1");

  /* Typing updates the plan and the highlight as you go. */
  qb_rules_editor_set_pattern_text (editor, 0, "blk.1.*");
  qb_test_ui_flush ();
  g_assert_cmpstr (qb_plan_get_rule (plan, 0)->pattern, ==, "blk.1.*");
  /* blk.1 has 9 tensors; its two norms stay as stored (keep_1d beats rules),
   * so the rule acts on 7, and the highlight shows those. */
  g_assert_cmpuint (qb_document_count_highlighted (doc), ==, 7);
  g_assert_cmpuint (qb_rules_editor_get_match_count (editor, 0), ==, 7);
  g_assert_false (qb_tensor_row_get_highlighted (qb_test_window_row (f, "blk.1.attn_norm.weight")));
  g_assert_cmpstr (qb_tensor_row_get_source (qb_test_window_row (f, "blk.1.attn_norm.weight")), ==, "1-D");
  g_assert_false (qb_tensor_row_get_highlighted (qb_test_window_row (f, "blk.3.attn_v.weight")));

  /* A regex that does not compile is marked and kept out of the plan. */
  qb_test_window_activate (f, "add-rule", g_variant_new ("(sss)", "ffn_(up|gate)", "regex", "Q5_0"));
  g_assert_cmpuint (qb_document_count_highlighted (doc), ==, 10);
  qb_rules_editor_set_pattern_text (editor, 1, "ffn_(up");
  qb_test_ui_flush ();
  g_assert_true (qb_rules_editor_row_has_error (editor, 1));
  g_assert_cmpstr (qb_plan_get_rule (plan, 1)->pattern, !=, "ffn_(up");
  g_assert_cmpuint (qb_document_count_highlighted (doc), ==, 0);
  qb_rules_editor_set_pattern_text (editor, 1, "ffn_up");
  qb_test_ui_flush ();
  g_assert_false (qb_rules_editor_row_has_error (editor, 1));
  g_assert_cmpuint (qb_document_count_highlighted (doc), ==, 5);

  /* First match wins: blk.1.ffn_up matches both; rule 1 decides. */
  g_assert_cmpstr (qb_tensor_row_get_source (qb_test_window_row (f, "blk.1.ffn_up.weight")), ==, "rule 1");
  g_assert_cmpstr (qb_tensor_row_get_source (qb_test_window_row (f, "blk.4.ffn_up.weight")), ==, "rule 2");
  qb_test_window_activate (f, "move-rule", g_variant_new ("(uu)", 1, 0));
  g_assert_cmpstr (qb_plan_get_rule (plan, 0)->pattern, ==, "ffn_up");
  g_assert_cmpstr (qb_tensor_row_get_source (qb_test_window_row (f, "blk.1.ffn_up.weight")), ==, "rule 1");
  g_assert_cmpstr (qb_tensor_row_get_source (qb_test_window_row (f, "blk.1.ffn_down.weight")), ==, "rule 2");
  g_assert_cmpuint (qb_rules_editor_get_n_rows (editor), ==, 2);

  qb_test_window_activate (f, "remove-rule", g_variant_new_uint32 (0));
  g_assert_cmpuint (qb_plan_get_n_rules (plan), ==, 1);
  g_assert_cmpuint (qb_rules_editor_get_n_rows (editor), ==, 1);
  g_assert_cmpstr (qb_tensor_row_get_source (qb_test_window_row (f, "blk.4.ffn_up.weight")), !=, "rule 1");
}

static void
test_table_filters (Fixture       *f,
                    gconstpointer  data)
{
  QbLayerTable *table;
  GListModel *visible;
  g_autofree char *first = NULL;
  g_autofree char *inside = NULL;

  if (!open_stories (f))
    return;
  table = qb_window_get_layer_table (f->window);
  visible = qb_layer_table_get_visible_rows (table);

  qb_layer_table_set_search (table, "ATTN_Q");
  g_assert_cmpuint (g_list_model_get_n_items (visible), ==, 5);
  qb_layer_table_set_search (table, "");
  qb_layer_table_set_layer_filter (table, 2);
  g_assert_cmpuint (g_list_model_get_n_items (visible), ==, 9);
  qb_layer_table_set_layer_filter (table, QB_LAYER_FILTER_NONE);
  g_assert_cmpuint (g_list_model_get_n_items (visible), ==, 3);
  qb_layer_table_set_layer_filter (table, QB_LAYER_FILTER_ALL);
  qb_layer_table_set_role_filter (table, QB_ROLE_FFN_DOWN);
  g_assert_cmpuint (g_list_model_get_n_items (visible), ==, 5);
  qb_layer_table_set_role_filter (table, QB_ROLE_FILTER_ALL);
  g_assert_cmpuint (g_list_model_get_n_items (visible), ==, 48);

  /* Grouped by role: rows of a role together, labelled on their first row. */
  qb_test_window_activate (f, "group-by", g_variant_new_string ("role"));
  g_assert_cmpint (qb_layer_table_get_group_by (table), ==, QB_GROUP_ROLE);
  first = qb_layer_table_get_group_label (table, 0);
  g_assert_cmpstr (first, ==, "token_embd");
  inside = qb_layer_table_get_group_label (table, 4);   /* attn_norm rows 3..7 */
  g_assert_null (inside);
  {
    g_autoptr(QbTensorRow) r3 = g_list_model_get_item (visible, 3);
    g_autoptr(QbTensorRow) r7 = g_list_model_get_item (visible, 7);
    g_autofree char *label = qb_layer_table_get_group_label (table, 3);
    g_assert_cmpstr (label, ==, "attn_norm");
    g_assert_cmpint (qb_tensor_row_get_role (r3), ==, QB_ROLE_ATTN_NORM);
    g_assert_cmpint (qb_tensor_row_get_role (r7), ==, QB_ROLE_ATTN_NORM);
  }

  /* Each group's first row sums it up; folding shows that row alone. */
  {
    g_autoptr(QbTensorRow) r3 = g_list_model_get_item (visible, 3);
    g_autofree char *summary = qb_layer_table_get_group_summary (table, 3);

    g_assert_nonnull (strstr (summary, "▾ attn_norm · 5 tensors · "));
    g_assert_nonnull (strstr (summary, " bpw"));
    qb_layer_table_set_group_collapsed (table, r3, TRUE);
    g_assert_cmpuint (g_list_model_get_n_items (visible), ==, 48 - 4);
    g_clear_pointer (&summary, g_free);
    summary = qb_layer_table_get_group_summary (table, 3);
    g_assert_nonnull (strstr (summary, "▸ attn_norm · 5 tensors"));
    {
      /* The next row starts the next group. */
      g_autofree char *next = qb_layer_table_get_group_label (table, 4);
      g_assert_nonnull (next);
      g_assert_cmpstr (next, !=, "attn_norm");
    }
    qb_layer_table_set_group_collapsed (table, r3, FALSE);
    g_assert_cmpuint (g_list_model_get_n_items (visible), ==, 48);
  }

  /* Sorting within groups by a column. */
  qb_test_window_activate (f, "group-by", g_variant_new_string ("none"));
  g_assert_true (qb_layer_table_sort_by (table, "params", GTK_SORT_DESCENDING));
  {
    guint n = g_list_model_get_n_items (visible);
    for (guint i = 1; i < n; i++)
      {
        g_autoptr(QbTensorRow) a = g_list_model_get_item (visible, i - 1);
        g_autoptr(QbTensorRow) b = g_list_model_get_item (visible, i);
        g_assert_cmpint (qb_tensor_row_get_n_params (a), >=, qb_tensor_row_get_n_params (b));
      }
  }
}

static void
test_run_to_completion (Fixture       *f,
                        gconstpointer  data)
{
  QbDocument *doc;
  QbRun *run;
  guint n, with_result = 0;
  QbTensorRow *row;
  QbTensorDetails *details;
  g_autofree char *expect = NULL;

  if (!open_stories (f))
    return;
  doc = qb_window_get_document (f->window);
  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q8_0"));
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "cancel"));

  /* Right after starting, before the loop runs: one run at a time. */
  g_action_group_activate_action (G_ACTION_GROUP (f->window), "quantize", NULL);
  run = qb_window_get_run (f->window);
  g_assert_nonnull (run);
  g_assert_true (qb_run_is_running (run));
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "quantize"));
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "cancel"));
  qb_test_ui_wait_for (run_finished, f->window, 120, "the run to finish");
  g_assert_cmpint (qb_run_get_status (run), ==, QB_RUN_DONE);
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "quantize"));
  g_assert_cmpuint (qb_run_get_tensors_done (run), ==, qb_run_get_n_tensors (run));
  g_assert_cmpfloat (qb_run_get_fraction (run), ==, 1.0);
  g_assert_nonnull (strstr (qb_run_panel_get_status_text (qb_window_get_run_panel (f->window)), "Quantized"));

  /* Every tensor got its result, in the format the plan gave it. */
  n = g_list_model_get_n_items (qb_document_get_rows (doc));
  for (guint i = 0; i < n; i++)
    {
      const QbTensorResult *r;

      row = qb_document_get_row (doc, i);
      r = qb_tensor_row_get_result (row);
      if (r == NULL)
        continue;
      with_result++;
      g_assert_cmpint (qb_tensor_row_get_state (row), ==, QB_TENSOR_ROW_DONE);
      g_assert_false (qb_tensor_row_get_stale (row));
      if (g_strcmp0 (qb_tensor_row_get_format (row), QB_FORMAT_KEEP) != 0)
        {
          g_assert_cmpstr (r->format, ==, qb_tensor_row_get_format (row));
          g_assert_cmpuint (r->bytes, ==, qb_tensor_row_get_bytes (row));
          g_assert_cmpfloat (r->metrics.cosine, >, 0.99);
          g_assert_cmpfloat (r->metrics.cosine, <=, 1.0 + 1e-9);
          g_assert_cmpfloat (r->metrics.sqnr_db, >, 20);
        }
    }
  g_assert_cmpuint (with_result, ==, qb_run_get_n_tensors (run));

  /* The details pane shows the selected tensor's numbers from the run. */
  qb_test_window_activate (f, "select-tensor", g_variant_new_string ("blk.2.attn_output.weight"));
  row = qb_test_window_row (f, "blk.2.attn_output.weight");
  details = qb_window_get_details (f->window);
  g_assert_true (qb_tensor_details_get_row (details) == row);
  expect = g_strdup_printf ("%.2f dB", qb_tensor_row_get_sqnr (row));
  g_assert_cmpstr (qb_tensor_details_get_fact (details, "sqnr"), ==, expect);
  g_assert_true (qb_histogram_view_has_data (qb_tensor_details_get_error_view (details)));
  g_assert_cmpuint (qb_channel_range_view_get_n_channels (qb_tensor_details_get_channel_view (details)), ==, 64);

  /* Changing the format afterwards marks the result stale. */
  qb_test_window_activate (f, "set-format", g_variant_new_string ("Q4_0"));
  g_assert_true (qb_tensor_row_get_stale (row));
}

/* Calibration texts chosen in the plan panel, GPTQ chosen for a rule: the
 * run computes the statistics first, the GPTQ tensors get the exact output
 * error, the others the importance estimate, the table shows the column,
 * and the experiment refers to its stored calibration set. */
static void
test_calibrated_run (Fixture       *f,
                     gconstpointer  data)
{
  g_autofree char *text = NULL, *db = NULL;
  g_autoptr(QbStore) store = NULL;
  g_autoptr(QbExperiment) experiment = NULL;
  g_autoptr(QbCalibrationSet) set = NULL;
  g_autoptr(GError) error = NULL;
  QbLayerTable *table;
  QbRulesEditor *editor;
  const QbTensorResult *r;
  QbRun *run;

  if (!open_stories (f) || (text = qb_test_shared_path ("text/tinystories-val.txt")) == NULL)
    return;
  table = qb_window_get_layer_table (f->window);
  editor = qb_plan_panel_get_rules_editor (qb_window_get_plan_panel (f->window));
  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q8_0"));
  qb_test_window_activate (f, "add-rule", g_variant_new ("(sss)", "*.ffn_up.*", "glob", "Q4_0"));
  qb_rules_editor_set_method (editor, 0, "gptq");
  qb_test_ui_flush ();
  g_assert_cmpstr (qb_plan_get_rule (qb_document_get_plan (qb_window_get_document (f->window)), 0)->method,
                   ==, "gptq");
  {
    const char *paths[] = { text, NULL };
    qb_plan_panel_set_calibration_files (qb_window_get_plan_panel (f->window), paths);
  }
  g_assert_nonnull (qb_document_get_calibration (qb_window_get_document (f->window), NULL));
  g_assert_false (qb_layer_table_get_column_visible (table, "out-err"));

  run = qb_test_window_run (f);
  g_assert_cmpint (qb_run_get_status (run), ==, QB_RUN_DONE);
  g_assert_null (qb_run_get_stage (run));
  r = qb_tensor_row_get_result (qb_test_window_row (f, "blk.2.ffn_up.weight"));
  g_assert_cmpstr (r->method, ==, "gptq");
  g_assert_false (r->metrics.out_rel_err_diag);
  g_assert_cmpfloat (r->metrics.out_rel_err, >, 0);
  g_assert_cmpfloat (r->metrics.out_rel_err, <, 0.05);
  r = qb_tensor_row_get_result (qb_test_window_row (f, "blk.2.attn_q.weight"));
  g_assert_true (r->metrics.out_rel_err_diag);
  g_assert_false (isnan (r->metrics.out_rel_err));
  g_assert_true (qb_layer_table_get_column_visible (table, "out-err"));

  db = g_build_filename (f->dir, "experiments.db", NULL);
  store = qb_store_open (db, &error);
  g_assert_no_error (error);
  {
    g_autoptr(GPtrArray) list = qb_store_list_experiments (store, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (list->len, ==, 1);
    experiment = qb_experiment_copy (g_ptr_array_index (list, 0));
  }
  g_assert_cmpint (experiment->calibration_set_id, >, 0);
  set = qb_store_get_calibration_set (store, experiment->calibration_set_id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (set->sources[0], ==, text);
  g_assert_cmpuint (set->chunk_len, ==, 128);   /* the model's context */
  g_assert_cmpuint (set->n_chunks, ==, 128);

  /* The experiments page names the set and shows the output error. */
  {
    QbExperimentsPage *page = qb_window_get_experiments_page (f->window);
    g_autofree char *calibration = NULL, *out_err = NULL;

    g_assert_true (qb_experiments_page_select_id (page, experiment->id, FALSE));
    calibration = qb_experiments_page_get_fact (page, "Calibration");
    out_err = qb_experiments_page_get_fact (page, "Output error");
    g_assert_cmpstr (calibration, ==, "tinystories-val.txt: 128 × 128 tokens, in order");
    g_assert_nonnull (out_err);
  }

  /* Evaluating it quantizes with the same statistics (GPTQ needs them). */
  qb_test_window_activate (f, "evaluate-experiment",
                           g_variant_new ("(xsuub)", experiment->id, text, 128, 2, FALSE));
  qb_test_window_wait_evaluation (f, 120);
  g_assert_cmpint (qb_evaluator_get_status (qb_window_get_evaluator (f->window)), ==, QB_EVALUATOR_DONE);
  g_assert_cmpfloat (qb_evaluator_get_evaluation (qb_window_get_evaluator (f->window))->perplexity, >, 1);
}

/* Cancel while the calibration statistics are computed: the run stops
 * before the job, no tensor has a result, nothing is saved. */
static void
test_cancel_calibration (Fixture       *f,
                         gconstpointer  data)
{
  g_autofree char *text = NULL;
  QbCalibrationOptions opts;
  QbDocument *doc;
  QbRun *run;
  guint n_rows;

  if (!open_stories (f) || (text = qb_test_shared_path ("text/tinystories-val.txt")) == NULL)
    return;
  doc = qb_window_get_document (f->window);
  qb_calibration_options_init (&opts);
  opts.n_chunks = 1024;
  opts.no_cache = TRUE;     /* nothing computed before: the statistics take a while */
  {
    const char *paths[] = { text, NULL };
    qb_document_set_calibration (doc, paths, &opts);
  }
  g_action_group_activate_action (G_ACTION_GROUP (f->window), "quantize", NULL);
  run = qb_window_get_run (f->window);
  g_action_group_activate_action (G_ACTION_GROUP (f->window), "cancel", NULL);
  qb_test_ui_wait_for (run_finished, f->window, 60, "the run to stop");
  g_assert_cmpint (qb_run_get_status (run), ==, QB_RUN_CANCELLED);
  g_assert_cmpuint (qb_run_get_tensors_done (run), ==, 0);
  n_rows = g_list_model_get_n_items (qb_document_get_rows (doc));
  for (guint i = 0; i < n_rows; i++)
    g_assert_null (qb_tensor_row_get_result (qb_document_get_row (doc, i)));
  g_assert_nonnull (strstr (qb_run_panel_get_status_text (qb_window_get_run_panel (f->window)), "nothing saved"));
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "quantize"));
}

static void
test_cancel (Fixture       *f,
             gconstpointer  data)
{
  QbRun *run;

  if (!open_stories (f))
    return;
  g_action_group_activate_action (G_ACTION_GROUP (f->window), "quantize", NULL);
  run = qb_window_get_run (f->window);
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "cancel"));
  g_action_group_activate_action (G_ACTION_GROUP (f->window), "cancel", NULL);
  qb_test_ui_wait_for (run_finished, f->window, 60, "the run to stop");
  /* The job may have finished before it saw the cancel on so small a
   * model; either way every finished tensor is in the table. */
  if (qb_run_get_status (run) == QB_RUN_CANCELLED)
    {
      guint n = 0, rows = g_list_model_get_n_items (qb_document_get_rows (qb_window_get_document (f->window)));
      for (guint i = 0; i < rows; i++)
        n += qb_tensor_row_get_result (qb_document_get_row (qb_window_get_document (f->window), i)) != NULL;
      g_assert_cmpuint (n, ==, qb_run_get_tensors_done (run));
      g_assert_cmpuint (n, <, qb_run_get_n_tensors (run) ? qb_run_get_n_tensors (run) : 49);
      g_assert_nonnull (strstr (qb_run_panel_get_status_text (qb_window_get_run_panel (f->window)), "Cancelled"));
    }
  else
    g_assert_cmpint (qb_run_get_status (run), ==, QB_RUN_DONE);
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "cancel"));
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "quantize"));
}

static void
test_damaged_file (Fixture       *f,
                   gconstpointer  data)
{
  g_autofree char *bad = g_build_filename (f->dir, "damaged.gguf", NULL);
  g_autofree char *missing = g_build_filename (f->dir, "missing.gguf", NULL);
  /* GGUF magic, version 3, then an absurd tensor count and nothing else. */
  static const guint8 bytes[] = { 'G', 'G', 'U', 'F', 3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f };
  const char *message;

  g_assert_true (g_file_set_contents (bad, (const char *) bytes, sizeof bytes, NULL));
  qb_test_window_open (f, bad);
  message = qb_window_get_error_message (f->window);
  g_assert_nonnull (message);
  g_test_message ("%s", message);
  /* What is wrong comes first, the offsets after, the path once. */
  g_assert_true (g_str_has_prefix (message, "The file is truncated: "));
  g_assert_nonnull (strstr (message, "(at byte 16)"));
  g_assert_nonnull (strstr (message, bad));
  g_assert_null (strstr (strstr (message, "damaged.gguf") + 1, "damaged.gguf"));
  g_assert_null (qb_window_get_document (f->window));
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "quantize"));

  qb_test_window_activate (f, "dismiss-error", NULL);
  g_assert_null (qb_window_get_error_message (f->window));
  qb_test_window_open (f, missing);
  g_assert_nonnull (strstr (qb_window_get_error_message (f->window), "missing.gguf"));

  /* The window still works: a good model opens and clears the error. */
  if (!open_stories (f))
    return;
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "quantize"));

  /* And a bad file after a good one keeps the good one open. */
  qb_test_window_open (f, bad);
  g_assert_nonnull (qb_window_get_error_message (f->window));
  g_assert_nonnull (qb_window_get_document (f->window));
}

static void
test_charts (Fixture       *f,
             gconstpointer  data)
{
  QbTensorDetails *details;
  g_autofree char *svg = NULL;
  g_autofree char *png = NULL;
  g_autofree char *bad = NULL;

  if (!open_stories (f))
    return;
  details = qb_window_get_details (f->window);
  qb_test_window_activate (f, "select-tensor", g_variant_new_string ("blk.1.ffn_up.weight"));
  qb_test_ui_wait_for (has_stats, f->window, 30, "the original histogram");
  g_assert_cmpuint (qb_channel_range_view_get_n_channels (qb_tensor_details_get_channel_view (details)), ==, 172);
  g_assert_nonnull (strstr (qb_tensor_details_get_fact (details, "kurtosis"), "."));

  qb_test_window_activate (f, "log-scale", NULL);
  g_assert_true (qb_histogram_view_get_log_scale (qb_tensor_details_get_histogram (details)));
  qb_test_window_activate (f, "show-chart", g_variant_new_string ("channels"));
  g_assert_cmpstr (qb_tensor_details_get_chart_name (details), ==, "channels");

  svg = g_build_filename (f->dir, "channels.svg", NULL);
  qb_test_window_activate (f, "export-chart-to", g_variant_new_string (svg));
  g_assert_true (g_file_test (svg, G_FILE_TEST_IS_REGULAR));
  qb_test_window_activate (f, "show-chart", g_variant_new_string ("histogram"));
  png = g_build_filename (f->dir, "histogram.png", NULL);
  qb_test_window_activate (f, "export-chart-to", g_variant_new_string (png));
  g_assert_true (g_file_test (png, G_FILE_TEST_IS_REGULAR));
  g_assert_null (qb_window_get_error_message (f->window));

  bad = g_build_filename (f->dir, "chart.txt", NULL);
  qb_test_window_activate (f, "export-chart-to", g_variant_new_string (bad));
  g_assert_nonnull (strstr (qb_window_get_error_message (f->window), ".png"));
}

static gboolean
has_document (gpointer data)
{
  GtkWindow *window = gtk_application_get_active_window (data);
  return window && qb_window_get_document (QB_WINDOW (window)) && !qb_window_is_loading (QB_WINDOW (window));
}

/* The first launch opens the built-in demo model; later ones the last model. */
static void
test_first_launch (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GSettings) settings = g_settings_new ("org.quantbench.Quantbench");
  g_autoptr(QbApplication) app = qb_application_new ();
  g_autoptr(GError) error = NULL;
  QbWindow *window;
  QbModel *model;
  g_autofree char *demo_path = NULL;
  g_auto(GStrv) recent = NULL;

  g_settings_set_boolean (settings, "first-run", TRUE);
  g_assert_true (g_application_register (G_APPLICATION (app), NULL, &error));
  g_application_activate (G_APPLICATION (app));
  qb_test_ui_wait_for (has_document, app, 120, "the demo model");
  window = QB_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (app)));
  model = qb_document_get_model (qb_window_get_document (window));
  g_assert_cmpstr (qb_model_get_arch (model)->family, ==, "llama");
  g_assert_cmpuint (qb_model_get_n_tensors (model), >, 10);
  demo_path = g_strdup (qb_model_get_path (model));
  g_assert_nonnull (strstr (demo_path, "quantbench"));
  g_assert_false (g_settings_get_boolean (settings, "first-run"));
  recent = g_settings_get_strv (settings, "recent-files");
  g_assert_cmpstr (recent[0], ==, demo_path);
  gtk_window_destroy (GTK_WINDOW (window));
  qb_test_ui_flush ();

  /* The same through the window's action. */
  qb_test_window_open_watched (f, NULL, "the demo model");
  g_assert_cmpstr (qb_model_get_path (qb_document_get_model (qb_window_get_document (f->window))), ==, demo_path);
}

static void
test_shortcuts (Fixture       *f,
                gconstpointer  data)
{
  static const struct { const char *action; const char *accel; } expected[] = {
    { "win.open", "<Control>o" },
    { "win.quantize", "<Control>r" },
    { "win.cancel", "Escape" },
    { "win.search", "<Control>f" },
    { "app.preferences", "<Control>comma" },
    { "app.quit", "<Control>q" },
    { "win.undo", "<Control>z" },
    { "win.redo", "<Shift><Control>z" },
    { "win.save-plan", "<Control>s" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      g_auto(GStrv) accels = gtk_application_get_accels_for_action (GTK_APPLICATION (f->app), expected[i].action);
      g_assert_nonnull (accels[0]);
      g_assert_cmpstr (accels[0], ==, expected[i].accel);
    }
  /* The shortcuts window comes from the resource, with its own action. */
  g_assert_true (g_action_group_has_action (G_ACTION_GROUP (f->window), "show-help-overlay"));
  g_assert_nonnull (gtk_application_window_get_help_overlay (GTK_APPLICATION_WINDOW (f->window)));
  /* Without a model, commands that need one are off. */
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "quantize"));
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "set-format"));
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "open"));
}

static void
test_preferences (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(GSettings) settings = g_settings_new ("org.quantbench.Quantbench");
  GtkWidget *dialog = qb_preferences_dialog_new (GTK_WINDOW (f->window));
  GtkWidget *spin = NULL;

  gtk_window_present (GTK_WINDOW (dialog));
  qb_test_ui_flush ();
  /* Find the threads spin button and change it as a user would. */
  for (GtkWidget *w = gtk_widget_get_first_child (gtk_window_get_child (GTK_WINDOW (dialog)));
       w && !spin; w = gtk_widget_get_next_sibling (w))
    if (GTK_IS_SPIN_BUTTON (w))
      spin = w;
  g_assert_nonnull (spin);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (spin), 3);
  g_assert_cmpuint (g_settings_get_uint (settings, "threads"), ==, 3);
  g_settings_set_uint (settings, "threads", 0);
  g_assert_cmpfloat (gtk_spin_button_get_value (GTK_SPIN_BUTTON (spin)), ==, 0);
  /* 0 reads "automatic", shown whole (the field once showed "autom"). */
  g_assert_cmpstr (gtk_editable_get_text (GTK_EDITABLE (spin)), ==, "automatic");
  qb_test_ui_flush ();
  {
    GtkWidget *text = gtk_widget_get_first_child (spin);
    g_autoptr(PangoLayout) layout = NULL;
    int width = 0;

    while (text && !GTK_IS_TEXT (text))
      text = gtk_widget_get_next_sibling (text);
    g_assert_nonnull (text);
    layout = gtk_widget_create_pango_layout (text, "automatic");
    pango_layout_get_pixel_size (layout, &width, NULL);
    g_assert_cmpint (width, <=, gtk_widget_get_width (text));
  }

  /* The devices are listed off the main thread, CPU first and selected;
   * choosing one writes its specification. */
  {
    GtkDropDown *drop = NULL;
    GListModel *model = NULL;
    gint64 until = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

    for (GtkWidget *w = gtk_widget_get_first_child (gtk_window_get_child (GTK_WINDOW (dialog)));
         w && !drop; w = gtk_widget_get_next_sibling (w))
      if (GTK_IS_DROP_DOWN (w))
        drop = GTK_DROP_DOWN (w);
    g_assert_nonnull (drop);
    while ((model = gtk_drop_down_get_model (drop)) == NULL && g_get_monotonic_time () < until)
      g_main_context_iteration (NULL, FALSE);
    g_assert_nonnull (model);
    g_assert_cmpstr (gtk_string_list_get_string (GTK_STRING_LIST (model), 0), ==, "CPU threads (default)");
    g_assert_cmpuint (gtk_drop_down_get_selected (drop), ==, 0);
    if (g_list_model_get_n_items (model) > 1)
      {
        g_autofree char *chosen = NULL;
        gtk_drop_down_set_selected (drop, 1);
        chosen = g_settings_get_string (settings, "device");
        g_assert_cmpstr (chosen, ==, "opencl:0");
        gtk_drop_down_set_selected (drop, 0);
      }
    {
      g_autofree char *back = g_settings_get_string (settings, "device");
      g_assert_cmpstr (back, ==, "cpu");
    }
  }
  gtk_window_destroy (GTK_WINDOW (dialog));
}

/* Thousands of tensors: the table filters, groups, selects and bulk-edits
 * them; only the rows on screen have widgets. */
static void
test_many_tensors (Fixture       *f,
                   gconstpointer  data)
{
  QbTestLlama spec = { 400, 64, 128, 256, 4, 4, FALSE, QB_DTYPE_F16, 3 };
  g_autofree char *path = qb_test_write_llama (f->dir, "many.gguf", &spec);
  QbLayerTable *table;
  GListModel *visible;
  QbDocument *doc;
  const QbPlanResolution *res;
  guint n;

  qb_test_window_open_watched (f, path, "a generated 400-layer model");
  doc = qb_window_get_document (f->window);
  g_assert_nonnull (doc);
  n = g_list_model_get_n_items (qb_document_get_rows (doc));
  g_assert_cmpuint (n, ==, 400 * 9 + 3);
  table = qb_window_get_layer_table (f->window);
  visible = qb_layer_table_get_visible_rows (table);
  g_assert_cmpuint (g_list_model_get_n_items (visible), ==, n);

  /* The last tensor can be selected (and scrolled to). */
  qb_test_window_activate (f, "select-tensor", g_variant_new_string ("blk.399.ffn_down.weight"));
  g_assert_true (qb_layer_table_get_focused_row (table) == qb_test_window_row (f, "blk.399.ffn_down.weight"));

  qb_layer_table_set_search (table, "blk.399.");
  g_assert_cmpuint (g_list_model_get_n_items (visible), ==, 9);
  qb_layer_table_set_search (table, "");
  qb_test_window_activate (f, "group-by", g_variant_new_string ("layer"));
  {
    /* Rows outside the blocks (3) come first, then 9 per layer. */
    g_autofree char *label = qb_layer_table_get_group_label (table, 3 + 9 * 399);
    g_autofree char *inside = qb_layer_table_get_group_label (table, 3 + 9 * 399 + 1);
    g_assert_cmpstr (label, ==, "layer 399");
    g_assert_null (inside);
  }

  /* Every tensor at once: one re-resolve, totals add up. */
  qb_layer_table_select_all (table);
  qb_test_window_activate (f, "set-format", g_variant_new_string ("Q8_0"));
  res = qb_document_get_resolution (doc);
  g_assert_cmpuint (qb_plan_get_n_overrides (qb_document_get_plan (doc)), ==, n);
  {
    guint64 sum = 0;
    for (guint i = 0; i < n; i++)
      sum += qb_tensor_row_get_bytes (qb_document_get_row (doc, i));
    g_assert_cmpuint (sum, ==, res->quantized_bytes);
  }
  g_assert_cmpstr (qb_tensor_row_get_requested (qb_test_window_row (f, "blk.200.attn_k.weight")), ==, "Q8_0");

  /* Another model, every row selected and the view at the last tensor:
   * the view lets go of its rows of cells a few at a time. */
  qb_test_window_open_watched (f, NULL, "the demo model after 3,603 tensors");
}

/* The window fits 1024×700 with a model open. */
static void
test_small_screen (Fixture       *f,
                   gconstpointer  data)
{
  int min_w, min_h;

  if (!open_stories (f))
    return;
  gtk_widget_measure (GTK_WIDGET (f->window), GTK_ORIENTATION_HORIZONTAL, -1, &min_w, NULL, NULL, NULL);
  gtk_widget_measure (GTK_WIDGET (f->window), GTK_ORIENTATION_VERTICAL, min_w, &min_h, NULL, NULL, NULL);
  g_test_message ("minimum window size %d × %d", min_w, min_h);
  g_assert_cmpint (min_w, <=, 1024);
  g_assert_cmpint (min_h, <=, 700);
  qb_test_window_activate (f, "show-page", g_variant_new_string ("experiments"));
  gtk_widget_measure (GTK_WIDGET (f->window), GTK_ORIENTATION_HORIZONTAL, -1, &min_w, NULL, NULL, NULL);
  g_assert_cmpint (min_w, <=, 1024);
}

int
main (int argc, char **argv)
{
  qb_test_ui_init (&argc, &argv);

#define ADD(path, func) g_test_add ("/ui/window/" path, Fixture, NULL, qb_test_window_setup, func, qb_test_window_teardown)
  ADD ("shortcuts", test_shortcuts);
  ADD ("first-launch", test_first_launch);
  ADD ("preferences", test_preferences);
  ADD ("open-model", test_open_model);
  ADD ("set-formats", test_set_formats);
  ADD ("rules", test_rules);
  ADD ("table-filters", test_table_filters);
  ADD ("run-to-completion", test_run_to_completion);
  ADD ("calibrated-run", test_calibrated_run);
  ADD ("cancel", test_cancel);
  ADD ("cancel-calibration", test_cancel_calibration);
  ADD ("damaged-file", test_damaged_file);
  ADD ("charts", test_charts);
  ADD ("many-tensors", test_many_tensors);
  ADD ("small-screen", test_small_screen);
#undef ADD
  return g_test_run ();
}
