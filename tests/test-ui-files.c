/* SPDX-License-Identifier: MIT */
/* test-ui-files.c — the workflow finished in the window: undo and redo of
 * plan edits, plans as files, the quantized model exported, experiments
 * exported and imported, and another model opened after a run. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gtk/gtk.h>

#include "qb-evaluate-dialog.h"
#include "qb-model.h"
#include "qb-test-model.h"
#include "qb-test-ui.h"
#include "qb-test-util.h"
#include "qb-ui.h"
#include "qb-window.h"

typedef QbTestWindow Fixture;

/* A small LLaMA-shaped model of its own: the tests need no shared data. */
static char *
open_small_model (Fixture    *f,
                  const char *name,
                  guint32     seed)
{
  /* Models of other shapes for other seeds: other fingerprints. */
  QbTestLlama spec = { 2 + seed % 3, 64, 128, 128, 4, 4, FALSE, QB_DTYPE_F32, seed };
  char *path = qb_test_write_llama (f->dir, name, &spec);

  qb_test_window_open (f, path);
  g_assert_null (qb_window_get_error_message (f->window));
  g_assert_nonnull (qb_window_get_document (f->window));
  return path;
}

static QbPlan *
plan (Fixture *f)
{
  return qb_document_get_plan (qb_window_get_document (f->window));
}

static char *
plan_json (Fixture *f)
{
  return qb_plan_to_json (plan (f));
}

static gboolean
enabled (Fixture    *f,
         const char *action)
{
  return g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), action);
}

/* Names in dir that start with prefix (temporary files left behind). */
static guint
count_files_with_prefix (const char *dir,
                         const char *prefix)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint n = 0;

  while (d && (name = g_dir_read_name (d)) != NULL)
    n += g_str_has_prefix (name, prefix);
  return n;
}

/* -- undo and redo ---------------------------------------------------------- */

static void
test_undo_redo (Fixture       *f,
                gconstpointer  data)
{
  g_autofree char *path = open_small_model (f, "undo.gguf", 1);
  g_autofree char *start = NULL;
  g_autofree char *with_q8 = NULL;
  g_autofree char *with_rule = NULL;
  g_autofree char *after_redo = NULL;
  g_autofree char *now = NULL;

  /* A fresh model: nothing to undo. */
  g_assert_false (enabled (f, "undo"));
  g_assert_false (enabled (f, "redo"));
  start = plan_json (f);

  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q8_0"));
  with_q8 = plan_json (f);
  g_assert_cmpstr (with_q8, !=, start);
  qb_test_window_activate (f, "add-rule", g_variant_new ("(sss)", "blk.*.ffn_down.weight", "glob", "Q6_K"));
  with_rule = plan_json (f);
  g_assert_cmpuint (qb_plan_get_n_rules (plan (f)), ==, 1);
  /* A format set on the table's selection is a step too. */
  qb_test_window_activate (f, "select-tensor", g_variant_new_string ("blk.0.attn_q.weight"));
  qb_test_window_activate (f, "set-format", g_variant_new_string ("Q4_0"));
  g_assert_cmpuint (qb_plan_get_n_overrides (plan (f)), ==, 1);
  g_assert_true (enabled (f, "undo"));
  g_assert_false (enabled (f, "redo"));

  /* Each undo goes one step back, to exactly the plan that was there. */
  qb_test_window_activate (f, "undo", NULL);
  now = plan_json (f);
  g_assert_cmpstr (now, ==, with_rule);
  g_clear_pointer (&now, g_free);
  qb_test_window_activate (f, "undo", NULL);
  now = plan_json (f);
  g_assert_cmpstr (now, ==, with_q8);
  g_assert_cmpuint (qb_plan_get_n_rules (plan (f)), ==, 0);
  g_clear_pointer (&now, g_free);
  qb_test_window_activate (f, "undo", NULL);
  now = plan_json (f);
  g_assert_cmpstr (now, ==, start);
  g_assert_false (enabled (f, "undo"));
  g_assert_true (enabled (f, "redo"));
  /* The rows follow the plan put back. */
  g_assert_cmpstr (qb_tensor_row_get_requested (qb_test_window_row (f, "blk.0.ffn_down.weight")), !=, "Q6_K");

  /* Redo comes forward again; a new edit drops what was left to redo. */
  qb_test_window_activate (f, "redo", NULL);
  qb_test_window_activate (f, "redo", NULL);
  after_redo = plan_json (f);
  g_assert_cmpstr (after_redo, ==, with_rule);
  g_assert_cmpstr (qb_tensor_row_get_requested (qb_test_window_row (f, "blk.0.ffn_down.weight")), ==, "Q6_K");
  g_assert_true (enabled (f, "redo"));
  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q5_0"));
  g_assert_false (enabled (f, "redo"));
  qb_test_window_activate (f, "undo", NULL);
  g_clear_pointer (&now, g_free);
  now = plan_json (f);
  g_assert_cmpstr (now, ==, with_rule);
}

