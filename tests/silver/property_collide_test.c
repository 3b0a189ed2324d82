/*
 * property_collide_test.c - the property test of property_test.c (same
 * random histories and oracle) on Delta tables whose scan key filter is made
 * to collide: every key value, or the XXH3 of a text key, is cut to a few
 * bits before it meets the filter's set, so each batch's filter lets through
 * most stored rows.  The silver table must still equal the oracle, because
 * the exact join on the business key follows the filter.  A third pass keys
 * on a DOUBLE column, which has no value filter: the rows are located by the
 * key columns and read by row number.
 */
#define PROPERTY_COLLISIONS 1
#include "property_test.c"
