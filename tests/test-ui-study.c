/* SPDX-License-Identifier: MIT */
/* test-ui-study.c — sensitivity studies in the window: a stored study of
 * the open model shown on the Sensitivity page and used by the budget
 * fill and the totals (source named), a click selecting a tensor, a study
 * run from the window, cancelled (what it measured kept) and resumed, and
 * the fill's constraints set in the popover beside Fill.  Uses
 * ../shared's stories260K and TinyStories (skipped without them).
 * QB_SCREENSHOT_DIR: saves sensitivity-*.png and budget-study-*.png there. */
#include <math.h>
#include <string.h>
#include <gtk/gtk.h>

#include "qb-allocation-plan.h"
#include "qb-sensitivity.h"
#include "qb-study-dialog.h"
#include "qb-test-ui.h"
#include "qb-test-util.h"
#include "qb-window.h"

typedef QbTestWindow Fixture;

/* Small enough to be quick: 5 candidates, 2 chunks of 64 tokens. */
#define LADDER "Q4_0,Q5_0,Q8_0,INT4_CH,INT8_CH"
#define N_LADDER 5

static gboolean
shared_inputs (char **model, char **text)
{
  *model = qb_test_shared_path ("models/stories260K.gguf");
  *text = qb_test_shared_path ("text/tinystories-val.txt");
  if (*model && *text)
    return TRUE;
  g_test_skip ("../shared/models/stories260K.gguf or text/tinystories-val.txt is absent");
  return FALSE;
}

static QbStore *
open_store (Fixture *f)
{
  g_autofree char *db = g_build_filename (f->dir, "experiments.db", NULL);
  g_autoptr(GError) error = NULL;
  QbStore *store = qb_store_open (db, &error);

  g_assert_no_error (error);
  return store;
}

typedef struct {
  GCancellable *cancellable;
  guint         stop_after;   /* pairs; 0: never */
} StopAt;

static void
stop_at (const QbSensitivityProgress *p, gpointer data)
{
  StopAt *stop = data;

  if (stop->stop_after > 0 && p->done >= stop->stop_after)
    g_cancellable_cancel (stop->cancellable);
}

/* A study of stories260K stored with the core API, as the command line
 * stores one; cancelled after stop_after (tensor, candidate) pairs
 * unless 0. */
static gint64
store_study_until (Fixture *f, const char *model_path, const char *text, guint stop_after)
{
  g_autoptr(QbStore) store = open_store (f);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (model_path, &error);
  g_autoptr(QbTokenizer) tok = qb_tokenizer_new_for_model (model, &error);
  guint n = 0;
  g_autofree const QbFormat **ladder = qb_cost_parse_candidates (LADDER, &n, &error);
  QbSensitivityOptions o;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  StopAt stop = { cancellable, stop_after };
  gint64 id = 0;
  gboolean ok;

  g_assert_no_error (error);
  qb_sensitivity_options_init (&o);
  o.candidates = ladder;
  o.n_candidates = n;
  o.eval_text = text;
  o.eval_n_ctx = 64;
  o.eval_n_chunks = 2;
  o.n_threads = 2;
  ok = qb_sensitivity_run (model, tok, store, &o, stop_at, &stop, cancellable, &id, &error);
  if (stop_after > 0)
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  else
    g_assert_no_error (error);
  g_assert_true (ok == (stop_after == 0));
  g_assert_cmpint (id, >, 0);
  return id;
}

static gint64
store_study (Fixture *f, const char *model_path, const char *text)
{
  return store_study_until (f, model_path, text, 0);
}

static guint
count_costs (Fixture *f, gint64 id)
{
  g_autoptr(QbStore) store = open_store (f);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) costs = qb_store_get_study_costs (store, id, &error);

  g_assert_no_error (error);
  return costs->len;
}

static gboolean
allocated (gpointer data)
{
  return !qb_document_is_allocating (qb_window_get_document (data));
}

