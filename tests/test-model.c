/* SPDX-License-Identifier: MIT */
/* test-model.c — QbModel over GGUF: facts, tensor roles, row reading,
 * opening by folder, and the cost of opening a huge file.
 */
#include <fcntl.h>
#include <math.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "qb-model.h"
#include "qb-test-util.h"

static void
test_stories (void)
{
  g_autofree char *path = qb_test_shared_path ("models/stories260K.gguf");
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  const QbArchInfo *a;
  const QbTensor *t;
  guint n_layer_tensors = 0;
  guint index;

  if (path == NULL)
    return;
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (qb_model_get_file_kind (model), ==, QB_MODEL_FILE_GGUF);
  g_assert_nonnull (qb_model_get_gguf (model));

  a = qb_model_get_arch (model);
  g_assert_cmpstr (a->family, ==, "llama");
  g_assert_cmpstr (a->name, ==, "llama");
  g_assert_cmpuint (a->n_layer, ==, 5);
  g_assert_cmpuint (a->n_embd, ==, 64);
  g_assert_cmpuint (a->n_head, ==, 8);
  g_assert_cmpuint (a->n_head_kv, ==, 4);
  g_assert_cmpuint (a->n_ff, ==, 172);
  g_assert_cmpuint (a->n_vocab, ==, 512);    /* from the token list: no llama.vocab_size */
  g_assert_cmpuint (a->n_ctx, ==, 128);
  g_assert_cmpuint (a->head_dim, ==, 8);
  g_assert_cmpfloat_with_epsilon (a->rms_eps, 1e-5, 1e-9);
  g_assert_cmpfloat (a->rope_freq_base, ==, 0.0);   /* not stated in this file */
  g_assert_false (a->tied_embeddings);

  g_assert_cmpuint (qb_model_get_n_tensors (model), ==, 48);
  g_assert_cmpint (qb_model_get_n_params (model), ==, 292800);
  g_assert_cmpuint (qb_model_get_n_bytes (model), ==, 292800 * 4);
  g_assert_cmpuint (qb_model_get_file_size (model), ==, 1185376);
  /* The fingerprint covers the header: everything before the data. */
  {
    g_autoptr(GBytes) bytes = qb_test_read_file (path);
    g_autofree char *expected = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
                                                             g_bytes_get_data (bytes, NULL), 14176);
    g_assert_cmpstr (qb_model_get_fingerprint (model), ==, expected);
  }

  for (guint i = 0; i < qb_model_get_n_tensors (model); i++)
    {
      t = qb_model_get_tensor (model, i);
      g_assert_cmpint (t->dtype, ==, QB_DTYPE_F32);
      g_assert_cmpuint (t->n_bytes, ==, (guint64) t->n_params * 4);
      if (t->layer >= 0)
        {
          n_layer_tensors++;
          g_assert_cmpint (t->layer, <, 5);
          g_assert_cmpint (t->role, !=, QB_ROLE_OTHER);
        }
    }
  g_assert_cmpuint (n_layer_tensors, ==, 45);

  t = qb_model_find_tensor (model, "blk.3.attn_v.weight", &index);
  g_assert_nonnull (t);
  g_assert_cmpint (t->layer, ==, 3);
  g_assert_cmpint (t->role, ==, QB_ROLE_ATTN_V);
  g_assert_cmpint (t->ne[0], ==, 64);
  g_assert_cmpint (t->ne[1], ==, 32);
  g_assert_cmpint (qb_tensor_n_rows (t), ==, 32);
  t = qb_model_find_tensor (model, "token_embd.weight", NULL);
  g_assert_cmpint (t->role, ==, QB_ROLE_TOKEN_EMBD);
  g_assert_cmpint (t->layer, ==, -1);
  t = qb_model_find_tensor (model, "output.weight", NULL);
  g_assert_cmpint (t->role, ==, QB_ROLE_OUTPUT);
  t = qb_model_find_tensor (model, "blk.0.ffn_down.weight", NULL);
  g_assert_cmpint (t->ne[0], ==, 172);
  g_assert_cmpint (t->role, ==, QB_ROLE_FFN_DOWN);
}

