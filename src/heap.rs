//! The wasm heap, grown in large steps.
//!
//! Rust's wasm allocator (dlmalloc) asks for linear memory 64 KiB at a time,
//! and V8 takes about a millisecond per `memory.grow` whatever its size: the
//! first plan of 10,000 guests in a fresh module spent 6 of its 7 seconds
//! growing memory 4,000 times. This allocator lets dlmalloc do all the work
//! and, whenever an allocation made memory grow, grows it once more by as
//! much again (a block allocated and freed at once: dlmalloc keeps freed
//! memory, wasm memory never shrinks). Memory then grows a dozen times, not
//! thousands; the untouched reserve costs address space, not RAM.

use std::alloc::{GlobalAlloc, Layout, System};
use std::arch::wasm32::memory_size;

const PAGE: usize = 64 * 1024;
/// The reserve never exceeds this, so a module near wasm32's 4 GiB limit is
/// not refused memory it could still have had in small steps.
const MAX_STEP: usize = 256 << 20;

pub struct GrowInLargeSteps;

fn reserve_as_much_again() {
    let step = (memory_size(0) * PAGE).min(MAX_STEP);
    let Ok(layout) = Layout::from_size_align(step, 16) else {
        return;
    };
    // SAFETY: `layout` has a non-zero size; the block is freed with the same layout.
    unsafe {
        let block = System.alloc(layout);
        // A failed reserve is not an error: the allocations themselves still get
        // whatever memory remains.
        if !block.is_null() {
            System.dealloc(block, layout);
        }
    }
}

/// Runs one allocation and reserves more if it had to grow memory.
fn watching_growth(allocate: impl FnOnce() -> *mut u8) -> *mut u8 {
    let before = memory_size(0);
    let block = allocate();
    if memory_size(0) != before {
        reserve_as_much_again();
    }
    block
}

// SAFETY: every method forwards to `System` with the caller's arguments;
// the reserve only allocates and frees its own block.
unsafe impl GlobalAlloc for GrowInLargeSteps {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        watching_growth(|| unsafe { System.alloc(layout) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        watching_growth(|| unsafe { System.alloc_zeroed(layout) })
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        watching_growth(|| unsafe { System.realloc(block, layout, new_size) })
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        unsafe { System.dealloc(block, layout) }
    }
}

#[global_allocator]
static HEAP: GrowInLargeSteps = GrowInLargeSteps;
