/******************************************************************************
 * vnvramif.h
 *
 * Shared-ring protocol between the vnvram frontend (libvnvram, in a guest)
 * and the vnvram backend (vnvramd, in a driver domain), in the style of
 * Xen's public io headers. Built on xen/io/ring.h.
 *
 * Thread-safety: a ring has one producer and one consumer per direction;
 * the index and barrier rules of ring.h apply.
 *
 * Memory model
 * ============
 * The backend owns the volume's region: it allocates it with the platform's
 * grant-sharing call, grants every page to the frontend domain, and lists
 * the region's grant refs in "page-directory" pages (granted read-only),
 * each holding VNVRAMIF_REFS_PER_DIR_PAGE little-endian grant_ref_t. The
 * frontend maps the directory pages, then the region; loads and stores go
 * straight to the backend's memory. A PERSIST request asks the backend to
 * make a byte range durable (replicated per the volume's policy); its
 * response carries the sequence number that is then durable.
 *
 * The frontend allocates the ring pages (1 << ring-page-order of them) and
 * one event channel. For consumers that cannot map the region, WRITE and
 * READ move data through pages the frontend grants per request (copy mode).
 *
 * xenstore handshake (keys and writers: docs/xenstore-schema.md)
 * ==============================================================
 *   backend                                  frontend
 *   -------                                  --------
 *   allocate region, grant it, write
 *   max-ring-page-order, region-size,
 *   region-pages, page-dir-refs,
 *   page-dir-ref-<i>, feature-*
 *   state = InitWait (2)
 *                                            map page-dir pages + region
 *                                            allocate ring, event channel
 *                                            write ring-page-order,
 *                                            ring-ref<i> (ring-ref if order 0),
 *                                            event-channel, protocol
 *                                            state = Initialised (3)
 *   read + validate the frontend's keys,
 *   map the ring, bind the event channel
 *   state = Connected (4)
 *                                            state = Connected (4)
 *
 * Every value either side reads from the other is untrusted: parsed
 * strictly and bounded before use.
 *
 * Requests
 * ========
 * The backend copies each request out of the shared ring once, then
 * validates the copy: known operation, nr_segments <= VNVRAMIF_MAX_SEGMENTS,
 * offset + length inside the region without overflow, page_offset < 4096,
 * copy-mode length <= nr_segments * 4096 - page_offset. A request that
 * fails validation gets VNVRAMIF_RSP_EINVAL (or ERANGE for bounds); a ring
 * whose producer index runs more than the ring size ahead is fenced.
 */

#ifndef VNVRAM_VNVRAMIF_H
#define VNVRAM_VNVRAMIF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ring.h needs grant_ref_t and barriers; userspace provides them. */
/* Without an interface version xen-compat.h picks 0, and ring.h then maps
 * xen_mb() and friends to a kernel mb() that userspace lacks; 0x00030208 is
 * the first version whose ring.h uses the barriers defined below. */
#if !defined(__XEN_INTERFACE_VERSION__) && !defined(__XEN__) && !defined(__XEN_TOOLS__)
/* NOLINTNEXTLINE(bugprone-reserved-identifier): the name is Xen's */
#define __XEN_INTERFACE_VERSION__ 0x00030208
#endif
#include <xen/grant_table.h>

#ifndef xen_mb
#define xen_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif
#ifndef xen_rmb
#define xen_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#endif
#ifndef xen_wmb
#define xen_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)
#endif

#include <xen/io/ring.h>

/* Protocol version, published by both ends as "protocol-version". */
#define VNVRAMIF_PROTOCOL_VERSION 1

#define VNVRAMIF_PAGE_SIZE 4096u

/* Largest ring the backend offers: "max-ring-page-order" <= this. */
#define VNVRAMIF_MAX_RING_PAGE_ORDER 4u
#define VNVRAMIF_MAX_RING_PAGES (1u << VNVRAMIF_MAX_RING_PAGE_ORDER)