/* Rows read through the model equal the floats in the file. */
static void
test_stories_rows (void)
{
  g_autofree char *path = qb_test_shared_path ("models/stories260K.gguf");
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  g_autofree float *rows = NULL;
  const QbTensor *t;
  guint index;

  if (path == NULL)
    return;
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  t = qb_model_find_tensor (model, "blk.2.ffn_down.weight", &index);
  rows = g_new (float, 3 * 172);
  qb_model_read_rows (model, index, 10, 3, rows, &error);
  g_assert_no_error (error);
  g_assert_true (memcmp (rows, (const float *) t->data + 10 * 172, 3 * 172 * 4) == 0);

  qb_model_read_rows (model, index, 63, 1, rows, &error);       /* the last row */
  g_assert_no_error (error);
  g_assert_false (qb_model_read_rows (model, index, 63, 2, rows, &error));
  g_assert_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (qb_model_read_rows (model, index, -1, 1, rows, &error));
  g_assert_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_true (qb_model_read_rows (model, index, 64, 0, rows, &error));

  /* A range that is not whole elements of the row. */
  qb_model_read_range (model, index, 5, 7, rows, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (rows[0], ==, ((const float *) t->data)[5]);
}

/* Row reading for the scalar GGUF types, with a file built here. */
static void
test_rows_scalar_types (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "types.gguf", NULL);
  g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  static const QbDType types[] = { QB_DTYPE_F32, QB_DTYPE_F16, QB_DTYPE_BF16, QB_DTYPE_F64,
                                   QB_DTYPE_I8, QB_DTYPE_I16, QB_DTYPE_I32, QB_DTYPE_I64 };
  gint64 ne[2] = { 3, 2 };
  float values[6] = { -1.5f, 0, 2, 3.25f, -100, 64 };
  float out[6];

  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    qb_gguf_writer_add_tensor (w, qb_dtype_name (types[i]), 2, ne, types[i]);
  ne[0] = 256;
  ne[1] = 1;
  qb_gguf_writer_add_tensor (w, "iq2", 2, ne, QB_DTYPE_IQ2_XXS);
  g_assert_true (qb_gguf_writer_begin (w, path, &error));
  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    {
      guint8 buf[6 * 8];
      for (guint k = 0; k < 6; k++)
        {
          float v = values[k];
          switch (types[i])
            {
            case QB_DTYPE_F32: memcpy (buf + 4 * k, &v, 4); break;
            case QB_DTYPE_F16: { guint16 h = qb_fp32_to_fp16 (v); memcpy (buf + 2 * k, &h, 2); break; }
            case QB_DTYPE_BF16: { guint16 h = qb_fp32_to_bf16 (v); memcpy (buf + 2 * k, &h, 2); break; }
            case QB_DTYPE_F64: { double d = v; memcpy (buf + 8 * k, &d, 8); break; }
            case QB_DTYPE_I8: { gint8 x = (gint8) v; memcpy (buf + k, &x, 1); break; }
            case QB_DTYPE_I16: { gint16 x = (gint16) v; memcpy (buf + 2 * k, &x, 2); break; }
            case QB_DTYPE_I32: { gint32 x = (gint32) v; memcpy (buf + 4 * k, &x, 4); break; }
            case QB_DTYPE_I64: { gint64 x = (gint64) v; memcpy (buf + 8 * k, &x, 8); break; }
            default: g_assert_not_reached ();
            }
        }
      g_assert_true (qb_gguf_writer_write_tensor (w, i, buf, 6 * qb_dtype_info (types[i])->type_size, &error));
    }
  {
    guint8 iq[66] = { 0 };
    g_assert_true (qb_gguf_writer_write_tensor (w, G_N_ELEMENTS (types), iq, 66, &error));
  }
  g_assert_true (qb_gguf_writer_finish (w, &error));

  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    {
      gboolean is_int = types[i] >= QB_DTYPE_I8 && types[i] <= QB_DTYPE_I64;
      qb_model_read_rows (model, i, 0, 2, out, &error);
      g_assert_no_error (error);
      for (guint k = 0; k < 6; k++)
        g_assert_cmpfloat (out[k], ==, is_int ? (float) (gint64) values[k] : values[k]);
      qb_model_read_rows (model, i, 1, 1, out, &error);
      g_assert_cmpfloat (out[0], ==, is_int ? 3.0f : 3.25f);
    }
  /* Listed, but not readable. */
  g_assert_cmpint (qb_model_get_tensor (model, G_N_ELEMENTS (types))->dtype, ==, QB_DTYPE_IQ2_XXS);
  g_assert_false (qb_model_read_rows (model, G_N_ELEMENTS (types), 0, 1, out, &error));
  g_assert_error (error, QB_MODEL_ERROR, QB_MODEL_ERROR_UNREADABLE);
  g_assert_nonnull (strstr (error->message, "IQ2_XXS"));
}

