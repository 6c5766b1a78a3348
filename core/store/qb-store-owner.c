/* SPDX-License-Identifier: MIT */
/* qb-store-owner.c — which process runs an experiment, and whether it
 * still lives: a run whose process died is marked interrupted.
 *
 * A process is known by pid, host, boot and its start time (in clock
 * ticks since boot, /proc/PID/stat field 22), so that a recycled pid is
 * not taken for the process that died. */
#include "qb-store-private.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

void
qb_store_owner_clear (QbStoreOwner *o)
{
  g_free (o->host);
  g_free (o->boot);
}

/* Start time of a process, -1 when unknown; *zombie when it has exited
 * and waits to be reaped. */
static gint64
process_start (gint pid, gboolean *zombie)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", pid);
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;
  const char *after;

  *zombie = FALSE;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return -1;
  /* The command name in parentheses may hold spaces: fields resume after
   * the last ')'.  The state is field 3, the start time field 22. */
  if ((after = strrchr (text, ')')) == NULL)
    return -1;
  fields = g_strsplit (g_strstrip ((char *) after + 1), " ", 0);
  if (g_strv_length (fields) < 20)
    return -1;
  *zombie = fields[0][0] == 'Z';
  return g_ascii_strtoll (fields[19], NULL, 10);
}

static char *
boot_id (void)
{
  char *text = NULL;

  if (!g_file_get_contents ("/proc/sys/kernel/random/boot_id", &text, NULL, NULL))
    return g_strdup ("");
  return g_strstrip (text);
}

void
qb_store_owner_self (QbStoreOwner *o)
{
  gboolean zombie;

  o->pid = getpid ();
  o->host = g_strdup (g_get_host_name ());
  o->boot = boot_id ();
  o->start = process_start (o->pid, &zombie);
}

/* Only a process on this host can be checked; one elsewhere is taken to
 * be alive. */
gboolean
qb_store_owner_alive (const QbStoreOwner *o, const QbStoreOwner *self)
{
  gboolean zombie = FALSE;
  gint64 start;

  if (g_strcmp0 (o->host, self->host) != 0)
    return TRUE;
  if (o->boot && *o->boot && *self->boot && strcmp (o->boot, self->boot) != 0)
    return FALSE;               /* the machine rebooted since */
  if (o->pid <= 0 || (kill (o->pid, 0) != 0 && errno == ESRCH))
    return FALSE;
  start = process_start (o->pid, &zombie);
  if (zombie)
    return FALSE;
  if (o->start >= 0 && start >= 0 && start != o->start)
    return FALSE;               /* the pid now belongs to another process */
  return TRUE;
}

