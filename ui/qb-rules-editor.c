/* SPDX-License-Identifier: MIT */
/* qb-rules-editor.c — pattern → format rules with live matches. */
#include "qb-rules-editor.h"

#include "qb-format-button.h"
#include "qb-method.h"

typedef struct {
  GtkEntry    *entry;
  GtkDropDown *kind;
  QbFormatButton *format;
  GtkDropDown *method;      /* 0: the plan's method, i: qb_method_get (i - 1) */
  GtkLabel    *count;
  guint        match_count;
  gboolean     error;
} RuleRow;

struct _QbRulesEditor
{
  GtkWidget    parent_instance;

  GtkListBox  *list;
  QbDocument  *document;
  QbPlan      *plan;
  gboolean     editing;      /* the plan is changing because of us */
  int          active;
};

G_DEFINE_FINAL_TYPE (QbRulesEditor, qb_rules_editor, GTK_TYPE_WIDGET)

static void rebuild (QbRulesEditor *self);

static RuleRow *
rule_row (GtkListBoxRow *row)
{
  return g_object_get_data (G_OBJECT (row), "qb-rule");
}

static GtkListBoxRow *
nth_row (QbRulesEditor *self,
         guint          index)
{
  return gtk_list_box_get_row_at_index (self->list, index);
}

static void
update_count (QbRulesEditor *self,
              guint          index)
{
  GtkListBoxRow *row = nth_row (self, index);
  RuleRow *r = row ? rule_row (row) : NULL;
  QbModel *model;
  guint n, matches = 0, kept = 0;
  g_autofree char *text = NULL;

  if (r == NULL || self->document == NULL)
    return;
  model = qb_document_get_model (self->document);
  n = r->error ? 0 : qb_model_get_n_tensors (model);
  for (guint i = 0; i < n; i++)
    {
      const QbTensor *t = qb_model_get_tensor (model, i);

      if (!qb_plan_rule_matches (self->plan, index, t->name))
        continue;
      if (qb_plan_keeps_1d_tensor (self->plan, t))
        kept++;
      else
        matches++;
    }
  r->match_count = matches;
  if (r->error)
    text = g_strdup ("invalid");
  else if (kept > 0)
    text = g_strdup_printf ("%u tensor%s (%u 1-D kept)", matches, matches == 1 ? "" : "s", kept);
  else
    text = g_strdup_printf ("%u tensor%s", matches, matches == 1 ? "" : "s");
  gtk_label_set_text (r->count, text);
  gtk_widget_set_tooltip_text (GTK_WIDGET (r->count),
                               kept > 0 ? "“Keep 1-D tensors” is on: the 1-D tensors this pattern matches "
                                          "(norms, biases) stay as stored. Turn it off to quantize them by rule."
                                        : NULL);
}

static void
highlight_active (QbRulesEditor *self)
{
  GtkListBoxRow *row = self->active >= 0 ? nth_row (self, self->active) : NULL;
  RuleRow *r = row ? rule_row (row) : NULL;

  if (self->document)
    qb_document_highlight_rule (self->document, r && !r->error ? self->active : -1);
}

/* Writes a row's pattern, kind and format into the plan at its position. */
/* The method a row asks for; NULL: the plan's default. */
static char *
method_of_row (RuleRow *r)
{
  guint i = gtk_drop_down_get_selected (r->method);

  return i == 0 || i == GTK_INVALID_LIST_POSITION ? NULL : g_strdup (qb_method_get (i - 1)->name);
}

static guint
method_position (const char *method)
{
  for (guint i = 0; method != NULL && i < qb_method_count (); i++)
    if (g_ascii_strcasecmp (qb_method_get (i)->name, method) == 0)
      return i + 1;
  return 0;
}

