/* SPDX-License-Identifier: MIT */
/* qb-format-button.c — a format name that opens a searchable format list. */
#include "qb-format-button.h"

#include "qb-format.h"
#include "qb-format-list.h"
#include "qb-plan.h"

struct _QbFormatButton
{
  GtkWidget           parent_instance;

  GtkButton          *button;
  GtkLabel           *label;
  GtkWidget          *popover;      /* built on the first click */
  GtkWidget          *reset;        /* the popover's "plan's choice" button */
  gboolean            resettable;
  char               *format;
  char               *shown;        /* shown instead of format, or NULL */
  GtkSearchEntry     *search;       /* the popover's, once built */
  GtkWidget          *view;
  GtkFilterListModel *filtered;
  GtkStringFilter    *filter;
  GtkSingleSelection *selection;
};

G_DEFINE_FINAL_TYPE (QbFormatButton, qb_format_button, GTK_TYPE_WIDGET)

enum {
  PROP_0,
  PROP_FORMAT,
  N_PROPS
};

enum {
  FORMAT_CHOSEN,
  RESET,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static const char *
summary_of (const char *name)
{
  const QbFormat *format = qb_format_find (name);

  if (g_strcmp0 (name, QB_FORMAT_KEEP) == 0)
    return "leave the tensor as stored";
  return format && format->summary ? format->summary : "";
}

static void
setup_item (GtkSignalListItemFactory *factory,
            GtkListItem              *item,
            gpointer                  data)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  GtkWidget *name = gtk_label_new (NULL);
  GtkWidget *summary = gtk_label_new (NULL);

  gtk_label_set_xalign (GTK_LABEL (name), 0);
  gtk_label_set_xalign (GTK_LABEL (summary), 0);
  gtk_label_set_ellipsize (GTK_LABEL (summary), PANGO_ELLIPSIZE_END);
  gtk_label_set_max_width_chars (GTK_LABEL (summary), 44);
  gtk_widget_add_css_class (name, "heading");
  gtk_widget_add_css_class (summary, "dim-label");
  gtk_widget_add_css_class (summary, "caption");
  gtk_box_append (GTK_BOX (box), name);
  gtk_box_append (GTK_BOX (box), summary);
  gtk_list_item_set_child (item, box);
}

static void
bind_item (GtkSignalListItemFactory *factory,
           GtkListItem              *item,
           gpointer                  data)
{
  GtkWidget *box = gtk_list_item_get_child (item);
  const char *name = gtk_string_object_get_string (gtk_list_item_get_item (item));

  gtk_label_set_text (GTK_LABEL (gtk_widget_get_first_child (box)), name);
  gtk_label_set_text (GTK_LABEL (gtk_widget_get_last_child (box)), summary_of (name));
}

static void
choose_position (QbFormatButton *self,
                 guint           position)
{
  g_autoptr(GtkStringObject) item = g_list_model_get_item (G_LIST_MODEL (self->filtered), position);

  if (item == NULL)
    return;
  gtk_popover_popdown (GTK_POPOVER (self->popover));
  qb_format_button_choose (self, gtk_string_object_get_string (item));
}

static void
on_activate (GtkListView    *view,
             guint           position,
             QbFormatButton *self)
{
  choose_position (self, position);
}

/* The position of the format that Enter takes for the search text: the
 * current format when nothing is typed, else an exact match, else the
 * first format listed. */
static guint
pick_position (QbFormatButton *self,
               const char     *text)
{
  GListModel *model = G_LIST_MODEL (self->filtered);
  guint n = g_list_model_get_n_items (model);
  const char *wanted = text && *text ? text : self->format;

  for (guint i = 0; i < n && wanted; i++)
    {
      g_autoptr(GtkStringObject) item = g_list_model_get_item (model, i);
      if (g_ascii_strcasecmp (gtk_string_object_get_string (item), wanted) == 0)
        return i;
    }
  return text && *text && n > 0 ? 0 : GTK_INVALID_LIST_POSITION;
}

