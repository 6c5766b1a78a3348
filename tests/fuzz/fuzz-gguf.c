/* SPDX-License-Identifier: MIT */
/* fuzz-gguf.c — libFuzzer harness for the GGUF reader.
 *
 * Every input must either parse into a consistent file or give a GError in
 * QB_GGUF_ERROR; whatever parses is walked completely, so that a pointer
 * or length the reader got wrong shows up under AddressSanitizer.
 */
#include <string.h>

#include "qb-gguf.h"

static volatile guint64 sink;

static void
walk_array (const QbGgufKv *kv)
{
  if (kv->type != QB_GGUF_TYPE_ARRAY)
    return;
  if (kv->array_type == QB_GGUF_TYPE_STRING)
    for (guint64 i = 0; i < kv->n; i++)
      {
        const QbGgufString *s = (const QbGgufString *) kv->array + i;
        sink += s->len ? (guint8) s->str[s->len - 1] : 0;
        sink += (guint8) s->str[s->len];          /* the terminating NUL */
      }
  else if (kv->array_type == QB_GGUF_TYPE_ARRAY)
    for (guint64 i = 0; i < kv->n; i++)
      walk_array ((const QbGgufKv *) kv->array + i);
  else if (kv->n > 0)
    sink += ((const guint8 *) kv->array)[0] + ((const guint8 *) kv->array)[kv->n - 1];
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr(GBytes) bytes = g_bytes_new_static (data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbGguf) g = qb_gguf_new_from_bytes (bytes, "fuzz.gguf", &error);

  if (g == NULL)
    {
      g_assert (error != NULL && error->domain == QB_GGUF_ERROR);
      return 0;
    }
  g_assert (error == NULL);

  for (guint64 i = 0; i < qb_gguf_get_n_kv (g); i++)
    {
      const QbGgufKv *kv = qb_gguf_get_kv (g, i);
      g_assert (qb_gguf_find_kv (g, kv->key.str) == kv);
      g_assert (strlen (kv->key.str) == kv->key.len);
      walk_array (kv);
    }
  for (guint64 i = 0; i < qb_gguf_get_n_tensors (g); i++)
    {
      const QbGgufTensorInfo *t = qb_gguf_get_tensor (g, i);
      g_assert (qb_gguf_find_tensor (g, t->name.str) == t);
      g_assert ((const guint8 *) t->data >= data &&
                (const guint8 *) t->data + t->n_bytes <= data + size);
      if (t->n_bytes > 0)
        sink += ((const guint8 *) t->data)[0] + ((const guint8 *) t->data)[t->n_bytes - 1];
    }
  return 0;
}
