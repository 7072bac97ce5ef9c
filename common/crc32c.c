/*
 * CRC32C in software (slicing-by-8 over tables built once) and with the
 * SSE4.2 crc32 instruction, chosen at first use.
 */
#include "crc32c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define POLY_REFLECTED 0x82f63b78U

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY_REFLECTED : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++)
            table[t][i] =
                (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
    }
}

uint32_t fl__crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;

    pthread_once(&table_once, build_tables);
    crc = ~crc;
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        word ^= crc;
        crc = table[7][word & 0xff] ^ table[6][(word >> 8) & 0xff] ^
              table[5][(word >> 16) & 0xff] ^ table[4][(word >> 24) & 0xff] ^
              table[3][(word >> 32) & 0xff] ^ table[2][(word >> 40) & 0xff] ^
              table[1][(word >> 48) & 0xff] ^ table[0][word >> 56];
        p += 8;
        len -= 8;
    }
    while (len-- > 0)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) uint32_t
fl__crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t c = ~crc & 0xffffffffU;

    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        len -= 8;
    }
    while (len-- > 0)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

int fl__crc32c_hw_available(void)
{
    return __builtin_cpu_supports("sse4.2");
}
#else
uint32_t fl__crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    return fl__crc32c_sw(crc, data, len);
}

int fl__crc32c_hw_available(void)
{
    return 0;
}
#endif

uint32_t fl_crc32c(uint32_t crc, const void *data, size_t len)
{
    static _Atomic int use_hw = -1;
    int hw = atomic_load_explicit(&use_hw, memory_order_relaxed);

    /* Threads racing here all store the same answer. */
    if (hw < 0) {
        hw = fl__crc32c_hw_available();
        atomic_store_explicit(&use_hw, hw, memory_order_relaxed);
    }
    return hw ? fl__crc32c_hw(crc, data, len) : fl__crc32c_sw(crc, data, len);
}
