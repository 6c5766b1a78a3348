/* SPDX-License-Identifier: MIT */
/* qb-plan-panel.c — default format, preset, method, rules, overrides. */
#include "qb-plan-panel.h"
#include "qb-ui.h"

#include "qb-constraints-popover.h"
#include "qb-format-button.h"
#include "qb-method.h"

struct _QbPlanPanel
{
  GtkWidget      parent_instance;

  GtkBox        *default_box;
  GtkWidget     *default_button;
  GtkDropDown   *preset_dropdown;
  GtkDropDown   *method_dropdown;
  QbRulesEditor *rules_editor;
  GtkLabel      *overrides_label;
  GtkGrid       *settings_grid;
  GtkSpinButton *budget_spin;
  GtkLabel      *budget_label;
  GtkWidget     *budget_fill;
  GtkMenuButton *constraints_button;
  QbConstraintsPopover *constraints;
  GtkButton     *calib_button;
  GtkLabel      *calib_label;
  GtkButton     *calib_clear_button;
  GtkSpinButton *calib_chunks_spin;
  GtkSpinButton *calib_ctx_spin;
  GtkSwitch     *calib_random_switch;
  GtkSpinButton *calib_seed_spin;
  GtkSpinButton *calib_skip_spin;
  char         **calib_paths;  /* chosen texts, or NULL */

  QbDocument    *document;
  gboolean       syncing;     /* showing the plan, not the user choosing */
};

G_DEFINE_FINAL_TYPE (QbPlanPanel, qb_plan_panel, GTK_TYPE_WIDGET)

static guint
string_list_find (GListModel *list,
                  const char *value)
{
  guint n = g_list_model_get_n_items (list);

  for (guint i = 0; value && i < n; i++)
    if (g_ascii_strcasecmp (gtk_string_list_get_string (GTK_STRING_LIST (list), i), value) == 0)
      return i;
  return GTK_INVALID_LIST_POSITION;
}

/* -- budget: fill the plan for a number of bits per weight ------------------ */

static void
sync_budget (QbPlanPanel *self)
{
  const char *source = self->document ? qb_document_get_cost_source (self->document) : NULL;
  gboolean proxies = self->document && qb_document_costs_are_proxies (self->document);
  g_autofree char *text = NULL, *tip = NULL, *constraints = NULL;
  double kld;

  if (source == NULL)
    text = g_strdup ("Costs being computed…");
  else if (qb_document_get_predicted_kld (self->document, &kld, NULL))
    {
      text = g_strdup_printf ("KLD %.4f (%s)", kld, proxies ? "proxies" : source);
      tip = qb_document_describe_prediction (self->document);
    }
  else
    text = g_strdup_printf ("Costs from %s", source);
  gtk_label_set_text (self->budget_label, text);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->budget_label), tip ? tip : text);

  constraints = self->document ? qb_constraints_describe (qb_document_get_plan (self->document)) : NULL;
  {
    g_autofree char *ctip = g_strdup_printf ("Constraints of a fill: %s",
                                             constraints ? constraints : "none (any candidate format)");
    gtk_widget_set_tooltip_text (GTK_WIDGET (self->constraints_button), ctip);
  }
  if (constraints)
    gtk_widget_add_css_class (GTK_WIDGET (self->constraints_button), "accent");
  else
    gtk_widget_remove_css_class (GTK_WIDGET (self->constraints_button), "accent");
}

static void
on_budget_fill (GtkButton   *button,
                QbPlanPanel *self)
{
  gtk_widget_activate_action (GTK_WIDGET (self), "win.allocate", "d",
                              gtk_spin_button_get_value (self->budget_spin));
}

