//! Circuit geometry: the 25 real circuits of TUMFTM's racetrack-database (LGPL-3.0, see
//! `data/tracks/LICENSE` and `data/tracks/README.md` at the workspace root), embedded with
//! `include_str!`: center lines with widths, smoothed race lines, sectors and a GPS projection.
//! The simulator races on them (`sim` re-exports this module as `sim::tracks`) and the live
//! server's lap engine takes lap lengths and sector ends from them ([`geometry`]).
//!
//! Coordinates are local metres (x east, y north, as the source's counter-clockwise COTA and
//! clockwise Silverstone confirm). The first point is the start/finish line and the order of
//! the points is the direction of travel. Everything the simulator needs is measured along the
//! **race line** (`s_m`, 0 at the start line, up to [`Track::length_m`]).

use std::sync::OnceLock;

/// Errors of loading an embedded circuit.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TrackError {
    /// No embedded track has this name.
    #[error("{}", unknown_track_message(.0))]
    UnknownTrack(String),
    /// An embedded track file could not be read.
    #[error("track {track}: {reason}")]
    TrackData {
        /// Track name.
        track: String,
        /// What is wrong.
        reason: String,
    },
}

/// Raw CSV text of one track: (name, center line, race line).
struct TrackData {
    name: &'static str,
    center: &'static str,
    race: &'static str,
    /// Approximate latitude / longitude of the middle of the circuit, degrees.
    lat_deg: f64,
    lon_deg: f64,
}

macro_rules! track {
    ($name:literal, $lat:expr, $lon:expr) => {
        TrackData {
            name: $name,
            center: include_str!(concat!("../../../data/tracks/tracks/", $name, ".csv")),
            race: include_str!(concat!("../../../data/tracks/racelines/", $name, ".csv")),
            lat_deg: $lat,
            lon_deg: $lon,
        }
    };
}

/// Reference points: approximate coordinates of each circuit's middle (public maps, rounded to
/// about 100 m). The local x/y centroid of the center line is mapped onto this point.
static TRACKS: &[TrackData] = &[
    track!("Austin", 30.1328, -97.6411),
    track!("BrandsHatch", 51.3569, 0.2631),
    track!("Budapest", 47.5789, 19.2486),
    track!("Catalunya", 41.5700, 2.2611),
    track!("Hockenheim", 49.3278, 8.5658),
    track!("IMS", 39.7950, -86.2347),
    track!("Melbourne", -37.8497, 144.9680),
    track!("MexicoCity", 19.4042, -99.0907),
    track!("Montreal", 45.5000, -73.5228),
    track!("Monza", 45.6156, 9.2811),
    track!("MoscowRaceway", 55.5720, 36.1350),
    track!("Norisring", 49.4311, 11.1136),
    track!("Nuerburgring", 50.3356, 6.9475),
    track!("Oschersleben", 52.0272, 11.2797),
    track!("Sakhir", 26.0325, 50.5106),
    track!("SaoPaulo", -23.7036, -46.6997),
    track!("Sepang", 2.7608, 101.7381),
    track!("Shanghai", 31.3389, 121.2197),
    track!("Silverstone", 52.0786, -1.0169),
    track!("Sochi", 43.4057, 39.9578),
    track!("Spa", 50.4372, 5.9714),
    track!("Spielberg", 47.2197, 14.7647),
    track!("Suzuka", 34.8431, 136.5407),
    track!("YasMarina", 24.4672, 54.6031),
    track!("Zandvoort", 52.3888, 4.5409),
];

static NAMES: [&str; 25] = [
    "Austin",
    "BrandsHatch",
    "Budapest",
    "Catalunya",
    "Hockenheim",
    "IMS",
    "Melbourne",
    "MexicoCity",
    "Montreal",
    "Monza",
    "MoscowRaceway",
    "Norisring",
    "Nuerburgring",
    "Oschersleben",
    "Sakhir",
    "SaoPaulo",
    "Sepang",
    "Shanghai",
    "Silverstone",
    "Sochi",
    "Spa",
    "Spielberg",
    "Suzuka",
    "YasMarina",
    "Zandvoort",
];

