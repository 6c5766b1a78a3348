/* SPDX-License-Identifier: MIT */
/* qb-window-export.c — the quantized model written to a file (the current
 * plan's or a saved experiment's), and experiments exported and imported. */
#include "qb-window-private.h"

#include <string.h>

#include "qb-calibration.h"
#include "qb-eval.h"

G_GNUC_BEGIN_IGNORE_DEPRECATIONS   /* GtkFileChooserNative: GtkFileDialog is 4.10+ */

void
_qb_window_update_export_actions (QbWindow *self)
{
  gboolean running = self->run && qb_run_is_running (self->run);
  gboolean idle_doc = self->document != NULL && !running;

  _qb_window_set_enabled (self, "export-model", idle_doc);
  _qb_window_set_enabled (self, "export-model-to", idle_doc);
  _qb_window_set_enabled (self, "export-experiment-model", idle_doc && self->store != NULL);
  _qb_window_set_enabled (self, "export-experiment-model-to", idle_doc && self->store != NULL);
  _qb_window_set_enabled (self, "export-experiments", self->store != NULL && _qb_window_n_selected_experiments (self) > 0);
  _qb_window_set_enabled (self, "export-experiments-to", self->store != NULL);
  _qb_window_set_enabled (self, "import-experiments", self->store != NULL);
  _qb_window_set_enabled (self, "import-experiments-file", self->store != NULL);
}

/* -- file choosers -------------------------------------------------------- */

typedef void (*ChosenFunc) (QbWindow *self, const char *path, gint64 id);

static void
on_chosen (GtkNativeDialog *dialog,
           int              response,
           QbWindow        *self)
{
  ChosenFunc func = g_object_get_data (G_OBJECT (dialog), "qb-chosen-func");
  gint64 *id = g_object_get_data (G_OBJECT (dialog), "qb-chosen-id");

  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autofree char *path = g_file_get_path (file);

      if (path == NULL)
        _qb_window_show_error (self, "Only local files can be used.");
      else
        func (self, path, *id);
    }
  g_object_unref (dialog);
}

/* patterns: "name", "*.a", "*.b", NULL — one filter. */
static void
choose_file (QbWindow    *self,
             const char  *title,
             gboolean     save,
             const char  *suggested,
             const char **patterns,
             ChosenFunc   func,
             gint64       id)
{
  GtkFileChooserNative *dialog = gtk_file_chooser_native_new (title, GTK_WINDOW (self),
                                                              save ? GTK_FILE_CHOOSER_ACTION_SAVE
                                                                   : GTK_FILE_CHOOSER_ACTION_OPEN,
                                                              save ? "_Save" : "_Open", "_Cancel");
  g_autoptr(GtkFileFilter) filter = gtk_file_filter_new ();

  gtk_file_filter_set_name (filter, patterns[0]);
  for (guint i = 1; patterns[i]; i++)
    gtk_file_filter_add_pattern (filter, patterns[i]);
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (dialog), filter);
  if (suggested)
    gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (dialog), suggested);
  g_object_set_data (G_OBJECT (dialog), "qb-chosen-func", func);
  g_object_set_data_full (G_OBJECT (dialog), "qb-chosen-id", g_memdup2 (&id, sizeof id), g_free);
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (dialog), TRUE);
  g_signal_connect (dialog, "response", G_CALLBACK (on_chosen), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}

/* "stories260K-Q4_K.gguf": the model's name and the plan's in a few words. */
static char *
suggest_model_name (QbWindow *self,
                    QbPlan   *plan)
{
  g_autofree char *base = g_path_get_basename (qb_model_get_path (qb_document_get_model (self->document)));
  const char *what = qb_plan_get_preset (plan) ? qb_plan_get_preset (plan) : qb_plan_get_default_format (plan);
  char *dot = strrchr (base, '.');

  if (dot != NULL && dot != base)
    *dot = '\0';
  return g_strdup_printf ("%s-%s.gguf", base, what);
}

static const char *model_patterns[] = { "GGUF or safetensors", "*.gguf", "*.safetensors", NULL };

/* -- exporting the model -------------------------------------------------- */

static void
on_export_finished (QbRun    *run,
                    QbWindow *self)
{
  if (qb_run_get_status (run) == QB_RUN_FAILED && qb_run_get_error (run))
    _qb_window_show_error (self, qb_run_get_error (run)->message);
  _qb_window_update_actions (self);
}

/* Writes the model quantized with plan (NULL: the document's, with its
 * calibration) in the background; the run panel shows progress and Cancel. */
