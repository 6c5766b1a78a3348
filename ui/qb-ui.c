/* qb-ui.c — set-up shared by every widget of the UI library. */
#include "qb-ui.h"

#include "qb-resources.h"

void
qb_ui_ensure_resources (void)
{
  static gsize done;

  if (g_once_init_enter (&done))
    {
      qb_register_resource ();
      g_once_init_leave (&done, 1);
    }
}

void
qb_ui_dispose_template (GtkWidget *widget,
                        GType      type)
{
  GtkWidget *child;

  gtk_widget_dispose_template (widget, type);
  while ((child = gtk_widget_get_first_child (widget)) != NULL)
    gtk_widget_unparent (child);
}
