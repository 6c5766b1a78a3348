/* SPDX-License-Identifier: MIT */
/* qb-evaluate-dialog.c — text, context and chunks for an evaluation. */
#include "qb-evaluate-dialog.h"

#include "qb-ui.h"

struct _QbEvaluateDialog
{
  GtkWindow       parent_instance;

  GtkLabel       *subject_label;
  GtkEntry       *text_entry;
  GtkSpinButton  *ctx_spin;
  GtkSpinButton  *chunks_spin;
  GtkCheckButton *kld_check;
  GtkWidget      *evaluate_button;

  gint64          experiment_id;
  GSettings      *settings;
};

G_DEFINE_FINAL_TYPE (QbEvaluateDialog, qb_evaluate_dialog, GTK_TYPE_WINDOW)

static void
on_text_changed (QbEvaluateDialog *self)
{
  const char *path = gtk_editable_get_text (GTK_EDITABLE (self->text_entry));

  gtk_widget_set_sensitive (self->evaluate_button, g_file_test (path, G_FILE_TEST_IS_REGULAR));
}

static void
on_evaluate (QbEvaluateDialog *self)
{
  GtkWindow *parent = gtk_window_get_transient_for (GTK_WINDOW (self));
  const char *path = gtk_editable_get_text (GTK_EDITABLE (self->text_entry));

  /* The next evaluation starts from these. */
  g_settings_set_string (self->settings, "evaluation-text", path);
  g_settings_set_uint (self->settings, "evaluation-chunks", (guint) gtk_spin_button_get_value_as_int (self->chunks_spin));
  g_settings_set_uint (self->settings, "evaluation-ctx", (guint) gtk_spin_button_get_value_as_int (self->ctx_spin));
  g_settings_set_boolean (self->settings, "evaluation-kld", gtk_check_button_get_active (self->kld_check));
  if (parent)
    gtk_widget_activate_action (GTK_WIDGET (parent), "win.evaluate-experiment", "(xsuub)",
                                self->experiment_id, path,
                                (guint32) gtk_spin_button_get_value_as_int (self->ctx_spin),
                                (guint32) gtk_spin_button_get_value_as_int (self->chunks_spin),
                                gtk_check_button_get_active (self->kld_check));
  gtk_window_destroy (GTK_WINDOW (self));
}

G_GNUC_BEGIN_IGNORE_DEPRECATIONS   /* GtkFileChooserNative: GtkFileDialog is 4.10+ */
static void
on_text_chosen (GtkNativeDialog  *dialog,
                int               response,
                QbEvaluateDialog *self)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autofree char *path = g_file_get_path (file);

      if (path)
        gtk_editable_set_text (GTK_EDITABLE (self->text_entry), path);
    }
  g_object_unref (dialog);
}

static void
on_choose_text (QbEvaluateDialog *self)
{
  GtkFileChooserNative *dialog = gtk_file_chooser_native_new ("Evaluation Text", GTK_WINDOW (self),
                                                              GTK_FILE_CHOOSER_ACTION_OPEN,
                                                              "_Select", "_Cancel");

  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (dialog), TRUE);
  g_signal_connect (dialog, "response", G_CALLBACK (on_text_chosen), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}
G_GNUC_END_IGNORE_DEPRECATIONS

static void
qb_evaluate_dialog_dispose (GObject *object)
{
  QbEvaluateDialog *self = QB_EVALUATE_DIALOG (object);

  g_clear_object (&self->settings);
  gtk_widget_dispose_template (GTK_WIDGET (self), QB_TYPE_EVALUATE_DIALOG);
  G_OBJECT_CLASS (qb_evaluate_dialog_parent_class)->dispose (object);
}

static void
qb_evaluate_dialog_class_init (QbEvaluateDialogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = qb_evaluate_dialog_dispose;

  qb_ui_ensure_resources ();
  gtk_widget_class_set_template_from_resource (widget_class, "/org/quantbench/Quantbench/ui/qb-evaluate-dialog.ui");
  gtk_widget_class_bind_template_child (widget_class, QbEvaluateDialog, subject_label);
  gtk_widget_class_bind_template_child (widget_class, QbEvaluateDialog, text_entry);
  gtk_widget_class_bind_template_child (widget_class, QbEvaluateDialog, ctx_spin);
  gtk_widget_class_bind_template_child (widget_class, QbEvaluateDialog, chunks_spin);
  gtk_widget_class_bind_template_child (widget_class, QbEvaluateDialog, kld_check);
  gtk_widget_class_bind_template_child (widget_class, QbEvaluateDialog, evaluate_button);
  gtk_widget_class_bind_template_callback (widget_class, on_text_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_evaluate);
  gtk_widget_class_bind_template_callback (widget_class, on_choose_text);
  gtk_widget_class_bind_template_callback_full (widget_class, "gtk_window_destroy", G_CALLBACK (gtk_window_destroy));
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Escape, 0, "window.close", NULL);
}

static void
qb_evaluate_dialog_init (QbEvaluateDialog *self)
{
  g_autofree char *text = NULL;

  gtk_widget_init_template (GTK_WIDGET (self));
  self->settings = qb_ui_settings_new ();
  text = g_settings_get_string (self->settings, "evaluation-text");
  gtk_editable_set_text (GTK_EDITABLE (self->text_entry), text);
  gtk_spin_button_set_value (self->chunks_spin, g_settings_get_uint (self->settings, "evaluation-chunks"));
  gtk_check_button_set_active (self->kld_check, g_settings_get_boolean (self->settings, "evaluation-kld"));
  on_text_changed (self);
}

GtkWidget *
qb_evaluate_dialog_new (GtkWindow          *parent,
                        const QbExperiment *experiment,
                        guint               model_ctx)
{
  QbEvaluateDialog *self = g_object_new (QB_TYPE_EVALUATE_DIALOG, "transient-for", parent, NULL);
  g_autofree char *subject = g_strdup_printf ("Perplexity and KL divergence of “%s”", experiment->name);

  self->experiment_id = experiment->id;
  gtk_label_set_text (self->subject_label, subject);
  /* llama.cpp's default chunk is 512 tokens, shorter for a short context. */
  if (model_ctx > 0)
    gtk_spin_button_set_range (self->ctx_spin, 16, model_ctx);
  {
    guint ctx = g_settings_get_uint (self->settings, "evaluation-ctx");

    if (ctx == 0)
      ctx = model_ctx > 0 ? MIN (512, model_ctx) : 512;
    gtk_spin_button_set_value (self->ctx_spin, ctx);   /* clamped to the model's */
  }
  return GTK_WIDGET (self);
}

void
qb_evaluate_dialog_get_options (QbEvaluateDialog *self,
                                const char      **text_path,
                                guint            *n_ctx,
                                guint            *n_chunks,
                                gboolean         *kld)
{
  g_return_if_fail (QB_IS_EVALUATE_DIALOG (self));

  *text_path = gtk_editable_get_text (GTK_EDITABLE (self->text_entry));
  *n_ctx = (guint) gtk_spin_button_get_value_as_int (self->ctx_spin);
  *n_chunks = (guint) gtk_spin_button_get_value_as_int (self->chunks_spin);
  *kld = gtk_check_button_get_active (self->kld_check);
}
