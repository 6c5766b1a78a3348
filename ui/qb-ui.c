/* SPDX-License-Identifier: MIT */
/* qb-ui.c — set-up shared by every widget of the UI library. */
#include "qb-ui.h"

#include "qb-resources.h"

#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

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

typedef struct {
  GThreadFunc func;
  gpointer    data;
} LowCall;

static gpointer
low_priority_thread (gpointer data)
{
  LowCall *call = data;

#ifdef __linux__
  setpriority (PRIO_PROCESS, (id_t) syscall (SYS_gettid), 10);
#endif
  return call->func (call->data);
}

void
qb_ui_call_at_low_priority (GThreadFunc func,
                            gpointer    data)
{
  /* A fresh thread: a pooled one would keep the lower priority for
   * whatever it runs next. */
  LowCall call = { func, data };

  g_thread_join (g_thread_new ("qb-low", low_priority_thread, &call));
}