static void
fill_budget (Fixture *f, double bpw)
{
  QbPlanPanel *panel = qb_window_get_plan_panel (f->window);

  gtk_spin_button_set_value (qb_plan_panel_get_budget_spin (panel), bpw);
  g_signal_emit_by_name (qb_plan_panel_get_budget_fill (panel), "clicked");
  qb_test_ui_wait_for (allocated, f->window, 30, "the budget fill");
  qb_test_window_settle (f);
}

static void
save_and_check (Fixture *f, const char *name, int width, int height)
{
  const char *dir = g_getenv ("QB_SCREENSHOT_DIR");
  g_autofree char *clipped = NULL;

  qb_test_window_resize (f, width, height);
  qb_test_window_settle (f);
  clipped = qb_test_window_find_clipped (f);
  if (clipped)
    g_error ("%s at %d×%d is clipped:\n%s", name, width, height, clipped);
  if (dir)
    {
      g_autofree char *file = g_strdup_printf ("%s-%dx%d.png", name, width, height);
      g_autofree char *path = g_build_filename (dir, file, NULL);
      g_autoptr(GError) error = NULL;
      if (!qb_test_ui_save_png (GTK_WIDGET (f->window), path, &error))
        g_error ("%s: %s", path, error->message);
    }
}

/* A stored study: shown, its costs in use, the fill and totals say so. */
static void
test_stored_study (Fixture *f, gconstpointer data)
{
  g_autofree char *model = NULL, *text = NULL;
  if (!shared_inputs (&model, &text))
    return;
  gint64 id = store_study (f, model, text);
  g_autofree char *source = g_strdup_printf ("study %" G_GINT64_FORMAT, id);

  qb_test_window_open (f, model);
  QbDocument *doc = qb_window_get_document (f->window);
  QbSensitivityPage *page = qb_window_get_sensitivity_page (f->window);
  QbSensitivityView *view = qb_sensitivity_page_get_view (page);

  /* Opening the model found its study and uses it. */
  g_assert_cmpint (qb_sensitivity_page_get_study_id (page), ==, id);
  g_assert_nonnull (strstr (qb_sensitivity_page_get_info_text (page), "measured end to end"));
  g_assert_cmpuint (g_list_model_get_n_items (gtk_drop_down_get_model (qb_sensitivity_page_get_candidate_dropdown (page))),
                    ==, N_LADDER);
  g_assert_cmpstr (qb_document_get_cost_source (doc), ==, source);
  g_assert_false (qb_document_costs_are_proxies (doc));
  g_autofree char *in_totals = g_strdup_printf ("(%s)", source);
  g_assert_nonnull (strstr (qb_window_get_totals_text (f->window), in_totals));
  g_assert_nonnull (strstr (qb_plan_panel_get_budget_text (qb_window_get_plan_panel (f->window)), in_totals));
  g_autofree char *why = qb_document_describe_prediction (doc);
  g_assert_nonnull (strstr (why, "measured"));

  /* The ranking follows the candidate: Q8_0 costs less than Q4_0 for the
   * most sensitive tensor, and the bars are in decreasing order. */
  qb_test_window_activate (f, "show-page", g_variant_new_string ("sensitivity"));
  g_autofree char *first_q4 = g_strdup (qb_sensitivity_view_get_ranked (view, 0));
  g_assert_nonnull (first_q4);
  save_and_check (f, "sensitivity", 1024, 700);
  save_and_check (f, "sensitivity", 1920, 1080);

  /* A bar under the pointer is that tensor; activating it selects the
   * tensor in the plan. */
  double x, y;
  g_assert_true (qb_sensitivity_view_get_tensor_point (view, first_q4, &x, &y));
  g_assert_cmpstr (qb_sensitivity_view_get_tensor_at (view, x, y), ==, first_q4);
  g_signal_emit_by_name (view, "tensor-activated", first_q4);
  qb_test_window_settle (f);
  QbTensorRow *focused = qb_layer_table_get_focused_row (qb_window_get_layer_table (f->window));
  g_assert_nonnull (focused);
  g_assert_cmpstr (qb_tensor_row_get_name (focused), ==, first_q4);

  /* The fill uses the study: every tensor in one of its candidates, the
   * plan says where the costs came from, the prediction is the sum of the
   * study's costs of the chosen formats. */
  fill_budget (f, 5.5);
  g_assert_null (qb_window_get_error_message (f->window));
  QbPlan *plan = qb_document_get_plan (doc);
  g_assert_cmpstr (qb_plan_get_option (plan, QB_PLAN_OPTION_SOURCE), ==, source);
  const QbPlanResolution *res = qb_document_get_resolution (doc);
  g_assert_cmpfloat (res->bpw, <=, 5.5);
  double kld_study, delta;
  g_assert_true (qb_document_get_predicted_kld (doc, &kld_study, &delta));
  double stored = g_ascii_strtod (qb_plan_get_option (plan, QB_PLAN_OPTION_PREDICTED_KLD), NULL);
  g_assert_cmpfloat (fabs (kld_study - stored), <=, 1e-5 * MAX (stored, 1e-6));
  save_and_check (f, "budget-study", 1024, 700);
  save_and_check (f, "budget-study", 1920, 1080);

  /* Back to the weight proxies: another table, another prediction. */
  GtkDropDown *studies = qb_sensitivity_page_get_study_dropdown (page);
  guint n = g_list_model_get_n_items (gtk_drop_down_get_model (studies));
  gtk_drop_down_set_selected (studies, n - 1);
  qb_test_window_settle (f);
  g_assert_cmpint (qb_sensitivity_page_get_study_id (page), ==, 0);
  g_assert_true (qb_document_costs_are_proxies (doc));
  g_assert_nonnull (strstr (qb_window_get_totals_text (f->window), "(proxies)"));
  double kld_proxy;
  g_assert_true (qb_document_get_predicted_kld (doc, &kld_proxy, NULL));
  g_assert_cmpfloat (kld_proxy, !=, kld_study);

  /* And the study again. */
  gtk_drop_down_set_selected (studies, 0);
  qb_test_window_settle (f);
  g_assert_cmpint (qb_sensitivity_page_get_study_id (page), ==, id);
  g_assert_cmpstr (qb_document_get_cost_source (doc), ==, source);
}