/* Ctrl+Z in a text field outside the plan panel undoes the typing there. */
static void
test_undo_in_text_field (Fixture       *f,
                         gconstpointer  data)
{
  g_autofree char *path = open_small_model (f, "focus.gguf", 12);
  GtkWidget *focus;

  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q8_0"));
  qb_test_window_activate (f, "search", NULL);
  focus = gtk_root_get_focus (GTK_ROOT (f->window));
  g_assert_true (GTK_IS_TEXT (focus));
  gtk_editable_set_text (GTK_EDITABLE (focus), "attn");
  qb_test_ui_flush ();
  qb_test_window_activate (f, "undo", NULL);
  g_assert_cmpstr (qb_plan_get_default_format (plan (f)), ==, "Q8_0");
  g_assert_true (enabled (f, "undo"));
  /* Focus elsewhere: the plan again. */
  gtk_widget_grab_focus (GTK_WIDGET (qb_window_get_layer_table (f->window)));
  if (GTK_IS_TEXT (gtk_root_get_focus (GTK_ROOT (f->window))))
    gtk_root_set_focus (GTK_ROOT (f->window), NULL);
  qb_test_window_activate (f, "undo", NULL);
  g_assert_cmpstr (qb_plan_get_default_format (plan (f)), !=, "Q8_0");
}

/* Typing a rule's pattern is one step, not one per key. */
static void
test_undo_typing (Fixture       *f,
                  gconstpointer  data)
{
  g_autofree char *path = open_small_model (f, "typing.gguf", 2);
  QbRulesEditor *rules = qb_plan_panel_get_rules_editor (qb_window_get_plan_panel (f->window));
  const char *typed[] = { "b", "bl", "blk", "blk.*", "blk.*.attn_v.weight" };

  qb_test_window_activate (f, "add-rule", g_variant_new ("(sss)", "", "glob", "Q8_0"));
  for (guint i = 0; i < G_N_ELEMENTS (typed); i++)
    {
      qb_rules_editor_set_pattern_text (rules, 0, typed[i]);
      qb_test_ui_flush ();
    }
  g_assert_cmpstr (qb_plan_get_rule (plan (f), 0)->pattern, ==, "blk.*.attn_v.weight");
  qb_test_window_activate (f, "undo", NULL);
  g_assert_cmpuint (qb_plan_get_n_rules (plan (f)), ==, 1);
  g_assert_cmpstr (qb_plan_get_rule (plan (f), 0)->pattern, ==, "");
  qb_test_window_activate (f, "undo", NULL);
  g_assert_cmpuint (qb_plan_get_n_rules (plan (f)), ==, 0);
}

/* -- plans as files --------------------------------------------------------- */

