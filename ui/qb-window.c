/* SPDX-License-Identifier: MIT */
/* qb-window.c — the workbench window: loading models, showing state, runs. */
#include "qb-window-private.h"
#include "qb-ui.h"

#define MAX_RECENT 10

G_DEFINE_FINAL_TYPE (QbWindow, qb_window, GTK_TYPE_APPLICATION_WINDOW)

/* -- errors --------------------------------------------------------------- */

void
_qb_window_show_error (QbWindow   *self,
                      const char *message)
{
  g_free (self->error_message);
  self->error_message = g_strdup (message);
  gtk_label_set_text (self->banner_label, message);
  gtk_revealer_set_reveal_child (self->banner_revealer, TRUE);
  _qb_window_update_actions (self);
}

void
_qb_window_clear_error (QbWindow *self)
{
  g_clear_pointer (&self->error_message, g_free);
  gtk_revealer_set_reveal_child (self->banner_revealer, FALSE);
  _qb_window_update_actions (self);
}

/* -- recent files --------------------------------------------------------- */

static void
rebuild_recent_menu (QbWindow *self)
{
  g_auto(GStrv) recent = g_settings_get_strv (self->settings, "recent-files");

  g_menu_remove_all (self->recent_section);
  for (guint i = 0; recent[i]; i++)
    {
      g_autofree char *label = g_path_get_basename (recent[i]);
      g_autoptr(GMenuItem) item = g_menu_item_new (label, NULL);

      g_menu_item_set_action_and_target_value (item, "win.open-file", g_variant_new_string (recent[i]));
      g_menu_append_item (self->recent_section, item);
    }
}

static void
remember_recent (QbWindow   *self,
                 const char *path)
{
  g_auto(GStrv) old = g_settings_get_strv (self->settings, "recent-files");
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) updated = NULL;
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autofree char *uri = g_file_get_uri (file);
  guint n = 1;

  g_strv_builder_add (builder, path);
  for (guint i = 0; old[i] && n < MAX_RECENT; i++)
    if (g_strcmp0 (old[i], path) != 0)
      {
        g_strv_builder_add (builder, old[i]);
        n++;
      }
  updated = g_strv_builder_end (builder);
  g_settings_set_strv (self->settings, "recent-files", (const char * const *) updated);
  gtk_recent_manager_add_item (gtk_recent_manager_get_default (), uri);
}

/* -- the document --------------------------------------------------------- */

static void
update_totals (QbWindow *self)
{
  g_autofree char *totals = NULL;
  const GError *error;

  if (self->document == NULL)
    return;
  totals = qb_document_describe_totals (self->document);
  gtk_label_set_text (self->totals_label, totals);
  {
    g_autofree char *source = qb_document_describe_prediction (self->document);
    g_autofree char *tip = g_strdup_printf ("%s\n%s", totals, source);
    gtk_widget_set_tooltip_text (GTK_WIDGET (self->totals_label), tip);
  }
  error = qb_document_get_plan_error (self->document);
  if (error)
    _qb_window_show_error (self, error->message);
}

static void
on_totals_changed (QbDocument *document,
                   QbWindow   *self)
{
  GAction *keep = g_action_map_lookup_action (G_ACTION_MAP (self), "keep-1d");
  gboolean keep_1d = qb_plan_get_keep_1d (qb_document_get_plan (document));

  update_totals (self);
  g_simple_action_set_state (G_SIMPLE_ACTION (keep), g_variant_new_boolean (keep_1d));
}

static void
on_focused_row (QbLayerTable *table,
                GParamSpec   *pspec,
                QbWindow     *self)
{
  qb_tensor_details_set_row (self->details, qb_layer_table_get_focused_row (table));
}

/* Another model is open: nothing of the previous one's runs or
 * comparisons stays on screen. */
static void
forget_model_state (QbWindow *self)
{
  if (self->run)
    g_signal_handlers_disconnect_by_data (self->run, self);
  g_clear_object (&self->run);
  self->recorder = NULL;
  _qb_window_forget_studies (self);
  qb_run_panel_set_run (self->run_panel, NULL);
  qb_compare_page_clear (self->compare_page);
}

