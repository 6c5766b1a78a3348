/* SPDX-License-Identifier: MIT */
/* test-safetensors.c — safetensors files built here: single and sharded,
 * every dtype read back, metadata, config.json facts, and damaged files.
 */
#include <math.h>
#include <string.h>
#include <sys/resource.h>

#include "qb-model.h"
#include "qb-safetensors-private.h"
#include "qb-test-util.h"

/* ---- building files --------------------------------------------------- */

typedef struct
{
  GString    *json;      /* members so far, without the braces */
  GByteArray *data;
} StBuilder;

static void
st_init (StBuilder *b)
{
  b->json = g_string_new (NULL);
  b->data = g_byte_array_new ();
}

/* Adds a tensor whose bytes follow the previous one's. */
static void
st_add (StBuilder *b, const char *name, const char *dtype, const char *shape,
        gconstpointer bytes, gsize n_bytes)
{
  g_string_append_printf (b->json, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%s],"
                          "\"data_offsets\":[%u,%" G_GSIZE_FORMAT "]}",
                          b->json->len ? "," : "", name, dtype, shape, b->data->len,
                          b->data->len + n_bytes);
  g_byte_array_append (b->data, bytes, n_bytes);
}

/* Adds a raw member (for damaged entries). */
static void
st_add_raw (StBuilder *b, const char *member)
{
  g_string_append_printf (b->json, "%s%s", b->json->len ? "," : "", member);
}

/* The file image: length, JSON padded with spaces to 8 bytes, data. */
static GBytes *
st_finish (StBuilder *b)
{
  GByteArray *out = g_byte_array_new ();
  g_autoptr(GString) header = g_string_new ("{");
  guint64 len;

  g_string_append (header, b->json->str);
  g_string_append_c (header, '}');
  while (header->len % 8)
    g_string_append_c (header, ' ');
  len = header->len;
  g_byte_array_append (out, (const guint8 *) &len, 8);
  g_byte_array_append (out, (const guint8 *) header->str, header->len);
  g_byte_array_append (out, b->data->data, b->data->len);
  g_string_free (b->json, TRUE);
  g_byte_array_unref (b->data);
  return g_byte_array_free_to_bytes (out);
}

static void
write_bytes (const char *path, GBytes *bytes)
{
  g_autoptr(GError) error = NULL;
  g_file_set_contents (path, g_bytes_get_data (bytes, NULL), (gssize) g_bytes_get_size (bytes), &error);
  g_assert_no_error (error);
}

/* ---- every dtype ------------------------------------------------------ */

typedef struct
{
  const char *dtype;
  QbDType     qb;
  guint       size;
  guint8      bytes[64];
  float       expect[8];      /* 8 values, shape [2, 4] */
} DtypeCase;