static void
test_plan_files (Fixture       *f,
                 gconstpointer  data)
{
  g_autofree char *path = open_small_model (f, "plans.gguf", 3);
  g_autofree char *file = g_build_filename (f->dir, "mixed plan.json", NULL);
  g_autofree char *bad = g_build_filename (f->dir, "bad.json", NULL);
  g_autofree char *saved = NULL;
  g_autofree char *on_disk = NULL;
  g_autofree char *reopened = NULL;
  g_autofree char *before_open = NULL;
  g_autofree char *undone = NULL;

  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q4_K"));
  qb_test_window_activate (f, "set-method", g_variant_new_string ("search"));
  g_action_group_change_action_state (G_ACTION_GROUP (f->window), "keep-1d", g_variant_new_boolean (FALSE));
  qb_test_window_activate (f, "add-rule", g_variant_new ("(sss)", "blk\\.1\\..*", "regex", "Q8_0"));
  qb_test_window_activate (f, "select-tensor", g_variant_new_string ("output.weight"));
  qb_test_window_activate (f, "set-format", g_variant_new_string ("Q6_K"));
  saved = plan_json (f);

  qb_test_window_activate (f, "save-plan-to", g_variant_new_string (file));
  g_assert_null (qb_window_get_error_message (f->window));
  g_assert_true (g_file_get_contents (file, &on_disk, NULL, NULL));
  g_assert_cmpstr (on_disk, ==, saved);
  g_assert_cmpuint (count_files_with_prefix (f->dir, "mixed plan.json."), ==, 0);

  /* Change everything, then open the file: the same plan comes back. */
  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q2_K"));
  qb_test_window_activate (f, "remove-rule", g_variant_new_uint32 (0));
  qb_test_window_activate (f, "clear-overrides", NULL);
  before_open = plan_json (f);
  qb_test_window_activate (f, "open-plan-file", g_variant_new_string (file));
  g_assert_null (qb_window_get_error_message (f->window));
  reopened = plan_json (f);
  g_assert_cmpstr (reopened, ==, saved);
  g_assert_cmpstr (qb_tensor_row_get_requested (qb_test_window_row (f, "output.weight")), ==, "Q6_K");
  g_assert_cmpstr (qb_tensor_row_get_requested (qb_test_window_row (f, "blk.1.attn_q.weight")), ==, "Q8_0");
  /* Opening a plan is one step of the history. */
  qb_test_window_activate (f, "undo", NULL);
  undone = plan_json (f);
  g_assert_cmpstr (undone, ==, before_open);

  /* A file that is not a plan: a clear error, the plan untouched. */
  g_assert_true (g_file_set_contents (bad, "{\"version\": 1, \"default_format\": \"Q9_9\"}", -1, NULL));
  qb_test_window_activate (f, "open-plan-file", g_variant_new_string (bad));
  g_assert_nonnull (qb_window_get_error_message (f->window));
  g_test_message ("%s", qb_window_get_error_message (f->window));
  g_assert_true (g_str_has_prefix (qb_window_get_error_message (f->window), "The plan could not be opened: "));
  g_assert_nonnull (strstr (qb_window_get_error_message (f->window), "Q9_9"));
  g_clear_pointer (&undone, g_free);
  undone = plan_json (f);
  g_assert_cmpstr (undone, ==, before_open);
}

/* -- the quantized model ---------------------------------------------------- */

static gboolean
run_over (gpointer data)
{
  QbRun *run = qb_window_get_run (data);
  return run && !qb_run_is_running (run);
}

static void
export_and_wait (Fixture    *f,
                 const char *action,
                 GVariant   *param)
{
  qb_test_window_activate (f, action, param);
  qb_test_window_settle (f);
  qb_test_ui_wait_for (run_over, f->window, 120, "the export");
}