static void
set_document (QbWindow   *self,
              QbDocument *document)
{
  QbModel *model = qb_document_get_model (document);
  const QbArchInfo *arch = qb_model_get_arch (model);
  g_autofree char *base = g_path_get_basename (qb_model_get_path (model));
  g_autofree char *facts = NULL;

  if (self->document)
    g_signal_handlers_disconnect_by_data (self->document, self);
  g_set_object (&self->document, document);
  forget_model_state (self);
  if (self->history)
    g_signal_handlers_disconnect_by_data (self->history, self);
  g_clear_object (&self->history);
  self->history = qb_plan_history_new (document);
  g_signal_connect_swapped (self->history, "changed", G_CALLBACK (_qb_window_update_actions), self);
  g_signal_connect (document, "totals-changed", G_CALLBACK (on_totals_changed), self);
  on_totals_changed (document, self);

  qb_layer_table_set_document (self->layer_table, document);
  qb_tensor_details_set_document (self->details, document);
  qb_plan_panel_set_document (self->plan_panel, document);
  qb_experiments_page_set_model (self->experiments_page, model);
  qb_sensitivity_page_set_document (self->sensitivity_page, document);

  gtk_label_set_text (self->title_label, arch->name && *arch->name ? arch->name : base);
  facts = qb_document_describe_arch (document);
  gtk_label_set_text (self->subtitle_label, facts);
  gtk_window_set_title (GTK_WINDOW (self), base);
  gtk_stack_set_visible_child_name (self->content_stack, "workspace");

  /* Show something at once: the first tensor with a matrix, or the first. */
  {
    GListModel *rows = qb_layer_table_get_visible_rows (self->layer_table);
    guint n = g_list_model_get_n_items (rows);
    g_autoptr(QbTensorRow) pick = NULL;

    for (guint i = 0; i < n && pick == NULL; i++)
      {
        g_autoptr(QbTensorRow) row = g_list_model_get_item (rows, i);
        if (qb_tensor_row_get_row_length (row) < qb_tensor_row_get_n_params (row))
          pick = g_steal_pointer (&row);
      }
    if (pick == NULL && n > 0)
      pick = g_list_model_get_item (rows, 0);
    if (pick)
      qb_layer_table_select_row (self->layer_table, pick);
  }
}

static void
show_status (QbWindow   *self,
             const char *text,
             gboolean    busy)
{
  gtk_label_set_text (self->status_label, text);
  gtk_spinner_set_spinning (self->status_spinner, busy);
  gtk_widget_set_visible (GTK_WIDGET (self->status_spinner), busy);
  if (self->document == NULL)
    gtk_stack_set_visible_child_name (self->content_stack, "status");
}

static void
load_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(QbWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(QbDocument) document = qb_document_load_finish (result, &error);
  g_autofree char *path = g_steal_pointer (&self->loading_path);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  g_clear_object (&self->load_cancellable);

  if (document == NULL)
    {
      g_autofree char *message = qb_ui_describe_open_error (path, error);
      show_status (self, "Open a model to begin", FALSE);
      _qb_window_show_error (self, message);
      return;
    }
  _qb_window_clear_error (self);
  set_document (self, document);
  remember_recent (self, qb_model_get_path (qb_document_get_model (document)));
  show_status (self, "", FALSE);
  _qb_window_update_actions (self);
}

void
qb_window_open_path (QbWindow   *self,
                     const char *path)
{
  g_autofree char *base = NULL;
  g_autofree char *text = NULL;
  g_autofree char *format = NULL;

  g_return_if_fail (QB_IS_WINDOW (self));

  if (self->run && qb_run_is_running (self->run))
    {
      _qb_window_show_error (self, "Cancel the running quantization before opening another model.");
      return;
    }
  if (self->study && qb_study_runner_is_running (self->study))
    {
      _qb_window_show_error (self, "Cancel the running sensitivity study before opening another model.");
      return;
    }
  if (self->load_cancellable)
    g_cancellable_cancel (self->load_cancellable);
  g_clear_object (&self->load_cancellable);
  self->load_cancellable = g_cancellable_new ();
  g_free (self->loading_path);
  self->loading_path = g_strdup (path);

  base = path ? g_path_get_basename (path) : g_strdup ("the demo model");
  text = g_strdup_printf ("Opening %s…", base);
  show_status (self, text, TRUE);
  format = g_settings_get_string (self->settings, "default-format");
  qb_document_load_async (path, format, self->load_cancellable, load_done, g_object_ref (self));
  _qb_window_update_actions (self);
}

void
qb_window_open_demo (QbWindow *self)
{
  g_return_if_fail (QB_IS_WINDOW (self));
  qb_window_open_path (self, NULL);
}