/* The F16 row converter agrees with the scalar conversion for every half
 * (NaNs stay NaN), on the hardware path and on the portable one. */
static void
check_f16_rows (void)
{
  g_autofree guint16 *halves = g_new (guint16, 65536 + 7);
  g_autofree float *out = g_new (float, 65536 + 7);
  const QbDTypeInfo *info = qb_dtype_info (QB_DTYPE_F16);

  for (guint i = 0; i < 65536 + 7; i++)
    halves[i] = (guint16) (i * 40503u);               /* every half, in scrambled order */
  info->to_float (halves, out, 65536 + 7);
  for (guint i = 0; i < 65536 + 7; i++)
    {
      float ref = qb_fp16_to_fp32 (halves[i]);
      if (isnan (ref))
        g_assert_true (isnan (out[i]));
      else if (memcmp (&ref, &out[i], 4) != 0)
        g_error ("half 0x%04x: %g, expected %g", halves[i], out[i], ref);
    }
}

static void
test_f16_rows (void)
{
  if (g_test_subprocess ())
    {
      g_setenv ("QB_CPU_BASELINE", "1", TRUE);       /* before the first conversion */
      check_f16_rows ();
      return;
    }
  check_f16_rows ();
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

/* ---- tensor names ------------------------------------------------------ */

static void
test_names (void)
{
  static const struct { const char *name; int layer; QbTensorRole role; gboolean bias; } cases[] = {
    { "blk.3.attn_v.weight", 3, QB_ROLE_ATTN_V, FALSE },
    { "model.layers.3.self_attn.v_proj.weight", 3, QB_ROLE_ATTN_V, FALSE },
    { "model.layers.3.self_attn.v_proj.bias", 3, QB_ROLE_ATTN_V, TRUE },
    { "blk.0.attn_q.weight", 0, QB_ROLE_ATTN_Q, FALSE },
    { "blk.12.attn_k.weight", 12, QB_ROLE_ATTN_K, FALSE },
    { "blk.1.attn_output.weight", 1, QB_ROLE_ATTN_OUTPUT, FALSE },
    { "blk.1.attn_qkv.weight", 1, QB_ROLE_ATTN_QKV, FALSE },
    { "blk.7.attn_norm.weight", 7, QB_ROLE_ATTN_NORM, FALSE },
    { "blk.7.ffn_norm.weight", 7, QB_ROLE_FFN_NORM, FALSE },
    { "blk.7.ffn_gate.weight", 7, QB_ROLE_FFN_GATE, FALSE },
    { "blk.7.ffn_up.weight", 7, QB_ROLE_FFN_UP, FALSE },
    { "blk.7.ffn_down.weight", 7, QB_ROLE_FFN_DOWN, FALSE },
    { "blk.7.attn_q_norm.weight", 7, QB_ROLE_ATTN_Q_NORM, FALSE },
    { "blk.7.attn_k_norm.weight", 7, QB_ROLE_ATTN_K_NORM, FALSE },
    { "blk.7.post_attention_norm.weight", 7, QB_ROLE_ATTN_POST_NORM, FALSE },
    { "blk.7.post_ffw_norm.weight", 7, QB_ROLE_FFN_POST_NORM, FALSE },
    { "blk.7.attn_rot_embd.weight", 7, QB_ROLE_OTHER, FALSE },
    { "model.layers.2.self_attn.q_norm.weight", 2, QB_ROLE_ATTN_Q_NORM, FALSE },
    { "model.layers.2.mlp.gate_up_proj.weight", 2, QB_ROLE_FFN_UP, FALSE },
    { "model.layers.2.pre_feedforward_layernorm.weight", 2, QB_ROLE_FFN_NORM, FALSE },
    { "model.layers.2.post_feedforward_layernorm.weight", 2, QB_ROLE_FFN_POST_NORM, FALSE },
    { "token_embd.weight", -1, QB_ROLE_TOKEN_EMBD, FALSE },
    { "output.weight", -1, QB_ROLE_OUTPUT, FALSE },
    { "output_norm.weight", -1, QB_ROLE_OUTPUT_NORM, FALSE },
    { "rope_freqs.weight", -1, QB_ROLE_ROPE_FREQS, FALSE },
    { "model.embed_tokens.weight", -1, QB_ROLE_TOKEN_EMBD, FALSE },
    { "lm_head.weight", -1, QB_ROLE_OUTPUT, FALSE },
    { "model.norm.weight", -1, QB_ROLE_OUTPUT_NORM, FALSE },
    { "model.layers.10.input_layernorm.weight", 10, QB_ROLE_ATTN_NORM, FALSE },
    { "model.layers.10.post_attention_layernorm.weight", 10, QB_ROLE_FFN_NORM, FALSE },
    { "model.layers.0.self_attn.q_proj.weight", 0, QB_ROLE_ATTN_Q, FALSE },
    { "model.layers.0.self_attn.k_proj.weight", 0, QB_ROLE_ATTN_K, FALSE },
    { "model.layers.0.self_attn.o_proj.weight", 0, QB_ROLE_ATTN_OUTPUT, FALSE },
    { "model.layers.0.self_attn.qkv_proj.weight", 0, QB_ROLE_ATTN_QKV, FALSE },
    { "model.layers.0.mlp.gate_proj.weight", 0, QB_ROLE_FFN_GATE, FALSE },
    { "model.layers.0.mlp.up_proj.weight", 0, QB_ROLE_FFN_UP, FALSE },
    { "model.layers.0.mlp.down_proj.weight", 0, QB_ROLE_FFN_DOWN, FALSE },
    { "model.layers.2.self_attn.rotary_emb.inv_freq", 2, QB_ROLE_ROPE_FREQS, FALSE },
    { "language_model.model.layers.5.mlp.up_proj.weight", 5, QB_ROLE_FFN_UP, FALSE },
    { "language_model.model.embed_tokens.weight", -1, QB_ROLE_TOKEN_EMBD, FALSE },
    { "transformer.h.4.attn.c_attn.weight", 4, QB_ROLE_ATTN_QKV, FALSE },
    { "transformer.h.4.attn.c_attn.bias", 4, QB_ROLE_ATTN_QKV, TRUE },
    { "transformer.h.4.mlp.c_proj.weight", 4, QB_ROLE_FFN_DOWN, FALSE },
    { "transformer.h.4.ln_1.weight", 4, QB_ROLE_ATTN_NORM, FALSE },
    { "transformer.wte.weight", -1, QB_ROLE_TOKEN_EMBD, FALSE },
    { "transformer.ln_f.weight", -1, QB_ROLE_OUTPUT_NORM, FALSE },
    { "layers.2.attention.wk.weight", 2, QB_ROLE_ATTN_K, FALSE },
    { "layers.2.feed_forward.w1.weight", 2, QB_ROLE_FFN_GATE, FALSE },
    { "layers.2.feed_forward.w2.weight", 2, QB_ROLE_FFN_DOWN, FALSE },
    { "tok_embeddings.weight", -1, QB_ROLE_TOKEN_EMBD, FALSE },
    { "gpt_neox.layers.1.attention.query_key_value.weight", 1, QB_ROLE_ATTN_QKV, FALSE },
    { "gpt_neox.layers.1.mlp.dense_4h_to_h.weight", 1, QB_ROLE_FFN_DOWN, FALSE },
    /* Mixtures of experts: GGUF, Mixtral, Qwen2/3-MoE, DeepSeek. */
    { "blk.2.ffn_gate_inp.weight", 2, QB_ROLE_FFN_GATE_INP, FALSE },
    { "blk.2.ffn_gate_exps.weight", 2, QB_ROLE_FFN_GATE_EXPS, FALSE },
    { "blk.2.ffn_up_exps.weight", 2, QB_ROLE_FFN_UP_EXPS, FALSE },
    { "blk.2.ffn_down_exps.weight", 2, QB_ROLE_FFN_DOWN_EXPS, FALSE },
    { "blk.2.ffn_gate_shexp.weight", 2, QB_ROLE_FFN_GATE_SHEXP, FALSE },
    { "blk.2.ffn_up_shexp.weight", 2, QB_ROLE_FFN_UP_SHEXP, FALSE },
    { "blk.2.ffn_down_shexp.weight", 2, QB_ROLE_FFN_DOWN_SHEXP, FALSE },
    { "blk.2.ffn_gate_inp_shexp.weight", 2, QB_ROLE_FFN_GATE_INP_SHEXP, FALSE },
    { "model.layers.4.block_sparse_moe.gate.weight", 4, QB_ROLE_FFN_GATE_INP, FALSE },
    { "model.layers.4.block_sparse_moe.experts.7.w1.weight", 4, QB_ROLE_FFN_GATE_EXPS, FALSE },
    { "model.layers.4.block_sparse_moe.experts.17.w2.weight", 4, QB_ROLE_FFN_DOWN_EXPS, FALSE },
    { "model.layers.4.block_sparse_moe.experts.0.w3.weight", 4, QB_ROLE_FFN_UP_EXPS, FALSE },
    { "model.layers.1.mlp.gate.weight", 1, QB_ROLE_FFN_GATE_INP, FALSE },
    { "model.layers.1.mlp.experts.59.gate_proj.weight", 1, QB_ROLE_FFN_GATE_EXPS, FALSE },
    { "model.layers.1.mlp.experts.3.up_proj.weight", 1, QB_ROLE_FFN_UP_EXPS, FALSE },
    { "model.layers.1.mlp.experts.3.down_proj.weight", 1, QB_ROLE_FFN_DOWN_EXPS, FALSE },
    { "model.layers.1.mlp.shared_expert.gate_proj.weight", 1, QB_ROLE_FFN_GATE_SHEXP, FALSE },
    { "model.layers.1.mlp.shared_expert.up_proj.weight", 1, QB_ROLE_FFN_UP_SHEXP, FALSE },
    { "model.layers.1.mlp.shared_expert.down_proj.weight", 1, QB_ROLE_FFN_DOWN_SHEXP, FALSE },
    { "model.layers.1.mlp.shared_expert_gate.weight", 1, QB_ROLE_FFN_GATE_INP_SHEXP, FALSE },
    { "model.layers.1.mlp.shared_experts.down_proj.weight", 1, QB_ROLE_FFN_DOWN_SHEXP, FALSE },
    /* DeepSeek's multi-head latent attention and selection bias, GGUF and Hugging Face. */
    { "blk.5.attn_q_a.weight", 5, QB_ROLE_ATTN_Q_A, FALSE },
    { "blk.5.attn_q_a_norm.weight", 5, QB_ROLE_ATTN_Q_A_NORM, FALSE },
    { "blk.5.attn_q_b.weight", 5, QB_ROLE_ATTN_Q_B, FALSE },
    { "blk.5.attn_kv_a_mqa.weight", 5, QB_ROLE_ATTN_KV_A_MQA, FALSE },
    { "blk.5.attn_kv_a_norm.weight", 5, QB_ROLE_ATTN_KV_A_NORM, FALSE },
    { "blk.5.attn_kv_b.weight", 5, QB_ROLE_ATTN_KV_B, FALSE },
    { "blk.5.exp_probs_b.bias", 5, QB_ROLE_FFN_EXP_PROBS_B, TRUE },
    { "model.layers.5.self_attn.q_a_proj.weight", 5, QB_ROLE_ATTN_Q_A, FALSE },
    { "model.layers.5.self_attn.q_a_layernorm.weight", 5, QB_ROLE_ATTN_Q_A_NORM, FALSE },
    { "model.layers.5.self_attn.q_b_proj.weight", 5, QB_ROLE_ATTN_Q_B, FALSE },
    { "model.layers.5.self_attn.kv_a_proj_with_mqa.weight", 5, QB_ROLE_ATTN_KV_A_MQA, FALSE },
    { "model.layers.5.self_attn.kv_a_layernorm.weight", 5, QB_ROLE_ATTN_KV_A_NORM, FALSE },
    { "model.layers.5.self_attn.kv_b_proj.weight", 5, QB_ROLE_ATTN_KV_B, FALSE },
    { "model.layers.5.mlp.gate.e_score_correction_bias", 5, QB_ROLE_FFN_EXP_PROBS_B, FALSE },
    { "model.layers.1.mlp.experts.x.up_proj.weight", 1, QB_ROLE_OTHER, FALSE },
    { "model.layers.1.mlp.experts.3", 1, QB_ROLE_OTHER, FALSE },
    /* Not layers: a number without a container word, a container without a number. */
    { "vision.patch.3.proj.weight", -1, QB_ROLE_OTHER, FALSE },
    { "blk.x.attn_q.weight", -1, QB_ROLE_OTHER, FALSE },
    { "blk.99999999999999999999.attn_q.weight", -1, QB_ROLE_OTHER, FALSE },
    { "weight", -1, QB_ROLE_OTHER, FALSE },
    { "", -1, QB_ROLE_OTHER, FALSE },
    { "blk.", -1, QB_ROLE_OTHER, FALSE },
    { "blk.3", 3, QB_ROLE_OTHER, FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      int layer = 42;
      QbTensorRole role = QB_ROLE_N_ROLES;
      gboolean bias = 2;

      qb_tensor_name_parse (cases[i].name, &layer, &role, &bias);
      if (layer != cases[i].layer || role != cases[i].role || bias != cases[i].bias)
        g_error ("%s: layer %d role %s bias %d; expected %d %s %d", cases[i].name, layer,
                 qb_tensor_role_name (role), bias, cases[i].layer,
                 qb_tensor_role_name (cases[i].role), cases[i].bias);
    }

  for (guint r = 0; r < QB_ROLE_N_ROLES; r++)
    g_assert_cmpint (qb_tensor_role_from_name (qb_tensor_role_name (r)), ==, r);
  g_assert_cmpstr (qb_tensor_role_name (QB_ROLE_ATTN_V), ==, "attn_v");
  g_assert_cmpint (qb_tensor_role_from_name ("nonsense"), ==, QB_ROLE_OTHER);
  g_assert_cmpstr (qb_tensor_role_name (999), ==, "other");

  g_assert_cmpint (qb_tensor_name_expert ("model.layers.4.block_sparse_moe.experts.17.w2.weight"), ==, 17);
  g_assert_cmpint (qb_tensor_name_expert ("model.layers.1.mlp.experts.0.up_proj.weight"), ==, 0);
  g_assert_cmpint (qb_tensor_name_expert ("blk.1.ffn_up_exps.weight"), ==, -1);
  g_assert_cmpint (qb_tensor_name_expert ("model.layers.1.mlp.experts.3"), ==, -1);
  g_assert_cmpint (qb_tensor_name_expert ("model.layers.1.mlp.myexperts.3.up.weight"), ==, -1);
  g_assert_true (qb_tensor_role_is_expert (QB_ROLE_FFN_DOWN_EXPS));
  g_assert_false (qb_tensor_role_is_expert (QB_ROLE_FFN_DOWN_SHEXP));
  g_assert_false (qb_tensor_role_is_expert (QB_ROLE_FFN_GATE_INP));
}

/* ---- opening ---------------------------------------------------------- */

static void
write_tiny_gguf (const char *path, const char *arch)
{
  g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
  g_autoptr(GError) error = NULL;
  gint64 ne[2] = { 4, 6 };
  float zeros[24] = { 0 };

  if (arch)
    {
      g_autofree char *key = g_strdup_printf ("%s.vocab_size", arch);
      qb_gguf_writer_set_string (w, "general.architecture", arch);
      qb_gguf_writer_set_uint32 (w, key, 6);
    }
  qb_gguf_writer_add_tensor (w, "token_embd.weight", 2, ne, QB_DTYPE_F32);
  g_assert_true (qb_gguf_writer_begin (w, path, &error));
  g_assert_true (qb_gguf_writer_write_tensor (w, 0, zeros, sizeof zeros, &error));
  g_assert_true (qb_gguf_writer_finish (w, &error));
}

static void
expect_open_error (const char *path, GQuark domain, int code, const char *needle)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = qb_model_open (path, &error);

  g_assert_null (model);
  g_assert_error (error, domain, code);
  if (strstr (error->message, needle) == NULL)
    g_error ("message lacks \"%s\": %s", needle, error->message);
}

static void
test_open_paths (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *a = g_build_filename (dir, "a.gguf", NULL);
  g_autofree char *b = g_build_filename (dir, "b.gguf", NULL);
  g_autofree char *noext = g_build_filename (dir, "model-file", NULL);
  g_autofree char *text = g_build_filename (dir, "notes.txt", NULL);
  g_autofree char *sub = g_build_filename (dir, "sub", NULL);
  g_autoptr(GError) error = NULL;

  expect_open_error (dir, QB_MODEL_ERROR, QB_MODEL_ERROR_FORMAT, "no .gguf");
  write_tiny_gguf (a, "qwen2");
  {
    g_autoptr(QbModel) model = qb_model_open (dir, &error);     /* the only .gguf */
    const QbArchInfo *arch;
    g_assert_no_error (error);
    g_assert_cmpstr (qb_model_get_path (model), ==, a);
    arch = qb_model_get_arch (model);
    g_assert_cmpstr (arch->family, ==, "qwen2");
    g_assert_cmpuint (arch->n_vocab, ==, 6);        /* qwen2.vocab_size */
    g_assert_cmpuint (arch->n_embd, ==, 4);         /* from token_embd */
    g_assert_true (arch->tied_embeddings);          /* no output tensor */
  }
  write_tiny_gguf (b, NULL);
  expect_open_error (dir, QB_MODEL_ERROR, QB_MODEL_ERROR_FORMAT, "2 .gguf files");
  {
    g_autoptr(QbModel) model = qb_model_open (b, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (qb_model_get_arch (model)->family, ==, "unknown");
    g_assert_cmpuint (qb_model_get_arch (model)->n_vocab, ==, 6);
  }

  /* Sniffed by content when the name says nothing. */
  g_assert_cmpint (g_rename (b, noext), ==, 0);
  {
    g_autoptr(QbModel) model = qb_model_open (noext, &error);
    g_assert_no_error (error);
    g_assert_cmpint (qb_model_get_file_kind (model), ==, QB_MODEL_FILE_GGUF);
  }
  g_assert_true (g_file_set_contents (text, "hello, this is not a model", -1, NULL));
  expect_open_error (text, QB_MODEL_ERROR, QB_MODEL_ERROR_FORMAT, "not a GGUF or safetensors");
  g_assert_cmpint (g_mkdir (sub, 0700), ==, 0);
  expect_open_error (sub, QB_MODEL_ERROR, QB_MODEL_ERROR_FORMAT, "sub");
  {
    g_autofree char *missing = g_build_filename (dir, "missing.gguf", NULL);
    expect_open_error (missing, QB_MODEL_ERROR, QB_MODEL_ERROR_IO, "missing.gguf");
  }
  /* A damaged .gguf gets the GGUF reader's message. */
  g_assert_true (g_file_set_contents (a, "GGUF\x01\0\0\0", 8, NULL));
  expect_open_error (a, QB_GGUF_ERROR, QB_GGUF_ERROR_BAD_VERSION, "a.gguf: byte 4");
}

/* A 16 GiB model (sparse on disk) opens without its data being read, and
 * rows are reachable at the far end. */
static void
test_huge_sparse (void)
{
  g_autofree char *dir = qb_test_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "huge.gguf", NULL);
  g_autoptr(QbGgufWriter) w = qb_gguf_writer_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(QbModel) model = NULL;
  static float last[65536];
  const float one = 1.0f;
  gint64 t0;

  /* Write a small file, then patch the shape to 65536 x 65536 and extend
   * the file over a hole, with only the very last value set. */
  {
    g_autoptr(GBytes) bytes = NULL;
    float zeros[64] = { 0 };
    const guint8 *p, *hit;
    gint64 big = 65536;
    guint64 data_offset;
    off_t shape_at;
    gsize len;
    int fd;

    qb_gguf_writer_set_string (w, "general.architecture", "llama");
    qb_gguf_writer_add_tensor (w, "blk.0.ffn_up.weight", 2, (gint64[]) { 8, 8 }, QB_DTYPE_F32);
    g_assert_true (qb_gguf_writer_begin (w, path, &error));
    g_assert_true (qb_gguf_writer_write_tensor (w, 0, zeros, sizeof zeros, &error));
    g_assert_true (qb_gguf_writer_finish (w, &error));

    bytes = qb_test_read_file (path);
    p = g_bytes_get_data (bytes, &len);
    hit = memmem (p, len, "blk.0.ffn_up.weight", 19);
    g_assert_nonnull (hit);
    shape_at = (hit - p) + 19 + 4;                      /* after the name and n_dims */
    data_offset = len - sizeof zeros;
    fd = open (path, O_RDWR | O_CLOEXEC);
    g_assert_cmpint (fd, >=, 0);
    g_assert_cmpint (pwrite (fd, &big, 8, shape_at), ==, 8);
    g_assert_cmpint (pwrite (fd, &big, 8, shape_at + 8), ==, 8);
    if (ftruncate (fd, (off_t) (data_offset + (G_GUINT64_CONSTANT (1) << 34))) != 0)
      {
        close (fd);
        g_test_skip ("cannot make a 16 GiB sparse file here");
        return;
      }
    g_assert_cmpint (pwrite (fd, &one, 4, (off_t) (data_offset + (G_GUINT64_CONSTANT (1) << 34) - 4)), ==, 4);
    close (fd);
  }

  t0 = g_get_monotonic_time ();
  model = qb_model_open (path, &error);
  g_assert_no_error (error);
  g_test_message ("opened a 16 GiB model in %.3f ms", (g_get_monotonic_time () - t0) / 1000.0);
  g_assert_cmpint (qb_model_get_n_params (model), ==, G_GINT64_CONSTANT (1) << 32);
  g_assert_cmpuint (qb_model_get_file_size (model), >, G_GUINT64_CONSTANT (1) << 34);
  g_assert_true (qb_model_read_rows (model, 0, 65535, 1, last, &error));
  g_assert_cmpfloat (last[65535], ==, 1.0f);
  g_assert_cmpfloat (last[0], ==, 0.0f);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/model/stories/facts", test_stories);
  g_test_add_func ("/model/stories/rows", test_stories_rows);
  g_test_add_func ("/model/rows-scalar-types", test_rows_scalar_types);
  g_test_add_func ("/model/names", test_names);
  g_test_add_func ("/model/f16-rows", test_f16_rows);
  g_test_add_func ("/model/open-paths", test_open_paths);
  g_test_add_func ("/model/huge-sparse", test_huge_sparse);
  return g_test_run ();
}