static void
test_export_model (Fixture       *f,
                   gconstpointer  data)
{
  g_autofree char *path = open_small_model (f, "export.gguf", 4);
  g_autofree char *gguf = g_build_filename (f->dir, "out.gguf", NULL);
  g_autofree char *st = g_build_filename (f->dir, "out.safetensors", NULL);
  g_autoptr(QbModel) written = NULL;
  g_autoptr(QbModel) original = NULL;
  g_autoptr(GError) error = NULL;
  const QbTensor *t;
  QbRun *run;
  guint n_results;
  gint64 experiments_before;

  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q8_0"));
  qb_test_window_activate (f, "add-rule", g_variant_new ("(sss)", "blk.*.ffn_down.weight", "glob", "Q4_0"));
  experiments_before = qb_test_window_newest_experiment (f);

  export_and_wait (f, "export-model-to", g_variant_new_string (gguf));
  run = qb_window_get_run (f->window);
  g_assert_cmpint (qb_run_get_status (run), ==, QB_RUN_DONE);
  g_assert_null (qb_window_get_error_message (f->window));
  g_test_message ("%s", qb_run_panel_get_status_text (qb_window_get_run_panel (f->window)));
  {
    const char *status = qb_run_panel_get_status_text (qb_window_get_run_panel (f->window));

    /* The file's name and what went into it; no second path. */
    g_assert_true (g_str_has_prefix (status, "Exported out.gguf: "));
    g_assert_null (strstr (status, f->dir));
    g_assert_nonnull (strstr (status, "in their ggml types"));
  }
  /* The file holds the plan's types and nothing temporary is left. */
  written = qb_model_open (gguf, &error);
  g_assert_no_error (error);
  original = qb_model_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (qb_model_get_n_tensors (written), ==, qb_model_get_n_tensors (original));
  t = qb_model_find_tensor (written, "blk.0.attn_q.weight", NULL);
  g_assert_nonnull (t);
  g_assert_cmpstr (qb_dtype_name (t->dtype), ==, "Q8_0");
  t = qb_model_find_tensor (written, "blk.1.ffn_down.weight", NULL);
  g_assert_cmpstr (qb_dtype_name (t->dtype), ==, "Q4_0");
  g_assert_cmpuint (count_files_with_prefix (f->dir, "out.gguf."), ==, 0);
  /* An export measures nothing: the table keeps no results from it and
   * no experiment is recorded. */
  n_results = 0;
  for (guint i = 0; i < g_list_model_get_n_items (qb_document_get_rows (qb_window_get_document (f->window))); i++)
    n_results += qb_tensor_row_get_result (qb_document_get_row (qb_window_get_document (f->window), i)) != NULL;
  g_assert_cmpuint (n_results, ==, 0);
  g_assert_cmpint (qb_test_window_newest_experiment (f), ==, experiments_before);

  /* safetensors, fake-quantized to F16, where the CLI offers it too. */
  export_and_wait (f, "export-model-to", g_variant_new_string (st));
  g_assert_cmpint (qb_run_get_status (qb_window_get_run (f->window)), ==, QB_RUN_DONE);
  g_clear_object (&written);
  written = qb_model_open (st, &error);
  g_assert_no_error (error);
  t = qb_model_find_tensor (written, "blk.0.attn_q.weight", NULL);
  g_assert_cmpstr (qb_dtype_name (t->dtype), ==, "F16");

  /* Another name: refused before anything runs. */
  {
    g_autofree char *txt = g_build_filename (f->dir, "out.txt", NULL);
    qb_test_window_activate (f, "export-model-to", g_variant_new_string (txt));
    g_assert_nonnull (strstr (qb_window_get_error_message (f->window), ".gguf or .safetensors"));
    g_assert_false (g_file_test (txt, G_FILE_TEST_EXISTS));
    qb_test_window_activate (f, "dismiss-error", NULL);
  }
}

/* The model's own file is refused, even through another path to it. */
static void
test_export_refuses_model (Fixture       *f,
                           gconstpointer  data)
{
  g_autofree char *path = open_small_model (f, "self.gguf", 5);
  g_autofree char *other = g_build_filename (f->dir, "link.gguf", NULL);
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  gsize n_before, n_after;

  g_assert_true (g_file_get_contents (path, &before, &n_before, NULL));
  g_assert_cmpint (link (path, other), ==, 0);   /* a hard link: another name, the same inode */
  export_and_wait (f, "export-model-to", g_variant_new_string (other));
  g_assert_cmpint (qb_run_get_status (qb_window_get_run (f->window)), ==, QB_RUN_FAILED);
  g_test_message ("%s", qb_window_get_error_message (f->window));
  g_assert_nonnull (strstr (qb_window_get_error_message (f->window), "(the same file): refusing to overwrite an input"));
  g_assert_true (g_file_get_contents (path, &after, &n_after, NULL));
  g_assert_cmpuint (n_after, ==, n_before);
  g_assert_true (memcmp (before, after, n_before) == 0);
  g_assert_cmpuint (count_files_with_prefix (f->dir, "link.gguf."), ==, 0);
}