/* -- runs ----------------------------------------------------------------- */

static void
on_run_finished (QbRun    *run,
                 QbWindow *self)
{
  qb_layer_table_refresh_sort (self->layer_table);
  qb_layer_table_update_columns (self->layer_table);
  _qb_window_update_actions (self);
  if (qb_run_get_status (run) == QB_RUN_FAILED && qb_run_get_error (run))
    _qb_window_show_error (self, qb_run_get_error (run)->message);

  if (self->recorder == NULL)
    qb_run_panel_set_note (self->run_panel, "not saved: the experiment database is not open");
  else if (qb_experiment_recorder_get_error (self->recorder))
    {
      const char *why = qb_experiment_recorder_get_error (self->recorder)->message;
      gint64 id = qb_experiment_recorder_get_id (self->recorder);
      QbExperimentStatus end;
      gboolean end_stored = qb_experiment_recorder_get_end (self->recorder, &end);
      g_autofree char *note = NULL, *message = NULL;

      /* Results that did not all reach the store (a full disk): the
       * experiment is stored as failed, and that is said where it shows;
       * when even its end could not be written, that is said instead. */
      if (id != 0 && !end_stored)
        {
          note = g_strdup_printf ("experiment #%" G_GINT64_FORMAT " incomplete, its end not "
                                  "stored: %s", id, why);
          message = g_strdup_printf ("Not every result of this run could be saved, nor its end: "
                                     "experiment #%" G_GINT64_FORMAT " is incomplete and stays "
                                     "marked running until the database is opened again after "
                                     "Quantbench quits, with room to write, which marks it "
                                     "interrupted: %s", id, why);
        }
      else if (id != 0)
        {
          note = g_strdup_printf ("experiment #%" G_GINT64_FORMAT " stored as %s: %s", id,
                                  qb_experiment_status_name (end), why);
          message = g_strdup_printf ("Not everything of this run could be saved; experiment "
                                     "#%" G_GINT64_FORMAT " is stored as %s: %s", id,
                                     qb_experiment_status_name (end), why);
        }
      else
        {
          note = g_strdup_printf ("not saved: %s", why);
          message = g_strdup_printf ("This run could not be saved: %s", why);
        }
      qb_run_panel_set_note (self->run_panel, note);
      _qb_window_show_error (self, message);
    }
  else if (qb_experiment_recorder_get_id (self->recorder) == 0)
    /* It ended while calibrating, before there was anything to save. */
    qb_run_panel_set_note (self->run_panel, "nothing saved");
  else
    {
      g_autofree char *note = g_strdup_printf ("saved as experiment #%" G_GINT64_FORMAT,
                                               qb_experiment_recorder_get_id (self->recorder));
      qb_run_panel_set_note (self->run_panel, note);
    }
  qb_experiments_page_refresh (self->experiments_page);
}

void
_qb_window_start_run (QbWindow *self)
{
  g_autoptr(QbRun) run = NULL;

  if (self->document == NULL || (self->run && qb_run_is_running (self->run))
      || (self->study && qb_study_runner_is_running (self->study)))
    return;
  run = qb_run_new (self->document, g_settings_get_uint (self->settings, "threads"));
  if (self->run)
    g_signal_handlers_disconnect_by_data (self->run, self);
  g_set_object (&self->run, run);
  self->recorder = NULL;
  if (self->store)
    {
      self->recorder = qb_experiment_recorder_new (self->store, NULL);
      qb_experiment_recorder_attach (self->recorder, run);
    }
  g_signal_connect (run, "finished", G_CALLBACK (on_run_finished), self);
  qb_run_panel_set_run (self->run_panel, run);
  qb_run_start (run);
  _qb_window_update_actions (self);
}

/* -- the experiment store ------------------------------------------------ */

static void
open_store_thread (GTask        *task,
                   gpointer      source,
                   gpointer      data,
                   GCancellable *cancellable)
{
  const char *path = data;
  GError *error = NULL;
  QbStore *store = qb_store_open (*path ? path : NULL, &error);

  if (store)
    g_task_return_pointer (task, store, (GDestroyNotify) qb_store_unref);
  else
    g_task_return_error (task, error);
}

