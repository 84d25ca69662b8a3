/*
 * libvnvram C API: a thin layer over vnvram::Device (vnvram.hpp) for C
 * programs. A vnvram_dev handle owns one open device. Thread-safety: calls
 * on one handle may come from any thread (they are serialised inside);
 * vnvram_last_error() is per thread. Functions return 0 or a negative errno
 * value (-ETIMEDOUT, -ERANGE, -EIO, ...) and leave a one-line message for
 * vnvram_last_error(); nothing aborts or throws.
 */
#ifndef VNVRAM_VNVRAM_H
#define VNVRAM_VNVRAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vnvram_dev vnvram_dev;

/* Opens device `devid` of this domain and runs the xenbus handshake.
 * `platform`: "xen", "sim:<dir>:<domid>", or NULL/"" for $VNVRAM_PLATFORM
 * (else "xen"). `timeout_ms` bounds the handshake and every later wait
 * (<= 0: 10000). Returns NULL on error with errno set. */
vnvram_dev* vnvram_open(const char* platform, uint32_t devid, int timeout_ms);
/* The same, for volume `volume_uuid`: every path of it (docs/multipath.md). */
vnvram_dev* vnvram_open_volume(const char* platform, const char* volume_uuid, int timeout_ms);

/* The mapped region: its address, and through the out-parameters (either
 * may be NULL) its size and the mapping generation. The address changes,
 * and the generation grows, when the device re-handshakes after a backend
 * restart; re-read it whenever the generation moved. NULL once closed. */
void* vnvram_region(vnvram_dev* dev, size_t* size, uint64_t* generation);

/* Makes [offset, offset + length) durable; returns once acknowledged. */
int vnvram_persist(vnvram_dev* dev, uint64_t offset, uint64_t length);
/* Copies len bytes from src into the region at offset, then persists. */
int vnvram_memcpy_persist(vnvram_dev* dev, uint64_t offset, const void* src, size_t len);
/* Batching: queue a PERSIST without waiting; vnvram_drain() waits for all. */
int vnvram_persist_async(vnvram_dev* dev, uint64_t offset, uint64_t length);
/* Queues a FLUSH (everything stored so far) without waiting. */
int vnvram_flush(vnvram_dev* dev);
/* Waits for every queued request; the first error among them. */
int vnvram_drain(vnvram_dev* dev);
/* Waits until at most `at_most` queued requests are unanswered. */
int vnvram_drain_to(vnvram_dev* dev, size_t at_most);
/* Orders the requests queued before it before those queued after it. */
int vnvram_barrier(vnvram_dev* dev);

/* Copy mode: through pages granted per request. */
int vnvram_read(vnvram_dev* dev, uint64_t offset, void* buf, size_t len);
int vnvram_write(vnvram_dev* dev, uint64_t offset, const void* buf, size_t len);

/* The backend's durable sequence number as last reported. */
uint64_t vnvram_durable_seq(vnvram_dev* dev);

/* Drains, closes the device (Closing -> Closed) and frees the handle, also
 * on error. NULL is accepted. */
int vnvram_close(vnvram_dev* dev);

/* This thread's last error message ("" when none); valid until the next
 * vnvram_* call on this thread. */
const char* vnvram_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* VNVRAM_VNVRAM_H */
