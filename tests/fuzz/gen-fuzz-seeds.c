/* SPDX-License-Identifier: MIT */
/* gen-fuzz-seeds.c — writes the small seed corpora for the fuzz harnesses:
 *
 *   gen-fuzz-seeds GGUF_DIR SAFETENSORS_DIR
 *
 * Seeds are generated rather than committed: a few GGUF files with every
 * metadata type, nested arrays, several tensor types and alignments; a few
 * safetensors files with metadata and several dtypes; and JSON seeds for
 * the shard index and config.json paths (after an 8-byte prefix, which is
 * how the harness feeds them).
 */
#include <stdio.h>
#include <string.h>

#include "qb-gguf.h"

static void
write_gguf (const char *dir, const char *name, guint32 version, guint32 alignment, gboolean all_types)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
  g_autoptr(GError) error = NULL;
  static const char *const tokens[] = { "<unk>", "<s>", "</s>", "<0x00>", "\xe2\x96\x81the" };
  static const float scores[] = { 0, 0, 0, -1, -2 };
  static const gint32 types[] = { 2, 3, 3, 6, 1 };
  gint64 ne_f32[2] = { 4, 2 }, ne_q[2] = { 32, 1 }, ne_k[1] = { 256 };
  guint8 data[256] = { 0 };

  qb_gguf_writer_set_version (w, version);
  qb_gguf_writer_set_string (w, "general.architecture", "llama");
  if (alignment)
    qb_gguf_writer_set_uint32 (w, "general.alignment", alignment);
  qb_gguf_writer_set_uint32 (w, "llama.block_count", 1);
  qb_gguf_writer_set_float32 (w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
  qb_gguf_writer_set_string_array (w, "tokenizer.ggml.tokens", tokens, 5);
  qb_gguf_writer_set_array (w, "tokenizer.ggml.scores", QB_GGUF_TYPE_FLOAT32, scores, 5);
  qb_gguf_writer_set_array (w, "tokenizer.ggml.token_type", QB_GGUF_TYPE_INT32, types, 5);
  if (all_types)
    {
      static const guint8 u8s[] = { 1, 2 };
      static const double f64s[] = { 1.5 };
      QbGgufString s[2] = { { 1, "a" }, { 0, "" } };
      QbGgufKv inner[2] = {
        { .type = QB_GGUF_TYPE_ARRAY, .array_type = QB_GGUF_TYPE_STRING, .n = 2, .array = s },
        { .type = QB_GGUF_TYPE_ARRAY, .array_type = QB_GGUF_TYPE_UINT8, .n = 2, .array = u8s },
      };
      QbGgufKv nested = { .key = { 6, "nested" }, .type = QB_GGUF_TYPE_ARRAY,
                          .array_type = QB_GGUF_TYPE_ARRAY, .n = 2, .array = inner };
      QbGgufKv kv = { .key = { 3, "i64" }, .type = QB_GGUF_TYPE_INT64, .v.i64 = -5 };

      qb_gguf_writer_copy_kv (w, &nested);
      qb_gguf_writer_copy_kv (w, &kv);
      qb_gguf_writer_set_bool (w, "b", TRUE);
      qb_gguf_writer_set_uint64 (w, "u64", 7);
      qb_gguf_writer_set_int32 (w, "i32", -7);
      qb_gguf_writer_set_array (w, "u8s", QB_GGUF_TYPE_UINT8, u8s, 2);
      qb_gguf_writer_set_array (w, "f64s", QB_GGUF_TYPE_FLOAT64, f64s, 1);
    }
  qb_gguf_writer_add_tensor (w, "blk.0.attn_q.weight", 2, ne_f32, QB_DTYPE_F32);
  qb_gguf_writer_add_tensor (w, "blk.0.ffn_up.weight", 2, ne_q, QB_DTYPE_Q4_0);
  qb_gguf_writer_add_tensor (w, "output_norm.weight", 1, ne_k, QB_DTYPE_Q4_K);
  if (!qb_gguf_writer_begin (w, path, &error) ||
      !qb_gguf_writer_write_tensor (w, 0, data, 32, &error) ||
      !qb_gguf_writer_write_tensor (w, 1, data, 18, &error) ||
      !qb_gguf_writer_write_tensor (w, 2, data, 144, &error) ||
      !qb_gguf_writer_finish (w, &error))
    g_error ("%s", error->message);
}

static void
write_prefixed (const char *dir, const char *name, const char *json, gsize data_size)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GByteArray) b = g_byte_array_new ();
  guint64 len = strlen (json);
  g_autofree guint8 *zeros = g_malloc0 (data_size + 1);
  g_autoptr(GError) error = NULL;

  g_byte_array_append (b, (const guint8 *) &len, 8);
  g_byte_array_append (b, (const guint8 *) json, len);
  g_byte_array_append (b, zeros, data_size);
  if (!g_file_set_contents (path, (const char *) b->data, b->len, &error))
    g_error ("%s", error->message);
}

int
main (int argc, char **argv)
{
  if (argc != 3)
    {
      fprintf (stderr, "usage: gen-fuzz-seeds GGUF_DIR SAFETENSORS_DIR\n");
      return 2;
    }
  g_mkdir_with_parents (argv[1], 0755);
  g_mkdir_with_parents (argv[2], 0755);

  write_gguf (argv[1], "small-v3.gguf", 3, 0, FALSE);
  write_gguf (argv[1], "all-types-v2.gguf", 2, 0, TRUE);
  write_gguf (argv[1], "aligned-64.gguf", 3, 64, TRUE);

  write_prefixed (argv[2], "single.safetensors",
                  "{\"__metadata__\":{\"format\":\"pt\"},"
                  "\"model.layers.0.self_attn.q_proj.weight\":{\"dtype\":\"BF16\",\"shape\":[2,4],\"data_offsets\":[0,16]},"
                  "\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]},"
                  "\"lm_head.weight\":{\"dtype\":\"F8_E4M3\",\"shape\":[2,2,2],\"data_offsets\":[32,40]}}", 40);
  write_prefixed (argv[2], "dtypes.safetensors",
                  "{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"BOOL\",\"shape\":[],\"data_offsets\":[8,9]},"
                  "\"c\":{\"dtype\":\"U16\",\"shape\":[0,3],\"data_offsets\":[9,9]},"
                  "\"d\":{\"dtype\":\"F64\",\"shape\":[1,1,1,1,1],\"data_offsets\":[9,17]}}", 17);
  write_prefixed (argv[2], "index.json",
                  "{\"metadata\":{\"total_size\":64},\"weight_map\":{"
                  "\"model.embed_tokens.weight\":\"model-00001-of-00002.safetensors\","
                  "\"lm_head.weight\":\"model-00002-of-00002.safetensors\"}}", 0);
  write_prefixed (argv[2], "config.json",
                  "{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"hidden_size\":8,"
                  "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"intermediate_size\":16,"
                  "\"vocab_size\":10,\"max_position_embeddings\":64,\"rms_norm_eps\":1e-06,"
                  "\"rope_theta\":10000.0,\"tie_word_embeddings\":true,"
                  "\"text_config\":{\"head_dim\":4}}", 0);
  return 0;
}