static void
open_store_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(QbWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(QbStore) store = g_task_propagate_pointer (G_TASK (result), &error);

  self->n_pending--;
  if (gtk_widget_in_destruction (GTK_WIDGET (self)))
    return;
  if (store == NULL)
    {
      g_autofree char *message = g_strdup_printf ("The experiment database could not be opened, so runs "
                                                  "are not saved: %s", error->message);
      _qb_window_show_error (self, message);
      return;
    }
  self->store = g_steal_pointer (&store);
  qb_experiments_page_set_store (self->experiments_page, self->store);
  qb_compare_page_set_store (self->compare_page, self->store);
  qb_sensitivity_page_set_store (self->sensitivity_page, self->store);
  _qb_window_update_actions (self);
}

/* The database is opened (and migrated if old) off the main thread. */
static void
open_store (QbWindow *self)
{
  g_autoptr(GTask) task = g_task_new (NULL, NULL, open_store_done, g_object_ref (self));

  self->n_pending++;
  g_task_set_source_tag (task, open_store);
  g_task_set_task_data (task, g_settings_get_string (self->settings, "database-path"), g_free);
  g_task_run_in_thread (task, open_store_thread);
}

typedef struct {
  QbStore       *store;
  gint64         id;
  QbExperiment  *experiment;
  GPtrArray     *tensors;       /* QbStoredTensor, with histograms */
} ExperimentLoad;

static void
experiment_load_free (ExperimentLoad *load)
{
  qb_store_unref (load->store);
  g_clear_pointer (&load->experiment, qb_experiment_free);
  g_clear_pointer (&load->tensors, g_ptr_array_unref);
  g_free (load);
}

static void
load_experiment_thread (GTask        *task,
                        gpointer      source,
                        gpointer      data,
                        GCancellable *cancellable)
{
  ExperimentLoad *load = data;
  QbStore *store = load->store;
  GError *error = NULL;

  load->experiment = qb_store_get_experiment (store, load->id, &error);
  if (load->experiment)
    load->tensors = qb_store_get_tensors (store, load->id, &error);
  for (guint i = 0; load->tensors && i < load->tensors->len; i++)
    if (!qb_store_load_tensor_data (store, g_ptr_array_index (load->tensors, i), &error))
      g_clear_pointer (&load->tensors, g_ptr_array_unref);
  if (load->tensors)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
load_experiment_done (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  g_autoptr(QbWindow) self = user_data;
  ExperimentLoad *load = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;
  g_autoptr(QbPlan) plan = NULL;
  QbModel *model;

  self->n_pending--;
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      _qb_window_show_error (self, error->message);
      return;
    }
  if (self->document == NULL || gtk_widget_in_destruction (GTK_WIDGET (self)))
    return;
  model = qb_document_get_model (self->document);
  if (g_strcmp0 (load->experiment->model_fingerprint, qb_model_get_fingerprint (model)) != 0)
    {
      g_autofree char *message = g_strdup_printf ("“%s” was run on another model (%s): open that model first.",
                                                  load->experiment->name,
                                                  load->experiment->model_name ? load->experiment->model_name : "?");
      _qb_window_show_error (self, message);
      return;
    }
  plan = qb_plan_new_from_json (load->experiment->plan_json, &error);
  if (plan == NULL)
    {
      _qb_window_show_error (self, error->message);
      return;
    }
  qb_document_set_plan (self->document, plan);
  qb_document_clear_results (self->document);
  for (guint i = 0; i < load->tensors->len; i++)
    {
      QbStoredTensor *t = g_ptr_array_index (load->tensors, i);
      qb_document_set_result (self->document, t->position, qb_tensor_result_copy (t->result));
    }
  qb_layer_table_refresh_sort (self->layer_table);
  qb_layer_table_update_columns (self->layer_table);
  gtk_stack_set_visible_child_name (self->page_stack, "plan");
  _qb_window_update_actions (self);
}

void
_qb_window_open_experiment (QbWindow *self,
                           gint64    id)
{
  g_autoptr(GTask) task = NULL;
  ExperimentLoad *load;

  g_return_if_fail (QB_IS_WINDOW (self));
  if (self->store == NULL || self->document == NULL)
    return;
  load = g_new0 (ExperimentLoad, 1);
  load->store = qb_store_ref (self->store);
  load->id = id;
  self->n_pending++;
  task = g_task_new (NULL, NULL, load_experiment_done, g_object_ref (self));
  g_task_set_source_tag (task, _qb_window_open_experiment);
  g_task_set_task_data (task, load, (GDestroyNotify) experiment_load_free);
  g_task_run_in_thread (task, load_experiment_thread);
}

static void
on_page_error (GtkWidget  *page,
               const char *message,
               QbWindow   *self)
{
  _qb_window_show_error (self, message);
}

