/* qb-test-ui.c — helpers for the UI tests. */
#include "qb-test-ui.h"

void
qb_test_ui_init (int    *argc,
                 char ***argv)
{
  /* The default backend talks to AT-SPI over the session bus, which Xvfb
   * runs lack; the test backend keeps every property for inspection. */
  g_setenv ("GTK_A11Y", "test", TRUE);
  gtk_test_init (argc, argv, NULL);
}

void
qb_test_ui_wait_for (gboolean   (*condition) (gpointer data),
                     gpointer     data,
                     double       timeout_s,
                     const char  *what)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (timeout_s * G_USEC_PER_SEC);

  while (!condition (data))
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("timed out after %.0f s waiting for %s", timeout_s, what);
      g_main_context_iteration (NULL, FALSE);
      if (!condition (data))
        g_usleep (1000);
    }
}

void
qb_test_ui_flush (void)
{
  for (int i = 0; i < 50 && g_main_context_pending (NULL); i++)
    g_main_context_iteration (NULL, FALSE);
}
