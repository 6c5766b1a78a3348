/* SPDX-License-Identifier: MIT */
/* qb-study-dialog.c — texts, chunks, candidates and method of a study. */
#include "qb-study-dialog.h"

#include "qb-cost-table.h"
#include "qb-sensitivity.h"
#include "qb-ui.h"

struct _QbStudyDialog
{
  GtkWindow      parent_instance;

  GtkEntry      *calib_entry;
  GtkEntry      *eval_entry;
  GtkSpinButton *eval_chunks_spin;
  GtkSpinButton *calib_chunks_spin;
  GtkEntry      *candidates_entry;
  GtkDropDown   *method_dropdown;
  GtkCheckButton *per_expert_check;
  GtkWidget     *start_button;
  GSettings     *settings;
};

G_DEFINE_FINAL_TYPE (QbStudyDialog, qb_study_dialog, GTK_TYPE_WINDOW)

static const char *methods[] = { "rtn", "gptq", NULL };

static char *
default_ladder (void)
{
  return g_strjoinv (",", (char **) qb_cost_default_candidates ());
}

static void
on_changed (QbStudyDialog *self)
{
  const char *eval = gtk_editable_get_text (GTK_EDITABLE (self->eval_entry));
  const char *calib = gtk_editable_get_text (GTK_EDITABLE (self->calib_entry));
  gboolean gptq = gtk_drop_down_get_selected (self->method_dropdown) == 1;

  /* GPTQ needs the calibration statistics. */
  gtk_widget_set_sensitive (self->start_button,
                            g_file_test (eval, G_FILE_TEST_IS_REGULAR)
                            && (*calib == '\0' ? !gptq : g_file_test (calib, G_FILE_TEST_IS_REGULAR)));
}

static void
on_start (QbStudyDialog *self)
{
  GtkWindow *parent = gtk_window_get_transient_for (GTK_WINDOW (self));
  const char *eval = gtk_editable_get_text (GTK_EDITABLE (self->eval_entry));
  guint method = gtk_drop_down_get_selected (self->method_dropdown);

  g_settings_set_string (self->settings, "evaluation-text", eval);
  if (parent)
    gtk_widget_activate_action (GTK_WIDGET (parent), "win.start-study", "(ssssuuuxb)",
                                gtk_editable_get_text (GTK_EDITABLE (self->calib_entry)), eval,
                                gtk_editable_get_text (GTK_EDITABLE (self->candidates_entry)),
                                methods[method < G_N_ELEMENTS (methods) - 1 ? method : 0],
                                (guint32) 0,
                                (guint32) gtk_spin_button_get_value_as_int (self->eval_chunks_spin),
                                (guint32) gtk_spin_button_get_value_as_int (self->calib_chunks_spin),
                                (gint64) 0,
                                gtk_check_button_get_active (self->per_expert_check));
  gtk_window_destroy (GTK_WINDOW (self));
}

static void
on_default_ladder (QbStudyDialog *self)
{
  g_autofree char *ladder = default_ladder ();

  gtk_editable_set_text (GTK_EDITABLE (self->candidates_entry), ladder);
}

G_GNUC_BEGIN_IGNORE_DEPRECATIONS   /* GtkFileChooserNative: GtkFileDialog is 4.10+ */
static void
on_text_chosen (GtkNativeDialog *dialog,
                int              response,
                GtkEntry        *entry)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autofree char *path = g_file_get_path (file);

      if (path)
        gtk_editable_set_text (GTK_EDITABLE (entry), path);
    }
  g_object_unref (dialog);
}

static void
choose_text (GtkButton *button,
             GtkEntry  *entry)
{
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (button));
  GtkFileChooserNative *dialog = gtk_file_chooser_native_new ("Text", GTK_WINDOW (root),
                                                              GTK_FILE_CHOOSER_ACTION_OPEN,
                                                              "_Select", "_Cancel");

  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (dialog), TRUE);
  g_signal_connect (dialog, "response", G_CALLBACK (on_text_chosen), entry);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}
G_GNUC_END_IGNORE_DEPRECATIONS

