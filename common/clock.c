/*
 * Clock helpers over clock_gettime and clock_nanosleep.
 */
#include "clock.h"

#include <errno.h>
#include <time.h>

static int64_t read_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * FL_NSEC_PER_SEC + ts.tv_nsec;
}

int64_t fl_clock_now_ns(void)
{
    return read_clock(CLOCK_MONOTONIC);
}

int64_t fl_clock_wall_ns(void)
{
    return read_clock(CLOCK_REALTIME);
}

int64_t fl_clock_since_ns(int64_t start)
{
    return fl_clock_now_ns() - start;
}

void fl_clock_sleep_ns(int64_t ns)
{
    struct timespec until;
    int64_t now = fl_clock_now_ns();
    int64_t end;

    if (ns <= 0)
        return;
    /* Saturate, because a wrapped sum would lie in the past. */
    end = ns > INT64_MAX - now ? INT64_MAX : now + ns;
    until.tv_sec = end / FL_NSEC_PER_SEC;
    until.tv_nsec = end % FL_NSEC_PER_SEC;
    /* An absolute deadline makes restarts after EINTR exact. */
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) ==
           EINTR)
        ;
}

int64_t fl_clock_sec_to_ns(double seconds)
{
    /* Written as !(> 0) so NaN also returns 0 instead of reaching the cast. */
    if (!(seconds > 0))
        return 0;
    if (seconds >= 9.2e9)
        return INT64_MAX;
    return (int64_t)(seconds * 1e9);
}

void fl_deadline_set(struct fl_deadline *d, int64_t ns)
{
    if (ns <= 0) {
        d->at_ns = 0;
        return;
    }
    int64_t now = fl_clock_now_ns();
    d->at_ns = ns > INT64_MAX - now ? INT64_MAX : now + ns;
}

bool fl_deadline_passed(const struct fl_deadline *d)
{
    return d->at_ns != 0 && fl_clock_now_ns() >= d->at_ns;
}
