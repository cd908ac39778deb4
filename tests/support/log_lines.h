/* A host log function for tests that drive a plugin or a pool directly
 * (host->log, a pool's .log): it formats each line and hands it to the sink
 * the test set, which counts or keeps what it is looking for.
 *
 * Threading: tt_log may be called from any thread (a plugin's workers log
 * too); the sink runs on the caller's thread.  Set the sink before anything
 * logs.  Ownership: the line is borrowed for the duration of the sink call.
 */
#ifndef TT_LOG_LINES_H
#define TT_LOG_LINES_H

typedef void (*tt_log_sink_fn)(int level, const char *line);

void tt_log_sink(tt_log_sink_fn sink);
void tt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
