/*
 * crc32c_test.c - the CRC-32C the CPU computes (SSE 4.2, when present)
 * equals the table version on every length and alignment, and both give
 * the standard check value.
 */
#include "testutil.h"
#include "strata/collect.h"

#include <stdlib.h>
#include <string.h>

static void test_hw_equals_sw(void **state)
{
    (void)state;
    assert_int_equal(st_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(st_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    unsigned char buf[1100];
    uint32_t seed = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (unsigned char)(seed >> 16);
    }
    for (size_t off = 0; off < 9; off++)
        for (size_t len = 0; len + off <= 1024; len += len < 40 ? 1 : 37) {
            uint32_t hw = st_crc32c(0, buf + off, len), sw = st_crc32c_sw(0, buf + off, len);
            if (hw != sw)
                fail_msg("offset %zu length %zu: %08x != %08x", off, len, hw, sw);
        }
    /* chaining: crc(a || b) from crc(a) */
    uint32_t a = st_crc32c(0, buf, 500);
    assert_int_equal(st_crc32c(a, buf + 500, 600), st_crc32c_sw(0, buf, 1100));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hw_equals_sw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