static void
commit_row (QbRulesEditor *self,
            GtkListBoxRow *row)
{
  RuleRow *r = rule_row (row);
  guint index = gtk_list_box_row_get_index (row);
  const char *pattern = gtk_editable_get_text (GTK_EDITABLE (r->entry));
  QbRuleKind kind = gtk_drop_down_get_selected (r->kind) == 1 ? QB_RULE_REGEX : QB_RULE_GLOB;
  const char *format = qb_format_button_get_format (r->format);
  g_autofree char *method = method_of_row (r);
  g_autoptr(GError) error = NULL;

  if (kind == QB_RULE_REGEX)
    {
      g_autoptr(GRegex) regex = g_regex_new (pattern, 0, 0, &error);
      if (regex == NULL)
        {
          r->error = TRUE;
          gtk_widget_add_css_class (GTK_WIDGET (r->entry), "error");
          gtk_widget_set_tooltip_text (GTK_WIDGET (r->entry), error->message);
          update_count (self, index);
          highlight_active (self);
          return;
        }
    }
  r->error = FALSE;
  gtk_widget_remove_css_class (GTK_WIDGET (r->entry), "error");
  gtk_widget_set_tooltip_text (GTK_WIDGET (r->entry), NULL);

  /* Replace the rule: one re-resolve for both edits. */
  self->editing = TRUE;
  qb_document_begin_bulk_edit (self->document);
  if (index < qb_plan_get_n_rules (self->plan))
    qb_plan_remove_rule (self->plan, index);
  if (!qb_plan_insert_rule (self->plan, index, pattern, kind, format, method, &error))
    {
      r->error = TRUE;
      gtk_widget_add_css_class (GTK_WIDGET (r->entry), "error");
      gtk_widget_set_tooltip_text (GTK_WIDGET (r->entry), error->message);
    }
  qb_document_end_bulk_edit (self->document);
  self->editing = FALSE;

  update_count (self, index);
  if (self->active == (int) index)
    highlight_active (self);
}

static void
on_entry_changed (GtkEditable   *entry,
                  GtkListBoxRow *row)
{
  QbRulesEditor *self = QB_RULES_EDITOR (gtk_widget_get_ancestor (GTK_WIDGET (row), QB_TYPE_RULES_EDITOR));

  if (self == NULL || self->editing)
    return;
  self->active = gtk_list_box_row_get_index (row);
  gtk_list_box_select_row (self->list, row);
  commit_row (self, row);
}

static void
on_kind_changed (GtkDropDown   *dropdown,
                 GParamSpec    *pspec,
                 GtkListBoxRow *row)
{
  on_entry_changed (NULL, row);
}

static void
on_method_changed (GtkDropDown   *dropdown,
                   GParamSpec    *pspec,
                   GtkListBoxRow *row)
{
  on_entry_changed (NULL, row);
}

static void
on_format_chosen (QbFormatButton *button,
                  const char     *format,
                  GtkListBoxRow  *row)
{
  on_entry_changed (NULL, row);
}

static void
on_row_button (GtkButton     *button,
               GtkListBoxRow *row)
{
  QbRulesEditor *self = QB_RULES_EDITOR (gtk_widget_get_ancestor (GTK_WIDGET (row), QB_TYPE_RULES_EDITOR));
  const char *what = g_object_get_data (G_OBJECT (button), "qb-what");
  guint index = gtk_list_box_row_get_index (row);

  if (g_str_equal (what, "remove"))
    gtk_widget_activate_action (GTK_WIDGET (self), "win.remove-rule", "u", index);
  else if (g_str_equal (what, "up") && index > 0)
    gtk_widget_activate_action (GTK_WIDGET (self), "win.move-rule", "(uu)", index, index - 1);
  else if (g_str_equal (what, "down") && index + 1 < qb_plan_get_n_rules (self->plan))
    gtk_widget_activate_action (GTK_WIDGET (self), "win.move-rule", "(uu)", index, index + 1);
}

static GtkWidget *
icon_button (const char    *icon,
             const char    *tooltip,
             const char    *what,
             GtkListBoxRow *row)
{
  GtkWidget *button = gtk_button_new_from_icon_name (icon);

  gtk_widget_add_css_class (button, "flat");
  gtk_widget_set_tooltip_text (button, tooltip);
  gtk_accessible_update_property (GTK_ACCESSIBLE (button), GTK_ACCESSIBLE_PROPERTY_LABEL, tooltip, -1);
  g_object_set_data (G_OBJECT (button), "qb-what", (gpointer) what);
  g_signal_connect (button, "clicked", G_CALLBACK (on_row_button), row);
  return button;
}