/* Cancelled at once: no file, no temporary left. */
static void
test_export_cancel (Fixture       *f,
                    gconstpointer  data)
{
  QbTestLlama spec = { 8, 512, 1024, 512, 4, 4, FALSE, QB_DTYPE_F32, 6 };
  g_autofree char *path = qb_test_write_llama (f->dir, "big.gguf", &spec);
  g_autofree char *out = g_build_filename (f->dir, "cancelled.gguf", NULL);
  QbRun *run;

  qb_test_window_open (f, path);
  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q4_K"));
  /* Started and cancelled in one turn of the main loop, so that the job
   * cannot have finished in between. */
  g_action_group_activate_action (G_ACTION_GROUP (f->window), "export-model-to", g_variant_new_string (out));
  run = qb_window_get_run (f->window);
  g_assert_true (qb_run_is_running (run));
  g_assert_true (enabled (f, "cancel"));
  g_assert_false (enabled (f, "export-model-to"));
  g_action_group_activate_action (G_ACTION_GROUP (f->window), "cancel", NULL);
  qb_test_ui_wait_for (run_over, f->window, 60, "the cancelled export");
  g_assert_cmpint (qb_run_get_status (run), ==, QB_RUN_CANCELLED);
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (count_files_with_prefix (f->dir, "cancelled.gguf"), ==, 0);
  g_assert_nonnull (strstr (qb_run_panel_get_status_text (qb_window_get_run_panel (f->window)), "cancelled"));
}

