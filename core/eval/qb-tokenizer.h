/* SPDX-License-Identifier: MIT */
/* qb-tokenizer.h — text to token ids, exactly as llama.cpp does it.
 *
 * Two kinds:
 *  - SPM: SentencePiece-style BPE over UTF-8 characters, merging the pair
 *    whose token has the highest score first, with byte fallback to the
 *    <0xNN> tokens (GGUF `tokenizer.ggml.model = "llama"`).  Spaces become
 *    "▁" and a space is put in front of the text (add_space_prefix).
 *  - BPE: GPT-2 byte-level BPE (GGUF "gpt2", Hugging Face tokenizer.json):
 *    the text is cut into words by the pre-tokenizer's regular expressions
 *    (GRegex), each word's bytes are mapped to GPT-2's printable characters,
 *    and pairs are merged in the order of the merge list.  A tokenizer.json
 *    of the SentencePiece family (Metaspace, byte_fallback) runs the same
 *    merge loop on the "▁"-escaped text without a regex split.
 *
 * Special tokens (control, user-defined, unknown) found in the text are cut
 * out first, longest first; control and unknown ones only when
 * parse_special is set (llama-perplexity tokenizes with it unset,
 * llama-tokenize with it set).  A tokenizer is immutable once built and may
 * be used from several threads at once.
 */
#pragma once

#include <gio/gio.h>

#include "qb-gguf.h"
#include "qb-model.h"

G_BEGIN_DECLS

#define QB_TOKENIZER_ERROR (qb_tokenizer_error_quark ())
GQuark qb_tokenizer_error_quark (void);

typedef enum {
  QB_TOKENIZER_ERROR_MISSING,      /* the model file has no (usable) vocabulary */
  QB_TOKENIZER_ERROR_INVALID,      /* inconsistent or damaged vocabulary */
  QB_TOKENIZER_ERROR_UNSUPPORTED,  /* a tokenizer kind or pre-tokenizer we do not run */
  QB_TOKENIZER_ERROR_TEXT,         /* text the tokenizer cannot take (bad UTF-8) */
} QbTokenizerError;

typedef enum {
  QB_TOKENIZER_SPM,
  QB_TOKENIZER_BPE,
} QbTokenizerKind;

/* GGUF's tokenizer.ggml.token_type values. */
typedef enum {
  QB_TOKEN_UNDEFINED    = 0,
  QB_TOKEN_NORMAL       = 1,
  QB_TOKEN_UNKNOWN      = 2,
  QB_TOKEN_CONTROL      = 3,
  QB_TOKEN_USER_DEFINED = 4,
  QB_TOKEN_UNUSED       = 5,
  QB_TOKEN_BYTE         = 6,
} QbTokenType;

/* The classic GPT-2 pre-tokenizer and LLaMA-3's (as llama.cpp runs them). */
#define QB_PRETOKENIZE_GPT2 \
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define QB_PRETOKENIZE_LLAMA3 \
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" \
  "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

typedef struct _QbTokenizer QbTokenizer;

/* From a GGUF file's tokenizer.ggml.* metadata. (transfer full) */
QbTokenizer     *qb_tokenizer_new_from_gguf   (QbGguf             *gguf,
                                               GError            **error);
/* From a Hugging Face tokenizer.json (BPE models). */
QbTokenizer     *qb_tokenizer_new_from_hf_json (const char        *path,
                                               GError            **error);

/* The model's own tokenizer: its GGUF metadata, or the tokenizer.json
 * beside a safetensors model. (transfer full) */
QbTokenizer     *qb_tokenizer_new_for_model   (QbModel            *model,
                                               GError            **error);

/* Building blocks, for tests and other sources.  tokens are NUL-terminated
 * texts (a GGUF vocabulary may not contain NUL); scores and types may be
 * NULL (0 and NORMAL).  The tokenizer copies what it needs.
 * merges: "left right" strings, highest priority first; patterns: the
 * pre-tokenizer's regular expressions applied in turn (NULL-terminated;
 * NULL or empty for none); byte_level: map bytes to GPT-2's characters. (transfer full) */
QbTokenizer     *qb_tokenizer_new_bpe         (const char * const *tokens,
                                               const int          *types,
                                               guint               n_tokens,
                                               const char * const *merges,
                                               guint               n_merges,
                                               const char * const *patterns,
                                               gboolean            byte_level,
                                               GError            **error);
/* Special tokens: -1 for none.  add_bos/add_eos: what encoding with
 * add_special puts around the text. */
void             qb_tokenizer_set_special     (QbTokenizer        *tok,
                                               gint32              bos,
                                               gint32              eos,
                                               gint32              unk,
                                               gboolean            add_bos,
                                               gboolean            add_eos);

/* (transfer full) */
QbTokenizer     *qb_tokenizer_ref             (QbTokenizer        *tok);
void             qb_tokenizer_unref           (QbTokenizer        *tok);

QbTokenizerKind  qb_tokenizer_get_kind        (QbTokenizer        *tok);
guint            qb_tokenizer_get_n_tokens    (QbTokenizer        *tok);
gint32           qb_tokenizer_get_bos         (QbTokenizer        *tok);   /* -1: none */
gint32           qb_tokenizer_get_eos         (QbTokenizer        *tok);
gboolean         qb_tokenizer_get_add_bos     (QbTokenizer        *tok);
gboolean         qb_tokenizer_get_add_eos     (QbTokenizer        *tok);

/* Encodes len bytes of text (-1: NUL-terminated).  add_special puts BOS
 * (and EOS) as the vocabulary asks; parse_special turns the text of control
 * tokens into those tokens.  Returns an array of gint32, or NULL with
 * QB_TOKENIZER_ERROR_TEXT (BPE needs valid UTF-8) or G_IO_ERROR_CANCELLED
 * (checked as the work goes, so a long text stops soon). (transfer full) */
GArray          *qb_tokenizer_encode          (QbTokenizer        *tok,
                                               const char         *text,
                                               gssize              len,
                                               gboolean            add_special,
                                               gboolean            parse_special,
                                               GCancellable       *cancellable,
                                               GError            **error);
/* A hex SHA-256 of everything that decides the ids (vocabulary, scores,
 * types, merges, patterns, flags), for cache keys.  Free with g_free. (transfer full) */
char            *qb_tokenizer_fingerprint     (QbTokenizer        *tok);
/* The text of a run of tokens (byte tokens and "▁" turned back). */
char            *qb_tokenizer_decode          (QbTokenizer        *tok,
                                               const gint32       *ids,
                                               gsize               n_ids);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QbTokenizer, qb_tokenizer_unref)

G_END_DECLS