static void
add_budget_row (QbPlanPanel *self)
{
  GtkWidget *label = gtk_label_new_with_mnemonic ("_Budget");
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *fill = gtk_button_new_with_mnemonic ("_Fill");

  self->budget_spin = GTK_SPIN_BUTTON (gtk_spin_button_new_with_range (1.0, 32.0, 0.25));
  gtk_spin_button_set_digits (self->budget_spin, 2);
  gtk_editable_set_width_chars (GTK_EDITABLE (self->budget_spin), 4);
  gtk_spin_button_set_value (self->budget_spin, 4.5);
  gtk_widget_set_hexpand (GTK_WIDGET (self->budget_spin), TRUE);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->budget_spin), "Bits per weight for the whole model");
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->budget_spin),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, "Budget in bits per weight", -1);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), GTK_WIDGET (self->budget_spin));
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_widget_set_tooltip_text (fill, "Choose every tensor's format: the least predicted KLD "
                                     "within the budget; pinned tensors keep theirs");
  g_signal_connect (fill, "clicked", G_CALLBACK (on_budget_fill), self);
  self->budget_fill = fill;
  /* Spin on the budget's row; the prediction and Fill on the next, so the
   * sidebar gets no wider. */
  self->budget_label = GTK_LABEL (gtk_label_new (NULL));
  gtk_label_set_xalign (self->budget_label, 0);
  gtk_label_set_ellipsize (self->budget_label, PANGO_ELLIPSIZE_END);
  gtk_widget_set_hexpand (GTK_WIDGET (self->budget_label), TRUE);
  gtk_widget_add_css_class (GTK_WIDGET (self->budget_label), "dim-label");
  self->constraints = QB_CONSTRAINTS_POPOVER (qb_constraints_popover_new ());
  self->constraints_button = GTK_MENU_BUTTON (gtk_menu_button_new ());
  gtk_menu_button_set_icon_name (self->constraints_button, "emblem-system-symbolic");
  gtk_menu_button_set_popover (self->constraints_button, GTK_WIDGET (self->constraints));
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->constraints_button),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, "Constraints of a fill", -1);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->budget_label));
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->constraints_button));
  gtk_box_append (GTK_BOX (box), fill);
  gtk_grid_attach (self->settings_grid, label, 0, 90, 1, 1);
  gtk_grid_attach (self->settings_grid, GTK_WIDGET (self->budget_spin), 1, 90, 1, 1);
  gtk_grid_attach (self->settings_grid, box, 0, 91, 2, 1);
}

static void
sync_from_plan (QbPlanPanel *self)
{
  QbPlan *plan = self->document ? qb_document_get_plan (self->document) : NULL;
  guint overridden, pos;
  g_autofree char *text = NULL;

  if (plan == NULL)
    return;
  self->syncing = TRUE;
  qb_format_button_set_format (QB_FORMAT_BUTTON (self->default_button), qb_plan_get_default_format (plan));
  pos = qb_plan_get_preset (plan)
        ? string_list_find (gtk_drop_down_get_model (self->preset_dropdown), qb_plan_get_preset (plan))
        : 0;
  gtk_drop_down_set_selected (self->preset_dropdown, pos == GTK_INVALID_LIST_POSITION ? 0 : pos);
  pos = string_list_find (gtk_drop_down_get_model (self->method_dropdown), qb_plan_get_default_method (plan));
  if (pos != GTK_INVALID_LIST_POSITION)
    gtk_drop_down_set_selected (self->method_dropdown, pos);
  self->syncing = FALSE;

  overridden = qb_plan_get_n_overrides (plan);
  if (overridden == 0)
    text = g_strdup ("No per-tensor overrides");
  else
    text = g_strdup_printf ("%u tensor%s with a format set by hand", overridden, overridden == 1 ? "" : "s");
  gtk_label_set_text (self->overrides_label, text);
  sync_budget (self);
}

static void
on_totals_changed (QbDocument  *document,
                   QbPlanPanel *self)
{
  sync_from_plan (self);
}

static void
on_default_chosen (QbFormatButton *button,
                   const char     *format,
                   QbPlanPanel    *self)
{
  gtk_widget_activate_action (GTK_WIDGET (self), "win.set-default-format", "s", format);
}