/* GTK 4.8 has no gtk_list_view_scroll_to(); the view has an action. */
static void
select_position (QbFormatButton *self,
                 guint           position)
{
  gtk_single_selection_set_selected (self->selection, position);
  if (position != GTK_INVALID_LIST_POSITION)
    gtk_widget_activate_action (self->view, "list.scroll-to-item", "u", position);
}

/* Filters now (the entry's own signal comes after a typing delay, and
 * Enter must not act on the list as it was before the last key). */
static void
apply_search (QbFormatButton *self)
{
  const char *text = gtk_editable_get_text (GTK_EDITABLE (self->search));

  gtk_string_filter_set_search (self->filter, text);
  select_position (self, pick_position (self, text));
}

static void
on_search_changed (GtkEditable    *entry,
                   QbFormatButton *self)
{
  apply_search (self);
}

static void
on_search_activate (GtkSearchEntry *entry,
                    QbFormatButton *self)
{
  guint position;

  apply_search (self);
  position = gtk_single_selection_get_selected (self->selection);
  if (position == GTK_INVALID_LIST_POSITION)
    {
      /* Nothing matches, or nothing typed: keep the format and close. */
      gtk_widget_error_bell (GTK_WIDGET (entry));
      if (*gtk_editable_get_text (GTK_EDITABLE (entry)) == '\0')
        gtk_popover_popdown (GTK_POPOVER (self->popover));
      return;
    }
  choose_position (self, position);
}

/* Up and Down move through the list while typing goes to the entry. */
static gboolean
on_search_key (GtkEventControllerKey *controller,
               guint                  keyval,
               guint                  keycode,
               GdkModifierType        state,
               QbFormatButton        *self)
{
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->filtered));
  guint position = gtk_single_selection_get_selected (self->selection);

  if (n == 0 || (keyval != GDK_KEY_Down && keyval != GDK_KEY_Up))
    return FALSE;
  if (position == GTK_INVALID_LIST_POSITION)
    position = 0;
  else if (keyval == GDK_KEY_Down && position + 1 < n)
    position++;
  else if (keyval == GDK_KEY_Up && position > 0)
    position--;
  select_position (self, position);
  return TRUE;
}

static void
on_popover_shown (GtkPopover     *popover,
                  QbFormatButton *self)
{
  gtk_editable_set_text (GTK_EDITABLE (self->search), "");
  apply_search (self);
  gtk_widget_set_visible (self->reset, self->resettable);
  gtk_widget_grab_focus (GTK_WIDGET (self->search));
}

static void
on_reset_clicked (GtkButton      *button,
                  QbFormatButton *self)
{
  gtk_popover_popdown (GTK_POPOVER (self->popover));
  g_signal_emit (self, signals[RESET], 0);
}

