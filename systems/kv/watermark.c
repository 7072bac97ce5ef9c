/*
 * The durable watermark file. See watermark.h.
 */
#include "watermark.h"

#include "crc32c.h"
#include "error.h"
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void encode(unsigned char slot[KV_MARK_SLOT], uint64_t generation,
                   uint64_t seq)
{
    memset(slot, 0, KV_MARK_SLOT);
    kv_put_u32(slot, KV_MARK_MAGIC);
    kv_put_u32(slot + 4, KV_MARK_VERSION);
    kv_put_u64(slot + 8, generation);
    kv_put_u64(slot + 16, seq);
    kv_put_u32(slot + 28, fl_crc32c(0, slot, 28));
}

static bool decode(const unsigned char slot[KV_MARK_SLOT], uint64_t *generation,
                   uint64_t *seq)
{
    if (kv_get_u32(slot) != KV_MARK_MAGIC ||
        kv_get_u32(slot + 4) != KV_MARK_VERSION ||
        kv_get_u32(slot + 28) != fl_crc32c(0, slot, 28))
        return false;
    *generation = kv_get_u64(slot + 8);
    *seq = kv_get_u64(slot + 16);
    return true;
}

/* Writes a file whose first slot contains watermark 0 and whose second is
 * empty, durably: temporary file, fsync, rename, directory fsync. */
static int create(const struct kv_vfs *vfs, const char *dir, const char *path,
                  bool skip_dir_fsync, char *err, size_t errsize)
{
    unsigned char file[KV_MARK_STRIDE + KV_MARK_SLOT] = {0};
    struct iovec part = {file, sizeof(file)};
    int rc;

    encode(file, 0, 0);
    rc = kv_vfs_write_file(vfs, dir, path, &part, 1, skip_dir_fsync);
    if (rc != 0)
        return fl_errorf(err, errsize, rc, "%s: cannot create: %s", path,
                         fl_strerror(rc));
    return 0;
}

int kv_mark_peek(const struct kv_vfs *vfs, const char *dir, uint64_t *seq)
{
    unsigned char file[KV_MARK_STRIDE + KV_MARK_SLOT];
    uint64_t gen[2] = {0, 0};
    uint64_t val[2] = {0, 0};
    bool valid[2];
    char path[4096];
    off_t size = 0;
    int fd;
    int rc;

    *seq = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, KV_MARK_NAME);
    fd = vfs->open(vfs->ctx, path, O_RDONLY, 0);
    if (fd == -ENOENT)
        return 0;
    if (fd < 0)
        return fd;
    rc = vfs->size(vfs->ctx, fd, &size);
    if (rc == 0 && size != (off_t)sizeof(file))
        rc = FL_ECORRUPT;
    if (rc == 0)
        rc = kv_vfs_read_all(vfs, fd, file, sizeof(file), 0);
    vfs->close(vfs->ctx, fd);
    if (rc != 0)
        return rc;
    valid[0] = decode(file, &gen[0], &val[0]);
    valid[1] = decode(file + KV_MARK_STRIDE, &gen[1], &val[1]);
    if (!valid[0] && !valid[1])
        return FL_ECORRUPT;
    *seq = val[!valid[0] || (valid[1] && gen[1] > gen[0]) ? 1 : 0];
    return 0;
}

int kv_mark_open(struct kv_mark *m, const struct kv_vfs *vfs, const char *dir,
                 bool skip_dir_fsync, char *err, size_t errsize)
{
    unsigned char file[KV_MARK_STRIDE + KV_MARK_SLOT];
    char path[4096];
    char tmp[4096 + 8];
    uint64_t gen[2] = {0, 0};
    uint64_t seq[2] = {0, 0};
    bool valid[2];
    off_t size;
    int rc;

    memset(m, 0, sizeof(*m));
    m->vfs = vfs;
    m->fd = -1;
    m->dir = dir;
    m->skip_dir_fsync = skip_dir_fsync;
    snprintf(path, sizeof(path), "%s/%s", dir, KV_MARK_NAME);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    rc = vfs->unlink(vfs->ctx, tmp); /* left by a crash in create() */
    if (rc != 0 && rc != -ENOENT)
        return fl_errorf(err, errsize, rc, "%s: cannot delete: %s", tmp,
                         fl_strerror(rc));

    m->fd = vfs->open(vfs->ctx, path, O_RDWR, 0);
    if (m->fd == -ENOENT) {
        m->missing = true;
        return 0; /* kv_mark_write creates it */
    }
    if (m->fd < 0)
        return fl_errorf(err, errsize, m->fd, "%s: cannot open: %s", path,
                         fl_strerror(m->fd));
    rc = vfs->size(vfs->ctx, m->fd, &size);
    if (rc == 0 && size != (off_t)sizeof(file))
        rc = FL_ECORRUPT;
    if (rc == 0)
        rc = kv_vfs_read_all(vfs, m->fd, file, sizeof(file), 0);
    if (rc != 0) {
        kv_mark_close(m);
        if (rc == FL_ECORRUPT)
            return fl_errorf(err, errsize, rc,
                             "%s: offset 0: size %lld, expected %zu", path,
                             (long long)size, sizeof(file));
        return fl_errorf(err, errsize, rc, "%s: cannot read: %s", path,
                         fl_strerror(rc));
    }
    valid[0] = decode(file, &gen[0], &seq[0]);
    valid[1] = decode(file + KV_MARK_STRIDE, &gen[1], &seq[1]);
    if (!valid[0] && !valid[1]) {
        kv_mark_close(m);
        return fl_errorf(err, errsize, FL_ECORRUPT,
                         "%s: the slots at offset 0 and offset %d are both "
                         "damaged",
                         path, KV_MARK_STRIDE);
    }
    int newest = !valid[0] || (valid[1] && gen[1] > gen[0]) ? 1 : 0;
    m->fell_back = !valid[0] || !valid[1];
    m->generation = gen[newest];
    m->seq = seq[newest];
    return 0;
}

int kv_mark_write(struct kv_mark *m, uint64_t seq)
{
    unsigned char slot[KV_MARK_SLOT];
    uint64_t generation = m->generation + 1;
    int rc;

    if (m->fd < 0) {
        char path[4096];
        char why[64];
        snprintf(path, sizeof(path), "%s/%s", m->dir, KV_MARK_NAME);
        rc = create(m->vfs, m->dir, path, m->skip_dir_fsync, why, sizeof(why));
        if (rc != 0)
            return rc;
        m->fd = m->vfs->open(m->vfs->ctx, path, O_RDWR, 0);
        if (m->fd < 0)
            return m->fd;
        m->generation = 0;
        generation = 1;
    }

    /* Generation g lives in slot g % 2, so this overwrites the older one. */
    encode(slot, generation, seq);
    rc = kv_vfs_write_all(m->vfs, m->fd, slot, sizeof(slot),
                          (off_t)(generation % 2) * KV_MARK_STRIDE);
    if (rc == 0)
        rc = m->vfs->fdatasync(m->vfs->ctx, m->fd);
    if (rc == 0) {
        m->generation = generation;
        m->seq = seq;
    }
    return rc;
}

void kv_mark_close(struct kv_mark *m)
{
    if (m->fd >= 0)
        m->vfs->close(m->vfs->ctx, m->fd);
    m->fd = -1;
}
