/* SPDX-License-Identifier: MIT */
/* qb-tokenizer-gguf.c — a tokenizer from a GGUF file's tokenizer.ggml.*
 * metadata, with llama.cpp's defaults: SPM (model "llama") has BOS 1, EOS 2,
 * UNK 0, adds BOS and a space prefix; BPE (model "gpt2") has BOS = EOS = 11
 * and adds nothing unless the file says so.  tokenizer.ggml.pre picks the
 * pre-tokenizer's regular expressions (the ones llama.cpp runs for it).
 */
#include "qb-tokenizer-private.h"

#include <string.h>

/* ---- from GGUF -------------------------------------------------------- */

typedef struct {
  const char *names[12];
  const char *patterns[5];
  gboolean    ignore_merges;
  gboolean    add_bos;        /* the default when the file does not say */
} PreTokenizer;

#define GPT2_AND_DIGITS { "\\p{N}", QB_PRETOKENIZE_GPT2 }

/* tokenizer.ggml.pre values and the patterns llama.cpp runs for them. */
static const PreTokenizer pre_tokenizers[] = {
  { { "default" },
    { "[\\p{P}\\$\\+<=>\\^~\\|]+", QB_PRETOKENIZE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]" } },
  { { "llama3", "llama-v3", "llama-bpe", "falcon3" },
    { QB_PRETOKENIZE_LLAMA3 }, TRUE, TRUE },
  { { "dbrx", "smaug-bpe", "chatglm-bpe" },
    { QB_PRETOKENIZE_LLAMA3 } },
  { { "gpt-2", "phi-2", "roberta-bpe", "mpt", "olmo", "jais" },
    { QB_PRETOKENIZE_GPT2 } },
  { { "qwen2", "deepseek-r1-qwen", "stablelm2", "megrez" },
    { "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
      "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" } },
  { { "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b" },
    GPT2_AND_DIGITS },
};

static const PreTokenizer *
find_pre_tokenizer (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (pre_tokenizers); i++)
    for (gsize j = 0; j < G_N_ELEMENTS (pre_tokenizers[i].names) && pre_tokenizers[i].names[j]; j++)
      if (strcmp (pre_tokenizers[i].names[j], name) == 0)
        return &pre_tokenizers[i];
  return NULL;
}

static gint32
gguf_id (QbGguf *gguf, const char *key, gint32 fallback, guint n_tokens)
{
  guint64 v;

  /* Out-of-range ids fall back to the default, as in llama.cpp. */
  if (qb_gguf_get_uint (gguf, key, &v) && v < n_tokens)
    return (gint32) v;
  return fallback;
}

static gboolean
gguf_flag (QbGguf *gguf, const char *key, gboolean fallback)
{
  gboolean b;
  return qb_gguf_get_bool (gguf, key, &b) ? b : fallback;
}

static gboolean
gguf_merges (QbTokenizer *tok, QbGguf *gguf, GError **error)
{
  const QbGgufString *m;
  guint64 n = 0;

  m = qb_gguf_get_string_array (gguf, "tokenizer.ggml.merges", &n);
  if (m == NULL)
    {
      g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_MISSING,
                   "%s: a gpt2 tokenizer needs tokenizer.ggml.merges", qb_gguf_get_path (gguf));
      return FALSE;
    }
  for (guint64 i = 0; i < n; i++)
    {
      const char *s = m[i].str, *sp = NULL;

      for (guint64 j = 1; j < m[i].len; j++)
        if (s[j] == ' ')
          {
            sp = s + j;
            break;
          }
      if (sp == NULL)
        continue;
      if (!qb_tokenizer_add_merge (tok, s, sp - s, sp + 1, m[i].len - (sp + 1 - s), (gint32) i))
        {
          g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_INVALID,
                       "%s: tokenizer.ggml.merges[%" G_GUINT64_FORMAT "] is too long",
                       qb_gguf_get_path (gguf), i);
          return FALSE;
        }
    }
  return TRUE;
}

static const PreTokenizer *
gguf_pre_tokenizer (QbTokenizer *tok, QbGguf *gguf, GError **error)
{
  const char *pre = qb_gguf_get_string (gguf, "tokenizer.ggml.pre");
  const PreTokenizer *p = find_pre_tokenizer (pre != NULL ? pre : "default");

  if (p == NULL)
    {
      g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_UNSUPPORTED,
                   "%s: pre-tokenizer '%s' (tokenizer.ggml.pre) is not supported",
                   qb_gguf_get_path (gguf), pre);
      return NULL;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (p->patterns) && p->patterns[i]; i++)
    if (!qb_tokenizer_add_pattern (tok, p->patterns[i], error))
      return NULL;
  tok->ignore_merges = p->ignore_merges;
  return p;
}

