/* qb-format-list.c — the format registry as a shared string list. */
#include "qb-format-list.h"

#include "qb-format.h"
#include "qb-plan.h"

GListModel *
qb_format_list_get (void)
{
  static GtkStringList *list;

  if (g_once_init_enter (&list))
    {
      GtkStringList *l = gtk_string_list_new (NULL);

      gtk_string_list_append (l, QB_FORMAT_KEEP);
      for (guint i = 0; i < qb_format_count (); i++)
        gtk_string_list_append (l, qb_format_get (i)->name);
      g_once_init_leave (&list, l);
    }
  return G_LIST_MODEL (list);
}

guint
qb_format_list_find (const char *name)
{
  GListModel *list = qb_format_list_get ();
  guint n = g_list_model_get_n_items (list);

  if (name == NULL)
    return GTK_INVALID_LIST_POSITION;
  for (guint i = 0; i < n; i++)
    if (g_ascii_strcasecmp (gtk_string_list_get_string (GTK_STRING_LIST (list), i), name) == 0)
      return i;
  return GTK_INVALID_LIST_POSITION;
}

const char *
qb_format_list_name_at (guint position)
{
  GListModel *list = qb_format_list_get ();

  if (position >= g_list_model_get_n_items (list))
    return NULL;
  return gtk_string_list_get_string (GTK_STRING_LIST (list), position);
}

GtkWidget *
qb_format_list_new_drop_down (void)
{
  GtkExpression *expression = gtk_property_expression_new (GTK_TYPE_STRING_OBJECT, NULL, "string");
  GtkWidget *dropdown = gtk_drop_down_new (g_object_ref (qb_format_list_get ()), expression);

  gtk_drop_down_set_enable_search (GTK_DROP_DOWN (dropdown), TRUE);
  gtk_accessible_update_property (GTK_ACCESSIBLE (dropdown), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  "Format", -1);
  return dropdown;
}
