/*
 * Monotonic time in nanoseconds, and deadlines built on it. CLOCK_MONOTONIC
 * never jumps with wall-clock changes, so intervals and budgets measured here
 * stay correct while a clock nemesis moves the wall clock.
 */
#ifndef FL_CLOCK_H
#define FL_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#define FL_NSEC_PER_MSEC INT64_C(1000000)
#define FL_NSEC_PER_SEC  INT64_C(1000000000)

/* Returns CLOCK_MONOTONIC in nanoseconds. */
int64_t fl_clock_now_ns(void);

/* Returns CLOCK_REALTIME in nanoseconds since the Unix epoch. */
int64_t fl_clock_wall_ns(void);

/* Returns the nanoseconds elapsed since start (a fl_clock_now_ns value). */
int64_t fl_clock_since_ns(int64_t start);

/* Sleeps for ns nanoseconds, resuming after signal interruptions. */
void fl_clock_sleep_ns(int64_t ns);

/*
 * Converts seconds (may be fractional) to nanoseconds, saturating at
 * INT64_MAX. Non-positive values and NaN give 0.
 */
int64_t fl_clock_sec_to_ns(double seconds);

/* A point in monotonic time; 0 means no deadline. */
struct fl_deadline {
    int64_t at_ns;
};

/* Sets a deadline `ns` from now; ns <= 0 means none. */
void fl_deadline_set(struct fl_deadline *d, int64_t ns);

bool fl_deadline_passed(const struct fl_deadline *d);

#endif
