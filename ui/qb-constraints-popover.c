/* SPDX-License-Identifier: MIT */
/* qb-constraints-popover.c — allowed formats per role and the embedding
 * floor of a budget fill. */
#include "qb-constraints-popover.h"

#include "qb-allocation-plan.h"

/* The roles a fill chooses formats for, in the layer table's order. */
static const QbTensorRole roles[] = {
  QB_ROLE_TOKEN_EMBD, QB_ROLE_ATTN_Q, QB_ROLE_ATTN_K, QB_ROLE_ATTN_V, QB_ROLE_ATTN_OUTPUT,
  QB_ROLE_FFN_GATE, QB_ROLE_FFN_UP, QB_ROLE_FFN_DOWN, QB_ROLE_OUTPUT,
};

struct _QbConstraintsPopover
{
  GtkPopover     parent_instance;

  GtkEntry      *entries[G_N_ELEMENTS (roles)];
  GtkSpinButton *floor_spin;
  QbDocument    *document;
  gboolean       syncing;
};

G_DEFINE_FINAL_TYPE (QbConstraintsPopover, qb_constraints_popover, GTK_TYPE_POPOVER)

char *
qb_constraints_describe (QbPlan *plan)
{
  GString *s = g_string_new (NULL);
  double floor_bpw = qb_plan_get_embedding_floor (plan);

  for (guint i = 0; i < G_N_ELEMENTS (roles); i++)
    {
      const char *list = qb_plan_get_allowed_formats (plan, roles[i]);
      if (list && *list)
        g_string_append_printf (s, "%s%s: %s", s->len ? " · " : "", qb_tensor_role_name (roles[i]), list);
    }
  if (floor_bpw > 0)
    g_string_append_printf (s, "%sembeddings ≥ %g bpw", s->len ? " · " : "", floor_bpw);
  if (s->len == 0)
    {
      g_string_free (s, TRUE);
      return NULL;
    }
  return g_string_free (s, FALSE);
}

static void
sync_from_plan (QbConstraintsPopover *self)
{
  QbPlan *plan = self->document ? qb_document_get_plan (self->document) : NULL;

  if (plan == NULL)
    return;
  self->syncing = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (roles); i++)
    {
      const char *list = qb_plan_get_allowed_formats (plan, roles[i]);
      /* Not under the user's typing. */
      if (!(gtk_widget_get_state_flags (GTK_WIDGET (self->entries[i])) & GTK_STATE_FLAG_FOCUS_WITHIN))
        gtk_editable_set_text (GTK_EDITABLE (self->entries[i]), list ? list : "");
    }
  gtk_spin_button_set_value (self->floor_spin, qb_plan_get_embedding_floor (plan));
  self->syncing = FALSE;
}

static void
apply_entry (QbConstraintsPopover *self,
             guint                 i)
{
  QbPlan *plan = self->document ? qb_document_get_plan (self->document) : NULL;
  g_autofree char *text = NULL;
  const char *now;

  if (plan == NULL || self->syncing)
    return;
  text = g_strstrip (g_strdup (gtk_editable_get_text (GTK_EDITABLE (self->entries[i]))));
  now = qb_plan_get_allowed_formats (plan, roles[i]);
  if (g_strcmp0 (text, now ? now : "") != 0)
    gtk_widget_activate_action (GTK_WIDGET (self), "win.set-allowed-formats", "(ss)",
                                qb_tensor_role_name (roles[i]), text);
}

static void
on_entry_activate (GtkEntry             *entry,
                   QbConstraintsPopover *self)
{
  for (guint i = 0; i < G_N_ELEMENTS (roles); i++)
    if (self->entries[i] == entry)
      apply_entry (self, i);
  sync_from_plan (self);
}

/* Typed lists count when the popover closes, Enter or not. */
static void
on_closed (QbConstraintsPopover *self)
{
  for (guint i = 0; i < G_N_ELEMENTS (roles); i++)
    apply_entry (self, i);
  sync_from_plan (self);
}

static void
on_floor_changed (GtkSpinButton        *spin,
                  QbConstraintsPopover *self)
{
  if (!self->syncing && self->document)
    gtk_widget_activate_action (GTK_WIDGET (self), "win.set-embedding-floor", "d",
                                gtk_spin_button_get_value (spin));
}

static void
on_plan_changed (QbDocument           *document,
                 QbConstraintsPopover *self)
{
  sync_from_plan (self);
}

static void
qb_constraints_popover_dispose (GObject *object)
{
  QbConstraintsPopover *self = QB_CONSTRAINTS_POPOVER (object);

  if (self->document)
    g_signal_handlers_disconnect_by_data (self->document, self);
  g_clear_object (&self->document);
  G_OBJECT_CLASS (qb_constraints_popover_parent_class)->dispose (object);
}

