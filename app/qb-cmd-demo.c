/* qb-cmd-demo.c — `quantbench demo`: what a newcomer sees without a display. */
#include <stdio.h>

#include "qb-cli.h"

int
qb_cmd_demo (int argc, char **argv)
{
  fprintf (stderr, "quantbench: the headless demo is not available yet.\n");
  return 1;
}