static void
start_export (QbWindow                   *self,
              const char                 *path,
              QbPlan                     *plan,
              const char * const         *calib_paths,
              const QbCalibrationOptions *calib_opts)
{
  g_autoptr(QbRun) run = NULL;
  QbExportKind kind;

  if (self->document == NULL || (self->run && qb_run_is_running (self->run)))
    return;
  if (!qb_export_kind_for_path (path, &kind))
    {
      g_autofree char *message = g_strdup_printf ("The quantized model was not exported: the name must end "
                                                  "in .gguf or .safetensors — %s", path);
      _qb_window_show_error (self, message);
      return;
    }
  run = qb_run_new (self->document, g_settings_get_uint (self->settings, "threads"));
  if (plan != NULL)
    qb_run_set_plan (run, plan, calib_paths, calib_opts);
  qb_run_set_export (run, kind, path);
  if (self->run)
    g_signal_handlers_disconnect_by_data (self->run, self);
  g_set_object (&self->run, run);
  self->recorder = NULL;
  g_signal_connect (run, "finished", G_CALLBACK (on_export_finished), self);
  qb_run_panel_set_run (self->run_panel, run);
  qb_run_start (run);
  _qb_window_update_actions (self);
}

static void
export_model_to (QbWindow   *self,
                 const char *path,
                 gint64      unused)
{
  start_export (self, path, NULL, NULL, NULL);
}

static void
action_export_model (GSimpleAction *action,
                     GVariant      *param,
                     gpointer       data)
{
  QbWindow *self = data;
  g_autofree char *name = suggest_model_name (self, qb_document_get_plan (self->document));

  choose_file (self, "Export the Quantized Model", TRUE, name, model_patterns, export_model_to, 0);
}

static void
action_export_model_to (GSimpleAction *action,
                        GVariant      *param,
                        gpointer       data)
{
  export_model_to (data, g_variant_get_string (param, NULL), 0);
}

/* An experiment's plan and calibration texts, read from the store off the
 * main thread, then exported like the current plan. */
typedef struct {
  QbStore          *store;
  gint64            id;
  char             *path;
  QbModel          *model;
  QbExperiment     *experiment;
  QbCalibrationSet *calibration;
  QbPlan           *plan;
} ExperimentExport;

static void
experiment_export_free (ExperimentExport *e)
{
  qb_store_unref (e->store);
  g_free (e->path);
  g_clear_object (&e->model);
  g_clear_pointer (&e->experiment, qb_experiment_free);
  g_clear_pointer (&e->calibration, qb_calibration_set_free);
  g_clear_object (&e->plan);
  g_free (e);
}

static void
read_experiment_thread (GTask        *task,
                        gpointer      source,
                        gpointer      data,
                        GCancellable *cancellable)
{
  ExperimentExport *e = data;
  QbStore *store = e->store;
  GError *error = NULL;

  e->experiment = qb_store_get_experiment (store, e->id, &error);
  if (e->experiment != NULL && e->experiment->calibration_set_id != 0)
    e->calibration = qb_store_get_calibration_set (store, e->experiment->calibration_set_id, &error);
  if (error == NULL)
    e->plan = qb_eval_plan_of_experiment (e->experiment, e->model, &error);
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
read_experiment_done (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  g_autoptr(QbWindow) self = user_data;
  ExperimentExport *e = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;
  QbCalibrationOptions opts;

  self->n_pending--;
  if (gtk_widget_in_destruction (GTK_WIDGET (self)))
    return;
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      g_autofree char *message = g_strdup_printf ("The experiment was not exported: %s", error->message);
      _qb_window_show_error (self, message);
      return;
    }
  /* Another model was opened meanwhile: its document cannot run this plan. */
  if (self->document == NULL || qb_document_get_model (self->document) != e->model)
    return;
  if (e->calibration != NULL)
    qb_calibration_options_for_record (&opts, e->calibration);
  start_export (self, e->path, e->plan,
                e->calibration ? (const char * const *) e->calibration->sources : NULL,
                e->calibration ? &opts : NULL);
}

static void
export_experiment_model_to (QbWindow   *self,
                            const char *path,
                            gint64      id)
{
  g_autoptr(GTask) task = NULL;
  ExperimentExport *e;

  if (self->store == NULL || self->document == NULL)
    return;
  e = g_new0 (ExperimentExport, 1);
  e->store = qb_store_ref (self->store);
  e->id = id;
  e->path = g_strdup (path);
  e->model = g_object_ref (qb_document_get_model (self->document));
  self->n_pending++;
  task = g_task_new (NULL, NULL, read_experiment_done, g_object_ref (self));
  g_task_set_source_tag (task, export_experiment_model_to);
  g_task_set_task_data (task, e, (GDestroyNotify) experiment_export_free);
  g_task_run_in_thread (task, read_experiment_thread);
}

static void
action_export_experiment_model (GSimpleAction *action,
                                GVariant      *param,
                                gpointer       data)
{
  QbWindow *self = data;
  g_autofree char *name = suggest_model_name (self, qb_document_get_plan (self->document));

  choose_file (self, "Export the Experiment's Quantized Model", TRUE, name, model_patterns,
               export_experiment_model_to, g_variant_get_int64 (param));
}

static void
action_export_experiment_model_to (GSimpleAction *action,
                                   GVariant      *param,
                                   gpointer       data)
{
  gint64 id;
  const char *path;

  g_variant_get (param, "(x&s)", &id, &path);
  export_experiment_model_to (data, path, id);
}

/* -- experiments to and from files ----------------------------------------- */

typedef struct {
  QbStore             *store;
  GArray              *ids;       /* gint64; export */
  QbStoreExportFormat  format;
  char                *path;
  GArray              *new_ids;   /* import */
  guint                n_skipped;
} Transfer;

