/* SPDX-License-Identifier: MIT */
/* qb-scan-cache-private.h — the pre-pass of a tensor remembered across runs.
 *
 * The range, moments and original-weights histogram of a stored tensor do
 * not depend on the plan, so a run need not read the tensor for them
 * again once a run has: they are kept, one small file per tensor, under
 * $XDG_CACHE_HOME/quantbench/scans/KEY/, where KEY hashes the model's
 * header fingerprint with the file's device, inode, size, modification
 * and change times (any rewrite of the file gives a new key).  Each file
 * repeats the tensor's name, type and size and ends with a checksum; one
 * that does not match is ignored, so a torn or stale file costs a read,
 * never a wrong figure.  GGUF files only (one file holds every tensor);
 * QB_SCAN_CACHE=0 in the environment turns the cache off.
 */
#pragma once

#include <glib.h>

#include "qb-model.h"
#include "qb-tensor-quantizer.h"
#include "qb-tensor-result.h"

G_BEGIN_DECLS

/* TRUE and the stored scan and histogram (transfer full) when the cache
 * holds tensor index of model. */
gboolean qb_scan_cache_load  (QbModel *model, guint index, QbTensorScan *scan,
                              QbHistogram **original);
/* Keeps them; best effort (a cache that cannot be written is skipped). */
void     qb_scan_cache_store (QbModel *model, guint index, const QbTensorScan *scan,
                              const QbHistogram *original);
/* The folder of model's entries, or NULL when the cache does not apply. */
char    *qb_scan_cache_dir   (QbModel *model);

G_END_DECLS
