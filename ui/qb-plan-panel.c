/* qb-plan-panel.c — default format, preset, method, rules, overrides. */
#include "qb-plan-panel.h"
#include "qb-ui.h"

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

static void
qb_plan_panel_dispose (GObject *object)
{
  QbPlanPanel *self = QB_PLAN_PANEL (object);

  if (self->document)
    g_signal_handlers_disconnect_by_data (self->document, self);
  g_clear_object (&self->document);
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
  gtk_widget_set_sensitive (GTK_WIDGET (self), document != NULL);
  sync_from_plan (self);
}

QbRulesEditor *
qb_plan_panel_get_rules_editor (QbPlanPanel *self)
{
  g_return_val_if_fail (QB_IS_PLAN_PANEL (self), NULL);
  return self->rules_editor;
}
