/* SPDX-License-Identifier: MIT */
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