/// Spacing of the resampled race line grid, metres (approximate; exact is length / points).
const GRID_DS_M: f64 = 2.0;
/// Half width of the box filter applied (three times) to the curvature, in grid points.
const SMOOTH_HALF_WIDTH: usize = 5;
/// Mean Earth radius, metres.
const EARTH_RADIUS_M: f64 = 6_371_000.0;

/// One point of the center line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CenterPoint {
    /// East, metres.
    pub x_m: f64,
    /// North, metres.
    pub y_m: f64,
    /// Track width to the right of the center line, metres.
    pub w_right_m: f64,
    /// Track width to the left of the center line, metres.
    pub w_left_m: f64,
}

/// One point of the resampled race line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RaceLinePoint {
    /// East, metres.
    pub x_m: f64,
    /// North, metres.
    pub y_m: f64,
    /// Distance along the race line from the start line, metres.
    pub s_m: f64,
    /// Smoothed signed curvature, 1/m (positive = left-hand turn).
    pub curvature_1pm: f64,
}

/// How a track's sector boundaries were obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectorSource {
    /// Approximations of the real timing lines (see [`Track::sector_boundaries_m`]).
    RealApproximate,
    /// The lap split into three equal parts by distance.
    EvenSplit,
}

/// A circuit: center line with widths, a smoothed race line on a ~2 m grid, sectors and a GPS
/// projection.
#[derive(Debug, Clone)]
pub struct Track {
    name: &'static str,
    center: Vec<CenterPoint>,
    center_length_m: f64,
    line: Vec<RaceLinePoint>,
    length_m: f64,
    ds_m: f64,
    sectors_m: [f64; 2],
    sector_source: SectorSource,
    ref_lat_deg: f64,
    ref_lon_deg: f64,
    origin_x_m: f64,
    origin_y_m: f64,
}

fn parse_rows(name: &str, text: &str, cols: usize) -> Result<Vec<Vec<f64>>, TrackError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let vals: Result<Vec<f64>, _> = line.split(',').map(|v| v.trim().parse::<f64>()).collect();
        match vals {
            Ok(v) if v.len() >= cols && v.iter().all(|x| x.is_finite()) => out.push(v),
            _ => {
                return Err(TrackError::TrackData {
                    track: name.to_string(),
                    reason: format!("line {} is not {cols} numbers", i + 1),
                })
            }
        }
    }
    if out.len() < 10 {
        return Err(TrackError::TrackData {
            track: name.to_string(),
            reason: "fewer than 10 points".into(),
        });
    }
    Ok(out)
}

fn closed_length(pts: &[(f64, f64)]) -> f64 {
    let n = pts.len();
    (0..n)
        .map(|i| {
            let a = pts[i];
            let b = pts[(i + 1) % n];
            ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt()
        })
        .sum()
}

fn wrap_angle(mut a: f64) -> f64 {
    use std::f64::consts::{PI, TAU};
    while a > PI {
        a -= TAU;
    }
    while a < -PI {
        a += TAU;
    }
    a
}

/// Circular box filter, `passes` times.
fn smooth_circular(v: &[f64], half: usize, passes: usize) -> Vec<f64> {
    let n = v.len();
    let mut cur = v.to_vec();
    if n == 0 {
        return cur;
    }
    let w = (2 * half + 1) as f64;
    for _ in 0..passes {
        let mut next = vec![0.0; n];
        let mut acc: f64 = (0..=2 * half).map(|k| cur[(k + n * 4 - half) % n]).sum();
        for (i, slot) in next.iter_mut().enumerate() {
            *slot = acc / w;
            let out_idx = (i + n * 4 - half) % n;
            let in_idx = (i + half + 1) % n;
            acc += cur[in_idx] - cur[out_idx];
        }
        cur = next;
    }
    cur
}

