/* SPDX-License-Identifier: MIT */
/* qb-store-handle.h — a shared, reference-counted experiment store.
 *
 * The window, its pages and the background tasks reading or writing
 * experiments share one QbStore connection (its calls are serialized by
 * the store itself).  A task holds a reference for as long as it runs, so
 * closing the window never closes the store under a worker thread.
 */
#pragma once

#include "qb-store.h"

G_BEGIN_DECLS

typedef struct _QbStoreHandle QbStoreHandle;

/* Takes ownership of store. */
QbStoreHandle *qb_store_handle_new   (QbStore       *store);
QbStoreHandle *qb_store_handle_ref   (QbStoreHandle *handle);
/* Closes the store with the last reference. */
void           qb_store_handle_unref (QbStoreHandle *handle);
QbStore       *qb_store_handle_get   (QbStoreHandle *handle);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbStoreHandle, qb_store_handle_unref)

G_END_DECLS