static void
build_popover (QbFormatButton *self)
{
  GtkWidget *box, *scroller, *view;
  GtkListItemFactory *factory;
  GtkEventController *keys;

  self->filter = gtk_string_filter_new (gtk_property_expression_new (GTK_TYPE_STRING_OBJECT, NULL, "string"));
  gtk_string_filter_set_match_mode (self->filter, GTK_STRING_FILTER_MATCH_MODE_SUBSTRING);
  self->filtered = gtk_filter_list_model_new (g_object_ref (qb_format_list_get ()),
                                              GTK_FILTER (g_object_ref (self->filter)));
  self->selection = gtk_single_selection_new (G_LIST_MODEL (g_object_ref (self->filtered)));
  gtk_single_selection_set_autoselect (self->selection, FALSE);
  gtk_single_selection_set_can_unselect (self->selection, TRUE);

  factory = gtk_signal_list_item_factory_new ();
  g_signal_connect (factory, "setup", G_CALLBACK (setup_item), NULL);
  g_signal_connect (factory, "bind", G_CALLBACK (bind_item), NULL);
  view = gtk_list_view_new (GTK_SELECTION_MODEL (g_object_ref (self->selection)), factory);
  self->view = view;
  gtk_list_view_set_single_click_activate (GTK_LIST_VIEW (view), TRUE);
  gtk_accessible_update_property (GTK_ACCESSIBLE (view), GTK_ACCESSIBLE_PROPERTY_LABEL, "Formats", -1);
  g_signal_connect (view, "activate", G_CALLBACK (on_activate), self);

  scroller = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroller), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_max_content_height (GTK_SCROLLED_WINDOW (scroller), 360);
  gtk_scrolled_window_set_propagate_natural_height (GTK_SCROLLED_WINDOW (scroller), TRUE);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scroller), view);

  self->search = GTK_SEARCH_ENTRY (gtk_search_entry_new ());
  g_object_set (self->search, "placeholder-text", "Search formats", NULL);
  g_signal_connect (self->search, "changed", G_CALLBACK (on_search_changed), self);
  g_signal_connect (self->search, "activate", G_CALLBACK (on_search_activate), self);
  keys = gtk_event_controller_key_new ();
  g_signal_connect (keys, "key-pressed", G_CALLBACK (on_search_key), self);
  gtk_widget_add_controller (GTK_WIDGET (self->search), keys);

  self->reset = gtk_button_new_with_mnemonic ("Use the _Plan's Choice");
  gtk_widget_set_tooltip_text (self->reset, "Remove the format set by hand for this tensor");
  g_signal_connect (self->reset, "clicked", G_CALLBACK (on_reset_clicked), self);

  box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->search));
  gtk_box_append (GTK_BOX (box), scroller);
  gtk_box_append (GTK_BOX (box), self->reset);

  self->popover = gtk_popover_new ();
  gtk_popover_set_child (GTK_POPOVER (self->popover), box);
  gtk_popover_set_position (GTK_POPOVER (self->popover), GTK_POS_BOTTOM);
  g_signal_connect (self->popover, "show", G_CALLBACK (on_popover_shown), self);
  gtk_widget_set_parent (self->popover, GTK_WIDGET (self));
}

/* The list is built on the first click only. */
static void
on_clicked (GtkButton      *button,
            QbFormatButton *self)
{
  if (self->popover == NULL)
    build_popover (self);
  gtk_popover_popup (GTK_POPOVER (self->popover));
}

static void
qb_format_button_measure (GtkWidget      *widget,
                          GtkOrientation  orientation,
                          int             for_size,
                          int            *minimum,
                          int            *natural,
                          int            *minimum_baseline,
                          int            *natural_baseline)
{
  gtk_widget_measure (GTK_WIDGET (QB_FORMAT_BUTTON (widget)->button), orientation, for_size,
                      minimum, natural, minimum_baseline, natural_baseline);
}

static void
qb_format_button_size_allocate (GtkWidget *widget,
                                int        width,
                                int        height,
                                int        baseline)
{
  QbFormatButton *self = QB_FORMAT_BUTTON (widget);

  gtk_widget_allocate (GTK_WIDGET (self->button), width, height, baseline, NULL);
  if (self->popover)
    gtk_popover_present (GTK_POPOVER (self->popover));
}

static void
qb_format_button_dispose (GObject *object)
{
  QbFormatButton *self = QB_FORMAT_BUTTON (object);

  g_clear_pointer ((GtkWidget **) &self->button, gtk_widget_unparent);
  g_clear_pointer (&self->popover, gtk_widget_unparent);
  g_clear_object (&self->filtered);
  g_clear_object (&self->filter);
  g_clear_object (&self->selection);
  G_OBJECT_CLASS (qb_format_button_parent_class)->dispose (object);
}

static void
qb_format_button_finalize (GObject *object)
{
  QbFormatButton *self = QB_FORMAT_BUTTON (object);

  g_free (self->format);
  g_free (self->shown);
  G_OBJECT_CLASS (qb_format_button_parent_class)->finalize (object);
}

