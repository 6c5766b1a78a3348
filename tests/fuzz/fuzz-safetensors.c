/* SPDX-License-Identifier: MIT */
/* fuzz-safetensors.c — libFuzzer harness for everything that reads JSON
 * describing a model: safetensors headers, shard indexes, config.json.
 *
 * The same input is tried as a whole safetensors file, and its bytes after
 * the 8-byte length prefix as an index and as a config.
 */
#include <string.h>

#include "qb-safetensors-private.h"

static volatile guint64 sink;

static void
try_safetensors (const guint8 *data, size_t size)
{
  g_autoptr(GBytes) bytes = g_bytes_new_static (data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbSafetensors) st = qb_safetensors_new_from_bytes (bytes, "fuzz.safetensors", &error);

  if (st == NULL)
    {
      g_assert (error != NULL && error->domain == QB_MODEL_ERROR);
      return;
    }
  for (guint i = 0; i < qb_safetensors_get_n_tensors (st); i++)
    {
      const QbSafetensorsTensor *t = qb_safetensors_get_tensor (st, i);
      guint64 n_bytes;
      gint64 n = 1;

      for (guint d = 0; d < 4; d++)
        n *= t->ne[d];
      g_assert (qb_dtype_bytes (t->dtype, n, &n_bytes) && n_bytes == t->n_bytes);
      g_assert ((const guint8 *) t->data >= data && (const guint8 *) t->data + t->n_bytes <= data + size);
      g_assert (qb_safetensors_find_tensor (st, t->name) == t);
      if (t->n_bytes > 0)
        sink += ((const guint8 *) t->data)[t->n_bytes - 1];
    }
}

static void
try_json (const guint8 *data, size_t size)
{
  g_auto(GStrv) shards = NULL;
  g_autoptr(GHashTable) weight_map = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = NULL;

  if (qb_safetensors_parse_index ((const char *) data, size, "fuzz.index.json", &shards,
                                  &weight_map, &error))
    g_assert (shards[0] != NULL && g_hash_table_size (weight_map) > 0);
  else
    g_assert (error != NULL);
  g_clear_error (&error);

  root = qb_json_parse_checked ((const char *) data, size, "config.json", 0, 64, NULL, &error);
  if (root != NULL && JSON_NODE_HOLDS_OBJECT (root))
    {
      QbArchInfo arch = { 0 };
      qb_hf_config_get_arch (json_node_get_object (root), &arch);
      sink += arch.n_layer + arch.n_embd;
      g_free (arch.family);
    }
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  try_safetensors (data, size);
  if (size > 8)
    try_json (data + 8, size - 8);
  return 0;
}
