//! `push` does not allocate in the steady state (only when a lap closes).
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn push_is_allocation_free_between_laps() {
    let samples = common::analytic_stream("car", 0.0, 60.0, 50.0);
    let mut e = laps::LapEngine::new(laps::LapEngineConfig {
        track_length_m: Some(common::L),
        ..Default::default()
    });
    // Warm up (first sample, first windows).
    for s in samples.iter().take(100) {
        assert!(e.push(s).is_none());
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    let mut closed = 0;
    for s in samples.iter().skip(100) {
        if e.push(s).is_some() {
            closed += 1;
        }
        let _ = e.take_window();
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(closed, 0, "no lap closes in the first 60 s");
    assert_eq!(after - before, 0, "push allocated {} times", after - before);
}