/* Grant refs per page-directory page (little-endian uint32 each). */
#define VNVRAMIF_REFS_PER_DIR_PAGE (VNVRAMIF_PAGE_SIZE / sizeof(grant_ref_t))

/*
 * Operations.
 *
 * PERSIST   make [offset, offset + length) durable; the response's
 *           durable_seq is a sequence number that covers it.
 * FLUSH     make everything stored so far durable (offset, length ignored).
 * BARRIER   requests before it complete before any request after it starts.
 * WRITE     copy mode: copy length bytes from the granted pages into the
 *           region at offset, then persist them.
 * READ      copy mode: copy length bytes of the region at offset into the
 *           granted pages.
 * GET_INFO  response value = region size in bytes; durable_seq current.
 */
#define VNVRAMIF_OP_PERSIST 0
#define VNVRAMIF_OP_FLUSH 1
#define VNVRAMIF_OP_BARRIER 2
#define VNVRAMIF_OP_WRITE 3
#define VNVRAMIF_OP_READ 4
#define VNVRAMIF_OP_GET_INFO 5
#define VNVRAMIF_OP_COUNT 6

/* Copy-mode data pages per request: up to 32 KiB. */
#define VNVRAMIF_MAX_SEGMENTS 8

/* Response status. */
#define VNVRAMIF_RSP_OKAY 0
#define VNVRAMIF_RSP_ERROR (-1)      /* I/O or replication failure */
#define VNVRAMIF_RSP_EOPNOTSUPP (-2) /* unknown or unsupported operation */
#define VNVRAMIF_RSP_EINVAL (-3)     /* malformed request */
#define VNVRAMIF_RSP_ERANGE (-4)     /* offset/length outside the region */
#define VNVRAMIF_RSP_EACCES (-5)     /* a copy-mode grant could not be mapped */
#define VNVRAMIF_RSP_EAGAIN (-6)     /* backend not primary / fenced: retry elsewhere */

struct vnvramif_request {
  uint64_t id;          /* private to the frontend, echoed in the response */
  uint8_t operation;    /* VNVRAMIF_OP_* */
  uint8_t nr_segments;  /* copy mode: number of gref[] in use */
  uint16_t page_offset; /* copy mode: first data byte within gref[0] */
  uint32_t flags;       /* must be 0 */
  uint64_t offset;      /* byte offset in the region */
  uint64_t length;      /* bytes */
  grant_ref_t gref[VNVRAMIF_MAX_SEGMENTS];
};

struct vnvramif_response {
  uint64_t id;       /* copied from the request */
  uint8_t operation; /* copied from the request */
  uint8_t _pad0;
  int16_t status; /* VNVRAMIF_RSP_* */
  uint32_t _pad1;
  uint64_t durable_seq; /* highest sequence durable when this was sent;
                         * never decreases from one response to the next
                         * on a ring (a frontend treats that as a lie) */
  uint64_t value;       /* GET_INFO: region bytes; READ/WRITE: bytes moved */
};

DEFINE_RING_TYPES(vnvramif, struct vnvramif_request, struct vnvramif_response);

/* Entries in a ring of `pages` pages. */
#define VNVRAMIF_RING_SIZE(pages) __CONST_RING_SIZE(vnvramif, (pages)*VNVRAMIF_PAGE_SIZE)

#ifdef __cplusplus
static_assert(sizeof(struct vnvramif_request) == 64, "request layout");
static_assert(offsetof(struct vnvramif_request, offset) == 16, "request layout");
static_assert(offsetof(struct vnvramif_request, gref) == 32, "request layout");
static_assert(sizeof(struct vnvramif_response) == 32, "response layout");
static_assert(offsetof(struct vnvramif_response, durable_seq) == 16, "response layout");
#else
_Static_assert(sizeof(struct vnvramif_request) == 64, "request layout");
_Static_assert(sizeof(struct vnvramif_response) == 32, "response layout");
#endif

#endif /* VNVRAM_VNVRAMIF_H */