static void
on_preset_selected (GtkDropDown *dropdown,
                    GParamSpec  *pspec,
                    QbPlanPanel *self)
{
  guint pos = gtk_drop_down_get_selected (dropdown);
  const char *name = pos == 0 || pos == GTK_INVALID_LIST_POSITION ? ""
                     : gtk_string_list_get_string (GTK_STRING_LIST (gtk_drop_down_get_model (dropdown)), pos);

  if (!self->syncing)
    gtk_widget_activate_action (GTK_WIDGET (self), "win.set-preset", "s", name);
}

static void
on_method_selected (GtkDropDown *dropdown,
                    GParamSpec  *pspec,
                    QbPlanPanel *self)
{
  guint pos = gtk_drop_down_get_selected (dropdown);

  if (!self->syncing && pos != GTK_INVALID_LIST_POSITION)
    gtk_widget_activate_action (GTK_WIDGET (self), "win.set-method", "s",
                                gtk_string_list_get_string (GTK_STRING_LIST (gtk_drop_down_get_model (dropdown)), pos));
}

/* -- calibration ------------------------------------------------------------ */

/* Hands the chosen texts and chunking to the document, for the next run. */
static void
push_calibration (QbPlanPanel *self)
{
  QbCalibrationOptions opts;
  g_autofree char *name = NULL;
  guint n = self->calib_paths ? g_strv_length (self->calib_paths) : 0;

  if (n == 0)
    name = g_strdup ("None");
  else
    {
      g_autofree char *first = g_path_get_basename (self->calib_paths[0]);
      name = n == 1 ? g_strdup (first) : g_strdup_printf ("%s + %u more", first, n - 1);
    }
  gtk_label_set_text (self->calib_label, name);
  gtk_widget_set_sensitive (GTK_WIDGET (self->calib_clear_button), n > 0);
  if (self->document == NULL)
    return;
  qb_calibration_options_init (&opts);
  opts.n_chunks = (guint) gtk_spin_button_get_value_as_int (self->calib_chunks_spin);
  opts.n_ctx = (guint) gtk_spin_button_get_value_as_int (self->calib_ctx_spin);
  opts.random = gtk_switch_get_active (self->calib_random_switch);
  opts.seed = (guint64) gtk_spin_button_get_value_as_int (self->calib_seed_spin);
  opts.skip_chunks = (guint) gtk_spin_button_get_value_as_int (self->calib_skip_spin);
  qb_document_set_calibration (self->document, (const char * const *) self->calib_paths, &opts);
}

void
qb_plan_panel_set_calibration_files (QbPlanPanel        *self,
                                     const char * const *paths)
{
  g_return_if_fail (QB_IS_PLAN_PANEL (self));
  g_strfreev (self->calib_paths);
  self->calib_paths = paths && paths[0] ? g_strdupv ((char **) paths) : NULL;
  push_calibration (self);
}

static void
on_calib_chosen (GtkNativeDialog *dialog,
                 int              response,
                 QbPlanPanel     *self)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GListModel) files = gtk_file_chooser_get_files (GTK_FILE_CHOOSER (dialog));
      g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);

      for (guint i = 0; i < g_list_model_get_n_items (files); i++)
        {
          g_autoptr(GFile) file = g_list_model_get_item (files, i);
          char *path = g_file_get_path (file);
          if (path != NULL)
            g_ptr_array_add (paths, path);
        }
      g_ptr_array_add (paths, NULL);
      qb_plan_panel_set_calibration_files (self, (const char * const *) paths->pdata);
    }
  gtk_native_dialog_destroy (dialog);
  g_object_unref (dialog);
  g_object_unref (self);
}