static void
fill_case (DtypeCase *c)
{
  static const double v[8] = { 0, 1, -2, 3.5, 100, -128, 0.25, 7 };

  for (guint i = 0; i < 8; i++)
    {
      guint8 *p = c->bytes + i * c->size;
      switch (c->qb)
        {
        case QB_DTYPE_F32: { float x = v[i]; memcpy (p, &x, 4); c->expect[i] = x; break; }
        case QB_DTYPE_F64: { double x = v[i] / 3; memcpy (p, &x, 8); c->expect[i] = (float) x; break; }
        case QB_DTYPE_F16: { guint16 h = qb_fp32_to_fp16 (v[i]); memcpy (p, &h, 2); c->expect[i] = v[i]; break; }
        case QB_DTYPE_BF16: { guint16 h = qb_fp32_to_bf16 (v[i]); memcpy (p, &h, 2); c->expect[i] = v[i]; break; }
        case QB_DTYPE_I8: { gint8 x = (gint8) v[i]; memcpy (p, &x, 1); c->expect[i] = x; break; }
        case QB_DTYPE_U8: { guint8 x = (guint8) (v[i] < 0 ? 200 + i : v[i]); memcpy (p, &x, 1); c->expect[i] = x; break; }
        case QB_DTYPE_I16: { gint16 x = (gint16) (v[i] * 200); memcpy (p, &x, 2); c->expect[i] = x; break; }
        case QB_DTYPE_U16: { guint16 x = (guint16) (i * 9000); memcpy (p, &x, 2); c->expect[i] = x; break; }
        case QB_DTYPE_I32: { gint32 x = (gint32) (v[i] * -100000); memcpy (p, &x, 4); c->expect[i] = (float) x; break; }
        case QB_DTYPE_U32: { guint32 x = i * 500000000u; memcpy (p, &x, 4); c->expect[i] = (float) x; break; }
        case QB_DTYPE_I64: { gint64 x = (gint64) v[i] * -(G_GINT64_CONSTANT (1) << 40); memcpy (p, &x, 8); c->expect[i] = (float) x; break; }
        case QB_DTYPE_U64: { guint64 x = (guint64) i << 50; memcpy (p, &x, 8); c->expect[i] = (float) x; break; }
        case QB_DTYPE_BOOL: { guint8 x = (guint8) (i % 3 == 0 ? 0 : i); memcpy (p, &x, 1); c->expect[i] = x ? 1.0f : 0.0f; break; }
        case QB_DTYPE_F8_E4M3:
          {
            static const guint8 codes[8] = { 0x00, 0x38, 0xc0, 0x46, 0x6c, 0xf8, 0x28, 0x7e };
            static const float values[8] = { 0, 1, -2, 3.5, 96, -256, 0.25, 448 };
            p[0] = codes[i];
            c->expect[i] = values[i];
            break;
          }
        case QB_DTYPE_F8_E5M2:
          {
            /* E5M2 is the top byte of a half: 100 (0x5640) truncates to 96. */
            guint16 h = qb_fp32_to_fp16 (v[i]);
            p[0] = h >> 8;
            c->expect[i] = v[i] == 100 ? 96.0f : (float) v[i];
            break;
          }
        default:
          g_assert_not_reached ();
        }
    }
}

static DtypeCase dtype_cases[] = {
  { "F32", QB_DTYPE_F32, 4 }, { "F16", QB_DTYPE_F16, 2 }, { "BF16", QB_DTYPE_BF16, 2 },
  { "F64", QB_DTYPE_F64, 8 }, { "I8", QB_DTYPE_I8, 1 }, { "U8", QB_DTYPE_U8, 1 },
  { "I16", QB_DTYPE_I16, 2 }, { "I32", QB_DTYPE_I32, 4 }, { "I64", QB_DTYPE_I64, 8 },
  { "BOOL", QB_DTYPE_BOOL, 1 }, { "F8_E4M3", QB_DTYPE_F8_E4M3, 1 },
  { "F8_E5M2", QB_DTYPE_F8_E5M2, 1 }, { "U16", QB_DTYPE_U16, 2 }, { "U32", QB_DTYPE_U32, 4 },
  { "U64", QB_DTYPE_U64, 8 },
};