static gboolean
study_measuring (gpointer data)
{
  QbStudyRunner *study = qb_window_get_study (data);
  const char *text = study ? qb_study_runner_get_text (study) : NULL;

  /* Some costs stored, far from all. */
  return text && g_str_has_prefix (text, "Studying") && qb_study_runner_get_fraction (study) > 0.1;
}

static gboolean
study_over (gpointer data)
{
  QbStudyRunner *study = qb_window_get_study (data);
  return study && !qb_study_runner_is_running (study);
}

/* Run from the window, cancelled, resumed. */
static void
test_run_cancel_resume (Fixture *f, gconstpointer data)
{
  g_autofree char *model = NULL, *text = NULL;
  if (!shared_inputs (&model, &text))
    return;
  qb_test_window_open (f, model);
  QbSensitivityPage *page = qb_window_get_sensitivity_page (f->window);
  QbRunPanel *panel = qb_window_get_run_panel (f->window);

  /* No study yet: the page says so and offers one; the costs are proxies. */
  g_assert_cmpint (qb_sensitivity_page_get_study_id (page), ==, 0);
  g_assert_nonnull (strstr (qb_sensitivity_page_get_info_text (page), "No sensitivity study"));
  g_assert_true (qb_document_costs_are_proxies (qb_window_get_document (f->window)));
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "run-study"));

  /* The calibration text is the evaluation text: its chunks start after
   * the evaluated ones.  8 evaluation chunks so there is time to cancel. */
  qb_test_window_activate (f, "start-study",
                           g_variant_new ("(ssssuuuxb)", text, text, LADDER, "rtn", 64, 8, 4, (gint64) 0, FALSE));
  g_assert_nonnull (qb_window_get_study (f->window));
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "quantize"));
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "run-study"));
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (f->window), "cancel"));
  qb_test_ui_wait_for (study_measuring, f->window, 120, "the study to measure");
  g_assert_nonnull (strstr (qb_run_panel_get_status_text (panel), "Studying"));
  qb_test_window_activate (f, "cancel", NULL);
  qb_test_ui_wait_for (study_over, f->window, 60, "the study to stop");
  QbStudyRunner *study = qb_window_get_study (f->window);
  g_assert_cmpint (qb_study_runner_get_status (study), ==, QB_RUN_CANCELLED);
  gint64 id = qb_study_runner_get_study_id (study);
  g_assert_cmpint (id, >, 0);
  g_assert_nonnull (strstr (qb_run_panel_get_status_text (panel), "cancelled"));
  qb_test_window_settle (f);

  /* What it measured is kept and shown, and already used for costs. */
  guint kept = count_costs (f, id);
  g_assert_cmpuint (kept, >, 0);
  g_assert_cmpint (qb_sensitivity_page_get_study_id (page), ==, id);
  g_assert_cmpint (qb_sensitivity_page_get_study_status (page), ==, QB_EXPERIMENT_CANCELLED);
  g_assert_nonnull (strstr (qb_sensitivity_page_get_info_text (page), "Cancelled after"));
  g_assert_false (qb_document_costs_are_proxies (qb_window_get_document (f->window)));

  /* Resumed: only what was missing, then complete. */
  qb_test_window_activate (f, "resume-study", g_variant_new_int64 (id));
  qb_test_ui_wait_for (study_over, f->window, 300, "the resumed study");
  study = qb_window_get_study (f->window);
  g_assert_cmpint (qb_study_runner_get_status (study), ==, QB_RUN_DONE);
  g_assert_cmpint (qb_study_runner_get_study_id (study), ==, id);
  qb_test_window_settle (f);
  guint total = count_costs (f, id);
  g_assert_cmpuint (total, >, kept);
  g_assert_cmpuint (total % N_LADDER, ==, 0);
  g_assert_cmpint (qb_sensitivity_page_get_study_status (page), ==, QB_EXPERIMENT_DONE);
  g_assert_nonnull (strstr (qb_run_panel_get_status_text (panel), "done"));
  g_assert_null (strstr (qb_sensitivity_page_get_info_text (page), "Resume"));
}

