/*
 * greeting-c: the greeting module written in freestanding C (no libc).
 *
 * Answers "Hello World, NAME!" for an input NAME. Built for
 * wasm32-freestanding (see modules/build.sh); imports nothing and exports:
 *
 *   memory
 *   packed ABI:  alloc(len) -> ptr, dealloc(ptr, len),
 *                greet(ptr, len) -> i64 (high 32 bits ptr, low 32 bits len),
 *                greet_many(ptr, len) -> i64 (batch framing)
 *   seed ABI:    wasm_allocate(size) -> ptr, wasm_deallocate(ptr) -> i32
 *   seed-c:      wasm_memory_c_format_hello_world(cstr) -> cstr
 *
 * Allocator: power-of-two size classes with one free list per class, fed by a
 * bump pointer that grows linear memory on demand. Each block carries an
 * 8-byte header [class u32][magic u32] so that both the packed `dealloc`
 * (which gets a length) and the seed `wasm_deallocate` (which does not) can
 * free any block, and so that foreign pointers and double frees are refused.
 */

typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned char u8;
typedef __SIZE_TYPE__ usize;

#define EXPORT(name) __attribute__((export_name(#name), visibility("default")))

#define PAGE 65536u
#define HEADER 8u
#define MIN_CLASS 4u  /* 16-byte blocks (8 header + 8 payload) */
#define MAX_CLASS 31u /* 2 GiB blocks; larger requests fail */
#define MAGIC_LIVE 0xC0DEA110u
#define MAGIC_FREE 0xC0DEF4EEu

static const u8 PREFIX[] = "Hello World, ";
#define PREFIX_LEN 13u
#define EXTRA 14u /* PREFIX_LEN + "!" */

extern u8 __heap_base;

static u32 bump;           /* next unused byte, 0 until first use */
static u32 free_lists[32]; /* per class: address of first free block's header */

static inline u32 mem_bytes(void) {
    return (u32)__builtin_wasm_memory_size(0) * PAGE;
}

static inline u32 rd32(const u8 *p) {
    return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24;
}

static inline void wr32(u8 *p, u32 v) {
    p[0] = (u8)v;
    p[1] = (u8)(v >> 8);
    p[2] = (u8)(v >> 16);
    p[3] = (u8)(v >> 24);
}

/* Smallest class whose block holds size + HEADER bytes; 0 if too large. */
static u32 class_for(u32 size) {
    if (size > (1u << MAX_CLASS) - HEADER) return 0;
    u32 need = size + HEADER;
    u32 c = MIN_CLASS;
    while ((1u << c) < need) c++;
    return c;
}

/* Returns a payload pointer (8-aligned), or 0 when memory is exhausted. */
static u32 heap_alloc(u32 size) {
    u32 c = class_for(size);
    if (c == 0) return 0;
    u32 block = free_lists[c];
    if (block) {
        free_lists[c] = rd32((u8 *)(usize)block + HEADER); /* next link */
    } else {
        if (bump == 0) bump = ((u32)(usize)&__heap_base + 7u) & ~7u;
        u32 bsize = 1u << c;
        u32 top = mem_bytes();
        if (bsize > 0xFFFFFFFFu - bump) return 0;
        u32 end = bump + bsize;
        if (end > top) {
            u32 pages = (end - top + PAGE - 1) / PAGE;
            if (__builtin_wasm_memory_grow(0, pages) == (usize)-1) return 0;
        }
        block = bump;
        bump = end;
    }
    u8 *h = (u8 *)(usize)block;
    wr32(h, c);
    wr32(h + 4, MAGIC_LIVE);
    return block + HEADER;
}

/* Returns 0 on success, 1 when ptr is not a live block. */
static u32 heap_free(u32 ptr) {
    u32 base = (u32)(usize)&__heap_base;
    if (ptr < base + HEADER || (ptr & 7u) || bump == 0 || ptr >= bump) return 1;
    u8 *h = (u8 *)(usize)(ptr - HEADER);
    u32 c = rd32(h);
    if (rd32(h + 4) != MAGIC_LIVE || c < MIN_CLASS || c > MAX_CLASS) return 1;
    wr32(h + 4, MAGIC_FREE);
    wr32(h + HEADER, free_lists[c]);
    free_lists[c] = ptr - HEADER;
    return 0;
}