/// Edit distance (Levenshtein, case-insensitive) between two names.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The embedded track whose name is closest to `name`, when it is close enough to be a typo
/// (or `name` is the start of it): `"suzka"` gives `Suzuka`, `"Nowhere"` gives none.
pub fn closest_track(name: &str) -> Option<&'static str> {
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let lower = name.to_lowercase();
    if let Some(n) = NAMES
        .iter()
        .find(|n| n.to_lowercase().starts_with(&lower) && lower.len() >= 3)
    {
        return Some(n);
    }
    let (best, d) = NAMES
        .iter()
        .map(|n| (*n, edit_distance(name, n)))
        .min_by_key(|&(_, d)| d)?;
    (d <= (name.chars().count() / 3).max(1)).then_some(best)
}

/// The message of [`TrackError::UnknownTrack`] (and of `sim::SimError::UnknownTrack`): the
/// closest name, else every name.
pub fn unknown_track_message(name: &str) -> String {
    match closest_track(name) {
        Some(n) => format!(
            "unknown track {name:?}: did you mean {n}? (`pitwall tracks` lists all {})",
            NAMES.len()
        ),
        None => format!(
            "unknown track {name:?}; the {} tracks are: {}",
            NAMES.len(),
            NAMES.join(", ")
        ),
    }
}