/* A labelled row of the grid: label, widget, and an optional button. */
static void
add_row (GtkGrid    *grid,
         guint       row,
         const char *mnemonic,
         GtkWidget  *widget,
         GtkWidget  *extra,
         const char *tooltip)
{
  GtkWidget *label = gtk_label_new_with_mnemonic (mnemonic);

  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), widget);
  gtk_widget_set_hexpand (widget, TRUE);
  gtk_widget_set_tooltip_text (widget, tooltip);
  gtk_grid_attach (grid, label, 0, row, 1, 1);
  gtk_grid_attach (grid, widget, 1, row, extra ? 1 : 2, 1);
  if (extra)
    gtk_grid_attach (grid, extra, 2, row, 1, 1);
}

static GtkEntry *
text_row (QbStudyDialog *self, GtkGrid *grid, guint row, const char *mnemonic, const char *tooltip)
{
  GtkWidget *entry = gtk_entry_new ();
  GtkWidget *browse = gtk_button_new_from_icon_name ("document-open-symbolic");

  gtk_widget_set_tooltip_text (browse, "Choose a text file");
  g_signal_connect (browse, "clicked", G_CALLBACK (choose_text), entry);
  g_signal_connect_swapped (entry, "changed", G_CALLBACK (on_changed), self);
  add_row (grid, row, mnemonic, entry, browse, tooltip);
  return GTK_ENTRY (entry);
}

static void
qb_study_dialog_dispose (GObject *object)
{
  g_clear_object (&QB_STUDY_DIALOG (object)->settings);
  G_OBJECT_CLASS (qb_study_dialog_parent_class)->dispose (object);
}

static void
qb_study_dialog_class_init (QbStudyDialogClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  G_OBJECT_CLASS (klass)->dispose = qb_study_dialog_dispose;
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Escape, 0, "window.close", NULL);
}

