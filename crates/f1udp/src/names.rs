//! Names for the game's numeric codes: tracks and tyre compounds.

/// The platform's name for an F1 game track id (formats 2023-2025), or `None` for -1 / unknown.
///
/// Circuits that exist in the shared track library keep its names (`Melbourne`, `Sakhir`,
/// `YasMarina`, `Austin`, `SaoPaulo`, `Spielberg`, `MexicoCity`...); others use their common
/// name (`Monaco`, `Baku`, `Jeddah`, `Miami`, `LasVegas`, `Losail`, `Imola`, `Portimao`,
/// `Singapore`...). Short and reversed layouts get their own names (`SilverstoneShort`,
/// `SpielbergReverse`...), since their maps differ.
pub fn track_name(track_id: i8) -> Option<&'static str> {
    Some(match track_id {
        0 => "Melbourne",
        1 => "PaulRicard",
        2 => "Shanghai",
        3 => "Sakhir",
        4 => "Catalunya",
        5 => "Monaco",
        6 => "Montreal",
        7 => "Silverstone",
        8 => "Hockenheim",
        9 => "Budapest",
        10 => "Spa",
        11 => "Monza",
        12 => "Singapore",
        13 => "Suzuka",
        14 => "YasMarina",
        15 => "Austin",
        16 => "SaoPaulo",
        17 => "Spielberg",
        18 => "Sochi",
        19 => "MexicoCity",
        20 => "Baku",
        21 => "SakhirShort",
        22 => "SilverstoneShort",
        23 => "AustinShort",
        24 => "SuzukaShort",
        25 => "Hanoi",
        26 => "Zandvoort",
        27 => "Imola",
        28 => "Portimao",
        29 => "Jeddah",
        30 => "Miami",
        31 => "LasVegas",
        32 => "Losail",
        39 => "SilverstoneReverse",
        40 => "SpielbergReverse",
        41 => "ZandvoortReverse",
        _ => return None,
    })
}

/// The name of a visual tyre compound: `soft`, `medium`, `hard`, `inter`, `wet` (F1 modern),
/// `dry` / `wet` (F1 classic), `super_soft`, `soft`, `medium`, `hard`, `wet` (F2); `None` for 0
/// (no data) and unknown codes.
pub fn compound_name(visual_compound: u8) -> Option<&'static str> {
    Some(match visual_compound {
        16 | 12 => "soft",
        17 | 13 => "medium",
        18 | 14 => "hard",
        7 => "inter",
        8 | 10 | 15 => "wet",
        9 => "dry",
        11 => "super_soft",
        _ => return None,
    })
}

/// Every name [`compound_name`] can return, so callers can intern them.
pub const COMPOUND_NAMES: [&str; 7] = [
    "soft",
    "medium",
    "hard",
    "inter",
    "wet",
    "dry",
    "super_soft",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_use_the_library_names() {
        assert_eq!(track_name(0), Some("Melbourne"));
        assert_eq!(track_name(7), Some("Silverstone"));
        assert_eq!(track_name(14), Some("YasMarina"));
        assert_eq!(track_name(15), Some("Austin"));
        assert_eq!(track_name(16), Some("SaoPaulo"));
        assert_eq!(track_name(17), Some("Spielberg"));
        assert_eq!(track_name(19), Some("MexicoCity"));
        assert_eq!(track_name(-1), None);
        assert_eq!(track_name(33), None);
    }

    #[test]
    fn compounds() {
        assert_eq!(compound_name(16), Some("soft"));
        assert_eq!(compound_name(17), Some("medium"));
        assert_eq!(compound_name(18), Some("hard"));
        assert_eq!(compound_name(7), Some("inter"));
        assert_eq!(compound_name(8), Some("wet"));
        assert_eq!(compound_name(0), None);
        for c in 0..=255u8 {
            if let Some(n) = compound_name(c) {
                assert!(COMPOUND_NAMES.contains(&n));
            }
        }
    }
}
