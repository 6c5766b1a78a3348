/* SPDX-License-Identifier: MIT */
/* qb-store-handle.c — a reference-counted QbStore. */
#include "qb-store-handle.h"

struct _QbStoreHandle
{
  QbStore *store;
};

QbStoreHandle *
qb_store_handle_new (QbStore *store)
{
  QbStoreHandle *handle = g_atomic_rc_box_new0 (QbStoreHandle);

  handle->store = store;
  return handle;
}

QbStoreHandle *
qb_store_handle_ref (QbStoreHandle *handle)
{
  return g_atomic_rc_box_acquire (handle);
}

static void
close_store (gpointer data)
{
  QbStoreHandle *handle = data;

  g_clear_pointer (&handle->store, qb_store_close);
}

void
qb_store_handle_unref (QbStoreHandle *handle)
{
  g_atomic_rc_box_release_full (handle, close_store);
}

QbStore *
qb_store_handle_get (QbStoreHandle *handle)
{
  return handle->store;
}
