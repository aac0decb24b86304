//! Greeting module: answers `Hello World, NAME!` for an input NAME under
//! every calling convention the wasmq host speaks.
//!
//! Built as a single-file `cdylib` for `wasm32-unknown-unknown` (see
//! `modules/build.sh`). The module imports nothing and exports:
//!
//! * `memory`
//! * packed ABI: `alloc(len) -> ptr`, `dealloc(ptr, len)`,
//!   `greet(ptr, len) -> i64` (high 32 bits: output ptr, low 32 bits: length),
//!   `greet_many(ptr, len) -> i64` (batch framing, see below)
//! * seed ABI memory: `wasm_allocate(size) -> ptr`, `wasm_deallocate(ptr) -> i32`
//! * seed-rust: `wasm_memory_rust_format_hello_world(offset, length) -> record`
//! * seed-c: `wasm_memory_c_format_hello_world(cstr) -> cstr`
//! * scalar: `answer() -> 42`
//!
//! Nothing here trusts the host either: every failure (allocation failure,
//! malformed batch framing, missing NUL, bad pointer given to
//! `wasm_deallocate`) is reported through the ABI's failure value instead of
//! trapping, and no code path can panic.

use std::alloc::{alloc as sys_alloc, dealloc as sys_dealloc, Layout};
use std::ptr::{self, NonNull};

const PREFIX: &[u8] = b"Hello World, ";
const SUFFIX: &[u8] = b"!";
/// Bytes the greeting adds around the name.
const EXTRA: usize = PREFIX.len() + SUFFIX.len();

const WASM_PAGE: usize = 65536;

/// Current linear memory size in bytes (saturating at 4 GiB - 1 on wasm32).
#[inline]
fn memory_bytes() -> usize {
    core::arch::wasm32::memory_size(0).saturating_mul(WASM_PAGE)
}

#[inline]
fn pack(ptr: *mut u8, len: usize) -> i64 {
    (((ptr as usize as u32 as u64) << 32) | (len as u32 as u64)) as i64
}

/// Writes `PREFIX NAME SUFFIX` at `out`, returns the number of bytes written.
///
/// # Safety
/// `out` must be valid for `name_len + EXTRA` bytes and must not overlap the
/// name.
#[inline]
unsafe fn write_greeting(out: *mut u8, name: *const u8, name_len: usize) -> usize {
    ptr::copy_nonoverlapping(PREFIX.as_ptr(), out, PREFIX.len());
    if name_len != 0 {
        ptr::copy_nonoverlapping(name, out.add(PREFIX.len()), name_len);
    }
    ptr::copy_nonoverlapping(SUFFIX.as_ptr(), out.add(PREFIX.len() + name_len), SUFFIX.len());
    name_len + EXTRA
}

/// A host-supplied (ptr, len) pair is usable when it lies in linear memory.
/// Address 0 is never handed out by the allocator, so it is rejected too.
#[inline]
fn valid_range(ptr: usize, len: usize) -> bool {
    if len == 0 {
        return true;
    }
    ptr != 0 && ptr.checked_add(len).map_or(false, |end| end <= memory_bytes())
}

// ---------------------------------------------------------------------------
// Packed ABI allocator: blocks are plain byte arrays, the host passes the size
// back to `dealloc`.
// ---------------------------------------------------------------------------

fn packed_alloc(len: usize) -> *mut u8 {
    if len == 0 {
        // Never dereferenced; `dealloc(_, 0)` is a no-op.
        return NonNull::<u8>::dangling().as_ptr();
    }
    match Layout::from_size_align(len, 1) {
        Ok(layout) => unsafe { sys_alloc(layout) },
        Err(_) => ptr::null_mut(),
    }
}

/// Allocates `len` bytes for the host; returns 0 when out of memory.
#[no_mangle]
pub extern "C" fn alloc(len: i32) -> i32 {
    packed_alloc(len as u32 as usize) as usize as i32
}