static void
qb_format_button_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  QbFormatButton *self = QB_FORMAT_BUTTON (object);

  switch (prop_id)
    {
    case PROP_FORMAT:
      g_value_set_string (value, self->format);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qb_format_button_set_property (GObject      *object,
                               guint         prop_id,
                               const GValue *value,
                               GParamSpec   *pspec)
{
  QbFormatButton *self = QB_FORMAT_BUTTON (object);

  switch (prop_id)
    {
    case PROP_FORMAT:
      qb_format_button_set_format (self, g_value_get_string (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qb_format_button_class_init (QbFormatButtonClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = qb_format_button_dispose;
  object_class->finalize = qb_format_button_finalize;
  object_class->get_property = qb_format_button_get_property;
  object_class->set_property = qb_format_button_set_property;

  properties[PROP_FORMAT] =
    g_param_spec_string ("format", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /* The user picked a format (also when it is the one shown). */
  signals[FORMAT_CHOSEN] =
    g_signal_new ("format-chosen", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  /* The user asked to drop the choice made by hand (see set_resettable). */
  signals[RESET] =
    g_signal_new ("reset", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  widget_class->measure = qb_format_button_measure;
  widget_class->size_allocate = qb_format_button_size_allocate;
  gtk_widget_class_set_css_name (widget_class, "formatbutton");
}

static void
qb_format_button_init (QbFormatButton *self)
{
  self->button = GTK_BUTTON (gtk_button_new ());
  self->label = GTK_LABEL (gtk_label_new (NULL));
  gtk_label_set_xalign (self->label, 0);
  /* Never narrower than a long name such as "IQ4_XS ▾". */
  gtk_label_set_width_chars (self->label, 8);
  gtk_label_set_ellipsize (self->label, PANGO_ELLIPSIZE_END);
  gtk_button_set_child (self->button, GTK_WIDGET (self->label));
  g_signal_connect (self->button, "clicked", G_CALLBACK (on_clicked), self);
  gtk_widget_set_parent (GTK_WIDGET (self->button), GTK_WIDGET (self));
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->button), GTK_ACCESSIBLE_PROPERTY_LABEL, "Format", -1);
  qb_format_button_set_format (self, QB_FORMAT_KEEP);
}

GtkWidget *
qb_format_button_new (void)
{
  return g_object_new (QB_TYPE_FORMAT_BUTTON, NULL);
}

static void
update_label (QbFormatButton *self)
{
  /* A text arrow: an icon would be another widget per table cell. */
  g_autofree char *label = g_strdup_printf ("%s ▾", self->shown ? self->shown
                                                    : self->format ? self->format : "");
  gtk_label_set_text (self->label, label);
}

void
qb_format_button_set_format (QbFormatButton *self,
                             const char     *format)
{
  g_autofree char *description = NULL;

  g_return_if_fail (QB_IS_FORMAT_BUTTON (self));

  if (g_strcmp0 (self->format, format) == 0)
    return;
  g_free (self->format);
  self->format = g_strdup (format);
  update_label (self);
  description = g_strdup_printf ("Format: %s", format ? format : "none");
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->button),
                                  GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, description, -1);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FORMAT]);
}

const char *
qb_format_button_get_format (QbFormatButton *self)
{
  g_return_val_if_fail (QB_IS_FORMAT_BUTTON (self), NULL);
  return self->format;
}

void
qb_format_button_choose (QbFormatButton *self,
                         const char     *format)
{
  g_return_if_fail (QB_IS_FORMAT_BUTTON (self));

  qb_format_button_set_format (self, format);
  g_signal_emit (self, signals[FORMAT_CHOSEN], 0, format);
}

void
qb_format_button_set_flat (QbFormatButton *self,
                           gboolean        flat)
{
  g_return_if_fail (QB_IS_FORMAT_BUTTON (self));
  gtk_button_set_has_frame (self->button, !flat);
}

void
qb_format_button_set_resettable (QbFormatButton *self,
                                 gboolean        resettable)
{
  g_return_if_fail (QB_IS_FORMAT_BUTTON (self));
  self->resettable = !!resettable;
}

void
qb_format_button_set_shown_label (QbFormatButton *self,
                                  const char     *label)
{
  g_return_if_fail (QB_IS_FORMAT_BUTTON (self));

  if (g_strcmp0 (self->shown, label) == 0)
    return;
  g_free (self->shown);
  self->shown = g_strdup (label);
  update_label (self);
}