/* A saved experiment's plan, not the one being edited. */
static void
test_export_experiment (Fixture       *f,
                        gconstpointer  data)
{
  g_autofree char *path = open_small_model (f, "exp.gguf", 7);
  g_autofree char *out = g_build_filename (f->dir, "from-experiment.gguf", NULL);
  g_autoptr(QbModel) written = NULL;
  g_autoptr(GError) error = NULL;
  gint64 id;

  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q5_0"));
  qb_test_window_run (f);
  id = qb_test_window_newest_experiment (f);
  g_assert_cmpint (id, >, 0);
  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q8_0"));

  /* "Open in Editor" replaces the plan: one step, undone like any edit. */
  qb_test_window_activate (f, "open-experiment", g_variant_new_int64 (id));
  qb_test_window_settle (f);
  g_assert_cmpstr (qb_plan_get_default_format (plan (f)), ==, "Q5_0");
  qb_test_window_activate (f, "undo", NULL);
  g_assert_cmpstr (qb_plan_get_default_format (plan (f)), ==, "Q8_0");

  export_and_wait (f, "export-experiment-model-to", g_variant_new ("(xs)", id, out));
  g_assert_cmpint (qb_run_get_status (qb_window_get_run (f->window)), ==, QB_RUN_DONE);
  written = qb_model_open (out, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (qb_dtype_name (qb_model_find_tensor (written, "blk.0.attn_q.weight", NULL)->dtype), ==, "Q5_0");
  /* The plan being edited is untouched. */
  g_assert_cmpstr (qb_plan_get_default_format (plan (f)), ==, "Q8_0");
}

/* -- experiments to and from files -------------------------------------------- */

static void
test_experiments_files (Fixture       *f,
                        gconstpointer  data)
{
  g_autofree char *path = open_small_model (f, "transfer.gguf", 8);
  g_autofree char *json = g_build_filename (f->dir, "experiments.json", NULL);
  g_autofree char *csv = g_build_filename (f->dir, "experiments.csv", NULL);
  g_autofree char *text = NULL;
  QbExperimentsPage *page = qb_window_get_experiments_page (f->window);
  gint64 a, b;

  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q8_0"));
  qb_test_window_run (f);
  a = qb_test_window_newest_experiment (f);
  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q4_0"));
  qb_test_window_run (f);
  b = qb_test_window_newest_experiment (f);
  g_assert_cmpint (a, !=, b);

  g_assert_true (qb_experiments_page_select_id (page, a, FALSE));
  g_assert_true (qb_experiments_page_select_id (page, b, TRUE));
  g_assert_true (enabled (f, "export-experiments"));
  qb_test_window_activate (f, "export-experiments-to", g_variant_new_string (json));
  qb_test_window_settle (f);
  qb_test_window_activate (f, "export-experiments-to", g_variant_new_string (csv));
  qb_test_window_settle (f);
  g_assert_null (qb_window_get_error_message (f->window));
  g_assert_true (g_file_get_contents (csv, &text, NULL, NULL));
  /* A header and one line per experiment. */
  g_assert_nonnull (strstr (text, "Q8_0"));
  g_assert_nonnull (strstr (text, "Q4_0"));
  g_clear_pointer (&text, g_free);
  g_assert_true (g_file_get_contents (json, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, "Q4_0"));

  /* Deleted, then imported back from the JSON: both are listed again. */
  qb_test_window_activate (f, "delete-experiment", g_variant_new_int64 (a));
  qb_test_window_settle (f);
  qb_test_window_activate (f, "delete-experiment", g_variant_new_int64 (b));
  qb_test_window_settle (f);
  g_assert_cmpuint (g_list_model_get_n_items (qb_experiments_page_get_rows (page)), ==, 0);
  qb_test_window_activate (f, "import-experiments-file", g_variant_new_string (json));
  qb_test_window_settle (f);
  g_assert_null (qb_window_get_error_message (f->window));
  g_assert_cmpuint (g_list_model_get_n_items (qb_experiments_page_get_rows (page)), ==, 2);

  /* Not an export: a clear error. */
  qb_test_window_activate (f, "import-experiments-file", g_variant_new_string (csv));
  qb_test_window_settle (f);
  g_assert_nonnull (qb_window_get_error_message (f->window));
  g_assert_true (g_str_has_prefix (qb_window_get_error_message (f->window), "The experiments were not imported: "));
}

/* -- another model ------------------------------------------------------------ */

static void
test_model_switch (Fixture       *f,
                   gconstpointer  data)
{
  g_autofree char *first = open_small_model (f, "first.gguf", 9);   /* 2 layers */
  g_autofree char *second = NULL;
  QbExperimentsPage *page = qb_window_get_experiments_page (f->window);
  QbComparePage *compare = qb_window_get_compare_page (f->window);
  gint64 a, b;
  GListModel *rows;

  qb_test_window_activate (f, "set-default-format", g_variant_new_string ("Q8_0"));
  qb_test_window_run (f);
  a = qb_test_window_newest_experiment (f);
  qb_test_window_run (f);
  b = qb_test_window_newest_experiment (f);
  g_assert_nonnull (strstr (qb_run_panel_get_status_text (qb_window_get_run_panel (f->window)), "saved as experiment"));
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (qb_window_get_run_panel (f->window))));

  /* Two runs of one plan: two names, both saying what the plan is. */
  rows = qb_experiments_page_get_rows (page);
  g_assert_cmpuint (g_list_model_get_n_items (rows), ==, 2);
  {
    g_autoptr(QbExperimentRow) r0 = g_list_model_get_item (rows, 0);
    g_autoptr(QbExperimentRow) r1 = g_list_model_get_item (rows, 1);
    g_test_message ("names: %s, %s", qb_experiment_row_get_name (r0), qb_experiment_row_get_name (r1));
    g_assert_cmpstr (qb_experiment_row_get_name (r0), !=, qb_experiment_row_get_name (r1));
    g_assert_true (g_str_has_prefix (qb_experiment_row_get_name (r0), "Q8_0"));
    g_assert_true (g_str_has_prefix (qb_experiment_row_get_name (r1), "Q8_0"));
  }
  g_assert_true (qb_experiments_page_select_id (page, a, FALSE));
  g_assert_true (qb_experiments_page_select_id (page, b, TRUE));
  qb_test_window_activate (f, "compare", NULL);
  qb_test_window_settle (f);
  g_assert_nonnull (qb_compare_page_get_comparison (compare));

  /* Another model: nothing of the first one's runs or comparison shows. */
  second = open_small_model (f, "second.gguf", 10);   /* 3 layers */
  g_assert_null (qb_window_get_run (f->window));
  g_assert_false (gtk_widget_get_visible (GTK_WIDGET (qb_window_get_run_panel (f->window))));
  g_assert_null (qb_compare_page_get_comparison (compare));
  g_assert_cmpuint (g_list_model_get_n_items (qb_experiments_page_get_rows (page)), ==, 0);
  /* And its plan history starts empty. */
  g_assert_false (enabled (f, "undo"));
}

