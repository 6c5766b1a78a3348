/* SPDX-License-Identifier: MIT */
/* qb-preferences-dialog.c — settings bound to GSettings. */
#include "qb-preferences-dialog.h"
#include "qb-ui.h"

#include "qb-device.h"
#include "qb-format-button.h"

struct _QbPreferencesDialog
{
  GtkWindow      parent_instance;

  GtkSpinButton *threads_spin;
  GtkLabel      *threads_hint;
  GtkBox        *format_box;
  GtkEntry      *database_entry;
  GtkWidget     *format_button;
  GtkDropDown   *device_drop;
  GtkLabel      *device_hint;
  GStrv          device_specs;   /* per entry of device_drop: "cpu", "opencl:N" */
  GCancellable  *cancellable;

  GSettings     *settings;
};

G_DEFINE_FINAL_TYPE (QbPreferencesDialog, qb_preferences_dialog, GTK_TYPE_WINDOW)

G_GNUC_BEGIN_IGNORE_DEPRECATIONS   /* GtkFileChooserNative: GtkFileDialog is 4.10+ */
static void
on_database_chosen (GtkNativeDialog     *dialog,
                    int                  response,
                    QbPreferencesDialog *self)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autofree char *path = g_file_get_path (file);

      if (path)
        gtk_editable_set_text (GTK_EDITABLE (self->database_entry), path);
    }
  g_object_unref (dialog);
}

static void
on_choose_database (QbPreferencesDialog *self)
{
  GtkFileChooserNative *dialog;

  dialog = gtk_file_chooser_native_new ("Experiment Database", GTK_WINDOW (self),
                                        GTK_FILE_CHOOSER_ACTION_SAVE, "_Select", "_Cancel");
  gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (dialog), "experiments.sqlite");
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (dialog), TRUE);
  g_signal_connect (dialog, "response", G_CALLBACK (on_database_chosen), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}
G_GNUC_END_IGNORE_DEPRECATIONS

static void
qb_preferences_dialog_dispose (GObject *object)
{
  QbPreferencesDialog *self = QB_PREFERENCES_DIALOG (object);

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->device_specs, g_strfreev);
  g_clear_object (&self->settings);
  gtk_widget_dispose_template (GTK_WIDGET (self), QB_TYPE_PREFERENCES_DIALOG);
  G_OBJECT_CLASS (qb_preferences_dialog_parent_class)->dispose (object);
}

static void
qb_preferences_dialog_class_init (QbPreferencesDialogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = qb_preferences_dialog_dispose;

  qb_ui_ensure_resources ();
  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/quantbench/Quantbench/ui/qb-preferences-dialog.ui");
  gtk_widget_class_bind_template_child (widget_class, QbPreferencesDialog, threads_spin);
  gtk_widget_class_bind_template_child (widget_class, QbPreferencesDialog, threads_hint);
  gtk_widget_class_bind_template_child (widget_class, QbPreferencesDialog, format_box);
  gtk_widget_class_bind_template_child (widget_class, QbPreferencesDialog, database_entry);
  gtk_widget_class_bind_template_child (widget_class, QbPreferencesDialog, device_drop);
  gtk_widget_class_bind_template_child (widget_class, QbPreferencesDialog, device_hint);
  gtk_widget_class_bind_template_callback (widget_class, on_choose_database);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Escape, 0, "window.close", NULL);
}

/* 0 threads reads "automatic", and typing it back means 0. */
static gboolean
on_threads_output (GtkSpinButton *spin,
                   gpointer       data)
{
  int value = gtk_spin_button_get_value_as_int (spin);
  g_autofree char *text = value == 0 ? g_strdup ("automatic") : g_strdup_printf ("%d", value);

  if (g_strcmp0 (gtk_editable_get_text (GTK_EDITABLE (spin)), text) != 0)
    gtk_editable_set_text (GTK_EDITABLE (spin), text);
  return TRUE;
}

static int
on_threads_input (GtkSpinButton *spin,
                  double        *value,
                  gpointer       data)
{
  const char *text = gtk_editable_get_text (GTK_EDITABLE (spin));
  char *end = NULL;

  if (g_ascii_strncasecmp (text, "auto", 4) == 0)
    {
      *value = 0;
      return TRUE;
    }
  *value = g_ascii_strtod (text, &end);
  return end != text && *end == '\0' ? TRUE : GTK_INPUT_ERROR;
}

