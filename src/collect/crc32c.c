/*
 * crc32c.c - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the
 * SSE 4.2 crc32 instruction when the CPU has it (chosen at run time; ~8x
 * the table version, which was ~3% of the loader's CPU reading the log),
 * else software with slicing-by-8 tables.  Frames records in evlog.c.
 *
 * The choice and the tables are made once on first use; pthread_once keeps
 * that safe when many request threads frame records at the same time.
 */
#include "strata/collect.h"

#include <pthread.h>
#include <string.h>

static uint32_t tab[8][256];
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;
static int use_hw;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define HAVE_HW 1

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const unsigned char *p,
                                                         size_t len)
{
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}
#endif

static void tab_init(void)
{
#ifdef HAVE_HW
    __builtin_cpu_init();
    use_hw = __builtin_cpu_supports("sse4.2");
#endif
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            tab[t][i] = (tab[t - 1][i] >> 8) ^ tab[0][tab[t - 1][i] & 0xff];
}

uint32_t st_crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&tab_once, tab_init);
#ifdef HAVE_HW
    if (use_hw)
        return ~crc_hw(~crc, data, len);
#endif
    return st_crc32c_sw(crc, data, len);
}

uint32_t st_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&tab_once, tab_init);
    const unsigned char *p = data;
    crc = ~crc;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);   
        memcpy(&hi, p + 4, 4);
        lo ^= crc;
        crc = tab[7][lo & 0xff] ^ tab[6][(lo >> 8) & 0xff] ^ tab[5][(lo >> 16) & 0xff] ^
              tab[4][lo >> 24] ^ tab[3][hi & 0xff] ^ tab[2][(hi >> 8) & 0xff] ^
              tab[1][(hi >> 16) & 0xff] ^ tab[0][hi >> 24];
        p += 8;
        len -= 8;
    }
#endif
    while (len--)
        crc = (crc >> 8) ^ tab[0][(crc ^ *p++) & 0xff];
    return ~crc;
}
