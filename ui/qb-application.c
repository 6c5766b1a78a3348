/* SPDX-License-Identifier: MIT */
/* qb-application.c — the GtkApplication: window, shortcuts, app actions. */
#include "qb-application.h"
#include "qb-device.h"

#include "qb-preferences-dialog.h"
#include "qb-ui.h"
#include "qb-window.h"

struct _QbApplication
{
  GtkApplication parent_instance;
  GSettings     *settings;   /* watched for the device preference */
};

G_DEFINE_FINAL_TYPE (QbApplication, qb_application, GTK_TYPE_APPLICATION)

static const struct {
  const char *action;
  const char *accels[3];
} shortcuts[] = {
  { "app.quit", { "<Control>q", NULL } },
  { "app.preferences", { "<Control>comma", NULL } },
  { "win.open", { "<Control>o", NULL } },
  { "win.quantize", { "<Control>r", NULL } },
  { "win.cancel", { "Escape", NULL } },
  { "win.search", { "<Control>f", NULL } },
  { "win.show-sidebar", { "F9", NULL } },
  { "win.log-scale", { "<Control>l", NULL } },
  { "win.histogram-difference", { "<Control><Shift>d", NULL } },
  { "win.reset-zoom", { "<Control>0", NULL } },
  { "win.export-chart('png')", { "<Control>e", NULL } },
  { "win.show-page('plan')", { "<Alt>1", NULL } },
  { "win.show-page('experiments')", { "<Alt>2", NULL } },
  { "win.show-page('compare')", { "<Alt>3", NULL } },
  { "win.compare", { "<Control>d", NULL } },
  { "win.undo", { "<Control>z", NULL } },
  { "win.redo", { "<Control><Shift>z", "<Control>y", NULL } },
  { "win.open-plan", { "<Control><Shift>o", NULL } },
  { "win.save-plan", { "<Control>s", NULL } },
  { "win.export-model", { "<Control><Shift>e", NULL } },
};

static QbWindow *
get_window (QbApplication *self)
{
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (self));

  if (window == NULL)
    window = GTK_WINDOW (qb_window_new (GTK_APPLICATION (self)));
  return QB_WINDOW (window);
}

static void
action_quit (GSimpleAction *action,
             GVariant      *param,
             gpointer       data)
{
  GList *windows = gtk_application_get_windows (GTK_APPLICATION (data));

  /* Closing the windows lets a running job be cancelled cleanly. */
  while (windows)
    {
      GList *next = windows->next;
      gtk_window_destroy (windows->data);
      windows = next;
    }
}

static void
action_preferences (GSimpleAction *action,
                    GVariant      *param,
                    gpointer       data)
{
  GtkWindow *parent = gtk_application_get_active_window (GTK_APPLICATION (data));

  gtk_window_present (GTK_WINDOW (qb_preferences_dialog_new (parent)));
}

static void
action_about (GSimpleAction *action,
              GVariant      *param,
              gpointer       data)
{
  static const char *authors[] = { "The Quantbench developers", NULL };

  gtk_show_about_dialog (gtk_application_get_active_window (GTK_APPLICATION (data)),
                         "program-name", "Quantbench",
                         "version", PACKAGE_VERSION,
                         "comments", "A workbench for quantizing neural networks: choose formats per "
                                     "layer, see what quantization does to the weights, and compare "
                                     "every run.",
                         "license-type", GTK_LICENSE_MIT_X11,
                         "logo-icon-name", "org.quantbench.Quantbench",
                         "authors", authors,
                         NULL);
}

static const GActionEntry app_entries[] = {
  { "quit", action_quit },
  { "preferences", action_preferences },
  { "about", action_about },
};