/* -- the device list: OpenCL discovery loads drivers, so off the main thread */

static void
list_devices_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  g_task_return_pointer (task, qb_device_list (NULL), (GDestroyNotify) g_ptr_array_unref);
}

static void
on_device_selected (QbPreferencesDialog *self)
{
  guint i = gtk_drop_down_get_selected (self->device_drop);

  if (self->device_specs != NULL && i < g_strv_length (self->device_specs))
    g_settings_set_string (self->settings, "device", self->device_specs[i]);
}

static void
on_devices_listed (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(GPtrArray) list = g_task_propagate_pointer (G_TASK (result), NULL);
  QbPreferencesDialog *self;
  g_autoptr(GStrvBuilder) specs = g_strv_builder_new ();
  g_autoptr(GtkStringList) names = gtk_string_list_new (NULL);
  g_autofree char *current = NULL;
  guint selected = 0;

  if (list == NULL || g_task_had_error (G_TASK (result)) || g_cancellable_is_cancelled (g_task_get_cancellable (G_TASK (result))))
    return;
  self = data;
  current = g_settings_get_string (self->settings, "device");
  gtk_string_list_append (names, "CPU threads (default)");
  g_strv_builder_add (specs, "cpu");
  for (guint i = 0; i < list->len; i++)
    {
      const QbDeviceInfo *d = g_ptr_array_index (list, i);
      g_autofree char *spec = g_strdup_printf ("opencl:%u", d->index);
      g_autofree char *name = g_strdup_printf ("%s — %s, %" G_GUINT64_FORMAT " MiB%s", d->name, d->version,
                                               d->global_mem >> 20, d->is_gpu ? "" : " (CPU device)");
      gtk_string_list_append (names, name);
      g_strv_builder_add (specs, spec);
      if (g_strcmp0 (current, spec) == 0)
        selected = i + 1;
    }
  self->device_specs = g_strv_builder_end (specs);
  gtk_drop_down_set_model (self->device_drop, G_LIST_MODEL (names));
  gtk_drop_down_set_selected (self->device_drop, selected);
  g_signal_connect_swapped (self->device_drop, "notify::selected", G_CALLBACK (on_device_selected), self);
  gtk_label_set_text (self->device_hint,
                      list->len == 0 ? "No OpenCL device found: everything runs on the CPU."
                                     : "The device quantizes Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and INTn group formats (with their metrics) "
                                       "and evaluates models, with the CPU's results; the rest runs on the CPU.");
}

static void
qb_preferences_dialog_init (QbPreferencesDialog *self)
{
  g_autofree char *hint = NULL;

  gtk_widget_init_template (GTK_WIDGET (self));

  self->format_button = qb_format_button_new ();
  gtk_box_append (self->format_box, self->format_button);
  hint = g_strdup_printf ("automatic: one per core (%u here)", g_get_num_processors ());
  gtk_spin_button_set_numeric (self->threads_spin, FALSE);
  g_signal_connect (self->threads_spin, "output", G_CALLBACK (on_threads_output), NULL);
  g_signal_connect (self->threads_spin, "input", G_CALLBACK (on_threads_input), NULL);
  gtk_label_set_text (self->threads_hint, hint);

  self->settings = qb_ui_settings_new ();
  g_settings_bind (self->settings, "threads", self->threads_spin, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (self->settings, "database-path", self->database_entry, "text", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (self->settings, "default-format", self->format_button, "format", G_SETTINGS_BIND_DEFAULT);

  {
    g_autoptr(GTask) task = NULL;
    self->cancellable = g_cancellable_new ();
    task = g_task_new (NULL, self->cancellable, on_devices_listed, self);
    g_task_run_in_thread (task, list_devices_thread);
  }
}

GtkWidget *
qb_preferences_dialog_new (GtkWindow *parent)
{
  return g_object_new (QB_TYPE_PREFERENCES_DIALOG, "transient-for", parent, NULL);
}
