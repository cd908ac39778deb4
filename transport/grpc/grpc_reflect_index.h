/* The index gRPC server reflection answers from: the descriptor set compiled
 * into the binary (proto/descriptor_set.h), split into its files, with every
 * symbol they define mapped to the file that defines it.
 *
 * Threading: built and read on the loop thread only.
 * Ownership: the index owns its tables and the decoded descriptors; the
 * serialized files it hands out point into the static descriptor set and
 * are never freed.
 */
#ifndef TC_GRPC_REFLECT_INDEX_H
#define TC_GRPC_REFLECT_INDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct tc__reflect_index_s tc__reflect_index_t;

/* One file of the set: its serialized FileDescriptorProto. */
typedef struct tc__reflect_file_s {
  const uint8_t *data;
  size_t len;
} tc__reflect_file_t;

/* Parses the compiled-in descriptor set; 0 or a TC_E* code. */
int tc__reflect_index_build(tc__reflect_index_t **out);
void tc__reflect_index_free(tc__reflect_index_t *ix);

/* The file index (>= 0) of a file name, of a symbol's defining file, of the
 * file defining extension number of containing_type; -1 if none. */
long tc__reflect_index_file(const tc__reflect_index_t *ix, const char *name);
long tc__reflect_index_symbol(const tc__reflect_index_t *ix, const char *symbol);
long tc__reflect_index_extension(const tc__reflect_index_t *ix, const char *containing_type,
                                 int32_t number);
/* 1 if symbol names a message type. */
int tc__reflect_index_is_message(const tc__reflect_index_t *ix, const char *symbol);

/* File i first, then every file it imports, transitively, each once:
 * writes up to max entries into out and returns how many there are. */
size_t tc__reflect_index_closure(const tc__reflect_index_t *ix, long i, tc__reflect_file_t *out,
                                 size_t max);
/* The extension numbers of a message type into out (up to max); the count. */
size_t tc__reflect_index_extension_numbers(const tc__reflect_index_t *ix, const char *type,
                                           int32_t *out, size_t max);
/* The fully qualified service names, in the set's order. */
size_t tc__reflect_index_services(const tc__reflect_index_t *ix, const char *const **names);
/* Number of files in the set. */
size_t tc__reflect_index_n_files(const tc__reflect_index_t *ix);

#endif