/* "plan's method", then every method by name. */
static GtkStringList *
method_list (void)
{
  GtkStringList *list = gtk_string_list_new (NULL);

  gtk_string_list_append (list, "plan's method");
  for (guint i = 0; i < qb_method_count (); i++)
    gtk_string_list_append (list, qb_method_get (i)->name);
  return list;
}

static GtkWidget *
make_row (QbRulesEditor    *self,
          const QbPlanRule *rule,
          guint             index)
{
  GtkWidget *row = gtk_list_box_row_new ();
  GtkWidget *grid = gtk_grid_new ();
  RuleRow *r = g_new0 (RuleRow, 1);
  const char *kinds[] = { "glob", "regex", NULL };
  g_autofree char *label = g_strdup_printf ("Rule %u pattern", index + 1);

  g_object_set_data_full (G_OBJECT (row), "qb-rule", r, g_free);
  gtk_grid_set_column_spacing (GTK_GRID (grid), 4);
  gtk_grid_set_row_spacing (GTK_GRID (grid), 4);
  gtk_widget_set_margin_top (grid, 4);
  gtk_widget_set_margin_bottom (grid, 4);
  gtk_widget_set_margin_start (grid, 4);
  gtk_widget_set_margin_end (grid, 4);

  r->entry = GTK_ENTRY (gtk_entry_new ());
  gtk_editable_set_text (GTK_EDITABLE (r->entry), rule->pattern);
  gtk_entry_set_placeholder_text (r->entry, "blk.*.ffn_down.*");
  gtk_widget_add_css_class (GTK_WIDGET (r->entry), "monospace");
  gtk_widget_set_hexpand (GTK_WIDGET (r->entry), TRUE);
  gtk_editable_set_width_chars (GTK_EDITABLE (r->entry), 8);
  gtk_accessible_update_property (GTK_ACCESSIBLE (r->entry), GTK_ACCESSIBLE_PROPERTY_LABEL, label, -1);

  r->kind = GTK_DROP_DOWN (gtk_drop_down_new_from_strings (kinds));
  gtk_drop_down_set_selected (r->kind, rule->kind == QB_RULE_REGEX ? 1 : 0);
  gtk_widget_set_tooltip_text (GTK_WIDGET (r->kind),
                               "glob: the whole name, with * (any text), ? (one character) and "
                               "[qkv] or [0-3] (one of these characters); "
                               "regex: a regular expression found anywhere in the name");

  r->format = QB_FORMAT_BUTTON (qb_format_button_new ());
  qb_format_button_set_format (r->format, rule->format);
  gtk_widget_set_hexpand (GTK_WIDGET (r->format), TRUE);

  r->method = GTK_DROP_DOWN (gtk_drop_down_new (G_LIST_MODEL (method_list ()), NULL));
  gtk_drop_down_set_selected (r->method, method_position (rule->method));
  gtk_widget_set_hexpand (GTK_WIDGET (r->method), TRUE);
  gtk_widget_set_tooltip_text (GTK_WIDGET (r->method),
                               "How the matching tensors are quantized (GPTQ and importance need calibration)");
  gtk_accessible_update_property (GTK_ACCESSIBLE (r->method), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  "Rule method", -1);

  r->count = GTK_LABEL (gtk_label_new (NULL));
  gtk_widget_add_css_class (GTK_WIDGET (r->count), "dim-label");
  gtk_widget_add_css_class (GTK_WIDGET (r->count), "numeric");
  gtk_widget_set_hexpand (GTK_WIDGET (r->count), TRUE);
  gtk_label_set_xalign (r->count, 0);
  gtk_label_set_wrap (r->count, TRUE);

  /* Three short lines (pattern; format and method; matches and buttons)
   * keep the sidebar narrow: one line of everything needed ~480 px. */
  gtk_grid_attach (GTK_GRID (grid), GTK_WIDGET (r->entry), 0, 0, 3, 1);
  gtk_grid_attach (GTK_GRID (grid), GTK_WIDGET (r->kind), 3, 0, 2, 1);
  gtk_grid_attach (GTK_GRID (grid), GTK_WIDGET (r->format), 0, 1, 2, 1);
  gtk_grid_attach (GTK_GRID (grid), GTK_WIDGET (r->method), 2, 1, 3, 1);
  gtk_grid_attach (GTK_GRID (grid), GTK_WIDGET (r->count), 0, 2, 2, 1);
  gtk_grid_attach (GTK_GRID (grid), icon_button ("go-up-symbolic", "Move up", "up", GTK_LIST_BOX_ROW (row)), 2, 2, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), icon_button ("go-down-symbolic", "Move down", "down", GTK_LIST_BOX_ROW (row)), 3, 2, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), icon_button ("user-trash-symbolic", "Remove rule", "remove", GTK_LIST_BOX_ROW (row)), 4, 2, 1, 1);
  gtk_list_box_row_set_child (GTK_LIST_BOX_ROW (row), grid);

  g_signal_connect (r->entry, "changed", G_CALLBACK (on_entry_changed), row);
  g_signal_connect (r->kind, "notify::selected", G_CALLBACK (on_kind_changed), row);
  g_signal_connect (r->format, "format-chosen", G_CALLBACK (on_format_chosen), row);
  g_signal_connect (r->method, "notify::selected", G_CALLBACK (on_method_changed), row);
  return row;
}

