/* naming.h - Mixpanel property keys from computation and column names */
#ifndef AUDSYNC_NAMING_H
#define AUDSYNC_NAMING_H

#include <stddef.h>

/*
 * Writes the key of name (DESIGN.md section 6): lower case, every character
 * outside [a-z0-9] becomes '_', runs of '_' fold to one, leading and
 * trailing '_' go. "Order Completed - Last 30 Days" gives
 * "order_completed_last_30_days". The same rule is audsync.snake_key() in
 * SQL. Returns the key's length (0 when name has no letter or digit), or
 * -1 when it does not fit in outlen (out is then empty).
 */
int naming_key(char *out, size_t outlen, const char *name);

/* The longest key, in bytes: Mixpanel cuts property names beyond it. */
#define NAMING_KEY_MAX 255

/*
 * Why key cannot be a Mixpanel property of audsync's, or NULL when it
 * can: a name Mixpanel or audsync's own records already use (time,
 * distinct_id, ip, token, insert_id, audience_key, audience_name,
 * trait_key), one starting with '$' or "mp_", an empty one, or one longer
 * than NAMING_KEY_MAX. The same rule is audsync.key_problem() in SQL.
 * The text is static.
 */
const char *naming_key_problem(const char *key);

#endif
