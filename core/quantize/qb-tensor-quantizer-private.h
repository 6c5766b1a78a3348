/* SPDX-License-Identifier: MIT */
/* qb-tensor-quantizer-private.h — for tests only: which measuring path the
 * tensor quantizer takes.
 *
 * F16 and BF16 tensors are measured from the counts of their raw 16-bit
 * patterns (moments, range and the original-weights histogram exactly
 * from 65,536 counters, the main pass counting two histograms instead of
 * three).  The reference path is the general one every other source
 * type takes; the tests run both and compare.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  QB_MEASURE_PATH_AUTO,      /* patterns for 16-bit tensors of 16K values or more */
  QB_MEASURE_PATH_REFERENCE, /* never patterns */
  QB_MEASURE_PATH_PATTERNS,  /* patterns for every 16-bit tensor, however small */
} QbMeasurePath;

/* Process-wide; set it only while no quantization runs. */
void qb_tensor_quantizer_set_measure_path (QbMeasurePath path);

G_END_DECLS
