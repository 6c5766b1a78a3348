/* SPDX-License-Identifier: MIT */
/* qb-window-actions.c — every command of the window, as a GAction. */
#include <math.h>
#include <string.h>

#include "qb-window-private.h"

#include "qb-evaluate-dialog.h"
#include "qb-file.h"

G_GNUC_BEGIN_IGNORE_DEPRECATIONS   /* GtkFileChooserNative: GtkFileDialog is 4.10+ */

static void
set_enabled (QbWindow   *self,
             const char *name,
             gboolean    enabled)
{
  GAction *action = g_action_map_lookup_action (G_ACTION_MAP (self), name);

  if (action)
    g_simple_action_set_enabled (G_SIMPLE_ACTION (action), enabled);
}

void
_qb_window_set_enabled (QbWindow   *self,
                       const char *name,
                       gboolean    enabled)
{
  set_enabled (self, name, enabled);
}

guint
_qb_window_n_selected_experiments (QbWindow *self)
{
  g_autoptr(GArray) ids = NULL;

  /* The page may outlive a window being disposed. */
  if (self->experiments_page == NULL)
    return 0;
  ids = qb_experiments_page_get_selected_ids (self->experiments_page);
  return ids->len;
}

void
_qb_window_update_actions (QbWindow *self)
{
  static const char *need_document[] = {
    "search", "set-format", "clear-format", "clear-overrides", "select-tensor",
    "set-default-format", "set-preset", "set-method", "keep-1d", "add-rule",
    "remove-rule", "move-rule", "reset-zoom", "show-chart", "export-chart",
    "export-chart-to", "group-by", "log-scale", "histogram-difference", "open-experiment",
    "pin-tensors",
  };
  static const char *need_store[] = {
    "refresh-experiments", "delete-experiment", "rename-experiment", "set-experiment-notes",
    "set-experiment-tags", "compare-experiments",
  };
  gboolean have = self->document != NULL;
  gboolean studying = self->study && qb_study_runner_is_running (self->study);
  gboolean running = (self->run && qb_run_is_running (self->run)) || studying;
  gboolean evaluating = self->evaluator && qb_evaluator_is_running (self->evaluator);

  for (guint i = 0; i < G_N_ELEMENTS (need_document); i++)
    set_enabled (self, need_document[i], have);
  set_enabled (self, "quantize", have && !running);
  set_enabled (self, "cancel", running);
  set_enabled (self, "dismiss-error", self->error_message != NULL);
  set_enabled (self, "open", !running);
  set_enabled (self, "open-file", !running);
  set_enabled (self, "open-demo", !running);
  for (guint i = 0; i < G_N_ELEMENTS (need_store); i++)
    set_enabled (self, need_store[i], self->store != NULL);
  set_enabled (self, "open-experiment", have && self->store != NULL && !running);
  /* Disabled below two, and the page says so. */
  set_enabled (self, "compare", self->store != NULL && _qb_window_n_selected_experiments (self) >= 2);
  set_enabled (self, "evaluate", have && self->store != NULL && !evaluating);
  set_enabled (self, "evaluate-experiment", have && self->store != NULL && !evaluating);
  set_enabled (self, "cancel-evaluation", evaluating);
  _qb_window_update_plan_actions (self);
  _qb_window_update_export_actions (self);
  _qb_window_update_study_actions (self);
}

/* -- opening -------------------------------------------------------------- */

static void
on_open_response (GtkNativeDialog *dialog,
                  int              response,
                  QbWindow        *self)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autofree char *path = g_file_get_path (file);

      if (path)
        qb_window_open_path (self, path);
      else
        _qb_window_show_error (self, "Only local files can be opened.");
    }
  g_object_unref (dialog);
}

static void
add_filter (GtkFileChooser *chooser,
            const char     *name,
            const char    **patterns)
{
  g_autoptr(GtkFileFilter) filter = gtk_file_filter_new ();

  gtk_file_filter_set_name (filter, name);
  for (guint i = 0; patterns[i]; i++)
    gtk_file_filter_add_pattern (filter, patterns[i]);
  gtk_file_chooser_add_filter (chooser, filter);
}

