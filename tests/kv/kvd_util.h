/*
 * Helpers shared by the tests that run fl-kvd as a real process.
 */
#ifndef FL_TEST_KVD_UTIL_H
#define FL_TEST_KVD_UTIL_H

/* Returns a loopback TCP port that was free a moment ago, or -1 with errno
 * set. Another process may take it before the caller binds it. */
int kvd_free_port(void);

/* Deletes dir and everything below it; errors are ignored. */
void kvd_remove_tree(const char *dir);

#endif