/* -- a narrow window ------------------------------------------------------------ */

static void
let_layout_land (void)
{
  for (int i = 0; i < 10; i++)
    {
      qb_test_ui_flush ();
      g_usleep (10000);
    }
}

/* Resized down to 1024 × 700 with every page shown, after a run and an
 * export: GTK warns (fatal in tests) when a widget measures a negative
 * size, as labels did ("GtkLabel … reported min width -4"). */
static void
test_narrow_window (Fixture       *f,
                    gconstpointer  data)
{
  static const char *pages[] = { "plan", "experiments", "compare", "plan" };
  g_autofree char *path = NULL;
  g_autofree char *out = g_build_filename (f->dir, "narrow-out.gguf", NULL);
  static const int sizes[][2] = { { 1920, 1080 }, { 1280, 800 }, { 1100, 800 }, { 1024, 700 } };

  /* The model the warnings were seen with, when it is there. */
  if (!qb_test_window_open_shared (f, "models/stories260K.gguf"))
    path = open_small_model (f, "narrow.gguf", 11);

  qb_test_window_activate (f, "add-rule", g_variant_new ("(sss)", "blk.*.ffn_*", "glob", "Q6_K"));
  qb_test_window_run (f);
  qb_test_window_run (f);
  export_and_wait (f, "export-model-to", g_variant_new_string (out));
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      gtk_window_set_default_size (GTK_WINDOW (f->window), sizes[s][0], sizes[s][1]);
      for (guint p = 0; p < G_N_ELEMENTS (pages); p++)
        {
          /* Dragged narrower a few pixels at a time, as a user resizes. */
          for (int w = sizes[s][0]; s + 1 < G_N_ELEMENTS (sizes) && w > sizes[s + 1][0]; w -= 37)
            {
              gtk_window_set_default_size (GTK_WINDOW (f->window), w, sizes[s][1]);
              qb_test_ui_flush ();
            }
          gtk_window_set_default_size (GTK_WINDOW (f->window), sizes[s][0], sizes[s][1]);
          let_layout_land ();
          g_test_message ("%s at %d × %d", pages[p], gtk_widget_get_width (GTK_WIDGET (f->window)),
                          gtk_widget_get_height (GTK_WIDGET (f->window)));
          qb_test_window_activate (f, "show-page", g_variant_new_string (pages[p]));
          let_layout_land ();
          if (p == 0)
            {
              qb_test_window_activate (f, "select-tensor", g_variant_new_string ("blk.0.ffn_up.weight"));
              qb_test_window_activate (f, "show-chart", g_variant_new_string ("channels"));
              let_layout_land ();
              qb_test_window_activate (f, "show-chart", g_variant_new_string ("histogram"));
              let_layout_land ();
            }
          if (p == 1)
            {
              qb_experiments_page_select_id (qb_window_get_experiments_page (f->window),
                                             qb_test_window_newest_experiment (f), FALSE);
              let_layout_land ();
            }
        }
    }
  g_assert_cmpint (gtk_widget_get_width (GTK_WIDGET (f->window)), <=, 1100);
}

/* -- the evaluation dialog ------------------------------------------------------ */

