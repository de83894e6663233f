//! Track length and inner sector boundaries by track name (cached).
use std::collections::BTreeMap;
use std::sync::Mutex;

type Geometry = Option<(f64, [f64; 2])>;

/// Length and the two inner sector boundaries of a known circuit, m.
pub fn geometry(track: Option<&str>) -> Geometry {
    static CACHE: Mutex<BTreeMap<String, Geometry>> = Mutex::new(BTreeMap::new());
    let name = track?.trim().to_ascii_lowercase();
    let mut c = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = c.get(&name) {
        return *v;
    }
    let v = sim::tracks::Track::by_name(&name)
        .ok()
        .map(|t| (t.length_m(), t.sector_boundaries_m()));
    c.insert(name, v);
    v
}