QbTokenizer *
qb_tokenizer_new_from_gguf (QbGguf *gguf, GError **error)
{
  const char *path = qb_gguf_get_path (gguf);
  const char *model = qb_gguf_get_string (gguf, "tokenizer.ggml.model");
  const QbGgufString *texts;
  const float *scores;
  const gint32 *types;
  guint64 n = 0, n_scores = 0, n_types = 0;
  g_autofree const char **ptrs = NULL;
  g_autofree guint32 *lens = NULL;
  g_autoptr(QbTokenizer) tok = NULL;
  QbTokenizerKind kind;

  if (model == NULL)
    {
      g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_MISSING,
                   "%s has no tokenizer (tokenizer.ggml.model is missing)", path);
      return NULL;
    }
  if (strcmp (model, "llama") == 0)
    kind = QB_TOKENIZER_SPM;
  else if (strcmp (model, "gpt2") == 0)
    kind = QB_TOKENIZER_BPE;
  else
    {
      g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_UNSUPPORTED,
                   "%s: tokenizer '%s' is not supported (only llama and gpt2)", path, model);
      return NULL;
    }

  texts = qb_gguf_get_string_array (gguf, "tokenizer.ggml.tokens", &n);
  if (texts == NULL || n == 0 || n > G_MAXINT32)
    {
      g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_MISSING,
                   "%s: tokenizer.ggml.tokens is missing, empty or not an array of strings", path);
      return NULL;
    }
  scores = qb_gguf_get_array (gguf, "tokenizer.ggml.scores", QB_GGUF_TYPE_FLOAT32, &n_scores);
  types = qb_gguf_get_array (gguf, "tokenizer.ggml.token_type", QB_GGUF_TYPE_INT32, &n_types);
  if ((scores != NULL && n_scores != n) || (types != NULL && n_types != n))
    {
      g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_INVALID,
                   "%s: tokenizer.ggml.scores/token_type have %" G_GUINT64_FORMAT "/%"
                   G_GUINT64_FORMAT " entries for %" G_GUINT64_FORMAT " tokens",
                   path, scores ? n_scores : n, types ? n_types : n, n);
      return NULL;
    }

  ptrs = g_new (const char *, n);
  lens = g_new (guint32, n);
  for (guint64 i = 0; i < n; i++)
    {
      if (texts[i].len > G_MAXUINT32 / 2)
        {
          g_set_error (error, QB_TOKENIZER_ERROR, QB_TOKENIZER_ERROR_INVALID,
                       "%s: tokenizer.ggml.tokens[%" G_GUINT64_FORMAT "] is too long", path, i);
          return NULL;
        }
      ptrs[i] = texts[i].str;
      lens[i] = (guint32) texts[i].len;
    }
  tok = qb_tokenizer_alloc (kind, ptrs, lens, scores, (const int *) types, (guint) n, error);
  if (tok == NULL)
    return NULL;

  if (kind == QB_TOKENIZER_SPM)
    {
      tok->escape_spaces = TRUE;
      tok->byte_fallback = TRUE;
      tok->add_space_prefix = gguf_flag (gguf, "tokenizer.ggml.add_space_prefix", TRUE);
      qb_tokenizer_set_special (tok,
                                gguf_id (gguf, "tokenizer.ggml.bos_token_id", 1, n),
                                gguf_id (gguf, "tokenizer.ggml.eos_token_id", 2, n),
                                gguf_id (gguf, "tokenizer.ggml.unknown_token_id", 0, n),
                                gguf_flag (gguf, "tokenizer.ggml.add_bos_token", TRUE),
                                gguf_flag (gguf, "tokenizer.ggml.add_eos_token", FALSE));
    }
  else
    {
      const PreTokenizer *pre;

      tok->byte_level = TRUE;
      if (!gguf_merges (tok, gguf, error) || (pre = gguf_pre_tokenizer (tok, gguf, error)) == NULL)
        return NULL;
      qb_tokenizer_set_special (tok,
                                gguf_id (gguf, "tokenizer.ggml.bos_token_id", 11, n),
                                gguf_id (gguf, "tokenizer.ggml.eos_token_id", 11, n),
                                gguf_id (gguf, "tokenizer.ggml.unknown_token_id", -1, n),
                                gguf_flag (gguf, "tokenizer.ggml.add_bos_token", pre->add_bos),
                                gguf_flag (gguf, "tokenizer.ggml.add_eos_token", FALSE));
    }
  return g_steal_pointer (&tok);
}