static void
transfer_free (Transfer *t)
{
  qb_store_unref (t->store);
  g_clear_pointer (&t->ids, g_array_unref);
  g_clear_pointer (&t->new_ids, g_array_unref);
  g_free (t->path);
  g_free (t);
}

static void
transfer_thread (GTask        *task,
                 gpointer      source,
                 gpointer      data,
                 GCancellable *cancellable)
{
  Transfer *t = data;
  QbStore *store = t->store;
  GError *error = NULL;
  gboolean ok = t->ids != NULL
                ? qb_store_export_to_file (store, (const gint64 *) t->ids->data, t->ids->len, t->format,
                                           t->path, cancellable, &error)
                : qb_store_import_file (store, t->path, &t->new_ids, &t->n_skipped, &error);

  if (ok)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
transfer_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(QbWindow) self = user_data;
  Transfer *t = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;

  self->n_pending--;
  if (gtk_widget_in_destruction (GTK_WIDGET (self)))
    return;
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      g_autofree char *message = g_strdup_printf ("%s: %s", t->ids ? "The experiments were not exported"
                                                                   : "The experiments were not imported",
                                                  error->message);
      _qb_window_show_error (self, message);
      return;
    }
  if (t->ids == NULL)
    qb_experiments_page_refresh (self->experiments_page);
  _qb_window_update_actions (self);
}

static void
start_transfer (QbWindow *self,
                Transfer *t)
{
  g_autoptr(GTask) task = g_task_new (NULL, NULL, transfer_done, g_object_ref (self));

  t->store = qb_store_ref (self->store);
  self->n_pending++;
  g_task_set_source_tag (task, start_transfer);
  g_task_set_task_data (task, t, (GDestroyNotify) transfer_free);
  g_task_run_in_thread (task, transfer_thread);
}

/* The selected experiments, as JSON (lossless, for import) or CSV (one row
 * each), by the file's name. */
static void
export_experiments_to (QbWindow   *self,
                       const char *path,
                       gint64      unused)
{
  g_autofree char *lower = g_ascii_strdown (path, -1);
  g_autoptr(GArray) ids = qb_experiments_page_get_selected_ids (self->experiments_page);
  Transfer *t;

  if (self->store == NULL)
    return;
  if (ids->len == 0)
    {
      _qb_window_show_error (self, "Select the experiments to export on the Experiments page.");
      return;
    }
  if (!g_str_has_suffix (lower, ".json") && !g_str_has_suffix (lower, ".csv"))
    {
      g_autofree char *message = g_strdup_printf ("The experiments were not exported: the name must end in "
                                                  ".json or .csv — %s", path);
      _qb_window_show_error (self, message);
      return;
    }
  t = g_new0 (Transfer, 1);
  t->ids = g_steal_pointer (&ids);
  t->format = g_str_has_suffix (lower, ".csv") ? QB_STORE_EXPORT_CSV : QB_STORE_EXPORT_JSON;
  t->path = g_strdup (path);
  start_transfer (self, t);
}

static void
import_experiments_from (QbWindow   *self,
                         const char *path,
                         gint64      unused)
{
  Transfer *t;

  if (self->store == NULL)
    return;
  t = g_new0 (Transfer, 1);
  t->path = g_strdup (path);
  start_transfer (self, t);
}

static void
action_export_experiments (GSimpleAction *action,
                           GVariant      *param,
                           gpointer       data)
{
  static const char *patterns[] = { "JSON (for import) or CSV", "*.json", "*.csv", NULL };

  choose_file (data, "Export the Selected Experiments", TRUE, "experiments.json", patterns,
               export_experiments_to, 0);
}

static void
action_export_experiments_to (GSimpleAction *action,
                              GVariant      *param,
                              gpointer       data)
{
  export_experiments_to (data, g_variant_get_string (param, NULL), 0);
}

static void
action_import_experiments (GSimpleAction *action,
                           GVariant      *param,
                           gpointer       data)
{
  static const char *patterns[] = { "Experiments exported as JSON", "*.json", NULL };

  choose_file (data, "Import Experiments", FALSE, NULL, patterns, import_experiments_from, 0);
}

static void
action_import_experiments_file (GSimpleAction *action,
                                GVariant      *param,
                                gpointer       data)
{
  import_experiments_from (data, g_variant_get_string (param, NULL), 0);
}

static const GActionEntry entries[] = {
  { "export-model", action_export_model },
  { "export-model-to", action_export_model_to, "s" },
  { "export-experiment-model", action_export_experiment_model, "x" },
  { "export-experiment-model-to", action_export_experiment_model_to, "(xs)" },
  { "export-experiments", action_export_experiments },
  { "export-experiments-to", action_export_experiments_to, "s" },
  { "import-experiments", action_import_experiments },
  { "import-experiments-file", action_import_experiments_file, "s" },
};

void
_qb_window_install_export_actions (QbWindow *self)
{
  g_action_map_add_action_entries (G_ACTION_MAP (self), entries, G_N_ELEMENTS (entries), self);
}

G_GNUC_END_IGNORE_DEPRECATIONS
