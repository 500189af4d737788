/* civil.h - calendar arithmetic shared by the timestamp readers */
#ifndef AUDSYNC_CIVIL_H
#define AUDSYNC_CIVIL_H

#include <stdint.h>

/* Days from 1970-01-01 to the proleptic Gregorian date y-m-d (m 1..12,
 * d 1..31, not checked against the month), negative before 1970.
 * Exact for any y an int64_t day count holds. */
int64_t civil_days(int64_t y, int m, int d);

/* The days of month m (1..12) of year y: 28 or 29 in February, by the
 * Gregorian rule (2000 and 2028 leap, 2100 not). */
int civil_month_days(int64_t y, int m);

#endif