static void
qb_study_dialog_init (QbStudyDialog *self)
{
  GtkWidget *header = gtk_header_bar_new ();
  GtkWidget *cancel = gtk_button_new_with_mnemonic ("_Cancel");
  GtkWidget *grid = gtk_grid_new ();
  GtkWidget *intro = gtk_label_new ("Each tensor is quantized alone in each candidate format; the whole "
                                    "model's KL divergence against the float model is measured on the "
                                    "evaluation text's first chunks.  Calibration chunks never overlap "
                                    "them.  A study can be cancelled and resumed.");
  GtkWidget *reset = gtk_button_new_from_icon_name ("edit-undo-symbolic");
  GtkWidget *expert_note;
  g_autofree char *ladder = default_ladder ();
  g_autofree char *eval = NULL;

  self->settings = qb_ui_settings_new ();
  gtk_window_set_title (GTK_WINDOW (self), "Sensitivity Study");
  gtk_window_set_modal (GTK_WINDOW (self), TRUE);
  gtk_window_set_destroy_with_parent (GTK_WINDOW (self), TRUE);
  gtk_window_set_default_size (GTK_WINDOW (self), 560, -1);
  gtk_header_bar_set_show_title_buttons (GTK_HEADER_BAR (header), FALSE);
  self->start_button = gtk_button_new_with_mnemonic ("_Start");
  gtk_widget_add_css_class (self->start_button, "suggested-action");
  g_signal_connect_swapped (cancel, "clicked", G_CALLBACK (gtk_window_destroy), self);
  g_signal_connect_swapped (self->start_button, "clicked", G_CALLBACK (on_start), self);
  gtk_header_bar_pack_start (GTK_HEADER_BAR (header), cancel);
  gtk_header_bar_pack_end (GTK_HEADER_BAR (header), self->start_button);
  gtk_window_set_titlebar (GTK_WINDOW (self), header);

  gtk_grid_set_row_spacing (GTK_GRID (grid), 10);
  gtk_grid_set_column_spacing (GTK_GRID (grid), 12);
  gtk_widget_set_margin_start (grid, 18);
  gtk_widget_set_margin_end (grid, 18);
  gtk_widget_set_margin_top (grid, 18);
  gtk_widget_set_margin_bottom (grid, 18);
  gtk_label_set_wrap (GTK_LABEL (intro), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (intro), 60);
  gtk_label_set_xalign (GTK_LABEL (intro), 0);
  gtk_widget_add_css_class (intro, "dim-label");
  gtk_grid_attach (GTK_GRID (grid), intro, 0, 0, 3, 1);

  self->eval_entry = text_row (self, GTK_GRID (grid), 1, "_Evaluation text",
                               "Held-out text the KL divergence is measured on (its first chunks)");
  self->eval_chunks_spin = GTK_SPIN_BUTTON (gtk_spin_button_new_with_range (1, 512, 1));
  gtk_spin_button_set_value (self->eval_chunks_spin, QB_SENSITIVITY_DEFAULT_CHUNKS);
  add_row (GTK_GRID (grid), 2, "Evaluation c_hunks", GTK_WIDGET (self->eval_chunks_spin), NULL,
           "More chunks: steadier measurements, a slower study");
  self->calib_entry = text_row (self, GTK_GRID (grid), 3, "C_alibration text",
                                "Text for importance and XᵀX (proxies, GPTQ); empty: none (RTN only). "
                                "When it is the evaluation text, the evaluated chunks are skipped.");
  self->calib_chunks_spin = GTK_SPIN_BUTTON (gtk_spin_button_new_with_range (1, 4096, 8));
  gtk_spin_button_set_value (self->calib_chunks_spin, 64);
  add_row (GTK_GRID (grid), 4, "Calibration ch_unks", GTK_WIDGET (self->calib_chunks_spin), NULL,
           "Chunks of the calibration text");
  self->candidates_entry = GTK_ENTRY (gtk_entry_new ());
  gtk_editable_set_text (GTK_EDITABLE (self->candidates_entry), ladder);
  gtk_widget_set_tooltip_text (reset, "The default ladder");
  g_signal_connect_swapped (reset, "clicked", G_CALLBACK (on_default_ladder), self);
  add_row (GTK_GRID (grid), 5, "Ca_ndidates", GTK_WIDGET (self->candidates_entry), reset,
           "Formats each tensor is studied in, comma-separated; one a tensor's rows do not fit is "
           "recorded as skipped");
  self->method_dropdown = GTK_DROP_DOWN (gtk_drop_down_new_from_strings (methods));
  g_signal_connect_swapped (self->method_dropdown, "notify::selected", G_CALLBACK (on_changed), self);
  add_row (GTK_GRID (grid), 6, "_Method", GTK_WIDGET (self->method_dropdown), NULL,
           "How each tensor is quantized: round to nearest, or GPTQ (needs a calibration text)");
  self->per_expert_check = GTK_CHECK_BUTTON (gtk_check_button_new_with_mnemonic (
                                                "Per e_xpert (mixtures of experts)"));
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->per_expert_check),
                               "Also quantize each expert of a 3-D expert tensor alone and measure it");
  gtk_grid_attach (GTK_GRID (grid), GTK_WIDGET (self->per_expert_check), 1, 7, 2, 1);
  expert_note = gtk_label_new ("Each expert tensor is measured once more per expert (8 experts: 9 "
                               "measurements instead of 1).  The plan still gives a tensor one "
                               "format for all its experts.  No effect on models without experts.");
  gtk_label_set_wrap (GTK_LABEL (expert_note), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (expert_note), 60);
  gtk_label_set_xalign (GTK_LABEL (expert_note), 0);
  gtk_widget_add_css_class (expert_note, "dim-label");
  gtk_grid_attach (GTK_GRID (grid), expert_note, 1, 8, 2, 1);
  gtk_window_set_child (GTK_WINDOW (self), grid);

  eval = g_settings_get_string (self->settings, "evaluation-text");
  gtk_editable_set_text (GTK_EDITABLE (self->eval_entry), eval);
  on_changed (self);
}

GtkWidget *
qb_study_dialog_new (GtkWindow  *parent,
                     const char *calib_path)
{
  QbStudyDialog *self = g_object_new (QB_TYPE_STUDY_DIALOG, "transient-for", parent, NULL);
  const char *eval = gtk_editable_get_text (GTK_EDITABLE (self->eval_entry));

  gtk_editable_set_text (GTK_EDITABLE (self->calib_entry), calib_path ? calib_path : eval);
  return GTK_WIDGET (self);
}
