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
  const char *patterns[6];
  gboolean    ignore_merges;
  gboolean    add_bos;        /* the default when the file does not say */
} PreTokenizer;

#define GPT2_AND_DIGITS { "\\p{N}", QB_PRETOKENIZE_GPT2 }
/* DeepSeek's CJK (and other) ideograph runs. */
#define DEEPSEEK_CJK "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"

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
  { { "falcon" },
    { "[\\p{P}\\$\\+<=>\\^~\\|`]+", QB_PRETOKENIZE_GPT2, "[0-9][0-9][0-9]" } },
  /* DeepSeek's: newlines alone, then runs of letters (listed by code point
   * range for the LLM, \p{L} for the coder), punctuation, CJK, digits. */
  { { "deepseek-llm" },
    { "[\\r\\n]",
      "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}"
      "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}"
      "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-"
      "\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}"
      "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}"
      "\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"
      "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}"
      "\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-"
      "\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-"
      "\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}"
      "\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-"
      "\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}"
      "\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}"
      "\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}"
      "\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}"
      "\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}"
      "\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}"
      "\\x{1E900}-\\x{1E943}]+",
      "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
      "\\s+$",
      DEEPSEEK_CJK,
      "\\p{N}+" } },
  /* DeepSeek-V3/R1's: digits in threes, kana and CJK runs, then words
   * with their marks, punctuation and symbols, spaces. */
  { { "deepseek-v3" },
    { "\\p{N}{1,3}",
      "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
      " ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" } },
  { { "deepseek-coder" },
    { "[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", DEEPSEEK_CJK, "\\p{N}" } },
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
