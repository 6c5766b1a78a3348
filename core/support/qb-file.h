/* SPDX-License-Identifier: MIT */
/* qb-file.h — opening input files safely, and keeping outputs off inputs.
 *
 * A FIFO, a device or a folder given where a file is expected would block
 * in open() or read forever: inputs are opened non-blocking and checked to
 * be regular files before any byte is read.  An output that names the same
 * file as an input — compared by device and inode, so `./x/../m.gguf`, a
 * symbolic or a hard link count too — is refused before any work starts.
 * Errors are in the G_IO_ERROR domain and name the path.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* TRUE when a and b both exist and are the same file (links followed). */
gboolean     qb_file_same          (const char          *a,
                                    const char          *b);

/* FALSE, with an error naming `option`, when out is the same file as one
 * of inputs (n_inputs entries, NULL entries skipped), or as a file inside
 * an input that is a folder (a model folder) or beside an input that is a
 * sharded model's *.index.json; or when out is a folder, or its folder
 * does not exist or takes no files (checked before the work starts). */
gboolean     qb_file_check_output  (const char          *out,
                                    const char          *option,
                                    const char * const  *inputs,
                                    guint                n_inputs,
                                    GError             **error);

/* FALSE, with an error, when path exists and is not a regular file. */
gboolean     qb_file_check_regular (const char          *path,
                                    GError             **error);

/* Maps a regular file read-only (opened non-blocking). */
GMappedFile *qb_file_map           (const char          *path,
                                    GError             **error);

/* Outputs are written to a temporary file beside them and renamed.  Its
 * name, PATH.tmp-PID-XXXXXX, says which process writes it: one left by a
 * process that is gone (killed, or the machine stopped) is stale.  Earlier
 * versions named it PATH.tmp-XXXXXX: such a file is removed only when it
 * is provably a leftover (this user's regular file, last written before
 * this process started, open in no process — every process looked at),
 * and otherwise left where it is, for the caller to name. */

/* Creates and opens (O_RDWR) a temporary file beside path, after removing
 * the stale ones of path; *tmp_path gets its name.  -1 with an error. */
int          qb_file_create_temp   (const char          *path,
                                    int                  mode,
                                    char               **tmp_path,
                                    GError             **error);
/* rename (tmp_path, path), with rename's result and errno.  A regular file
 * that path held is released on a thread of its own: freeing a large
 * file's pages and blocks (tens of ms per few hundred MB) then overlaps
 * with what the caller does next, not before it returns.  Path's other
 * links, and the file a symbolic link at path points to, are untouched
 * (as by rename). */
int          qb_file_rename_over   (const char          *tmp_path,
                                    const char          *path);
/* Removes path's stale temporary files; returns their names (may be
 * empty), for the caller to report.  left (may be NULL) receives the
 * old-naming temporaries that were not provably stale, kept. */
GPtrArray   *qb_file_clean_stale_temps (const char      *path,
                                        GPtrArray      **left);

/* Reads a whole regular file of at most max_bytes, NUL-terminated. */
gboolean     qb_file_read          (const char          *path,
                                    gsize                max_bytes,
                                    char               **contents,
                                    gsize               *length,
                                    GError             **error);

G_END_DECLS