static inline u64 pack(u32 ptr, u32 len) {
    return (u64)ptr << 32 | (u64)len;
}

/* A host-supplied range must lie inside linear memory (address 0 is never a
 * heap block, so it is refused too). */
static int valid_range(u32 ptr, u32 len) {
    if (len == 0) return 1;
    return ptr != 0 && len <= mem_bytes() && ptr <= mem_bytes() - len;
}

static u32 write_greeting(u8 *out, const u8 *name, u32 len) {
    __builtin_memcpy(out, PREFIX, PREFIX_LEN);
    if (len) __builtin_memcpy(out + PREFIX_LEN, name, len);
    out[PREFIX_LEN + len] = '!';
    return len + EXTRA;
}

/* ---- packed ABI ---- */

EXPORT(alloc) u32 alloc(u32 len) { return heap_alloc(len); }

EXPORT(dealloc) void dealloc(u32 ptr, u32 len) {
    (void)len; /* the header knows the block size */
    heap_free(ptr);
}

EXPORT(greet) u64 greet(u32 ptr, u32 len) {
    if (!valid_range(ptr, len) || len > 0xFFFFFFFFu - EXTRA) return 0;
    u32 out = heap_alloc(len + EXTRA);
    if (!out) return 0;
    return pack(out, write_greeting((u8 *)(usize)out, (const u8 *)(usize)ptr, len));
}

/* Batch: [count u32] then per item [len u32][bytes]; same framing out.
 * The frame must be exact; returns 0 on malformed input or out of memory. */
EXPORT(greet_many) u64 greet_many(u32 ptr, u32 len) {
    if (!valid_range(ptr, len) || len < 4) return 0;
    const u8 *in = (const u8 *)(usize)ptr;
    u32 count = rd32(in);
    u32 pos = 4;
    u64 total = 4;
    for (u32 i = 0; i < count; i++) {
        if (len - pos < 4) return 0;
        u32 item = rd32(in + pos);
        pos += 4;
        if (len - pos < item) return 0;
        pos += item;
        total += 4u + EXTRA + (u64)item;
        if (total > 0x7FFFFFFFu) return 0;
    }
    if (pos != len) return 0;
    u32 out = heap_alloc((u32)total);
    if (!out) return 0;
    u8 *o = (u8 *)(usize)out;
    wr32(o, count);
    u32 rd = 4, wr = 4;
    for (u32 i = 0; i < count; i++) {
        u32 item = rd32(in + rd);
        rd += 4;
        wr32(o + wr, item + EXTRA);
        wr += 4;
        wr += write_greeting(o + wr, in + rd, item);
        rd += item;
    }
    return pack(out, (u32)total);
}

/* ---- seed ABI ---- */

EXPORT(wasm_allocate) u32 wasm_allocate(u32 size) { return heap_alloc(size); }

EXPORT(wasm_deallocate) u32 wasm_deallocate(u32 ptr) { return heap_free(ptr); }

/* seed-c: NUL-terminated name in, NUL-terminated answer out (a
 * wasm_deallocate block); 0 on failure, including no NUL before the end of
 * memory. */
EXPORT(wasm_memory_c_format_hello_world) u32 wasm_memory_c_format_hello_world(u32 cstr) {
    u32 end = mem_bytes();
    if (cstr == 0 || cstr >= end) return 0;
    const u8 *s = (const u8 *)(usize)cstr;
    u32 n = 0, max = end - cstr;
    while (n < max && s[n]) n++;
    if (n == max || n > 0xFFFFFFFFu - EXTRA - 1) return 0;
    u32 out = heap_alloc(n + EXTRA + 1);
    if (!out) return 0;
    u8 *o = (u8 *)(usize)out;
    o[write_greeting(o, s, n)] = 0;
    return out;
}
