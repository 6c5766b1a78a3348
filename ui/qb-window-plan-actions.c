/* SPDX-License-Identifier: MIT */
/* qb-window-plan-actions.c — undo and redo of plan edits, plans as files. */
#include "qb-window-private.h"

#include <string.h>

#define MAX_PLAN_FILE (16 * 1024 * 1024)

G_GNUC_BEGIN_IGNORE_DEPRECATIONS   /* GtkFileChooserNative: GtkFileDialog is 4.10+ */

void
_qb_window_update_plan_actions (QbWindow *self)
{
  /* A run works on a copy of the plan: editing it, as these do, is fine
   * while one goes on. */
  _qb_window_set_enabled (self, "undo", self->history && qb_plan_history_can_undo (self->history));
  _qb_window_set_enabled (self, "redo", self->history && qb_plan_history_can_redo (self->history));
  _qb_window_set_enabled (self, "save-plan", self->document != NULL);
  _qb_window_set_enabled (self, "save-plan-to", self->document != NULL);
  _qb_window_set_enabled (self, "open-plan", self->document != NULL);
  _qb_window_set_enabled (self, "open-plan-file", self->document != NULL);
}

/* -- undo and redo -------------------------------------------------------- */

/* Ctrl+Z in a text field outside the plan panel (search, an experiment's
 * name or notes) undoes the typing there, not the plan. */
static gboolean
forward_to_text (QbWindow   *self,
                 const char *action)
{
  GtkWidget *focus = gtk_root_get_focus (GTK_ROOT (self));

  if (focus == NULL || !(GTK_IS_TEXT (focus) || GTK_IS_TEXT_VIEW (focus))
      || gtk_widget_is_ancestor (focus, GTK_WIDGET (self->plan_panel)))
    return FALSE;
  return gtk_widget_activate_action (focus, action, NULL);
}

static void
action_undo (GSimpleAction *action,
             GVariant      *param,
             gpointer       data)
{
  QbWindow *self = data;

  if (!forward_to_text (self, "text.undo") && self->history)
    qb_plan_history_undo (self->history);
}

static void
action_redo (GSimpleAction *action,
             GVariant      *param,
             gpointer       data)
{
  QbWindow *self = data;

  if (!forward_to_text (self, "text.redo") && self->history)
    qb_plan_history_redo (self->history);
}

/* -- plan files ----------------------------------------------------------- */

static void
save_plan_to (QbWindow   *self,
              const char *path)
{
  g_autofree char *json = qb_plan_to_json (qb_document_get_plan (self->document));
  g_autoptr(GError) error = NULL;

  /* A temporary name, synced, then renamed over the old file. */
  if (!g_file_set_contents_full (path, json, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644, &error))
    {
      g_autofree char *message = g_strdup_printf ("The plan was not saved: %s", error->message);
      _qb_window_show_error (self, message);
    }
}

static void
open_plan_file (QbWindow   *self,
                const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;
  g_autoptr(QbPlan) plan = NULL;
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autoptr(GFileInfo) info = g_file_query_info (file, G_FILE_ATTRIBUTE_STANDARD_SIZE, 0, NULL, &error);
  gsize length;

  if (info != NULL && g_file_info_get_size (info) > MAX_PLAN_FILE)
    g_set_error (&error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                 "it is %" G_GOFFSET_FORMAT " bytes; a plan is a small JSON file", g_file_info_get_size (info));
  if (error == NULL && g_file_get_contents (path, &json, &length, &error))
    plan = qb_plan_new_from_json (json, &error);
  if (plan == NULL)
    {
      g_autofree char *message = g_strdup_printf ("The plan could not be opened: %s — %s", error->message, path);
      _qb_window_show_error (self, message);
      return;
    }
  /* A step of the history like any edit: Ctrl+Z gives the old plan back. */
  qb_document_set_plan (self->document, plan);
}

typedef void (*PathFunc) (QbWindow *self, const char *path);

static void
on_chosen (GtkNativeDialog *dialog,
           int              response,
           QbWindow        *self)
{
  PathFunc func = g_object_get_data (G_OBJECT (dialog), "qb-path-func");

  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autofree char *path = g_file_get_path (file);

      if (path == NULL)
        _qb_window_show_error (self, "Only local files can be used.");
      else if (self->document != NULL)
        func (self, path);
    }
  g_object_unref (dialog);
}

static void
choose_plan_file (QbWindow             *self,
                  GtkFileChooserAction  mode,
                  PathFunc              func)
{
  gboolean save = mode == GTK_FILE_CHOOSER_ACTION_SAVE;
  GtkFileChooserNative *dialog = gtk_file_chooser_native_new (save ? "Save the Plan" : "Open a Plan",
                                                              GTK_WINDOW (self), mode,
                                                              save ? "_Save" : "_Open", "_Cancel");
  g_autoptr(GtkFileFilter) filter = gtk_file_filter_new ();

  gtk_file_filter_set_name (filter, "Plans (JSON)");
  gtk_file_filter_add_pattern (filter, "*.json");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (dialog), filter);
  if (save)
    {
      QbModel *model = qb_document_get_model (self->document);
      g_autofree char *base = g_path_get_basename (qb_model_get_path (model));
      char *dot = strrchr (base, '.');
      g_autofree char *name = NULL;

      if (dot != NULL && dot != base)
        *dot = '\0';
      name = g_strdup_printf ("%s-plan.json", base);
      gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (dialog), name);
    }
  g_object_set_data (G_OBJECT (dialog), "qb-path-func", func);
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (dialog), TRUE);
  g_signal_connect (dialog, "response", G_CALLBACK (on_chosen), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}

static void
action_save_plan (GSimpleAction *action,
                  GVariant      *param,
                  gpointer       data)
{
  choose_plan_file (data, GTK_FILE_CHOOSER_ACTION_SAVE, save_plan_to);
}

static void
action_save_plan_to (GSimpleAction *action,
                     GVariant      *param,
                     gpointer       data)
{
  save_plan_to (data, g_variant_get_string (param, NULL));
}

static void
action_open_plan (GSimpleAction *action,
                  GVariant      *param,
                  gpointer       data)
{
  choose_plan_file (data, GTK_FILE_CHOOSER_ACTION_OPEN, open_plan_file);
}

static void
action_open_plan_file (GSimpleAction *action,
                       GVariant      *param,
                       gpointer       data)
{
  open_plan_file (data, g_variant_get_string (param, NULL));
}

static const GActionEntry entries[] = {
  { "undo", action_undo },
  { "redo", action_redo },
  { "save-plan", action_save_plan },
  { "save-plan-to", action_save_plan_to, "s" },
  { "open-plan", action_open_plan },
  { "open-plan-file", action_open_plan_file, "s" },
};

void
_qb_window_install_plan_actions (QbWindow *self)
{
  g_action_map_add_action_entries (G_ACTION_MAP (self), entries, G_N_ELEMENTS (entries), self);
}

G_GNUC_END_IGNORE_DEPRECATIONS
