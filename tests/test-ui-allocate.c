/* SPDX-License-Identifier: MIT */
/* test-ui-allocate.c — the plan panel's budget control: fill the plan for
 * a number of bits per weight, pinned tensors kept and marked, predicted
 * KLD in the totals live as formats change by hand, measured beside it
 * after an evaluation.  QB_SCREENSHOT_DIR: also saves budget.png there. */
#include <math.h>
#include <string.h>
#include <gtk/gtk.h>

#include "qb-allocation-plan.h"
#include "qb-test-ui.h"
#include "qb-test-util.h"
#include "qb-window.h"

typedef QbTestWindow Fixture;

static gboolean
costs_ready (gpointer data)
{
  return qb_document_get_cost_table (qb_window_get_document (data)) != NULL;
}

static gboolean
allocated (gpointer data)
{
  return !qb_document_is_allocating (qb_window_get_document (data));
}

static const char *
format_of (Fixture *f, const char *name)
{
  return qb_tensor_row_get_format (qb_test_window_row (f, name));
}

/* Sets the spin button and clicks the Fill button beside it, as a user does. */
static void
fill_budget (Fixture *f, double bpw)
{
  GtkSpinButton *spin = qb_plan_panel_get_budget_spin (qb_window_get_plan_panel (f->window));
  GtkWidget *fill = qb_plan_panel_get_budget_fill (qb_window_get_plan_panel (f->window));
  g_assert_true (GTK_IS_BUTTON (fill));
  gtk_spin_button_set_value (spin, bpw);
  g_signal_emit_by_name (fill, "clicked");
  /* The allocation runs on a worker thread. */
  qb_test_ui_wait_for (allocated, f->window, 30, "the budget fill");
  qb_test_ui_flush ();
}

static void
test_budget (Fixture *f, gconstpointer data)
{
  g_autofree char *text = qb_test_shared_path ("text/tinystories-val.txt");
  if (text == NULL || !qb_test_window_open_shared (f, "models/stories260K.gguf"))
    return;
  QbDocument *doc = qb_window_get_document (f->window);
  QbPlanPanel *panel = qb_window_get_plan_panel (f->window);
  qb_test_ui_wait_for (costs_ready, f->window, 30, "the tensors' costs");
  qb_test_ui_flush ();
  g_assert_nonnull (strstr (qb_window_get_totals_text (f->window), "predicted KLD"));
  g_assert_nonnull (strstr (qb_plan_panel_get_budget_text (panel), "(proxies)"));

  /* Pin output.weight in Q8_0. */
  qb_test_window_activate (f, "select-tensor", g_variant_new_string ("output.weight"));
  qb_test_window_activate (f, "set-format", g_variant_new_string ("Q8_0"));
  qb_test_window_activate (f, "pin-tensors", g_variant_new_boolean (TRUE));
  g_assert_cmpstr (qb_tensor_row_get_source (qb_test_window_row (f, "output.weight")), ==, "pinned");

  /* Fill for 5 bits per weight: within budget, near it, pin kept, the
   * rest decided by the allocation. */
  fill_budget (f, 5.0);
  g_assert_null (qb_window_get_error_message (f->window));
  const QbPlanResolution *res = qb_document_get_resolution (doc);
  g_assert_cmpfloat (res->bpw, <=, 5.0);
  g_assert_cmpfloat (res->bpw, >, 4.7);
  g_assert_cmpstr (format_of (f, "output.weight"), ==, "Q8_0");
  g_assert_cmpstr (qb_tensor_row_get_source (qb_test_window_row (f, "output.weight")), ==, "pinned");
  g_assert_cmpstr (qb_tensor_row_get_source (qb_test_window_row (f, "blk.2.attn_q.weight")), ==, "override");
  g_autoptr(GHashTable) formats = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < res->n_tensors; i++)
    if (res->choices[i].format)
      g_hash_table_add (formats, (gpointer) res->choices[i].format->name);
  g_assert_cmpuint (g_hash_table_size (formats), >=, 2);
  double kld5, delta;
  g_assert_true (qb_document_get_predicted_kld (doc, &kld5, &delta));
  g_assert_cmpfloat (kld5, >, 0);

  /* A bigger budget predicts less. */
  fill_budget (f, 6.5);
  double kld65;
  g_assert_true (qb_document_get_predicted_kld (doc, &kld65, &delta));
  g_assert_cmpfloat (kld65, <, kld5);
  g_assert_cmpfloat (delta, <, 0);

  /* A hand edit shows its ΔKLD at once: fewer bits, more KLD. */
  qb_test_window_activate (f, "select-tensor", g_variant_new_string ("blk.1.ffn_up.weight"));
  qb_test_window_activate (f, "set-format", g_variant_new_string ("Q4_0"));
  double kld_edit;
  g_assert_true (qb_document_get_predicted_kld (doc, &kld_edit, &delta));
  g_assert_cmpfloat (delta, >, 0);
  g_assert_cmpfloat (fabs (kld_edit - (kld65 + delta)), <, 1e-12);
  g_assert_nonnull (strstr (qb_window_get_totals_text (f->window), "(Δ +"));

  /* Too small a budget: a clear error, the plan untouched. */
  fill_budget (f, 1.0);
  g_assert_nonnull (qb_window_get_error_message (f->window));
  g_assert_nonnull (strstr (qb_window_get_error_message (f->window), "too small"));
  g_assert_cmpstr (format_of (f, "blk.1.ffn_up.weight"), ==, "Q4_0");
  qb_test_window_activate (f, "dismiss-error", NULL);

  /* Quantize and evaluate: measured beside predicted. */
  fill_budget (f, 5.0);
  qb_test_window_run (f);
  gint64 id = qb_test_window_newest_experiment (f);
  g_assert_cmpint (id, >, 0);
  qb_test_window_activate (f, "evaluate-experiment", g_variant_new ("(xsuub)", id, text, 128, 4, TRUE));
  qb_test_window_wait_evaluation (f, 300);
  qb_test_window_settle (f);
  g_assert_nonnull (strstr (qb_window_get_totals_text (f->window), "measured"));

  const char *dir = g_getenv ("QB_SCREENSHOT_DIR");
  if (dir != NULL)
    {
      g_autofree char *png = g_build_filename (dir, "budget.png", NULL);
      g_autoptr(GError) error = NULL;
      g_assert_true (qb_test_ui_save_png (GTK_WIDGET (f->window), png, &error));
    }

  /* Unpinned, the tensor follows the next fill. */
  qb_test_window_activate (f, "select-tensor", g_variant_new_string ("output.weight"));
  qb_test_window_activate (f, "pin-tensors", g_variant_new_boolean (FALSE));
  g_assert_false (qb_plan_is_pinned (qb_document_get_plan (doc), "output.weight"));
}

int
main (int argc, char **argv)
{
  qb_test_ui_init (&argc, &argv);
  g_test_add ("/ui/allocate/budget", Fixture, NULL, qb_test_window_setup, test_budget,
              qb_test_window_teardown);
  return g_test_run ();
}