/* A study cancelled elsewhere (the command line, another session) is
 * resumed from the page: its settings come from the store, its
 * evaluation text is found by its hash. */
static void
test_resume_stored (Fixture *f, gconstpointer data)
{
  g_autofree char *model = NULL, *text = NULL;
  if (!shared_inputs (&model, &text))
    return;
  gint64 id = store_study_until (f, model, text, 20);
  guint kept = count_costs (f, id);
  g_assert_cmpuint (kept, >=, 20);
  g_autoptr(GSettings) settings = g_settings_new ("org.quantbench.Quantbench");
  g_settings_set_string (settings, "evaluation-text", text);

  qb_test_window_open (f, model);
  QbSensitivityPage *page = qb_window_get_sensitivity_page (f->window);
  g_assert_cmpint (qb_sensitivity_page_get_study_id (page), ==, id);
  g_assert_cmpint (qb_sensitivity_page_get_study_status (page), ==, QB_EXPERIMENT_CANCELLED);
  qb_test_window_activate (f, "resume-study", g_variant_new_int64 (id));
  qb_test_ui_wait_for (study_over, f->window, 300, "the resumed study");
  QbStudyRunner *study = qb_window_get_study (f->window);
  g_assert_cmpint (qb_study_runner_get_status (study), ==, QB_RUN_DONE);
  g_assert_cmpint (qb_study_runner_get_study_id (study), ==, id);
  qb_test_window_settle (f);
  g_assert_cmpuint (count_costs (f, id), >, kept);
  g_assert_cmpint (qb_sensitivity_page_get_study_status (page), ==, QB_EXPERIMENT_DONE);

  /* Without the text anywhere known: refused, saying which text. */
  g_settings_set_string (settings, "evaluation-text", "");
  gint64 other = store_study_until (f, model, text, 10);
  qb_sensitivity_page_reload (page, other);
  qb_test_window_settle (f);
  qb_test_window_activate (f, "resume-study", g_variant_new_int64 (other));
  qb_test_window_settle (f);
  g_assert_nonnull (qb_window_get_error_message (f->window));
  g_assert_nonnull (strstr (qb_window_get_error_message (f->window), "tinystories-val.txt"));
}