/// Frees a block from `alloc` (or an output of `greet`/`greet_many`).
#[no_mangle]
pub extern "C" fn dealloc(ptr: i32, len: i32) {
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    if ptr == 0 || len == 0 {
        return;
    }
    if let Ok(layout) = Layout::from_size_align(len, 1) {
        unsafe { sys_dealloc(ptr as *mut u8, layout) }
    }
}

/// Packed greeting: one allocation of exactly `len + 14` bytes.
/// Returns 0 (ptr 0, len 0) on failure.
#[no_mangle]
pub extern "C" fn greet(ptr: i32, len: i32) -> i64 {
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    if !valid_range(ptr, len) {
        return 0;
    }
    let out_len = match len.checked_add(EXTRA) {
        Some(n) => n,
        None => return 0,
    };
    let out = packed_alloc(out_len);
    if out.is_null() {
        return 0;
    }
    unsafe { write_greeting(out, ptr as *const u8, len) };
    pack(out, out_len)
}

#[inline]
unsafe fn read_u32(at: *const u8) -> u32 {
    u32::from_le_bytes(ptr::read_unaligned(at as *const [u8; 4]))
}

#[inline]
unsafe fn write_u32(at: *mut u8, v: u32) {
    ptr::write_unaligned(at as *mut [u8; 4], v.to_le_bytes())
}

/// Validates a batch frame `[count u32][len u32][bytes]...` of `len` bytes at
/// `base` and returns `(count, output size)`. The frame must be exact (no
/// trailing bytes).
unsafe fn measure_batch(base: *const u8, len: usize) -> Option<(u32, usize)> {
    if len < 4 {
        return None;
    }
    let count = read_u32(base);
    let mut pos = 4usize;
    let mut total = 4usize;
    for _ in 0..count {
        if len - pos < 4 {
            return None;
        }
        let item = read_u32(base.add(pos)) as usize;
        pos += 4;
        if len - pos < item {
            return None;
        }
        pos += item;
        total = total.checked_add(4 + EXTRA)?.checked_add(item)?;
    }
    if pos != len || total > i32::MAX as usize {
        return None;
    }
    Some((count, total))
}

/// Batch greeting: same framing in and out, one output per input in order.
/// The total output size is computed first so there is exactly one output
/// allocation. Returns 0 on malformed framing or allocation failure.
#[no_mangle]
pub extern "C" fn greet_many(ptr: i32, len: i32) -> i64 {
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    if !valid_range(ptr, len) {
        return 0;
    }
    let base = ptr as *const u8;
    unsafe {
        let (count, total) = match measure_batch(base, len) {
            Some(v) => v,
            None => return 0,
        };
        let out = packed_alloc(total);
        if out.is_null() {
            return 0;
        }
        write_u32(out, count);
        let (mut rd, mut wr) = (4usize, 4usize);
        for _ in 0..count {
            let item = read_u32(base.add(rd)) as usize;
            rd += 4;
            write_u32(out.add(wr), (item + EXTRA) as u32);
            wr += 4;
            wr += write_greeting(out.add(wr), base.add(rd), item);
            rd += item;
        }
        pack(out, total)
    }
}

// ---------------------------------------------------------------------------
// Seed ABI allocator: the host frees with the pointer only, so every block
// carries an 8-byte header `[size u32][magic u32]` in front of it. The magic
// lets `wasm_deallocate` refuse pointers it never handed out and double frees.
// ---------------------------------------------------------------------------

const HEADER: usize = 8;
const MAGIC_LIVE: u32 = 0x5EED_A110;
const MAGIC_FREE: u32 = 0xDEAD_F4EE;

fn seed_layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, HEADER).ok()
}

fn seed_alloc(size: usize) -> *mut u8 {
    let layout = match seed_layout(size) {
        Some(l) => l,
        None => return ptr::null_mut(),
    };
    unsafe {
        let base = sys_alloc(layout);
        if base.is_null() {
            return base;
        }
        write_u32(base, size as u32);
        write_u32(base.add(4), MAGIC_LIVE);
        base.add(HEADER)
    }
}