static void
action_open (GSimpleAction *action,
             GVariant      *param,
             gpointer       data)
{
  QbWindow *self = data;
  GtkFileChooserNative *dialog;
  const char *models[] = { "*.gguf", "*.safetensors", "*.safetensors.index.json", NULL };
  const char *all[] = { "*", NULL };

  dialog = gtk_file_chooser_native_new ("Open a Model", GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_OPEN,
                                        "_Open", "_Cancel");
  add_filter (GTK_FILE_CHOOSER (dialog), "GGUF and safetensors models", models);
  add_filter (GTK_FILE_CHOOSER (dialog), "All files", all);
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (dialog), TRUE);
  g_signal_connect (dialog, "response", G_CALLBACK (on_open_response), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}

static void
action_open_file (GSimpleAction *action,
                  GVariant      *param,
                  gpointer       data)
{
  qb_window_open_path (data, g_variant_get_string (param, NULL));
}

static void
action_open_demo (GSimpleAction *action,
                  GVariant      *param,
                  gpointer       data)
{
  qb_window_open_demo (data);
}

/* -- running -------------------------------------------------------------- */

static void
action_quantize (GSimpleAction *action,
                 GVariant      *param,
                 gpointer       data)
{
  _qb_window_start_run (data);
}

static void
action_cancel (GSimpleAction *action,
               GVariant      *param,
               gpointer       data)
{
  QbWindow *self = data;

  if (self->run)
    qb_run_cancel (self->run);
  if (self->study)
    qb_study_runner_cancel (self->study);
}

/* -- the table ------------------------------------------------------------ */

static void
action_search (GSimpleAction *action,
               GVariant      *param,
               gpointer       data)
{
  QbWindow *self = data;

  gtk_stack_set_visible_child_name (self->page_stack, "plan");
  qb_layer_table_focus_search (self->layer_table);
}

static void
action_select_tensor (GSimpleAction *action,
                      GVariant      *param,
                      gpointer       data)
{
  QbWindow *self = data;
  const char *name = g_variant_get_string (param, NULL);
  const char *mark = strrchr (name, '#');
  g_autofree char *tensor = NULL;
  guint64 expert = 0;
  QbTensorRow *row;
  gboolean found;

  /* "blk.3.ffn_down_exps.weight #5": that expert's row. */
  if (mark != NULL && mark > name && mark[-1] == ' '
      && g_ascii_string_to_unsigned (mark + 1, 10, 0, G_MAXUINT, &expert, NULL))
    tensor = g_strndup (name, (gsize) (mark - 1 - name));
  row = qb_document_find_row (self->document, tensor ? tensor : name);
  found = row != NULL && (tensor ? qb_layer_table_select_expert (self->layer_table, row, (guint) expert)
                                 : qb_layer_table_select_row (self->layer_table, row));
  if (!found)
    {
      g_autofree char *message = g_strdup_printf ("No tensor named “%s” is shown.",
                                                  g_variant_get_string (param, NULL));
      _qb_window_show_error (self, message);
    }
}

static void
action_set_format (GSimpleAction *action,
                   GVariant      *param,
                   gpointer       data)
{
  QbWindow *self = data;
  const char *format = g_variant_get_string (param, NULL);
  g_autoptr(GPtrArray) rows = qb_layer_table_get_selected_rows (self->layer_table);

  if (g_ascii_strcasecmp (format, QB_FORMAT_KEEP) != 0 && qb_format_find (format) == NULL)
    {
      g_autofree char *message = g_strdup_printf ("Unknown format “%s”.", format);
      _qb_window_show_error (self, message);
      return;
    }
  qb_document_set_formats (self->document, (QbTensorRow **) rows->pdata, rows->len, format);
}

/* Pins (TRUE) or unpins the selected tensors: a budget fill keeps them. */
static void
action_pin_tensors (GSimpleAction *action,
                    GVariant      *param,
                    gpointer       data)
{
  QbWindow *self = data;
  g_autoptr(GPtrArray) rows = qb_layer_table_get_selected_rows (self->layer_table);

  qb_document_set_pinned (self->document, (QbTensorRow **) rows->pdata, rows->len,
                          g_variant_get_boolean (param));
}