impl Track {
    /// The names of all embedded tracks.
    pub fn names() -> &'static [&'static str] {
        &NAMES
    }

    /// Loads a track by name, case-insensitively (`"suzuka"`, `"Austin"`, `"ims"`).
    pub fn by_name(name: &str) -> Result<Track, TrackError> {
        let data = track_index(name)
            .and_then(|i| TRACKS.get(i))
            .ok_or_else(|| TrackError::UnknownTrack(name.to_string()))?;
        Track::build(data)
    }

    fn build(data: &TrackData) -> Result<Track, TrackError> {
        let center: Vec<CenterPoint> = parse_rows(data.name, data.center, 4)?
            .into_iter()
            .map(|r| CenterPoint {
                x_m: r[0],
                y_m: r[1],
                w_right_m: r[2],
                w_left_m: r[3],
            })
            .collect();
        let cpts: Vec<(f64, f64)> = center.iter().map(|c| (c.x_m, c.y_m)).collect();
        let center_length_m = closed_length(&cpts);
        let origin_x_m = cpts.iter().map(|p| p.0).sum::<f64>() / cpts.len() as f64;
        let origin_y_m = cpts.iter().map(|p| p.1).sum::<f64>() / cpts.len() as f64;

        let raw: Vec<(f64, f64)> = parse_rows(data.name, data.race, 2)?
            .into_iter()
            .map(|r| (r[0], r[1]))
            .collect();
        let length_m = closed_length(&raw);
        let n = ((length_m / GRID_DS_M).round() as usize).max(16);
        let ds_m = length_m / n as f64;
        // Resample the closed race line uniformly.
        let mut grid = Vec::with_capacity(n);
        let mut seg = 0usize;
        let mut seg_start = 0.0;
        let rn = raw.len();
        for k in 0..n {
            let s = k as f64 * ds_m;
            loop {
                let a = raw[seg % rn];
                let b = raw[(seg + 1) % rn];
                let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
                if s <= seg_start + len || seg + 1 >= rn {
                    let f = if len > 0.0 {
                        ((s - seg_start) / len).clamp(0.0, 1.0)
                    } else {
                        0.0
                    };
                    grid.push((a.0 + f * (b.0 - a.0), a.1 + f * (b.1 - a.1)));
                    break;
                }
                seg_start += len;
                seg += 1;
            }
        }
        // Heading change per grid step, then smoothing.
        let heading: Vec<f64> = (0..n)
            .map(|i| {
                let a = grid[i];
                let b = grid[(i + 1) % n];
                (b.1 - a.1).atan2(b.0 - a.0)
            })
            .collect();
        let raw_k: Vec<f64> = (0..n)
            .map(|i| wrap_angle(heading[i] - heading[(i + n - 1) % n]) / ds_m)
            .collect();
        let k = smooth_circular(&raw_k, SMOOTH_HALF_WIDTH, 3);
        let line: Vec<RaceLinePoint> = (0..n)
            .map(|i| RaceLinePoint {
                x_m: grid[i].0,
                y_m: grid[i].1,
                s_m: i as f64 * ds_m,
                curvature_1pm: k[i],
            })
            .collect();

        let (sectors_m, sector_source) = match data.name {
            // See `sector_boundaries_m` for the sources of these two.
            "Austin" => (
                [AUSTIN_S1_FRAC * length_m, AUSTIN_S2_FRAC * length_m],
                SectorSource::RealApproximate,
            ),
            _ => (
                [length_m / 3.0, 2.0 * length_m / 3.0],
                SectorSource::EvenSplit,
            ),
        };
        Ok(Track {
            name: data.name,
            center,
            center_length_m,
            line,
            length_m,
            ds_m,
            sectors_m,
            sector_source,
            ref_lat_deg: data.lat_deg,
            ref_lon_deg: data.lon_deg,
            origin_x_m,
            origin_y_m,
        })
    }

    /// The canonical name (`"Austin"`, `"IMS"`, ...).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Length of the race line, metres: the lap distance the simulator uses.
    pub fn length_m(&self) -> f64 {
        self.length_m
    }

    /// Length of the closed center line, metres.
    pub fn center_length_m(&self) -> f64 {
        self.center_length_m
    }

    /// The center line with track widths, as in the source file.
    pub fn center_line(&self) -> &[CenterPoint] {
        &self.center
    }

    /// The race line resampled on a uniform grid of about 2 m, with cumulative distance and
    /// smoothed curvature.
    pub fn race_line(&self) -> &[RaceLinePoint] {
        &self.line
    }

    /// Spacing of [`Track::race_line`], metres.
    pub fn grid_spacing_m(&self) -> f64 {
        self.ds_m
    }

    fn wrap_s(&self, s_m: f64) -> f64 {
        let l = self.length_m;
        let r = s_m.rem_euclid(l);
        if r.is_finite() {
            r
        } else {
            0.0
        }
    }

    fn interp(&self, s_m: f64) -> (usize, usize, f64) {
        let n = self.line.len();
        let x = self.wrap_s(s_m) / self.ds_m;
        let i = (x.floor() as usize).min(n - 1);
        (i, (i + 1) % n, (x - i as f64).clamp(0.0, 1.0))
    }

    /// Race line position (x, y) in metres at distance `s_m` (wrapped onto the lap).
    pub fn position_at(&self, s_m: f64) -> (f64, f64) {
        let (i, j, f) = self.interp(s_m);
        let (a, b) = (self.line[i], self.line[j]);
        (a.x_m + f * (b.x_m - a.x_m), a.y_m + f * (b.y_m - a.y_m))
    }

    /// Smoothed signed curvature (1/m, positive = left turn) at distance `s_m`.
    pub fn curvature_at(&self, s_m: f64) -> f64 {
        let (i, j, f) = self.interp(s_m);
        let (a, b) = (self.line[i], self.line[j]);
        a.curvature_1pm + f * (b.curvature_1pm - a.curvature_1pm)
    }

    /// The reference point (latitude, longitude in degrees) onto which the centroid of the
    /// center line is projected: approximate real coordinates of the circuit's middle.
    pub fn reference_lat_lon(&self) -> (f64, f64) {
        (self.ref_lat_deg, self.ref_lon_deg)
    }

    /// Projects local metres to (latitude, longitude) in degrees with an equirectangular
    /// projection around [`Track::reference_lat_lon`] (error well under a metre over a circuit).
    pub fn to_lat_lon(&self, x_m: f64, y_m: f64) -> (f64, f64) {
        let lat0 = self.ref_lat_deg.to_radians();
        let dlat = (y_m - self.origin_y_m) / EARTH_RADIUS_M;
        let dlon = (x_m - self.origin_x_m) / (EARTH_RADIUS_M * lat0.cos().max(1e-6));
        (
            self.ref_lat_deg + dlat.to_degrees(),
            self.ref_lon_deg + dlon.to_degrees(),
        )
    }

    /// (latitude, longitude) in degrees of the race line at distance `s_m`.
    pub fn lat_lon_at(&self, s_m: f64) -> (f64, f64) {
        let (x, y) = self.position_at(s_m);
        self.to_lat_lon(x, y)
    }

    /// Ends of sector 1 and sector 2, metres along the race line (sector 3 ends at the line).
    ///
    /// - `Austin` (COTA, GR Cup full course): S1 ends after the Turn 3-6 esses, between Turn 6
    ///   and the Turn 7 braking zone (1,630 m of this 5,415 m race line, 30.1 %); S2 ends at the
    ///   end of the 1 km back straight before the Turn 12 braking zone (3,560 m, 65.7 %). This
    ///   follows the published COTA sector layout (S1 = start to the esses, S2 = Turns 7-11 and
    ///   the back straight, S3 = the stadium section Turns 12-15 and Turns 16-20); turn positions
    ///   were located on this race line from its corners (the simulator's corners 2-5 are Turns
    ///   3, 4, 5 and 7). The exact timing-loop positions are not public: expect about ±100 m.
    /// - `IMS`: the source file is the 2.5-mile **oval** (4,023 m, counter-clockwise, four
    ///   left-handers), not the road course the GR Cup races, so road-course sectors cannot be
    ///   placed on it: it is split evenly like the others (quarter-mile lengths differ from the
    ///   real oval's timing lines too).
    /// - every other track: three equal parts by distance ([`Track::sector_source`] tells).
    pub fn sector_boundaries_m(&self) -> [f64; 2] {
        self.sectors_m
    }

    /// Whether the sectors are approximations of the real ones or an even split.
    pub fn sector_source(&self) -> SectorSource {
        self.sector_source
    }

    /// The sector (1, 2 or 3) that contains distance `s_m`.
    pub fn sector_at(&self, s_m: f64) -> u8 {
        let s = self.wrap_s(s_m);
        if s < self.sectors_m[0] {
            1
        } else if s < self.sectors_m[1] {
            2
        } else {
            3
        }
    }

    /// Total heading change of the left-hand and of the right-hand parts of the lap, degrees
    /// (both positive): a track with more right-hand turning loads its left tyres more.
    pub fn turning_deg(&self) -> (f64, f64) {
        let mut left = 0.0;
        let mut right = 0.0;
        for p in &self.line {
            let d = p.curvature_1pm * self.ds_m;
            if d > 0.0 {
                left += d;
            } else {
                right -= d;
            }
        }
        (left.to_degrees(), right.to_degrees())
    }
}