/* TRUE when the rows show exactly the plan's rules. */
static gboolean
rows_match_plan (QbRulesEditor *self)
{
  guint n = self->plan ? qb_plan_get_n_rules (self->plan) : 0;

  if (qb_rules_editor_get_n_rows (self) != n)
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      const QbPlanRule *rule = qb_plan_get_rule (self->plan, i);
      RuleRow *r = rule_row (nth_row (self, i));

      /* A pattern being typed that does not compile is not in the plan:
       * keep it on screen rather than replace it with the plan's. */
      if (r->error)
        continue;
      if (g_strcmp0 (rule->pattern, gtk_editable_get_text (GTK_EDITABLE (r->entry))) != 0
          || (rule->kind == QB_RULE_REGEX) != (gtk_drop_down_get_selected (r->kind) == 1)
          || g_ascii_strcasecmp (rule->format, qb_format_button_get_format (r->format)) != 0
          || gtk_drop_down_get_selected (r->method) != method_position (rule->method))
        return FALSE;
    }
  return TRUE;
}

static void
rebuild (QbRulesEditor *self)
{
  GtkWidget *child;
  guint n;

  self->editing = TRUE;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->list))) != NULL)
    gtk_list_box_remove (self->list, child);
  n = self->plan ? qb_plan_get_n_rules (self->plan) : 0;
  for (guint i = 0; i < n; i++)
    gtk_list_box_append (self->list, make_row (self, qb_plan_get_rule (self->plan, i), i));
  for (guint i = 0; i < n; i++)
    update_count (self, i);
  self->editing = FALSE;

  if (self->active >= (int) n)
    self->active = (int) n - 1;
  if (self->active >= 0)
    gtk_list_box_select_row (self->list, nth_row (self, self->active));
  highlight_active (self);
}

static void
on_totals_changed (QbDocument    *document,
                   QbRulesEditor *self)
{
  /* A new plan object (an experiment loaded back) or rules edited elsewhere. */
  if (self->plan != qb_document_get_plan (document))
    g_set_object (&self->plan, qb_document_get_plan (document));
  if (!self->editing && !rows_match_plan (self))
    rebuild (self);
  else if (!self->editing)
    {
      /* keep_1d may have changed what the rules reach. */
      for (guint i = 0; i < qb_rules_editor_get_n_rows (self); i++)
        update_count (self, i);
      highlight_active (self);
    }
}

static void
on_row_selected (GtkListBox    *list,
                 GtkListBoxRow *row,
                 QbRulesEditor *self)
{
  if (self->editing)
    return;
  self->active = row ? gtk_list_box_row_get_index (row) : -1;
  highlight_active (self);
}