static void
load_css (void)
{
  g_autoptr(GtkCssProvider) provider = gtk_css_provider_new ();

  gtk_css_provider_load_from_resource (provider, "/org/quantbench/Quantbench/style.css");
  gtk_style_context_add_provider_for_display (gdk_display_get_default (), GTK_STYLE_PROVIDER (provider),
                                              GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
}

/* Opening a device (context, queue) can take a while: off the main thread.
 * A device that cannot be used prints why and leaves the CPU. */
static void
apply_device_thread (GTask *task, gpointer source, gpointer spec, GCancellable *cancellable)
{
  qb_device_set_default (spec, NULL);
  g_task_return_boolean (task, TRUE);
}

static void
apply_device (QbApplication *self)
{
  g_autoptr(GTask) task = g_task_new (NULL, NULL, NULL, NULL);

  g_task_set_task_data (task, g_settings_get_string (self->settings, "device"), g_free);
  g_task_run_in_thread (task, apply_device_thread);
}

static void
on_device_changed (GSettings *settings, const char *key, QbApplication *self)
{
  apply_device (self);
}

static void
qb_application_startup (GApplication *app)
{
  qb_ui_ensure_resources ();
  G_APPLICATION_CLASS (qb_application_parent_class)->startup (app);
  /* The device preference, unless --device or QB_DEVICE chose for this
   * session; a change in the preferences applies at once. */
  QB_APPLICATION (app)->settings = qb_ui_settings_new ();
  if (!qb_device_default_is_explicit ())
    apply_device (QB_APPLICATION (app));
  g_signal_connect (QB_APPLICATION (app)->settings, "changed::device", G_CALLBACK (on_device_changed), app);

  load_css ();
  g_action_map_add_action_entries (G_ACTION_MAP (app), app_entries, G_N_ELEMENTS (app_entries), app);
  for (guint i = 0; i < G_N_ELEMENTS (shortcuts); i++)
    gtk_application_set_accels_for_action (GTK_APPLICATION (app), shortcuts[i].action, shortcuts[i].accels);
}

/* Without a file: the first launch opens the built-in demo model; later
 * ones the last model opened, while it still exists. */
static void
open_default (QbApplication *self,
              QbWindow      *window)
{
  g_autoptr(GSettings) settings = qb_ui_settings_new ();
  g_auto(GStrv) recent = g_settings_get_strv (settings, "recent-files");

  if (!g_settings_get_boolean (settings, "first-run") && recent[0]
      && g_file_test (recent[0], G_FILE_TEST_IS_REGULAR))
    qb_window_open_path (window, recent[0]);
  else
    qb_window_open_demo (window);
  g_settings_set_boolean (settings, "first-run", FALSE);
}

static void
qb_application_activate (GApplication *app)
{
  QbApplication *self = QB_APPLICATION (app);
  gboolean fresh = gtk_application_get_active_window (GTK_APPLICATION (app)) == NULL;
  QbWindow *window = get_window (self);

  gtk_window_present (GTK_WINDOW (window));
  if (fresh)
    open_default (self, window);
}

static void
qb_application_open (GApplication  *app,
                     GFile        **files,
                     int            n_files,
                     const char    *hint)
{
  QbWindow *window = get_window (QB_APPLICATION (app));
  g_autofree char *path = n_files > 0 ? g_file_get_path (files[0]) : NULL;

  gtk_window_present (GTK_WINDOW (window));
  if (path)
    qb_window_open_path (window, path);
}

static void
qb_application_dispose (GObject *object)
{
  g_clear_object (&QB_APPLICATION (object)->settings);
  G_OBJECT_CLASS (qb_application_parent_class)->dispose (object);
}

static void
qb_application_class_init (QbApplicationClass *klass)
{
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  G_OBJECT_CLASS (klass)->dispose = qb_application_dispose;
  app_class->startup = qb_application_startup;
  app_class->activate = qb_application_activate;
  app_class->open = qb_application_open;
}

static void
qb_application_init (QbApplication *self)
{
}

QbApplication *
qb_application_new (void)
{
  return g_object_new (QB_TYPE_APPLICATION,
                       "application-id", "org.quantbench.Quantbench",
                       "flags", G_APPLICATION_HANDLES_OPEN | G_APPLICATION_NON_UNIQUE,
                       NULL);
}

int
qb_application_run (int argc, char **argv)
{
  g_autoptr(QbApplication) app = qb_application_new ();

  return g_application_run (G_APPLICATION (app), argc, argv);
}