static void
on_calib_button (GtkButton   *button,
                 QbPlanPanel *self)
{
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  GtkFileChooserNative *dialog;
  g_autoptr(GtkFileFilter) text = gtk_file_filter_new ();

  dialog = gtk_file_chooser_native_new ("Calibration Texts", GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL,
                                        GTK_FILE_CHOOSER_ACTION_OPEN, "_Choose", "_Cancel");
  gtk_file_chooser_set_select_multiple (GTK_FILE_CHOOSER (dialog), TRUE);
  gtk_file_filter_set_name (text, "Text files");
  gtk_file_filter_add_mime_type (text, "text/plain");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (dialog), text);
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (dialog), TRUE);
  g_signal_connect (dialog, "response", G_CALLBACK (on_calib_chosen), g_object_ref (self));
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}

static void
on_calib_clear (GtkButton   *button,
                QbPlanPanel *self)
{
  qb_plan_panel_set_calibration_files (self, NULL);
}

static void
on_calib_setting (GObject     *object,
                  GParamSpec  *pspec,
                  QbPlanPanel *self)
{
  push_calibration (self);
}

static void
qb_plan_panel_dispose (GObject *object)
{
  QbPlanPanel *self = QB_PLAN_PANEL (object);

  if (self->document)
    g_signal_handlers_disconnect_by_data (self->document, self);
  g_clear_object (&self->document);
  g_clear_pointer (&self->calib_paths, g_strfreev);
  qb_ui_dispose_template (GTK_WIDGET (self), QB_TYPE_PLAN_PANEL);
  G_OBJECT_CLASS (qb_plan_panel_parent_class)->dispose (object);
}

static void
qb_plan_panel_class_init (QbPlanPanelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = qb_plan_panel_dispose;

  g_type_ensure (QB_TYPE_RULES_EDITOR);
  qb_ui_ensure_resources ();
  gtk_widget_class_set_template_from_resource (widget_class, "/org/quantbench/Quantbench/ui/qb-plan-panel.ui");
  gtk_widget_class_bind_template_child (widget_class, QbPlanPanel, default_box);
  gtk_widget_class_bind_template_child (widget_class, QbPlanPanel, preset_dropdown);
  gtk_widget_class_bind_template_child (widget_class, QbPlanPanel, method_dropdown);
  gtk_widget_class_bind_template_child (widget_class, QbPlanPanel, rules_editor);
  gtk_widget_class_bind_template_child (widget_class, QbPlanPanel, overrides_label);
  gtk_widget_class_bind_template_child (widget_class, QbPlanPanel, settings_grid);
  gtk_widget_class_bind_template_child (widget_class, QbPlanPanel, calib_button);
  gtk_widget_class_bind_template_child (widget_class, QbPlanPanel, calib_label);
  gtk_widget_class_bind_template_child (widget_class, QbPlanPanel, calib_clear_button);
  gtk_widget_class_bind_template_child (widget_class, QbPlanPanel, calib_chunks_spin);
  gtk_widget_class_bind_template_child (widget_class, QbPlanPanel, calib_ctx_spin);
  gtk_widget_class_bind_template_child (widget_class, QbPlanPanel, calib_seed_spin);
  gtk_widget_class_bind_template_child (widget_class, QbPlanPanel, calib_skip_spin);
  gtk_widget_class_bind_template_child (widget_class, QbPlanPanel, calib_random_switch);
  gtk_widget_class_set_css_name (widget_class, "planpanel");
}