static GtkWidget *
find_button (GtkWidget *root, const char *label)
{
  if (GTK_IS_BUTTON (root) && g_strcmp0 (gtk_button_get_label (GTK_BUTTON (root)), label) == 0)
    return root;
  for (GtkWidget *c = gtk_widget_get_first_child (root); c; c = gtk_widget_get_next_sibling (c))
    {
      GtkWidget *found = find_button (c, label);
      if (found)
        return found;
    }
  return NULL;
}

static GtkWindow *
find_dialog (void)
{
  GListModel *windows = gtk_window_get_toplevels ();   /* (transfer none) */
  for (guint i = 0; i < g_list_model_get_n_items (windows); i++)
    {
      g_autoptr(GObject) w = g_list_model_get_item (windows, i);
      if (QB_IS_STUDY_DIALOG (w))
        return GTK_WINDOW (w);
    }
  return NULL;
}

/* The dialog of win.run-study: the evaluation text remembered, the
 * default ladder and RTN offered; Start starts the study with them. */
static void
test_dialog (Fixture *f, gconstpointer data)
{
  g_autofree char *model = NULL, *text = NULL;
  if (!shared_inputs (&model, &text))
    return;
  g_autoptr(GSettings) settings = g_settings_new ("org.quantbench.Quantbench");
  g_settings_set_string (settings, "evaluation-text", text);
  qb_test_window_open (f, model);

  qb_test_window_activate (f, "run-study", NULL);
  GtkWindow *dialog = find_dialog ();
  g_assert_nonnull (dialog);
  GtkWidget *start = find_button (GTK_WIDGET (dialog), "_Start");
  g_assert_nonnull (start);
  g_assert_true (gtk_widget_get_sensitive (start));
  g_signal_emit_by_name (start, "clicked");
  qb_test_ui_flush ();
  g_assert_null (find_dialog ());

  QbStudyRunner *study = qb_window_get_study (f->window);
  g_assert_nonnull (study);
  const QbStudySettings *s = qb_study_runner_get_settings (study);
  g_autofree char *ladder = g_strjoinv (",", (char **) qb_cost_default_candidates ());
  g_assert_cmpstr (s->eval_path, ==, text);
  g_assert_cmpstr (s->calib_path, ==, text);   /* no plan calibration: the evaluation text, skipped past */
  g_assert_cmpstr (s->candidates, ==, ladder);
  g_assert_cmpstr (s->method, ==, "rtn");
  g_assert_cmpuint (s->eval_chunks, ==, QB_SENSITIVITY_DEFAULT_CHUNKS);
  qb_test_window_activate (f, "cancel", NULL);
  qb_test_ui_wait_for (study_over, f->window, 120, "the study to stop");
  g_assert_cmpint (qb_study_runner_get_status (study), !=, QB_RUN_FAILED);
  qb_test_window_settle (f);
}