static void
action_clear_format (GSimpleAction *action,
                     GVariant      *param,
                     gpointer       data)
{
  QbWindow *self = data;
  g_autoptr(GPtrArray) rows = qb_layer_table_get_selected_rows (self->layer_table);

  qb_document_clear_overrides (self->document, (QbTensorRow **) rows->pdata, rows->len);
}

static void
action_clear_overrides (GSimpleAction *action,
                        GVariant      *param,
                        gpointer       data)
{
  QbWindow *self = data;

  qb_plan_clear_overrides (qb_document_get_plan (self->document));
}

static void
change_group_by (GSimpleAction *action,
                 GVariant      *value,
                 gpointer       data)
{
  QbWindow *self = data;
  const char *group = g_variant_get_string (value, NULL);

  if (g_str_equal (group, "layer"))
    qb_layer_table_set_group_by (self->layer_table, QB_GROUP_LAYER);
  else if (g_str_equal (group, "role"))
    qb_layer_table_set_group_by (self->layer_table, QB_GROUP_ROLE);
  else
    qb_layer_table_set_group_by (self->layer_table, QB_GROUP_NONE);
  g_simple_action_set_state (action, value);
}

/* -- the plan ------------------------------------------------------------- */

static gboolean
check_format (QbWindow   *self,
              const char *format)
{
  g_autofree char *message = NULL;

  if (g_ascii_strcasecmp (format, QB_FORMAT_KEEP) == 0 || qb_format_find (format))
    return TRUE;
  message = g_strdup_printf ("Unknown format “%s”.", format);
  _qb_window_show_error (self, message);
  return FALSE;
}

static void
action_set_default_format (GSimpleAction *action,
                           GVariant      *param,
                           gpointer       data)
{
  QbWindow *self = data;
  const char *format = g_variant_get_string (param, NULL);

  if (check_format (self, format))
    qb_plan_set_default_format (qb_document_get_plan (self->document), format);
}

static void
action_set_preset (GSimpleAction *action,
                   GVariant      *param,
                   gpointer       data)
{
  QbWindow *self = data;
  const char *preset = g_variant_get_string (param, NULL);

  qb_plan_set_preset (qb_document_get_plan (self->document), *preset ? preset : NULL);
}

static void
action_set_method (GSimpleAction *action,
                   GVariant      *param,
                   gpointer       data)
{
  QbWindow *self = data;

  qb_plan_set_default_method (qb_document_get_plan (self->document), g_variant_get_string (param, NULL));
}

static void
change_keep_1d (GSimpleAction *action,
                GVariant      *value,
                gpointer       data)
{
  QbWindow *self = data;

  qb_plan_set_keep_1d (qb_document_get_plan (self->document), g_variant_get_boolean (value));
  g_simple_action_set_state (action, value);
}

static void
action_add_rule (GSimpleAction *action,
                 GVariant      *param,
                 gpointer       data)
{
  QbWindow *self = data;
  QbPlan *plan = qb_document_get_plan (self->document);
  const char *pattern, *kind, *format;
  g_autoptr(GError) error = NULL;

  g_variant_get (param, "(&s&s&s)", &pattern, &kind, &format);
  if (*format == '\0')
    format = qb_plan_get_default_format (plan);
  if (!check_format (self, format))
    return;
  if (!qb_plan_insert_rule (plan, -1, pattern, g_str_equal (kind, "regex") ? QB_RULE_REGEX : QB_RULE_GLOB,
                            format, NULL, &error))
    {
      _qb_window_show_error (self, error->message);
      return;
    }
  qb_rules_editor_set_active (qb_plan_panel_get_rules_editor (self->plan_panel),
                              (int) qb_plan_get_n_rules (plan) - 1);
}

static void
action_remove_rule (GSimpleAction *action,
                    GVariant      *param,
                    gpointer       data)
{
  QbWindow *self = data;
  QbPlan *plan = qb_document_get_plan (self->document);
  guint index = g_variant_get_uint32 (param);

  if (index < qb_plan_get_n_rules (plan))
    qb_plan_remove_rule (plan, index);
}

static void
action_move_rule (GSimpleAction *action,
                  GVariant      *param,
                  gpointer       data)
{
  QbWindow *self = data;
  QbPlan *plan = qb_document_get_plan (self->document);
  guint from, to;

  g_variant_get (param, "(uu)", &from, &to);
  if (from < qb_plan_get_n_rules (plan) && to < qb_plan_get_n_rules (plan) && from != to)
    {
      qb_plan_move_rule (plan, from, to);
      qb_rules_editor_set_active (qb_plan_panel_get_rules_editor (self->plan_panel), to);
    }
}

