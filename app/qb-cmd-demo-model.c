/* SPDX-License-Identifier: MIT */
/* qb-cmd-demo-model.c — `quantbench demo-model`: write a demo GGUF model. */
#include <stdio.h>
#include <string.h>

#include "qb-cli.h"
#include "qb-demo-model.h"

int
qb_cmd_demo_model (int argc, char **argv)
{
  g_autofree char *params = NULL, *dtype = NULL, *out = NULL, *arch = NULL;
  gint64 seed = 1;
  int threads = 0, layers = 0, experts = 0, experts_used = 0, groups = 0, groups_used = 0;
  gboolean longrope = FALSE, sigmoid = FALSE, yarn = FALSE;
  const GOptionEntry entries[] = {
    { "params", 0, 0, G_OPTION_ARG_STRING, &params, "Approximate size: 370M, 1B, 5M, ... (default: the tiny model, about 3.4M)", "SIZE" },
    { "dtype", 0, 0, G_OPTION_ARG_STRING, &dtype, "f16 (default) or f32 for the weight matrices", "TYPE" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Random seed (default 1); the same seed gives the same file", "N" },
    { "arch", 0, 0, G_OPTION_ARG_STRING, &arch, "Family: llama (default), mistral, qwen2, qwen3, phi3, gemma2, gemma3, mixtral, qwen2moe, qwen3moe, deepseek2", "FAMILY" },
    { "layers", 0, 0, G_OPTION_ARG_INT, &layers, "Number of layers (default: from the size)", "N" },
    { "experts", 0, 0, G_OPTION_ARG_INT, &experts, "Experts per layer of a mixture (default 8)", "N" },
    { "experts-used", 0, 0, G_OPTION_ARG_INT, &experts_used, "Experts per token (default 2)", "N" },
    { "longrope", 0, 0, G_OPTION_ARG_NONE, &longrope, "phi3: LongRoPE factors as Phi-3 128k and Phi-3.5 carry them", NULL },
    { "sigmoid", 0, 0, G_OPTION_ARG_NONE, &sigmoid, "deepseek2: DeepSeek-V3 routing (sigmoid gating, selection bias, top-k renormalised, × 2.5) instead of V2's softmax", NULL },
    { "groups", 0, 0, G_OPTION_ARG_INT, &groups, "deepseek2: group-limited routing over N groups of experts (llama.cpp's Feb-2025 snapshot ignores it)", "N" },
    { "groups-used", 0, 0, G_OPTION_ARG_INT, &groups_used, "deepseek2: groups a token's experts may come from (default: all)", "N" },
    { "yarn", 0, 0, G_OPTION_ARG_NONE, &yarn, "deepseek2: YaRN RoPE scaling as DeepSeek-V2/V3 carry it (factor 4)", NULL },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "Threads (default: all CPUs)", "N" },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Where to write the .gguf file", "FILE" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("— write a demo model (LLaMA, Qwen, Gemma, Phi-3 architectures, or a mixture of experts)");
  g_autoptr(GError) error = NULL;
  g_autoptr(QbWorkers) workers = NULL;
  QbDemoModelSpec spec;
  QbDemoModelDims dims;
  gint64 t0;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!qb_cli_parse (context, &argc, &argv) || !qb_cli_check_threads (threads))
    return 2;
  qb_demo_model_spec_init (&spec);
  if (out == NULL || argc > 1 || threads < 0 || seed < 0 || layers < 0 || layers > 4096 ||
      experts < 0 || experts > 1024 || experts_used < 0 || experts_used > 1024 ||
      groups < 0 || groups > 64 || groups_used < 0 || groups_used > 64 ||
      !qb_demo_model_arch_known (arch) ||
      (params && !qb_demo_model_parse_size (params, &spec.n_params)) ||
      (dtype && g_ascii_strcasecmp (dtype, "f16") != 0 && g_ascii_strcasecmp (dtype, "f32") != 0))
    {
      g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);
      fprintf (stderr, "%s", help);
      return 2;
    }
  if (dtype && g_ascii_strcasecmp (dtype, "f32") == 0)
    spec.dtype = QB_DTYPE_F32;
  spec.seed = (guint64) seed;
  spec.arch = arch;
  spec.longrope = longrope;
  spec.n_layer = (guint) layers;
  spec.n_expert = (guint) experts;
  spec.n_expert_used = (guint) experts_used;
  spec.sigmoid = sigmoid;
  spec.yarn = yarn;
  spec.n_group = (guint) groups;
  spec.topk_group = (guint) groups_used;
  qb_demo_model_spec_dims (&spec, &dims);

  workers = qb_workers_new ((guint) threads);
  t0 = g_get_monotonic_time ();
  if (!qb_demo_model_write (&spec, out, workers, NULL, &error))
    return qb_cli_fail (error);

  printf ("%s: %.1fM parameters (%s), %u layers, hidden %u, ffn %u, heads %u/%u, vocab %u, "
          "seed %" G_GUINT64_FORMAT ", written in %.1f s\n",
          out, qb_demo_model_count_params (&dims) / 1e6, qb_dtype_name (spec.dtype), dims.n_layer,
          dims.n_embd, dims.n_ff, dims.n_head, dims.n_head_kv, dims.n_vocab, spec.seed,
          (g_get_monotonic_time () - t0) / 1e6);
  if (dims.n_expert > 0)
    printf ("  %s: %u experts per layer of width %u, %u per token, shared expert %u\n",
            arch, dims.n_expert, dims.n_ff_exp, dims.n_expert_used, dims.n_ff_shexp);
  if (dims.kv_lora_rank > 0)
    printf ("  latent attention: Q rank %u, KV rank %u, K heads %u (%u rotated), V heads %u; "
            "%u leading dense layer(s)\n", dims.q_lora_rank, dims.kv_lora_rank, dims.head_k,
            dims.n_rot, dims.head_v, dims.n_dense_lead);
  return 0;
}