/* The popover beside Fill: allowed formats per role and the floor. */
static void
test_constraints (Fixture *f, gconstpointer data)
{
  g_autofree char *model = NULL, *text = NULL;
  if (!shared_inputs (&model, &text))
    return;
  qb_test_window_open (f, model);
  QbDocument *doc = qb_window_get_document (f->window);
  QbPlan *plan = qb_document_get_plan (doc);
  QbConstraintsPopover *pop = qb_plan_panel_get_constraints (qb_window_get_plan_panel (f->window));
  GtkEntry *attn_v = qb_constraints_popover_get_entry (pop, QB_ROLE_ATTN_V);

  /* Typed and confirmed with Enter: kept in the plan. */
  gtk_editable_set_text (GTK_EDITABLE (attn_v), "q8_0");
  g_signal_emit_by_name (attn_v, "activate");
  qb_test_window_settle (f);
  g_assert_cmpstr (qb_plan_get_allowed_formats (plan, QB_ROLE_ATTN_V), ==, "Q8_0");
  gtk_spin_button_set_value (qb_constraints_popover_get_floor (pop), 8.0);
  qb_test_window_settle (f);
  g_assert_cmpfloat (qb_plan_get_embedding_floor (plan), ==, 8.0);

  /* Too tight for that floor: refused, saying so. */
  fill_budget (f, 5.0);
  g_assert_nonnull (qb_window_get_error_message (f->window));
  g_assert_nonnull (strstr (qb_window_get_error_message (f->window), "budget is too small"));
  qb_test_window_activate (f, "dismiss-error", NULL);

  /* A fill respects both. */
  fill_budget (f, 6.0);
  g_assert_cmpstr (qb_window_get_error_message (f->window), ==, NULL);
  const QbPlanResolution *res = qb_document_get_resolution (doc);
  g_assert_cmpfloat (res->bpw, <=, 6.0);
  for (guint i = 0; i < res->n_tensors; i++)
    {
      const QbTensor *t = qb_model_get_tensor (qb_document_get_model (doc), i);
      if (t->role == QB_ROLE_ATTN_V)
        g_assert_cmpstr (res->choices[i].format->name, ==, "Q8_0");
      if (t->role == QB_ROLE_TOKEN_EMBD || t->role == QB_ROLE_OUTPUT)
        g_assert_cmpfloat (res->choices[i].bpw, >=, 8.0);
    }

  /* An unknown format is refused with a message; the plan keeps Q8_0. */
  gtk_editable_set_text (GTK_EDITABLE (attn_v), "Q8_0,Q9_Z");
  g_signal_emit_by_name (attn_v, "activate");
  qb_test_window_settle (f);
  g_assert_nonnull (qb_window_get_error_message (f->window));
  g_assert_nonnull (strstr (qb_window_get_error_message (f->window), "Q9_Z"));
  g_assert_cmpstr (qb_plan_get_allowed_formats (plan, QB_ROLE_ATTN_V), ==, "Q8_0");
  qb_test_window_activate (f, "dismiss-error", NULL);

  /* Cleared: any format again. */
  gtk_editable_set_text (GTK_EDITABLE (attn_v), "");
  g_signal_emit_by_name (attn_v, "activate");
  gtk_spin_button_set_value (qb_constraints_popover_get_floor (pop), 0);
  qb_test_window_settle (f);
  g_assert_null (qb_plan_get_allowed_formats (plan, QB_ROLE_ATTN_V));
  g_assert_cmpfloat (qb_plan_get_embedding_floor (plan), ==, 0);
}

int
main (int argc, char **argv)
{
  qb_test_ui_init (&argc, &argv);
#define ADD(path, fn) g_test_add ("/ui-study/" path, Fixture, NULL, qb_test_window_setup, fn, qb_test_window_teardown)
  ADD ("stored-study", test_stored_study);
  ADD ("run-cancel-resume", test_run_cancel_resume);
  ADD ("resume-stored", test_resume_stored);
  ADD ("dialog", test_dialog);
  ADD ("constraints", test_constraints);
  return g_test_run ();
}
