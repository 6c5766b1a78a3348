/* qb-cmd-inspect.c — `quantbench inspect FILE`. */
#include <stdio.h>

#include "qb-cli.h"

int
qb_cmd_inspect (int argc, char **argv)
{
  fprintf (stderr, "quantbench: inspect is not available yet.\n");
  return 1;
}