/* It opens on what the last evaluation used. */
static void
test_evaluate_dialog_remembers (Fixture       *f,
                                gconstpointer  data)
{
  g_autoptr(GSettings) settings = g_settings_new ("org.quantbench.Quantbench");
  g_autofree char *text = g_build_filename (f->dir, "eval.txt", NULL);
  QbExperiment experiment = { .id = 1, .name = (char *) "Q4_K" };
  GtkWidget *dialog;
  const char *shown;
  guint ctx, chunks;
  gboolean kld;

  g_assert_true (g_file_set_contents (text, "Once upon a time.", -1, NULL));
  g_settings_set_string (settings, "evaluation-text", text);
  g_settings_set_uint (settings, "evaluation-chunks", 37);
  g_settings_set_uint (settings, "evaluation-ctx", 128);
  g_settings_set_boolean (settings, "evaluation-kld", FALSE);
  dialog = qb_evaluate_dialog_new (GTK_WINDOW (f->window), &experiment, 256);
  qb_evaluate_dialog_get_options (QB_EVALUATE_DIALOG (dialog), &shown, &ctx, &chunks, &kld);
  g_assert_cmpstr (shown, ==, text);
  g_assert_cmpuint (chunks, ==, 37);
  g_assert_cmpuint (ctx, ==, 128);
  g_assert_false (kld);
  gtk_window_destroy (GTK_WINDOW (dialog));

  /* A remembered context longer than this model's is cut to it. */
  g_settings_set_uint (settings, "evaluation-ctx", 4096);
  dialog = qb_evaluate_dialog_new (GTK_WINDOW (f->window), &experiment, 256);
  qb_evaluate_dialog_get_options (QB_EVALUATE_DIALOG (dialog), &shown, &ctx, &chunks, &kld);
  g_assert_cmpuint (ctx, ==, 256);
  gtk_window_destroy (GTK_WINDOW (dialog));
}

/* -- settings without an installed schema --------------------------------------- */

/* Run as a child with GSETTINGS_SCHEMA_DIR unset, as build/app/quantbench
 * is run directly: the settings come from the copy in the resources. */
static int
settings_probe (void)
{
  GSettingsSchemaSource *system = g_settings_schema_source_get_default ();
  g_autoptr(GSettingsSchema) installed = system ? g_settings_schema_source_lookup (system, "org.quantbench.Quantbench", TRUE)
                                                : NULL;
  g_autoptr(GSettings) settings = qb_ui_settings_new ();

  printf ("%s ", installed ? "installed" : "bundled");
  g_settings_set_uint (settings, "evaluation-chunks", 77);
  printf ("chunks %u ctx %u\n", g_settings_get_uint (settings, "evaluation-chunks"),
          g_settings_get_uint (settings, "evaluation-ctx"));
  return 0;
}

static void
test_settings_without_schema (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_auto(GStrv) env = g_get_environ ();
  g_autoptr(GError) error = NULL;
  const char *argv[] = { NULL, "--settings-probe", NULL };
  int status = -1;

  argv[0] = g_getenv ("QB_TEST_SELF");
  env = g_environ_unsetenv (env, "GSETTINGS_SCHEMA_DIR");
  env = g_environ_setenv (env, "XDG_RUNTIME_DIR", dir, TRUE);
  g_assert_true (g_spawn_sync (NULL, (char **) argv, env, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error));
  g_assert_no_error (error);
  g_test_message ("probe: %s%s", out, err);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_assert_true (g_str_has_suffix (out, "chunks 77 ctx 0\n"));
  /* Unless a schema is installed on this machine, the copy in the
   * resources was written where the schema source reads it. */
  if (g_str_has_prefix (out, "bundled"))
    g_assert_cmpuint (count_files_with_prefix (dir, "quantbench-schema-"), ==, 1);
}

int
main (int argc, char **argv)
{
  if (argc > 1 && g_str_equal (argv[1], "--settings-probe"))
    return settings_probe ();
  g_setenv ("QB_TEST_SELF", argv[0], TRUE);
  qb_test_ui_init (&argc, &argv);
  g_test_add_func ("/ui/files/settings-without-schema", test_settings_without_schema);

#define ADD(path, func) g_test_add ("/ui/files/" path, Fixture, NULL, qb_test_window_setup, func, qb_test_window_teardown)
  ADD ("undo-redo", test_undo_redo);
  ADD ("undo-typing", test_undo_typing);
  ADD ("undo-in-text-field", test_undo_in_text_field);
  ADD ("plan-files", test_plan_files);
  ADD ("export-model", test_export_model);
  ADD ("export-refuses-model", test_export_refuses_model);
  ADD ("export-cancel", test_export_cancel);
  ADD ("export-experiment", test_export_experiment);
  ADD ("experiments-files", test_experiments_files);
  ADD ("model-switch", test_model_switch);
  ADD ("narrow-window", test_narrow_window);
  ADD ("evaluate-dialog-remembers", test_evaluate_dialog_remembers);
#undef ADD
  return g_test_run ();
}
