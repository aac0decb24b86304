//! WASI probe: a hostile-ish module that pokes at everything WASI could give
//! it, to check that the host grants nothing by default.
//!
//! Built for `wasm32-wasi` as a `cdylib` (see `modules/build.sh`); it imports
//! only `wasi_snapshot_preview1` functions. Every export uses the seed-rust
//! ABI: `F(offset, length) -> record`, where the record is an 8-byte
//! `[ptr u32 LE][len u32 LE]` block and both the record and the string are
//! freeable with `wasm_deallocate` (0 means failure).
//!
//! * `read_secret(path)`  -> file content, or `denied: <error>`
//! * `env_probe(name)`    -> value of the environment variable, or `unset`
//! * `chatty(name)`       -> writes 1 MiB to stdout and to stderr, then
//!                           returns `Hello World, NAME!`
//! * `exit_now(_)`        -> calls `std::process::exit(3)`

use std::alloc::{alloc as sys_alloc, dealloc as sys_dealloc, Layout};
use std::io::Write;
use std::ptr;

const HEADER: usize = 8;
const MAGIC_LIVE: u32 = 0x5EED_A110;

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, HEADER).ok()
}

fn seed_alloc(size: usize) -> *mut u8 {
    let l = match layout(size) {
        Some(l) => l,
        None => return ptr::null_mut(),
    };
    unsafe {
        let base = sys_alloc(l);
        if base.is_null() {
            return base;
        }
        ptr::write_unaligned(base as *mut u32, (size as u32).to_le());
        ptr::write_unaligned(base.add(4) as *mut u32, MAGIC_LIVE.to_le());
        base.add(HEADER)
    }
}

#[no_mangle]
pub extern "C" fn wasm_allocate(size: i32) -> i32 {
    seed_alloc(size as u32 as usize) as usize as i32
}

#[no_mangle]
pub extern "C" fn wasm_deallocate(ptr: i32) -> i32 {
    let ptr = ptr as u32 as usize;
    let mem = core::arch::wasm32::memory_size(0).saturating_mul(65536);
    if ptr < HEADER || ptr % HEADER != 0 || ptr > mem {
        return 1;
    }
    unsafe {
        let base = (ptr - HEADER) as *mut u8;
        if u32::from_le(ptr::read_volatile(base.add(4) as *const u32)) != MAGIC_LIVE {
            return 1;
        }
        let size = u32::from_le(ptr::read_volatile(base as *const u32)) as usize;
        let l = match layout(size) {
            Some(l) => l,
            None => return 1,
        };
        ptr::write_volatile(base.add(4) as *mut u32, 0);
        sys_dealloc(base, l);
    }
    0
}

/// Reads the host-written input block as (lossy) text.
fn input(offset: i32, length: i32) -> String {
    let bytes = unsafe {
        std::slice::from_raw_parts(offset as u32 as usize as *const u8, length as u32 as usize)
    };
    String::from_utf8_lossy(bytes).into_owned()
}

/// Returns a seed-rust record for `text`, or 0 on allocation failure.
fn answer(text: &str) -> i32 {
    let s = seed_alloc(text.len());
    if s.is_null() {
        return 0;
    }
    let rec = seed_alloc(8);
    if rec.is_null() {
        wasm_deallocate(s as usize as i32);
        return 0;
    }
    unsafe {
        ptr::copy_nonoverlapping(text.as_ptr(), s, text.len());
        ptr::write_unaligned(rec as *mut u32, (s as usize as u32).to_le());
        ptr::write_unaligned(rec.add(4) as *mut u32, (text.len() as u32).to_le());
    }
    rec as usize as i32
}

#[no_mangle]
pub extern "C" fn read_secret(offset: i32, length: i32) -> i32 {
    let path = input(offset, length);
    match std::fs::read_to_string(&path) {
        Ok(content) => answer(&content),
        Err(e) => answer(&format!("denied: {}", e)),
    }
}

#[no_mangle]
pub extern "C" fn env_probe(offset: i32, length: i32) -> i32 {
    let name = input(offset, length);
    match std::env::var(&name) {
        Ok(value) => answer(&value),
        Err(_) => answer("unset"),
    }
}

#[no_mangle]
pub extern "C" fn chatty(offset: i32, length: i32) -> i32 {
    let name = input(offset, length);
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..16 {
        // Errors are ignored: a host may close or drop these streams.
        let _ = std::io::stdout().write_all(&chunk);
        let _ = std::io::stderr().write_all(&chunk);
    }
    let _ = std::io::stdout().flush();
    answer(&format!("Hello World, {}!", name))
}

#[no_mangle]
pub extern "C" fn exit_now(_offset: i32, _length: i32) -> i32 {
    std::process::exit(3)
}
