/* SPDX-License-Identifier: MIT */
/* qb-blas.c — choosing OpenBLAS's kernels (see qb-blas.h). */
#include "qb-blas.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gboolean
has_avx512 (void)
{
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init ();
  return __builtin_cpu_supports ("avx512f") && __builtin_cpu_supports ("avx512bw")
         && __builtin_cpu_supports ("avx512dq") && __builtin_cpu_supports ("avx512vl")
         && __builtin_cpu_supports ("avx512cd");
#else
  return FALSE;
#endif
}

const char *
qb_blas_get_core_name (void)
{
  return openblas_get_corename ();
}

void
qb_blas_prefer_avx512 (char **argv)
{
  const char *core = openblas_get_corename ();

  if (g_getenv ("OPENBLAS_CORETYPE") != NULL || g_getenv ("QB_KEEP_BLAS_CORETYPE") != NULL
      || core == NULL || !has_avx512 ())
    return;
  /* Only the AVX2-and-older choices; a build that already runs AVX-512
   * kernels (SkylakeX, Cooperlake, Sapphire Rapids, Zen in newer
   * OpenBLAS) is left alone. */
  if (g_ascii_strcasecmp (core, "Haswell") != 0 && g_ascii_strcasecmp (core, "Zen") != 0)
    return;
  g_setenv ("OPENBLAS_CORETYPE", "SKYLAKEX", TRUE);
  execv ("/proc/self/exe", argv);
  /* Could not start again: carry on with what was chosen. */
  g_unsetenv ("OPENBLAS_CORETYPE");
}