/// Index in [`TRACKS`] of the track called `name` (case-insensitive, surrounding blanks ignored).
fn track_index(name: &str) -> Option<usize> {
    let name = name.trim();
    TRACKS
        .iter()
        .position(|t| t.name.eq_ignore_ascii_case(name))
}

/// Lap length and the two inner sector ends of an embedded circuit, metres along its race line:
/// ([`Track::length_m`], [`Track::sector_boundaries_m`]) of [`Track::by_name`]`(name)`, `None`
/// for a name that is not one of the 25 (case-insensitive, as `by_name`).
///
/// What the live lap engine needs to cut laps and sectors on a known circuit. Building a track
/// resamples its whole race line, so each circuit's figures are computed once per process and
/// kept; unknown names (any string a client sends) are not stored, so the cache holds at most
/// 25 entries.
pub fn geometry(name: &str) -> Option<(f64, [f64; 2])> {
    /// One circuit's figures, `None` inside when its files do not load.
    type Slot = OnceLock<Option<(f64, [f64; 2])>>;
    static CACHE: [Slot; NAMES.len()] = [const { OnceLock::new() }; NAMES.len()];
    let i = track_index(name)?;
    *CACHE.get(i)?.get_or_init(|| {
        let data = TRACKS.get(i)?;
        Track::build(data)
            .ok()
            .map(|t| (t.length_m(), t.sector_boundaries_m()))
    })
}

