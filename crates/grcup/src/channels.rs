//! The telemetry channels PitWall reads from GR Cup files, and their names there.

/// A telemetry channel this crate maps onto a [`telemetry::Sample`] field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// `speed`, km/h → `speed_kmh`.
    Speed,
    /// `gear` → `gear`.
    Gear,
    /// `nmot`, rpm → `rpm`.
    Rpm,
    /// `aps` or `ath` (the name differs by track), % → `throttle_pct`.
    Throttle,
    /// `pbrake_f`, bar → `brake_front_bar`.
    BrakeFront,
    /// `pbrake_r`, bar → `brake_rear_bar`.
    BrakeRear,
    /// `accx_can`, g → `accx_g`.
    AccX,
    /// `accy_can`, g → `accy_g`.
    AccY,
    /// `Steering_Angle`, degrees → `steering_deg`.
    Steering,
    /// `Laptrigger_lapdist_dls`, metres from the start line → `lap_dist_m`.
    LapDist,
    /// `VBOX_Lat_Min`, degrees despite the name → `lat_deg`.
    Lat,
    /// `VBOX_Long_Minutes`, degrees despite the name → `lon_deg`.
    Lon,
    /// `tyre_wear_fl` (simulator ground truth), % → `tyre_wear_pct.fl`.
    WearFl,
    /// `tyre_wear_fr` → `tyre_wear_pct.fr`.
    WearFr,
    /// `tyre_wear_rl` → `tyre_wear_pct.rl`.
    WearRl,
    /// `tyre_wear_rr` → `tyre_wear_pct.rr`.
    WearRr,
}

/// Number of channels.
pub(crate) const N_CHANNELS: usize = 16;

impl Channel {
    /// All channels, in index order.
    pub const ALL: [Channel; N_CHANNELS] = [
        Channel::Speed,
        Channel::Gear,
        Channel::Rpm,
        Channel::Throttle,
        Channel::BrakeFront,
        Channel::BrakeRear,
        Channel::AccX,
        Channel::AccY,
        Channel::Steering,
        Channel::LapDist,
        Channel::Lat,
        Channel::Lon,
        Channel::WearFl,
        Channel::WearFr,
        Channel::WearRl,
        Channel::WearRr,
    ];

    /// Dense index 0..16.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The channel a GR Cup channel name stands for (exact spelling first, then ignoring
    /// ASCII case and surrounding spaces/quotes). `None` for channels PitWall does not use.
    pub fn from_name(name: &[u8]) -> Option<Channel> {
        match name {
            b"speed" => Some(Channel::Speed),
            b"accx_can" => Some(Channel::AccX),
            b"accy_can" => Some(Channel::AccY),
            b"gear" => Some(Channel::Gear),
            b"nmot" => Some(Channel::Rpm),
            b"aps" | b"ath" => Some(Channel::Throttle),
            b"pbrake_f" => Some(Channel::BrakeFront),
            b"pbrake_r" => Some(Channel::BrakeRear),
            b"Steering_Angle" => Some(Channel::Steering),
            b"Laptrigger_lapdist_dls" => Some(Channel::LapDist),
            b"VBOX_Lat_Min" => Some(Channel::Lat),
            b"VBOX_Long_Minutes" => Some(Channel::Lon),
            b"tyre_wear_fl" => Some(Channel::WearFl),
            b"tyre_wear_fr" => Some(Channel::WearFr),
            b"tyre_wear_rl" => Some(Channel::WearRl),
            b"tyre_wear_rr" => Some(Channel::WearRr),
            _ => Self::from_name_loose(name),
        }
    }

    #[cold]
    fn from_name_loose(name: &[u8]) -> Option<Channel> {
        let n = crate::clock::trim(name);
        const NAMES: [(&[u8], Channel); 17] = [
            (b"speed", Channel::Speed),
            (b"accx_can", Channel::AccX),
            (b"accy_can", Channel::AccY),
            (b"gear", Channel::Gear),
            (b"nmot", Channel::Rpm),
            (b"aps", Channel::Throttle),
            (b"ath", Channel::Throttle),
            (b"pbrake_f", Channel::BrakeFront),
            (b"pbrake_r", Channel::BrakeRear),
            (b"steering_angle", Channel::Steering),
            (b"laptrigger_lapdist_dls", Channel::LapDist),
            (b"vbox_lat_min", Channel::Lat),
            (b"vbox_long_minutes", Channel::Lon),
            (b"tyre_wear_fl", Channel::WearFl),
            (b"tyre_wear_fr", Channel::WearFr),
            (b"tyre_wear_rl", Channel::WearRl),
            (b"tyre_wear_rr", Channel::WearRr),
        ];
        NAMES
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, c)| *c)
    }
}