static void
qb_plan_panel_init (QbPlanPanel *self)
{
  const char * const *presets = qb_plan_list_presets ();
  g_autoptr(GtkStringList) preset_list = gtk_string_list_new (NULL);
  g_autoptr(GtkStringList) method_list = gtk_string_list_new (NULL);

  gtk_widget_init_template (GTK_WIDGET (self));

  self->default_button = qb_format_button_new ();
  gtk_widget_set_hexpand (self->default_button, TRUE);
  gtk_widget_set_tooltip_text (self->default_button, "Format for tensors no rule, preset or override decides");
  gtk_box_append (self->default_box, self->default_button);
  add_budget_row (self);

  gtk_string_list_append (preset_list, "None");
  for (guint i = 0; presets && presets[i]; i++)
    gtk_string_list_append (preset_list, presets[i]);
  gtk_drop_down_set_model (self->preset_dropdown, G_LIST_MODEL (preset_list));
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->preset_dropdown),
                               "llama.cpp-style mixes: more bits where they matter most");

  for (guint i = 0; i < qb_method_count (); i++)
    gtk_string_list_append (method_list, qb_method_get (i)->name);
  gtk_drop_down_set_model (self->method_dropdown, G_LIST_MODEL (method_list));

  g_signal_connect (self->default_button, "format-chosen", G_CALLBACK (on_default_chosen), self);
  g_signal_connect (self->preset_dropdown, "notify::selected", G_CALLBACK (on_preset_selected), self);
  g_signal_connect (self->method_dropdown, "notify::selected", G_CALLBACK (on_method_selected), self);
  g_signal_connect (self->calib_button, "clicked", G_CALLBACK (on_calib_button), self);
  g_signal_connect (self->calib_clear_button, "clicked", G_CALLBACK (on_calib_clear), self);
  g_signal_connect (self->calib_chunks_spin, "notify::value", G_CALLBACK (on_calib_setting), self);
  g_signal_connect (self->calib_ctx_spin, "notify::value", G_CALLBACK (on_calib_setting), self);
  g_signal_connect (self->calib_random_switch, "notify::active", G_CALLBACK (on_calib_setting), self);
  g_signal_connect (self->calib_seed_spin, "notify::value", G_CALLBACK (on_calib_setting), self);
  g_signal_connect (self->calib_skip_spin, "notify::value", G_CALLBACK (on_calib_setting), self);
  gtk_widget_set_sensitive (GTK_WIDGET (self->calib_clear_button), FALSE);
}

GtkWidget *
qb_plan_panel_new (void)
{
  return g_object_new (QB_TYPE_PLAN_PANEL, NULL);
}

void
qb_plan_panel_set_document (QbPlanPanel *self,
                            QbDocument  *document)
{
  g_return_if_fail (QB_IS_PLAN_PANEL (self));

  if (self->document)
    g_signal_handlers_disconnect_by_data (self->document, self);
  g_set_object (&self->document, document);
  if (document)
    g_signal_connect (document, "totals-changed", G_CALLBACK (on_totals_changed), self);
  qb_rules_editor_set_document (self->rules_editor, document);
  qb_constraints_popover_set_document (self->constraints, document);
  gtk_widget_set_sensitive (GTK_WIDGET (self), document != NULL);
  if (document)
    {
      /* Chunks no longer than the model's context (512 by default). */
      guint model_ctx = qb_model_get_arch (qb_document_get_model (document))->n_ctx;
      gtk_spin_button_set_value (self->calib_ctx_spin, model_ctx > 0 ? MIN (512, model_ctx) : 512);
    }
  push_calibration (self);
  sync_from_plan (self);
}

GtkSpinButton *
qb_plan_panel_get_budget_spin (QbPlanPanel *self)
{
  g_return_val_if_fail (QB_IS_PLAN_PANEL (self), NULL);
  return self->budget_spin;
}

QbConstraintsPopover *
qb_plan_panel_get_constraints (QbPlanPanel *self)
{
  g_return_val_if_fail (QB_IS_PLAN_PANEL (self), NULL);
  return self->constraints;
}

GtkWidget *
qb_plan_panel_get_budget_fill (QbPlanPanel *self)
{
  g_return_val_if_fail (QB_IS_PLAN_PANEL (self), NULL);
  return self->budget_fill;
}

const char *
qb_plan_panel_get_budget_text (QbPlanPanel *self)
{
  g_return_val_if_fail (QB_IS_PLAN_PANEL (self), NULL);
  return gtk_label_get_text (self->budget_label);
}

QbRulesEditor *
qb_plan_panel_get_rules_editor (QbPlanPanel *self)
{
  g_return_val_if_fail (QB_IS_PLAN_PANEL (self), NULL);
  return self->rules_editor;
}