/* -- charts --------------------------------------------------------------- */

static void
change_log_scale (GSimpleAction *action,
                  GVariant      *value,
                  gpointer       data)
{
  QbWindow *self = data;

  qb_tensor_details_set_log_scale (self->details, g_variant_get_boolean (value));
  g_simple_action_set_state (action, value);
}

static void
change_histogram_difference (GSimpleAction *action,
                             GVariant      *value,
                             gpointer       data)
{
  QbWindow *self = data;

  qb_tensor_details_set_difference (self->details, g_variant_get_boolean (value));
  /* The Experiments page's chart of a stored tensor follows (its Diff button too). */
  g_object_set (qb_experiments_page_get_tensors_view (self->experiments_page), "difference",
                g_variant_get_boolean (value), NULL);
  g_simple_action_set_state (action, value);
}

static void
action_reset_zoom (GSimpleAction *action,
                   GVariant      *param,
                   gpointer       data)
{
  qb_tensor_details_reset_zoom (QB_WINDOW (data)->details);
}

static void
action_show_chart (GSimpleAction *action,
                   GVariant      *param,
                   gpointer       data)
{
  QbWindow *self = data;

  gtk_stack_set_visible_child_name (self->page_stack, "plan");
  qb_tensor_details_show_chart (self->details, g_variant_get_string (param, NULL));
}

static void
export_chart_to (QbWindow   *self,
                 const char *path)
{
  QbChart *chart = _qb_window_get_visible_chart (self);
  QbModel *model = qb_document_get_model (self->document);
  const char *inputs[] = { model ? qb_model_get_path (model) : NULL,
                           self->store ? qb_store_get_path (self->store) : NULL };
  g_autoptr(GError) error = NULL;

  if (chart == NULL)
    _qb_window_show_error (self, "This page has no chart to export.");
  /* Never over the open model or the experiment database. */
  else if (!qb_file_check_output (path, "Export", inputs, G_N_ELEMENTS (inputs), &error))
    _qb_window_show_error (self, error->message);
  else if (!qb_chart_export (chart, path, 0, 0, &error))
    _qb_window_show_error (self, error->message);
}

static void
on_export_response (GtkNativeDialog *dialog,
                    int              response,
                    QbWindow        *self)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autofree char *path = g_file_get_path (file);

      if (path)
        export_chart_to (self, path);
    }
  g_object_unref (dialog);
}

static void
action_export_chart (GSimpleAction *action,
                     GVariant      *param,
                     gpointer       data)
{
  QbWindow *self = data;
  const char *ext = g_variant_get_string (param, NULL);
  QbTensorRow *row = qb_tensor_details_get_row (self->details);
  gboolean compare = g_strcmp0 (gtk_stack_get_visible_child_name (self->page_stack), "compare") == 0;
  g_autofree char *name = compare ? g_strdup_printf ("comparison.%s", ext)
                                  : g_strdup_printf ("%s-%s.%s", row ? qb_tensor_row_get_name (row) : "chart",
                                                     qb_tensor_details_get_chart_name (self->details), ext);
  GtkFileChooserNative *dialog;

  dialog = gtk_file_chooser_native_new ("Export Chart", GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_SAVE,
                                        "_Export", "_Cancel");
  gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (dialog), name);
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (dialog), TRUE);
  g_signal_connect (dialog, "response", G_CALLBACK (on_export_response), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}

static void
action_export_chart_to (GSimpleAction *action,
                        GVariant      *param,
                        gpointer       data)
{
  export_chart_to (data, g_variant_get_string (param, NULL));
}

/* -- experiments ------------------------------------------------------------ */

static void
action_refresh_experiments (GSimpleAction *action,
                            GVariant      *param,
                            gpointer       data)
{
  qb_experiments_page_refresh (QB_WINDOW (data)->experiments_page);
}

static void
action_open_experiment (GSimpleAction *action,
                        GVariant      *param,
                        gpointer       data)
{
  _qb_window_open_experiment (data, g_variant_get_int64 (param));
}

