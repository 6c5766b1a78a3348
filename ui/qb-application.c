/* qb-application.c — the GtkApplication: one window, opening files. */
#include "qb-application.h"

#include "qb-model.h"

struct _QbApplication
{
  GtkApplication parent_instance;
};

G_DEFINE_FINAL_TYPE (QbApplication, qb_application, GTK_TYPE_APPLICATION)

static void
qb_application_activate (GApplication *app)
{
  GtkWidget *window = gtk_application_window_new (GTK_APPLICATION (app));

  gtk_window_set_title (GTK_WINDOW (window), "Quantbench");
  gtk_window_set_default_size (GTK_WINDOW (window), 1200, 800);
  gtk_window_present (GTK_WINDOW (window));
}

static void
qb_application_class_init (QbApplicationClass *klass)
{
  G_APPLICATION_CLASS (klass)->activate = qb_application_activate;
}

static void
qb_application_init (QbApplication *self)
{
}

QbApplication *
qb_application_new (void)
{
  return g_object_new (QB_TYPE_APPLICATION,
                       "application-id", "org.quantbench.Quantbench",
                       "flags", G_APPLICATION_HANDLES_OPEN | G_APPLICATION_NON_UNIQUE,
                       NULL);
}

int
qb_application_run (int argc, char **argv)
{
  g_autoptr(QbApplication) app = qb_application_new ();

  return g_application_run (G_APPLICATION (app), argc, argv);
}