static void
qb_rules_editor_dispose (GObject *object)
{
  QbRulesEditor *self = QB_RULES_EDITOR (object);

  if (self->document)
    g_signal_handlers_disconnect_by_data (self->document, self);
  g_clear_object (&self->document);
  g_clear_object (&self->plan);
  g_clear_pointer ((GtkWidget **) &self->list, gtk_widget_unparent);
  G_OBJECT_CLASS (qb_rules_editor_parent_class)->dispose (object);
}

static void
qb_rules_editor_class_init (QbRulesEditorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = qb_rules_editor_dispose;
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "ruleseditor");
}

static void
qb_rules_editor_init (QbRulesEditor *self)
{
  GtkWidget *placeholder = gtk_label_new ("No rules yet. Add one to give tensors whose names "
                                          "match a pattern their own format.");

  self->active = -1;
  gtk_label_set_wrap (GTK_LABEL (placeholder), TRUE);
  gtk_widget_add_css_class (placeholder, "dim-label");
  gtk_widget_set_margin_top (placeholder, 12);
  gtk_widget_set_margin_bottom (placeholder, 12);
  gtk_widget_set_margin_start (placeholder, 12);
  gtk_widget_set_margin_end (placeholder, 12);

  self->list = GTK_LIST_BOX (gtk_list_box_new ());
  gtk_list_box_set_selection_mode (self->list, GTK_SELECTION_SINGLE);
  gtk_list_box_set_placeholder (self->list, placeholder);
  gtk_widget_add_css_class (GTK_WIDGET (self->list), "boxed-list");
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->list), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  "Rules, first match wins", -1);
  gtk_widget_set_parent (GTK_WIDGET (self->list), GTK_WIDGET (self));
  g_signal_connect (self->list, "row-selected", G_CALLBACK (on_row_selected), self);
}

GtkWidget *
qb_rules_editor_new (void)
{
  return g_object_new (QB_TYPE_RULES_EDITOR, NULL);
}

void
qb_rules_editor_set_document (QbRulesEditor *self,
                              QbDocument    *document)
{
  g_return_if_fail (QB_IS_RULES_EDITOR (self));

  if (self->document)
    g_signal_handlers_disconnect_by_data (self->document, self);
  g_set_object (&self->document, document);
  g_set_object (&self->plan, (document ? qb_document_get_plan (document) : NULL));
  self->active = -1;
  if (document)
    g_signal_connect (document, "totals-changed", G_CALLBACK (on_totals_changed), self);
  rebuild (self);
}

guint
qb_rules_editor_get_n_rows (QbRulesEditor *self)
{
  guint n = 0;

  while (gtk_list_box_get_row_at_index (self->list, n))
    n++;
  return n;
}

int
qb_rules_editor_get_active (QbRulesEditor *self)
{
  return self->active;
}

void
qb_rules_editor_set_active (QbRulesEditor *self,
                            int            index)
{
  GtkListBoxRow *row = index >= 0 ? nth_row (self, index) : NULL;

  if (row)
    gtk_list_box_select_row (self->list, row);
  else
    gtk_list_box_unselect_all (self->list);
  self->active = row ? index : -1;
  highlight_active (self);
}

void
qb_rules_editor_set_pattern_text (QbRulesEditor *self,
                                  guint          index,
                                  const char    *text)
{
  GtkListBoxRow *row = nth_row (self, index);

  g_return_if_fail (row != NULL);
  gtk_editable_set_text (GTK_EDITABLE (rule_row (row)->entry), text);
}

/* What picking a method in a rule's list does (NULL: the plan's method). */
void
qb_rules_editor_set_method (QbRulesEditor *self,
                            guint          index,
                            const char    *method)
{
  GtkListBoxRow *row = nth_row (self, index);

  g_return_if_fail (row != NULL);
  gtk_drop_down_set_selected (rule_row (row)->method, method_position (method));
}

gboolean
qb_rules_editor_row_has_error (QbRulesEditor *self,
                               guint          index)
{
  GtkListBoxRow *row = nth_row (self, index);
  return row && rule_row (row)->error;
}

guint
qb_rules_editor_get_match_count (QbRulesEditor *self,
                                 guint          index)
{
  GtkListBoxRow *row = nth_row (self, index);
  return row ? rule_row (row)->match_count : 0;
}