static void
action_delete_experiment (GSimpleAction *action,
                          GVariant      *param,
                          gpointer       data)
{
  qb_experiments_page_delete (QB_WINDOW (data)->experiments_page, g_variant_get_int64 (param));
}

static void
action_rename_experiment (GSimpleAction *action,
                          GVariant      *param,
                          gpointer       data)
{
  gint64 id;
  const char *text;

  g_variant_get (param, "(x&s)", &id, &text);
  qb_experiments_page_rename (QB_WINDOW (data)->experiments_page, id, text);
}

static void
action_set_experiment_notes (GSimpleAction *action,
                             GVariant      *param,
                             gpointer       data)
{
  gint64 id;
  const char *text;

  g_variant_get (param, "(x&s)", &id, &text);
  qb_experiments_page_set_notes (QB_WINDOW (data)->experiments_page, id, text);
}

static void
action_set_experiment_tags (GSimpleAction *action,
                            GVariant      *param,
                            gpointer       data)
{
  gint64 id;
  const char *text;

  g_variant_get (param, "(x&s)", &id, &text);
  qb_experiments_page_set_tags (QB_WINDOW (data)->experiments_page, id, text);
}

static void
compare_ids (QbWindow     *self,
             const gint64 *ids,
             gsize         n)
{
  if (n < 2)
    {
      _qb_window_show_error (self, "Select two or more experiments to compare (Ctrl or Shift and click).");
      return;
    }
  qb_compare_page_compare (self->compare_page, ids, n);
  gtk_stack_set_visible_child_name (self->page_stack, "compare");
}

static void
action_compare (GSimpleAction *action,
                GVariant      *param,
                gpointer       data)
{
  QbWindow *self = data;
  g_autoptr(GArray) ids = qb_experiments_page_get_selected_ids (self->experiments_page);

  compare_ids (self, (const gint64 *) ids->data, ids->len);
}

static void
action_compare_experiments (GSimpleAction *action,
                            GVariant      *param,
                            gpointer       data)
{
  gsize n;
  const gint64 *ids = g_variant_get_fixed_array (param, &n, sizeof (gint64));

  compare_ids (data, ids, n);
}

/* -- evaluation ------------------------------------------------------------- */

static void
action_evaluate (GSimpleAction *action,
                 GVariant      *param,
                 gpointer       data)
{
  QbWindow *self = data;
  QbExperimentRow *row = qb_experiments_page_get_focused (self->experiments_page);
  const QbArchInfo *arch = qb_model_get_arch (qb_document_get_model (self->document));

  if (row == NULL)
    {
      _qb_window_show_error (self, "Select the experiment to evaluate on the Experiments page.");
      return;
    }
  gtk_window_present (GTK_WINDOW (qb_evaluate_dialog_new (GTK_WINDOW (self),
                                                          qb_experiment_row_get_experiment (row),
                                                          arch->n_ctx)));
}

static void
on_evaluation_finished (QbEvaluator *evaluator,
                        QbWindow    *self)
{
  const QbEvaluation *evaluation = qb_evaluator_get_evaluation (evaluator);

  if (qb_evaluator_get_status (evaluator) == QB_EVALUATOR_FAILED)
    _qb_window_show_error (self, qb_evaluator_get_error (evaluator)->message);
  /* Measured beside predicted, while the plan is the one evaluated. */
  if (evaluation && isfinite (evaluation->kld_mean) && self->document && self->store)
    {
      g_autoptr(QbExperiment) e = qb_store_get_experiment (self->store,
                                                           qb_evaluator_get_experiment_id (evaluator),
                                                           NULL);
      if (e && e->plan_json)
        qb_document_set_measured_kld (self->document, e->plan_json, evaluation->kld_mean);
    }
  _qb_window_update_actions (self);
}