/// COTA sector ends as fractions of the lap (see [`Track::sector_boundaries_m`]).
const AUSTIN_S1_FRAC: f64 = 1630.0 / 5415.0;
const AUSTIN_S2_FRAC: f64 = 3560.0 / 5415.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_tracks_load_with_plausible_lengths() {
        for name in Track::names() {
            let t = Track::by_name(name).unwrap();
            assert!(
                (t.length_m() - t.center_length_m()).abs() < 0.05 * t.center_length_m(),
                "{name}"
            );
            assert!(t.length_m() > 2000.0 && t.length_m() < 7100.0, "{name}");
            // A closed lap turns through 360 degrees net (0 for Suzuka's figure of eight).
            let (l, r) = t.turning_deg();
            let net = if *name == "Suzuka" { 0.0 } else { 360.0 };
            assert!(((l - r).abs() - net).abs() < 5.0, "{name}: {l} {r}");
        }
    }

    #[test]
    fn unknown_names_get_the_closest_track_or_the_list() {
        assert_eq!(closest_track("suzka"), Some("Suzuka"));
        assert_eq!(closest_track("brands"), Some("BrandsHatch"));
        assert_eq!(closest_track("Nowhere"), None);
        let m = unknown_track_message("Nowhere");
        for n in Track::names() {
            assert!(m.contains(n), "{m}");
        }
        assert!(unknown_track_message("Monzaa").contains("did you mean Monza?"));
    }

    #[test]
    fn by_name_is_case_insensitive() {
        assert_eq!(Track::by_name("suzuka").unwrap().name(), "Suzuka");
        assert_eq!(Track::by_name("ims").unwrap().name(), "IMS");
        assert!(matches!(
            Track::by_name("Nowhere"),
            Err(TrackError::UnknownTrack(_))
        ));
    }

    #[test]
    fn names_list_the_embedded_tracks_in_order() {
        let embedded: Vec<&str> = TRACKS.iter().map(|t| t.name).collect();
        assert_eq!(embedded, Track::names());
    }

    #[test]
    fn geometry_is_the_tracks_length_and_sector_ends() {
        for name in ["Austin", "spielberg", " IMS "] {
            let t = Track::by_name(name).unwrap();
            let want = Some((t.length_m(), t.sector_boundaries_m()));
            assert_eq!(geometry(name), want, "{name}");
            // Second call: from the cache, same figures.
            assert_eq!(geometry(name), want, "{name}");
        }
        let (len, [s1, s2]) = geometry("austin").unwrap();
        assert!((5300.0..5600.0).contains(&len), "{len}");
        assert!((s1 - 1630.0).abs() < 5.0 && s1 < s2 && s2 < len);
        assert_eq!(geometry("barber"), None);
        assert_eq!(geometry(""), None);
    }

    #[test]
    fn gps_projection_is_near_reference() {
        let t = Track::by_name("Austin").unwrap();
        let (lat, lon) = t.lat_lon_at(0.0);
        assert!((lat - 30.1328).abs() < 0.02 && (lon + 97.6411).abs() < 0.02);
        let t = Track::by_name("IMS").unwrap();
        let (lat, lon) = t.lat_lon_at(1000.0);
        assert!((lat - 39.795).abs() < 0.02 && (lon + 86.2347).abs() < 0.02);
        // 100 m north is about 0.0009 degrees of latitude.
        let (a, _) = t.to_lat_lon(0.0, 0.0);
        let (b, _) = t.to_lat_lon(0.0, 100.0);
        assert!(((b - a) - 0.000_899).abs() < 0.000_01);
    }

    #[test]
    fn sectors_are_ordered() {
        for name in Track::names() {
            let t = Track::by_name(name).unwrap();
            let [a, b] = t.sector_boundaries_m();
            assert!(0.0 < a && a < b && b < t.length_m(), "{name}");
        }
        let t = Track::by_name("Austin").unwrap();
        assert_eq!(t.sector_source(), SectorSource::RealApproximate);
        assert!((t.sector_boundaries_m()[0] - 1630.0).abs() < 5.0);
        let ims = Track::by_name("IMS").unwrap();
        assert_eq!(ims.sector_source(), SectorSource::EvenSplit);
        assert_eq!(t.sector_at(10.0), 1);
        assert_eq!(t.sector_at(t.length_m() - 1.0), 3);
    }

    #[test]
    fn counter_clockwise_cota_turns_left_more() {
        let (l, r) = Track::by_name("Austin").unwrap().turning_deg();
        assert!(l > r);
        let (l, r) = Track::by_name("Silverstone").unwrap().turning_deg();
        assert!(r > l);
    }
}