static void
qb_constraints_popover_class_init (QbConstraintsPopoverClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = qb_constraints_popover_dispose;
}

static void
qb_constraints_popover_init (QbConstraintsPopover *self)
{
  GtkWidget *grid = gtk_grid_new ();
  GtkWidget *title = gtk_label_new ("Constraints of a fill");
  GtkWidget *hint = gtk_label_new ("Formats a role may take, comma-separated; empty: any candidate.");
  GtkWidget *floor_label = gtk_label_new_with_mnemonic ("Embeddings _floor");
  guint row = 2;

  gtk_grid_set_row_spacing (GTK_GRID (grid), 4);
  gtk_grid_set_column_spacing (GTK_GRID (grid), 8);
  gtk_widget_add_css_class (title, "heading");
  gtk_label_set_xalign (GTK_LABEL (title), 0);
  gtk_label_set_xalign (GTK_LABEL (hint), 0);
  gtk_label_set_wrap (GTK_LABEL (hint), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (hint), 36);
  gtk_widget_add_css_class (hint, "dim-label");
  gtk_grid_attach (GTK_GRID (grid), title, 0, 0, 2, 1);
  gtk_grid_attach (GTK_GRID (grid), hint, 0, 1, 2, 1);
  for (guint i = 0; i < G_N_ELEMENTS (roles); i++, row++)
    {
      GtkWidget *label = gtk_label_new (qb_tensor_role_name (roles[i]));
      g_autofree char *a11y = g_strdup_printf ("Formats allowed for %s", qb_tensor_role_name (roles[i]));

      gtk_label_set_xalign (GTK_LABEL (label), 0);
      self->entries[i] = GTK_ENTRY (gtk_entry_new ());
      gtk_entry_set_placeholder_text (self->entries[i], "any");
      gtk_editable_set_width_chars (GTK_EDITABLE (self->entries[i]), 18);
      gtk_accessible_update_property (GTK_ACCESSIBLE (self->entries[i]),
                                      GTK_ACCESSIBLE_PROPERTY_LABEL, a11y, -1);
      g_signal_connect (self->entries[i], "activate", G_CALLBACK (on_entry_activate), self);
      gtk_grid_attach (GTK_GRID (grid), label, 0, row, 1, 1);
      gtk_grid_attach (GTK_GRID (grid), GTK_WIDGET (self->entries[i]), 1, row, 1, 1);
    }
  self->floor_spin = GTK_SPIN_BUTTON (gtk_spin_button_new_with_range (0, 16, 0.5));
  gtk_spin_button_set_digits (self->floor_spin, 1);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->floor_spin),
                               "token_embd and output take no format below this many bits per weight "
                               "(0: no floor)");
  gtk_label_set_mnemonic_widget (GTK_LABEL (floor_label), GTK_WIDGET (self->floor_spin));
  gtk_label_set_xalign (GTK_LABEL (floor_label), 0);
  g_signal_connect (self->floor_spin, "value-changed", G_CALLBACK (on_floor_changed), self);
  gtk_grid_attach (GTK_GRID (grid), floor_label, 0, row, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), GTK_WIDGET (self->floor_spin), 1, row, 1, 1);
  gtk_popover_set_child (GTK_POPOVER (self), grid);
  g_signal_connect (self, "closed", G_CALLBACK (on_closed), NULL);
}

GtkWidget *
qb_constraints_popover_new (void)
{
  return g_object_new (QB_TYPE_CONSTRAINTS_POPOVER, NULL);
}

void
qb_constraints_popover_set_document (QbConstraintsPopover *self,
                                     QbDocument           *document)
{
  g_return_if_fail (QB_IS_CONSTRAINTS_POPOVER (self));

  if (self->document)
    g_signal_handlers_disconnect_by_data (self->document, self);
  g_set_object (&self->document, document);
  if (document)
    g_signal_connect (document, "totals-changed", G_CALLBACK (on_plan_changed), self);
  sync_from_plan (self);
}

GtkEntry *
qb_constraints_popover_get_entry (QbConstraintsPopover *self,
                                  QbTensorRole          role)
{
  g_return_val_if_fail (QB_IS_CONSTRAINTS_POPOVER (self), NULL);
  for (guint i = 0; i < G_N_ELEMENTS (roles); i++)
    if (roles[i] == role)
      return self->entries[i];
  return NULL;
}

GtkSpinButton *
qb_constraints_popover_get_floor (QbConstraintsPopover *self)
{
  g_return_val_if_fail (QB_IS_CONSTRAINTS_POPOVER (self), NULL);
  return self->floor_spin;
}