static void
action_evaluate_experiment (GSimpleAction *action,
                            GVariant      *param,
                            gpointer       data)
{
  QbWindow *self = data;
  g_autoptr(QbEvaluator) evaluator = NULL;
  QbEvaluatorOptions options = { 0 };
  gint64 id;

  g_variant_get (param, "(x&suub)", &id, &options.text_path, &options.n_ctx, &options.n_chunks, &options.kld);
  options.n_threads = g_settings_get_uint (self->settings, "threads");
  evaluator = qb_evaluator_new (self->store, qb_document_get_model (self->document), id, &options);
  if (self->evaluator)
    g_signal_handlers_disconnect_by_data (self->evaluator, self);
  g_set_object (&self->evaluator, evaluator);
  g_signal_connect (evaluator, "finished", G_CALLBACK (on_evaluation_finished), self);
  qb_experiments_page_set_evaluator (self->experiments_page, evaluator);
  qb_evaluator_start (evaluator);
  _qb_window_update_actions (self);
}

static void
action_cancel_evaluation (GSimpleAction *action,
                          GVariant      *param,
                          gpointer       data)
{
  QbWindow *self = data;

  if (self->evaluator)
    qb_evaluator_cancel (self->evaluator);
}

static const GActionEntry eval_entries[] = {
  { "evaluate", action_evaluate },
  { "evaluate-experiment", action_evaluate_experiment, "(xsuub)" },
  { "cancel-evaluation", action_cancel_evaluation },
};

/* -- the window ----------------------------------------------------------- */

static void
action_show_page (GSimpleAction *action,
                  GVariant      *param,
                  gpointer       data)
{
  QbWindow *self = data;
  const char *page = g_variant_get_string (param, NULL);

  if (gtk_stack_get_child_by_name (self->page_stack, page))
    gtk_stack_set_visible_child_name (self->page_stack, page);
}

static void
change_show_sidebar (GSimpleAction *action,
                     GVariant      *value,
                     gpointer       data)
{
  QbWindow *self = data;

  gtk_widget_set_visible (GTK_WIDGET (self->plan_panel), g_variant_get_boolean (value));
  g_simple_action_set_state (action, value);
}

static void
action_dismiss_error (GSimpleAction *action,
                      GVariant      *param,
                      gpointer       data)
{
  _qb_window_clear_error (data);
}

static const GActionEntry entries[] = {
  { "open", action_open },
  { "open-file", action_open_file, "s" },
  { "open-demo", action_open_demo },
  { "quantize", action_quantize },
  { "cancel", action_cancel },
  { "search", action_search },
  { "select-tensor", action_select_tensor, "s" },
  { "set-format", action_set_format, "s" },
  { "clear-format", action_clear_format },
  { "pin-tensors", action_pin_tensors, "b" },
  { "clear-overrides", action_clear_overrides },
  { "group-by", NULL, "s", "'none'", change_group_by },
  { "set-default-format", action_set_default_format, "s" },
  { "set-preset", action_set_preset, "s" },
  { "set-method", action_set_method, "s" },
  { "keep-1d", NULL, NULL, "true", change_keep_1d },
  { "add-rule", action_add_rule, "(sss)" },
  { "remove-rule", action_remove_rule, "u" },
  { "move-rule", action_move_rule, "(uu)" },
  { "log-scale", NULL, NULL, "false", change_log_scale },
  { "histogram-difference", NULL, NULL, "false", change_histogram_difference },
  { "reset-zoom", action_reset_zoom },
  { "show-chart", action_show_chart, "s" },
  { "export-chart", action_export_chart, "s" },
  { "export-chart-to", action_export_chart_to, "s" },
  { "show-page", action_show_page, "s" },
  { "show-sidebar", NULL, NULL, "true", change_show_sidebar },
  { "dismiss-error", action_dismiss_error },
  { "refresh-experiments", action_refresh_experiments },
  { "open-experiment", action_open_experiment, "x" },
  { "delete-experiment", action_delete_experiment, "x" },
  { "rename-experiment", action_rename_experiment, "(xs)" },
  { "set-experiment-notes", action_set_experiment_notes, "(xs)" },
  { "set-experiment-tags", action_set_experiment_tags, "(xs)" },
  { "compare", action_compare },
  { "compare-experiments", action_compare_experiments, "ax" },
};

void
_qb_window_install_actions (QbWindow *self)
{
  g_action_map_add_action_entries (G_ACTION_MAP (self), entries, G_N_ELEMENTS (entries), self);
  g_action_map_add_action_entries (G_ACTION_MAP (self), eval_entries, G_N_ELEMENTS (eval_entries), self);
}

G_GNUC_END_IGNORE_DEPRECATIONS
