/* SPDX-License-Identifier: MIT */
/* qb-calibration-private.h — what the calibration set and the activation
 * statistics share: the cache folder and the cache files' frame.
 *
 * A cache file: a 64-byte header (8-byte magic, u32 version, u32 reserved,
 * the 32-byte SHA-256 of the key that made it, u64 payload bytes, u64
 * checksum of the payload), then the payload.  Files are written to a
 * temporary name, synced and renamed (g_file_set_contents_full), and
 * checked whole when read: magic, version, key, size and checksum.  A file
 * that fails any check is ignored (and overwritten by the next write).
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define QB_CACHE_HEADER_BYTES 64

/* $XDG_CACHE_HOME/quantbench/calibration, or dir when given. */
char      *qb_calibration_cache_dir    (const char   *dir);
/* A fast 64-bit checksum (not cryptographic: it catches damage). */
guint64    qb_cache_checksum           (const void   *data,
                                        gsize         n);
/* Fills the header in front of a payload of payload_bytes. */
void       qb_cache_header_fill        (guint8       *header,
                                        const char   *magic,   /* 8 bytes */
                                        const char   *key_sha256_hex,
                                        const void   *payload,
                                        guint64       payload_bytes);
/* Writes header + payload (one buffer, header first) atomically, creating
 * the folder. */
gboolean   qb_cache_write              (const char   *path,
                                        const guint8 *data,
                                        gsize         n,
                                        GError      **error);
/* Maps a cache file and checks it; NULL (no error) when it is absent or
 * fails a check.  *payload and *payload_bytes point into the mapping. */
GMappedFile *qb_cache_open             (const char   *path,
                                        const char   *magic,
                                        const char   *key_sha256_hex,
                                        const guint8 **payload,
                                        guint64      *payload_bytes);

G_END_DECLS
