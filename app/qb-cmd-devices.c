/* SPDX-License-Identifier: MIT */
/* qb-cmd-devices.c — `quantbench devices`, and the `--device` option every
 * command takes. */
#include <stdio.h>
#include <string.h>

#include "qb-cli.h"
#include "qb-device.h"

/* Removes `--device SPEC` / `--device=SPEC` from argv and selects SPEC.
 * FALSE (message printed) for a SPEC that is not a device at all; a valid
 * one that cannot be opened prints why and leaves the CPU. */
gboolean
qb_cli_take_device (int *argc, char **argv)
{
  const char *spec = NULL;
  int out = 0;
  g_autoptr(GError) error = NULL;

  for (int i = 0; i < *argc; i++)
    {
      if (strcmp (argv[i], "--device") == 0 && i + 1 < *argc)
        spec = argv[++i];
      else if (g_str_has_prefix (argv[i], "--device="))
        spec = argv[i] + strlen ("--device=");
      else
        argv[out++] = argv[i];
    }
  argv[out] = NULL;
  *argc = out;
  if (spec == NULL)
    return TRUE;
  if (!qb_device_spec_valid (spec, &error))
    {
      fprintf (stderr, "quantbench: %s\n", error->message);
      return FALSE;
    }
  /* A device that cannot be opened is reported there; the run goes on. */
  qb_device_set_default (spec, NULL);
  return TRUE;
}

int
qb_cmd_devices (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- list the OpenCL devices");
  g_autoptr(GPtrArray) list = NULL;
  g_autofree char *current = NULL;

  g_option_context_set_description (context,
    "Select one with --device cpu|gpu|opencl:N on any command, or QB_DEVICE=... in the environment.");
  if (!qb_cli_parse (context, &argc, &argv))
    return 2;
  list = qb_device_list (NULL);
  current = qb_device_dup_default_label ();
  printf ("cpu            the CPU threads (default)\n");
  for (guint i = 0; i < list->len; i++)
    {
      const QbDeviceInfo *d = g_ptr_array_index (list, i);
      printf ("opencl:%-7u %s — %s, %s, %" G_GUINT64_FORMAT " MiB, %u compute units%s\n",
              d->index, d->name, d->platform, d->version, d->global_mem >> 20, d->compute_units,
              d->exact_float ? "" : " (no exact division: quantization stays on CPU)");
    }
  if (list->len == 0)
    printf ("(no OpenCL platform installed: everything runs on the CPU)\n");
  printf ("selected: %s\n", current);
  return 0;
}
