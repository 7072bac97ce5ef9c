/*
 * CRC32C (Castagnoli polynomial 0x1EDC6F41, reflected), the checksum of
 * iSCSI (RFC 3720), ext4 metadata and most write-ahead logs.
 *
 * fl_crc32c uses the SSE4.2 CRC32 instruction when the CPU has it and a
 * slicing-by-8 table otherwise; both give identical results.
 */
#ifndef FL_CRC32C_H
#define FL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Extends crc over len bytes of data. Start with crc = 0; feeding a buffer
 * in pieces gives the same result as feeding it whole.
 */
uint32_t fl_crc32c(uint32_t crc, const void *data, size_t len);

/* The table implementation, always available (exposed for tests). */
uint32_t fl__crc32c_sw(uint32_t crc, const void *data, size_t len);

/*
 * The SSE4.2 implementation; returns the same as fl__crc32c_sw. Callers
 * must check fl__crc32c_hw_available() first (exposed for tests).
 */
uint32_t fl__crc32c_hw(uint32_t crc, const void *data, size_t len);
int fl__crc32c_hw_available(void);

#endif