static void
test_every_dtype (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "all.safetensors", NULL);
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autoptr(GError) error = NULL;
  StBuilder b;

  st_init (&b);
  st_add_raw (&b, "\"__metadata__\":{\"format\":\"pt\",\"note\":\"x\\\"y\",\"n\":3}");
  for (guint i = 0; i < G_N_ELEMENTS (dtype_cases); i++)
    {
      g_autofree char *name = g_strdup_printf ("t_%s", dtype_cases[i].dtype);
      fill_case (&dtype_cases[i]);
      st_add (&b, name, dtype_cases[i].dtype, "2,4", dtype_cases[i].bytes, 8 * dtype_cases[i].size);
    }
  bytes = st_finish (&b);
  write_bytes (path, bytes);

  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (qb_model_get_file_kind (model), ==, QB_MODEL_FILE_SAFETENSORS);
  g_assert_cmpuint (qb_model_get_n_tensors (model), ==, G_N_ELEMENTS (dtype_cases));
  g_assert_cmpint (qb_model_get_n_params (model), ==, 8 * G_N_ELEMENTS (dtype_cases));
  g_assert_null (qb_model_get_hf_config (model));
  g_assert_cmpstr (qb_model_get_arch (model)->family, ==, "unknown");

  for (guint i = 0; i < G_N_ELEMENTS (dtype_cases); i++)
    {
      g_autofree char *name = g_strdup_printf ("t_%s", dtype_cases[i].dtype);
      const DtypeCase *c = &dtype_cases[i];
      guint index;
      const QbTensor *t = qb_model_find_tensor (model, name, &index);
      float row[8] = { 0 };

      g_assert_nonnull (t);
      g_assert_cmpint (t->dtype, ==, c->qb);
      g_assert_cmpuint (t->n_dims, ==, 2);
      g_assert_cmpint (t->ne[0], ==, 4);       /* shape [2, 4] reversed */
      g_assert_cmpint (t->ne[1], ==, 2);
      g_assert_cmpuint (t->n_bytes, ==, 8 * c->size);
      g_assert_cmpint (qb_tensor_n_rows (t), ==, 2);
      qb_model_read_rows (model, index, 0, 2, row, &error);
      g_assert_no_error (error);
      for (guint k = 0; k < 8; k++)
        if (row[k] != c->expect[k])
          g_error ("%s value %u: read %g, expected %g", c->dtype, k, row[k], c->expect[k]);
      /* One row alone: the second. */
      memset (row, 0, sizeof row);
      qb_model_read_rows (model, index, 1, 1, row, &error);
      g_assert_no_error (error);
      g_assert_cmpfloat (row[0], ==, c->expect[4]);
      g_assert_cmpfloat (row[3], ==, c->expect[7]);
      /* Out of range. */
      g_assert_false (qb_model_read_rows (model, index, 1, 2, row, &error));
      g_assert_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_INVALID);
      g_clear_error (&error);
    }

  /* The metadata block, through the file object. */
  {
    g_autoptr(QbSafetensors) st = qb_safetensors_new_from_bytes (bytes, "mem", &error);
    GHashTable *meta;

    g_assert_no_error (error);
    meta = qb_safetensors_get_metadata (st);
    g_assert_cmpstr (g_hash_table_lookup (meta, "format"), ==, "pt");
    g_assert_cmpstr (g_hash_table_lookup (meta, "note"), ==, "x\"y");
    g_assert_null (g_hash_table_lookup (meta, "n"));    /* not a string */
    g_assert_null (qb_safetensors_find_tensor (st, "__metadata__"));
  }
}

/* Shapes of every rank, in ggml order. */
static void
test_shapes (void)
{
  static const guint8 zeros[6 * 4 * 2] = { 0 };
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(QbSafetensors) st = NULL;
  g_autoptr(GError) error = NULL;
  const QbSafetensorsTensor *t;
  StBuilder b;

  st_init (&b);
  st_add (&b, "scalar", "F32", "", zeros, 4);
  st_add (&b, "vec", "F16", "3", zeros, 6);
  st_add (&b, "empty", "F32", "0,5", zeros, 0);
  st_add (&b, "r4", "U8", "1,2,3,4", zeros, 24);
  st_add (&b, "r5", "U8", "2,1,2,3,2", zeros, 24);
  bytes = st_finish (&b);
  st = qb_safetensors_new_from_bytes (bytes, "shapes", &error);
  g_assert_no_error (error);

  t = qb_safetensors_find_tensor (st, "scalar");
  g_assert_cmpuint (t->n_dims, ==, 0);
  g_assert_cmpint (t->ne[0], ==, 1);
  t = qb_safetensors_find_tensor (st, "vec");
  g_assert_cmpuint (t->n_dims, ==, 1);
  g_assert_cmpint (t->ne[0], ==, 3);
  t = qb_safetensors_find_tensor (st, "empty");
  g_assert_cmpint (t->ne[0], ==, 5);
  g_assert_cmpint (t->ne[1], ==, 0);
  g_assert_cmpuint (t->n_bytes, ==, 0);
  t = qb_safetensors_find_tensor (st, "r4");
  g_assert_cmpint (t->ne[0], ==, 4);
  g_assert_cmpint (t->ne[1], ==, 3);
  g_assert_cmpint (t->ne[2], ==, 2);
  g_assert_cmpint (t->ne[3], ==, 1);
  t = qb_safetensors_find_tensor (st, "r5");    /* [2,1,2,3,2] -> 2,3,2, then 1*2 folded */
  g_assert_cmpuint (t->n_dims, ==, 4);
  g_assert_cmpint (t->ne[0], ==, 2);
  g_assert_cmpint (t->ne[1], ==, 3);
  g_assert_cmpint (t->ne[2], ==, 2);
  g_assert_cmpint (t->ne[3], ==, 2);
  /* In data order. */
  g_assert_cmpstr (qb_safetensors_get_tensor (st, 4)->name, ==, "r5");
}

