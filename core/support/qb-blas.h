/* SPDX-License-Identifier: MIT */
/* qb-blas.h — choosing OpenBLAS's kernels.
 *
 * Debian 12's OpenBLAS (0.3.21, built for every x86-64 CPU) picks its
 * kernels when the library loads, and takes AMD Zen 4 (which has AVX-512)
 * for a Haswell: its AVX2 sgemm then runs at about 0.55× the speed of its
 * AVX-512 (SkylakeX) sgemm on the same core.  The choice can only be
 * forced through OPENBLAS_CORETYPE before the library loads, so an
 * executable that wants the faster kernels sets it and starts itself
 * again, first thing in main().
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* When the CPU has the AVX-512 subsets SkylakeX kernels need, OpenBLAS
 * chose something older, and neither OPENBLAS_CORETYPE nor
 * QB_KEEP_BLAS_CORETYPE is set: sets OPENBLAS_CORETYPE=SKYLAKEX and
 * re-executes the program with the same arguments.  Returns (doing nothing)
 * otherwise, or when the re-execution fails. */
void         qb_blas_prefer_avx512   (char **argv);
/* The kernels OpenBLAS runs ("Haswell", "SkylakeX", ...). */
const char  *qb_blas_get_core_name   (void);

G_END_DECLS