QbChart *
_qb_window_get_visible_chart (QbWindow *self)
{
  if (g_strcmp0 (gtk_stack_get_visible_child_name (self->page_stack), "compare") == 0)
    return qb_compare_page_get_visible_chart (self->compare_page);
  if (g_strcmp0 (gtk_stack_get_visible_child_name (self->page_stack), "plan") == 0)
    return qb_tensor_details_get_visible_chart (self->details);
  return NULL;
}

/* -- drag and drop -------------------------------------------------------- */

static gboolean
on_drop (GtkDropTarget *target,
         const GValue  *value,
         double         x,
         double         y,
         QbWindow      *self)
{
  GSList *files;
  g_autofree char *path = NULL;

  if (!G_VALUE_HOLDS (value, GDK_TYPE_FILE_LIST))
    return FALSE;
  files = g_value_get_boxed (value);
  if (files == NULL)
    return FALSE;
  path = g_file_get_path (files->data);
  if (path == NULL)
    {
      _qb_window_show_error (self, "Only local files can be opened.");
      return FALSE;
    }
  qb_window_open_path (self, path);
  return TRUE;
}

/* -- GObject -------------------------------------------------------------- */

static void
qb_window_dispose (GObject *object)
{
  QbWindow *self = QB_WINDOW (object);

  if (self->load_cancellable)
    g_cancellable_cancel (self->load_cancellable);
  g_clear_object (&self->load_cancellable);
  if (self->run)
    {
      g_signal_handlers_disconnect_by_data (self->run, self);
      qb_run_cancel (self->run);
    }
  g_clear_object (&self->run);
  _qb_window_forget_studies (self);
  g_clear_pointer (&self->study_runs, g_hash_table_unref);
  if (self->history)
    g_signal_handlers_disconnect_by_data (self->history, self);
  g_clear_object (&self->history);
  if (self->document)
    g_signal_handlers_disconnect_by_data (self->document, self);
  g_clear_object (&self->document);
  if (self->evaluator)
    {
      g_signal_handlers_disconnect_by_data (self->evaluator, self);
      qb_evaluator_cancel (self->evaluator);
    }
  g_clear_object (&self->evaluator);
  g_clear_pointer (&self->store, qb_store_unref);
  if (self->settings)
    g_signal_handlers_disconnect_by_data (self->settings, self);
  g_clear_object (&self->settings);
  gtk_widget_dispose_template (GTK_WIDGET (self), QB_TYPE_WINDOW);
  G_OBJECT_CLASS (qb_window_parent_class)->dispose (object);
}

static void
qb_window_finalize (GObject *object)
{
  QbWindow *self = QB_WINDOW (object);

  g_free (self->loading_path);
  g_free (self->error_message);
  G_OBJECT_CLASS (qb_window_parent_class)->finalize (object);
}

static void
qb_window_class_init (QbWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = qb_window_dispose;
  object_class->finalize = qb_window_finalize;

  g_type_ensure (QB_TYPE_PLAN_PANEL);
  g_type_ensure (QB_TYPE_LAYER_TABLE);
  g_type_ensure (QB_TYPE_TENSOR_DETAILS);
  g_type_ensure (QB_TYPE_RUN_PANEL);
  g_type_ensure (QB_TYPE_EXPERIMENTS_PAGE);
  g_type_ensure (QB_TYPE_COMPARE_PAGE);
  g_type_ensure (QB_TYPE_SENSITIVITY_PAGE);

  qb_ui_ensure_resources ();
  gtk_widget_class_set_template_from_resource (widget_class, "/org/quantbench/Quantbench/ui/qb-window.ui");
  gtk_widget_class_bind_template_child (widget_class, QbWindow, title_label);
  gtk_widget_class_bind_template_child (widget_class, QbWindow, subtitle_label);
  gtk_widget_class_bind_template_child (widget_class, QbWindow, banner_revealer);
  gtk_widget_class_bind_template_child (widget_class, QbWindow, banner_label);
  gtk_widget_class_bind_template_child (widget_class, QbWindow, content_stack);
  gtk_widget_class_bind_template_child (widget_class, QbWindow, status_spinner);
  gtk_widget_class_bind_template_child (widget_class, QbWindow, status_label);
  gtk_widget_class_bind_template_child (widget_class, QbWindow, totals_label);
  gtk_widget_class_bind_template_child (widget_class, QbWindow, page_stack);
  gtk_widget_class_bind_template_child (widget_class, QbWindow, outer_paned);
  gtk_widget_class_bind_template_child (widget_class, QbWindow, plan_panel);
  gtk_widget_class_bind_template_child (widget_class, QbWindow, layer_table);
  gtk_widget_class_bind_template_child (widget_class, QbWindow, details);
  gtk_widget_class_bind_template_child (widget_class, QbWindow, run_panel);
  gtk_widget_class_bind_template_child (widget_class, QbWindow, experiments_page);
  gtk_widget_class_bind_template_child (widget_class, QbWindow, compare_page);
  gtk_widget_class_bind_template_child (widget_class, QbWindow, sensitivity_page);
  gtk_widget_class_bind_template_child (widget_class, QbWindow, recent_section);
}