/// Allocates `size` bytes freeable with `wasm_deallocate`; 0 when out of memory.
#[no_mangle]
pub extern "C" fn wasm_allocate(size: i32) -> i32 {
    seed_alloc(size as u32 as usize) as usize as i32
}

/// Frees a block from `wasm_allocate` (or an answer/record of the seed
/// functions). Returns 0 on success, 1 for a pointer that is not a live block.
#[no_mangle]
pub extern "C" fn wasm_deallocate(ptr: i32) -> i32 {
    let ptr = ptr as u32 as usize;
    if ptr < HEADER || ptr % HEADER != 0 || ptr > memory_bytes() {
        return 1;
    }
    unsafe {
        let base = (ptr - HEADER) as *mut u8;
        // Volatile: `base` is host-controlled, not a pointer Rust knows about.
        let magic = u32::from_le_bytes(ptr::read_volatile(base.add(4) as *const [u8; 4]));
        if magic != MAGIC_LIVE {
            return 1;
        }
        let size = u32::from_le_bytes(ptr::read_volatile(base as *const [u8; 4])) as usize;
        let layout = match seed_layout(size) {
            Some(l) => l,
            None => return 1,
        };
        ptr::write_volatile(base.add(4) as *mut [u8; 4], MAGIC_FREE.to_le_bytes());
        sys_dealloc(base, layout);
    }
    0
}

/// Allocates a seed block holding the greeting for `name`, plus `nul` extra
/// zero bytes. Returns (ptr, greeting length) or None.
unsafe fn seed_greeting(name: *const u8, len: usize, nul: bool) -> Option<(*mut u8, usize)> {
    let size = len.checked_add(EXTRA + nul as usize)?;
    let out = seed_alloc(size);
    if out.is_null() {
        return None;
    }
    let n = write_greeting(out, name, len);
    if nul {
        *out.add(n) = 0;
    }
    Some((out, n))
}

/// seed-rust: returns the address of an 8-byte record `[ptr u32][len u32]`
/// (both the record and the string are `wasm_deallocate` blocks), 0 on failure.
#[no_mangle]
pub extern "C" fn wasm_memory_rust_format_hello_world(offset: i32, length: i32) -> i32 {
    let (ptr, len) = (offset as u32 as usize, length as u32 as usize);
    if !valid_range(ptr, len) {
        return 0;
    }
    unsafe {
        let (s, n) = match seed_greeting(ptr as *const u8, len, false) {
            Some(v) => v,
            None => return 0,
        };
        let rec = seed_alloc(8);
        if rec.is_null() {
            wasm_deallocate(s as usize as i32);
            return 0;
        }
        write_u32(rec, s as usize as u32);
        write_u32(rec.add(4), n as u32);
        rec as usize as i32
    }
}

/// seed-c: takes a NUL-terminated name, returns a NUL-terminated answer
/// (a `wasm_deallocate` block), 0 on failure (including no NUL before the end
/// of memory).
#[no_mangle]
pub extern "C" fn wasm_memory_c_format_hello_world(cstr: i32) -> i32 {
    let start = cstr as u32 as usize;
    let end = memory_bytes();
    if start == 0 || start >= end {
        return 0;
    }
    unsafe {
        // All of linear memory is addressable, so [start, end) is readable.
        let rest = std::slice::from_raw_parts(start as *const u8, end - start);
        let len = match rest.iter().position(|&b| b == 0) {
            Some(n) => n,
            None => return 0,
        };
        match seed_greeting(start as *const u8, len, true) {
            Some((out, _)) => out as usize as i32,
            None => 0,
        }
    }
}

/// scalar: the answer.
#[no_mangle]
pub extern "C" fn answer() -> i32 {
    42
}