/* ---- a sharded Hugging Face folder ------------------------------------ */

static const char config_json[] =
  "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"num_hidden_layers\":2,"
  "\"hidden_size\":8,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
  "\"intermediate_size\":16,\"vocab_size\":10,\"max_position_embeddings\":64,"
  "\"rms_norm_eps\":1e-06,\"rope_theta\":500000.0,\"tie_word_embeddings\":false,"
  "\"head_dim\":4,\"torch_dtype\":\"bfloat16\"}";

static void
add_bf16 (StBuilder *b, const char *name, gint64 rows, gint64 cols, float start)
{
  g_autofree guint16 *v = g_new (guint16, rows * cols);
  g_autofree char *shape = rows > 1 ? g_strdup_printf ("%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT, rows, cols)
                                    : g_strdup_printf ("%" G_GINT64_FORMAT, cols);

  for (gint64 i = 0; i < rows * cols; i++)
    v[i] = qb_fp32_to_bf16 (start + (float) i);
  st_add (b, name, "BF16", shape, v, rows * cols * 2);
}

static char *
make_sharded_folder (void)
{
  char *dir = qb_test_tmpdir ();
  g_autofree char *s1 = g_build_filename (dir, "model-00001-of-00002.safetensors", NULL);
  g_autofree char *s2 = g_build_filename (dir, "model-00002-of-00002.safetensors", NULL);
  g_autofree char *index = g_build_filename (dir, "model.safetensors.index.json", NULL);
  g_autofree char *config = g_build_filename (dir, "config.json", NULL);
  g_autoptr(GString) map = g_string_new ("{\"metadata\":{\"total_size\":1},\"weight_map\":{");
  static const char *const layer_names[] = {
    "input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
    "self_attn.o_proj", "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
  };
  StBuilder b;

  for (int shard = 0; shard < 2; shard++)
    {
      g_autoptr(GBytes) bytes = NULL;

      st_init (&b);
      if (shard == 0)
        {
          add_bf16 (&b, "model.embed_tokens.weight", 10, 8, 0);
          g_string_append (map, "\"model.embed_tokens.weight\":\"model-00001-of-00002.safetensors\",");
        }
      else
        {
          add_bf16 (&b, "model.norm.weight", 1, 8, 1);
          add_bf16 (&b, "lm_head.weight", 10, 8, 2);
          g_string_append (map, "\"model.norm.weight\":\"model-00002-of-00002.safetensors\","
                                "\"lm_head.weight\":\"model-00002-of-00002.safetensors\",");
        }
      for (guint k = 0; k < G_N_ELEMENTS (layer_names); k++)
        {
          g_autofree char *name = g_strdup_printf ("model.layers.%d.%s.weight", shard, layer_names[k]);
          gint64 rows = k == 0 || k == 5 ? 1 : k == 1 || k == 4 ? 8 : k == 2 || k == 3 ? 4 : k == 8 ? 8 : 16;
          gint64 cols = k == 8 ? 16 : 8;
          add_bf16 (&b, name, rows, cols, (float) k);
          g_string_append_printf (map, "\"%s\":\"model-0000%d-of-00002.safetensors\",", name, shard + 1);
        }
      bytes = st_finish (&b);
      write_bytes (shard == 0 ? s1 : s2, bytes);
    }
  g_string_truncate (map, map->len - 1);
  g_string_append (map, "}}");
  g_assert_true (g_file_set_contents (index, map->str, -1, NULL));
  g_assert_true (g_file_set_contents (config, config_json, -1, NULL));
  return dir;
}

static void
check_sharded_model (QbModel *model)
{
  const QbArchInfo *a = qb_model_get_arch (model);
  const QbTensor *t;
  guint index;
  float row[16];
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (qb_model_get_file_kind (model), ==, QB_MODEL_FILE_SAFETENSORS);
  g_assert_cmpuint (qb_model_get_n_tensors (model), ==, 21);
  g_assert_cmpstr (a->family, ==, "llama");
  g_assert_cmpuint (a->n_layer, ==, 2);
  g_assert_cmpuint (a->n_embd, ==, 8);
  g_assert_cmpuint (a->n_head, ==, 2);
  g_assert_cmpuint (a->n_head_kv, ==, 1);
  g_assert_cmpuint (a->n_ff, ==, 16);
  g_assert_cmpuint (a->n_vocab, ==, 10);
  g_assert_cmpuint (a->n_ctx, ==, 64);
  g_assert_cmpuint (a->head_dim, ==, 4);
  g_assert_cmpfloat (a->rms_eps, ==, 1e-6);
  g_assert_cmpfloat (a->rope_freq_base, ==, 500000.0);
  g_assert_false (a->tied_embeddings);
  g_assert_nonnull (qb_model_get_hf_config (model));
  g_assert_nonnull (qb_model_get_fingerprint (model));
  g_assert_cmpuint (strlen (qb_model_get_fingerprint (model)), ==, 64);

  /* Tensors from both shards, with roles parsed from Hugging Face names. */
  t = qb_model_find_tensor (model, "model.layers.1.self_attn.v_proj.weight", &index);
  g_assert_nonnull (t);
  g_assert_cmpint (t->layer, ==, 1);
  g_assert_cmpint (t->role, ==, QB_ROLE_ATTN_V);
  g_assert_cmpint (t->ne[0], ==, 8);
  g_assert_cmpint (t->ne[1], ==, 4);
  qb_model_read_rows (model, index, 2, 1, row, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (row[0], ==, 3.0f + 16);            /* start 3, row 2 of 8 columns */
  t = qb_model_find_tensor (model, "model.layers.0.mlp.down_proj.weight", &index);
  g_assert_cmpint (t->role, ==, QB_ROLE_FFN_DOWN);
  g_assert_cmpint (t->ne[0], ==, 16);
  g_assert_cmpint (t->ne[1], ==, 8);
  t = qb_model_find_tensor (model, "lm_head.weight", NULL);
  g_assert_cmpint (t->role, ==, QB_ROLE_OUTPUT);
  g_assert_cmpint (t->layer, ==, -1);
  t = qb_model_find_tensor (model, "model.norm.weight", NULL);
  g_assert_cmpint (t->role, ==, QB_ROLE_OUTPUT_NORM);
  g_assert_cmpint (t->n_dims, ==, 1);
}

static void
test_sharded (void)
{
  g_autofree char *dir = make_sharded_folder ();
  g_autofree char *index = g_build_filename (dir, "model.safetensors.index.json", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) by_folder = qb_model_open (dir, &error);
  g_autoptr(QbModel) by_index = NULL;

  g_assert_no_error (error);
  check_sharded_model (by_folder);
  by_index = qb_model_open (index, &error);
  g_assert_no_error (error);
  check_sharded_model (by_index);
  g_assert_cmpstr (qb_model_get_fingerprint (by_folder), ==, qb_model_get_fingerprint (by_index));
}

static void
test_sharded_damaged (void)
{
  g_autofree char *dir = make_sharded_folder ();
  g_autofree char *index = g_build_filename (dir, "model.safetensors.index.json", NULL);
  g_autofree char *config = g_build_filename (dir, "config.json", NULL);
  g_autofree char *shard2 = g_build_filename (dir, "model-00002-of-00002.safetensors", NULL);
  static const struct { const char *index; const char *needle; } cases[] = {
    { "{\"weight_map\":{\"a\":\"../etc/passwd\"}}", "same folder" },
    { "{\"weight_map\":{\"a\":\"sub/x.safetensors\"}}", "same folder" },
    { "{\"weight_map\":{\"a\":\"..\"}}", "same folder" },
    { "{\"weight_map\":{\"a\":3}}", "same folder" },
    { "{\"weight_map\":{}}", "empty" },
    { "{\"metadata\":{}}", "weight_map" },
    { "[1,2]", "weight_map" },
    { "{\"weight_map\":{\"a\":\"missing.safetensors\"}}", "missing.safetensors" },
    { "{\"weight_map\":{\"model.norm.weight\":\"model-00001-of-00002.safetensors\"}}", "'model.norm.weight' is not in" },
    { "{\"weight_map\":", "JSON" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(QbModel) model = NULL;

      g_assert_true (g_file_set_contents (index, cases[i].index, -1, NULL));
      model = qb_model_open (dir, &error);
      g_assert_null (model);
      g_assert_nonnull (error);
      g_assert_true (error->domain == QB_MODEL_ERROR);
      if (strstr (error->message, cases[i].needle) == NULL)
        g_error ("case %u: message lacks \"%s\": %s", i, cases[i].needle, error->message);
    }

  /* A tensor in two shards. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(QbModel) model = NULL;
    g_autoptr(GBytes) bytes = NULL;
    StBuilder b;

    g_assert_true (g_file_set_contents (index, "{\"weight_map\":{\"model.embed_tokens.weight\":"
                                        "\"model-00001-of-00002.safetensors\",\"x\":"
                                        "\"model-00002-of-00002.safetensors\"}}", -1, NULL));
    st_init (&b);
    add_bf16 (&b, "model.embed_tokens.weight", 10, 8, 0);
    bytes = st_finish (&b);
    write_bytes (shard2, bytes);
    model = qb_model_open (dir, &error);
    g_assert_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_INVALID);
    g_assert_nonnull (strstr (error->message, "two shards"));
  }

  /* A broken config.json is reported, not ignored. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(QbModel) model = NULL;
    g_autofree char *single = g_build_filename (dir, "model-00001-of-00002.safetensors", NULL);

    g_assert_true (g_file_set_contents (config, "{\"model_type\": ", -1, NULL));
    model = qb_model_open (single, &error);
    g_assert_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_INVALID);
    g_assert_nonnull (strstr (error->message, "config.json"));
  }
}

/* ---- damaged single files --------------------------------------------- */

static void
expect_st_error (GBytes *bytes, const char *const *needles)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbSafetensors) st = qb_safetensors_new_from_bytes (bytes, "bad.safetensors", &error);

  g_assert_null (st);
  g_assert_nonnull (error);
  g_assert_true (error->domain == QB_MODEL_ERROR);
  g_assert_true (g_str_has_prefix (error->message, "bad.safetensors: byte "));
  for (; needles && *needles; needles++)
    if (strstr (error->message, *needles) == NULL)
      g_error ("message lacks \"%s\": %s", *needles, error->message);
  if (g_test_verbose ())
    g_test_message ("%s", error->message);
}

#define NEEDLES(...) ((const char *const[]) { __VA_ARGS__, NULL })

static GBytes *
one_entry (const char *member, gsize data_size)
{
  StBuilder b;
  g_autofree guint8 *zeros = g_malloc0 (data_size + 1);

  st_init (&b);
  st_add_raw (&b, member);
  g_byte_array_append (b.data, zeros, data_size);
  return st_finish (&b);
}

static GBytes *
raw_file (guint64 len, const char *json, gsize data_size)
{
  GByteArray *out = g_byte_array_new ();
  g_autofree guint8 *zeros = g_malloc0 (data_size + 1);

  g_byte_array_append (out, (const guint8 *) &len, 8);
  g_byte_array_append (out, (const guint8 *) json, strlen (json));
  g_byte_array_append (out, zeros, data_size);
  return g_byte_array_free_to_bytes (out);
}

static void
test_damaged (void)
{
  static const struct { const char *member; gsize data; const char *const needles[4]; } entries[] = {
    { "\"w\":{\"dtype\":\"F99\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, { "tensor 'w'", "dtype", "F99" } },
    { "\"w\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}", 8, { "tensor 'w'", "dtype" } },
    { "\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}", 8, { "tensor 'w'", "dtype", "missing" } },
    { "\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}", 8, { "tensor 'w'", "shape" } },
    { "\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}", 8, { "tensor 'w'", "shape" } },
    { "\"w\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}", 8, { "tensor 'w'", "shape" } },
    { "\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}", 8, { "tensor 'w'", "shape", "overflows" } },
    { "\"w\":{\"dtype\":\"F64\",\"shape\":[1152921504606846976,8],\"data_offsets\":[0,8]}", 8, { "tensor 'w'", "overflows" } },
    { "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}", 8, { "tensor 'w'", "data_offsets" } },
    { "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}", 8, { "tensor 'w'", "data_offsets" } },
    { "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}", 8, { "tensor 'w'", "data_offsets", "after" } },
    { "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}", 8, { "tensor 'w'", "data_offsets", "past the end" } },
    { "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9223372036854775807]}", 8, { "tensor 'w'", "past the end" } },
    { "\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}", 16, { "tensor 'w'", "data_offsets", "need 12" } },
    { "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"v\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[4,12]}",
      16, { "tensor 'v'", "overlap", "'w'" } },
    { "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}",
      16, { "'w' appears twice" } },
    { "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999999]}", 8, { "" } },
    { "\"w\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999999],\"data_offsets\":[0,8]}", 8, { "" } },
    { "\"w\":[1]", 8, { "tensor 'w'", "not a JSON object" } },
    { "\"a\\u001bb\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, { "control characters" } },
    /* Names that json-glib would cut at the NUL, into one tensor. */
    { "\"w\\u0000A\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"w\\u0000B\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}", 16, { "NUL" } },
    { "\"__metadata__\":[1]", 0, { "__metadata__" } },
    { "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}]", 8, { "JSON" } },
    { "\"w\":\"\xff\"", 0, { "UTF-8" } },
  };

  for (guint i = 0; i < G_N_ELEMENTS (entries); i++)
    {
      g_autoptr(GBytes) bytes = one_entry (entries[i].member, entries[i].data);
      expect_st_error (bytes, entries[i].needles);
    }

  {
    g_autoptr(GBytes) b1 = raw_file (200u * 1000 * 1000, "{}", 0);
    g_autoptr(GBytes) b2 = raw_file (64, "{}", 0);
    g_autoptr(GBytes) b3 = raw_file (G_MAXUINT64, "{}", 0);
    g_autoptr(GBytes) b4 = raw_file (8, "[1,2,3]", 1);
    g_autoptr(GBytes) b5 = raw_file (2, "{]", 0);
    g_autoptr(GBytes) b6 = g_bytes_new ("\x02\0\0", 3);
    g_autoptr(GBytes) b7 = raw_file (0, "", 0);
    expect_st_error (b1, NEEDLES ("byte 0", "header length", "allowed"));
    expect_st_error (b2, NEEDLES ("byte 0", "header length", "past the end"));
    expect_st_error (b3, NEEDLES ("header length"));
    expect_st_error (b4, NEEDLES ("not a safetensors file"));
    expect_st_error (b5, NEEDLES ("JSON"));
    expect_st_error (b6, NEEDLES ("header length", "3 bytes"));
    expect_st_error (b7, NEEDLES ("not a safetensors file"));
  }

  /* Nesting bombs never reach json-glib's recursive parser. */
  {
    g_autoptr(GString) deep = g_string_new ("{\"w\":");
    g_autoptr(GBytes) bytes = NULL;
    for (int i = 0; i < 100000; i++)
      g_string_append_c (deep, '[');
    bytes = raw_file (deep->len, deep->str, 0);
    expect_st_error (bytes, NEEDLES ("nested deeper", "byte 20"));
  }
}

/* Every prefix of a small valid file is refused. */
static void
test_truncated_everywhere (void)
{
  static const float v[6] = { 1, 2, 3, 4, 5, 6 };
  g_autoptr(GBytes) full = NULL;
  const guint8 *data;
  gsize size;
  StBuilder b;

  st_init (&b);
  st_add_raw (&b, "\"__metadata__\":{\"format\":\"pt\"}");
  st_add (&b, "a", "F32", "2", v, 8);
  st_add (&b, "b", "F32", "2,2", v + 2, 16);
  full = st_finish (&b);
  data = g_bytes_get_data (full, &size);
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(QbSafetensors) st = qb_safetensors_new_from_bytes (full, "ok", &error);
    g_assert_no_error (error);
    g_assert_cmpuint (qb_safetensors_get_n_tensors (st), ==, 2);
  }
  for (gsize len = 0; len < size; len++)
    {
      g_autoptr(GBytes) cut = g_bytes_new (data, len);
      expect_st_error (cut, NULL);
    }
}

/* Random damage to the JSON: anything but a crash. */
static void
test_random_damage (void)
{
  static const float v[6] = { 1, 2, 3, 4, 5, 6 };
  g_autoptr(GBytes) full = NULL;
  g_autoptr(GRand) rand = g_rand_new_with_seed (99);
  static const char alphabet[] = "{}[],:\"0123456789-e.\\ FUIBabcdefghijklmnopqrstuvwxyz_";
  gsize size;
  StBuilder b;
  guint n_ok = 0;

  st_init (&b);
  st_add_raw (&b, "\"__metadata__\":{\"format\":\"pt\"}");
  st_add (&b, "a", "F32", "2", v, 8);
  st_add (&b, "b", "F16", "2,2", v + 2, 8);
  full = st_finish (&b);
  size = g_bytes_get_size (full);

  for (int iter = 0; iter < 3000; iter++)
    {
      g_autofree guint8 *copy = g_memdup2 (g_bytes_get_data (full, NULL), size);
      g_autoptr(GBytes) bytes = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(QbSafetensors) st = NULL;

      for (int k = g_rand_int_range (rand, 1, 4); k > 0; k--)
        copy[g_rand_int_range (rand, 8, (gint32) size - 16)] =
          (guint8) alphabet[g_rand_int_range (rand, 0, sizeof alphabet - 1)];
      bytes = g_bytes_new (copy, size);
      st = qb_safetensors_new_from_bytes (bytes, "fuzz", &error);
      g_assert_true ((st == NULL) == (error != NULL));
      n_ok += st != NULL;
    }
  g_test_message ("random damage: %u of 3000 still parsed", n_ok);
}

int
main (int argc, char **argv)
{
#ifndef __SANITIZE_ADDRESS__
  struct rlimit limit = { 1024u << 20, 1024u << 20 };
  setrlimit (RLIMIT_DATA, &limit);
#endif

  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/safetensors/every-dtype", test_every_dtype);
  g_test_add_func ("/safetensors/shapes", test_shapes);
  g_test_add_func ("/safetensors/sharded", test_sharded);
  g_test_add_func ("/safetensors/sharded-damaged", test_sharded_damaged);
  g_test_add_func ("/safetensors/damaged", test_damaged);
  g_test_add_func ("/safetensors/truncated-everywhere", test_truncated_everywhere);
  g_test_add_func ("/safetensors/random-damage", test_random_damage);
  return g_test_run ();
}