static void
on_recent_changed (GSettings  *settings,
                   const char *key,
                   QbWindow   *self)
{
  rebuild_recent_menu (self);
}

static void
qb_window_init (QbWindow *self)
{
  GtkDropTarget *drop;

  gtk_widget_init_template (GTK_WIDGET (self));

  self->settings = qb_ui_settings_new ();
  g_signal_connect (self->settings, "changed::recent-files", G_CALLBACK (on_recent_changed), self);
  rebuild_recent_menu (self);

  drop = gtk_drop_target_new (GDK_TYPE_FILE_LIST, GDK_ACTION_COPY);
  g_signal_connect (drop, "drop", G_CALLBACK (on_drop), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drop));

  g_signal_connect (self->layer_table, "notify::focused-row", G_CALLBACK (on_focused_row), self);
  g_signal_connect (self->experiments_page, "error", G_CALLBACK (on_page_error), self);
  g_signal_connect (self->compare_page, "error", G_CALLBACK (on_page_error), self);
  g_signal_connect (self->sensitivity_page, "error", G_CALLBACK (on_page_error), self);
  /* The page may finish a read after the window is gone: tie the
   * connection to the window's life. */
  g_signal_connect_object (self->experiments_page, "selection-changed",
                           G_CALLBACK (_qb_window_update_actions), self, G_CONNECT_SWAPPED);

  _qb_window_install_actions (self);
  _qb_window_install_plan_actions (self);
  _qb_window_install_export_actions (self);
  _qb_window_install_study_actions (self);
  show_status (self, "Open a model to begin", FALSE);
  open_store (self);
  _qb_window_update_actions (self);
}

QbWindow *
qb_window_new (GtkApplication *application)
{
  return g_object_new (QB_TYPE_WINDOW, "application", application, NULL);
}

QbDocument      *qb_window_get_document    (QbWindow *self) { return self->document; }
gboolean         qb_window_is_loading      (QbWindow *self) { return self->load_cancellable != NULL; }
const char      *qb_window_get_error_message (QbWindow *self) { return self->error_message; }
QbRun           *qb_window_get_run         (QbWindow *self) { return self->run; }
QbLayerTable    *qb_window_get_layer_table (QbWindow *self) { return self->layer_table; }
QbTensorDetails *qb_window_get_details     (QbWindow *self) { return self->details; }
QbPlanPanel     *qb_window_get_plan_panel  (QbWindow *self) { return self->plan_panel; }
QbRunPanel      *qb_window_get_run_panel   (QbWindow *self) { return self->run_panel; }

QbExperimentsPage *qb_window_get_experiments_page (QbWindow *self) { return self->experiments_page; }
QbComparePage   *qb_window_get_compare_page (QbWindow *self) { return self->compare_page; }
QbSensitivityPage *qb_window_get_sensitivity_page (QbWindow *self) { return self->sensitivity_page; }
QbStudyRunner   *qb_window_get_study       (QbWindow *self) { return self->study; }
gboolean         qb_window_has_store       (QbWindow *self) { return self->store != NULL; }
QbEvaluator     *qb_window_get_evaluator   (QbWindow *self) { return self->evaluator; }
gboolean
qb_window_is_busy (QbWindow *self)
{
  return self->n_pending > 0 || qb_sensitivity_page_is_loading (self->sensitivity_page)
         || (self->document && qb_document_is_allocating (self->document));
}

const char *
qb_window_get_totals_text (QbWindow *self)
{
  return gtk_label_get_text (self->totals_label);
}

const char *
qb_window_get_subtitle_text (QbWindow *self)
{
  return gtk_label_get_text (self->subtitle_label);
}
