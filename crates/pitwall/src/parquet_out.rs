//! Samples to Parquet with the `parquet` crate's low-level column writers (no Arrow): one row
//! per sample, the same columns as the CSV export, Snappy-compressed row groups of
//! [`ROW_GROUP_SAMPLES`] samples (memory is bounded by one row group).

use crate::export::SAMPLE_COLUMNS;
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int32Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use std::fs::File;
use std::sync::Arc;
use telemetry::{Corners, Sample};

/// Samples per row group.
pub const ROW_GROUP_SAMPLES: usize = 65_536;

/// How a column is stored.
#[derive(Clone, Copy)]
enum Kind {
    /// Required UTF-8 string.
    ReqStr,
    OptStr,
    ReqF64,
    OptF64,
    OptI32,
}

fn kind(name: &str) -> Kind {
    match name {
        "session_id" | "car_id" => Kind::ReqStr,
        "track" | "tyre_compound" => Kind::OptStr,
        "t_s" => Kind::ReqF64,
        "lap" | "gear" | "position" | "tyre_age_laps" | "pit_status" => Kind::OptI32,
        _ => Kind::OptF64,
    }
}

fn schema() -> String {
    let mut s = String::from("message sample {\n");
    for c in SAMPLE_COLUMNS {
        let t = match kind(c) {
            Kind::ReqStr => "REQUIRED BYTE_ARRAY",
            Kind::OptStr => "OPTIONAL BYTE_ARRAY",
            Kind::ReqF64 => "REQUIRED DOUBLE",
            Kind::OptF64 => "OPTIONAL DOUBLE",
            Kind::OptI32 => "OPTIONAL INT32",
        };
        let ann = if matches!(kind(c), Kind::ReqStr | Kind::OptStr) {
            " (UTF8)"
        } else {
            ""
        };
        s.push_str(&format!("  {t} {c}{ann};\n"));
    }
    s.push('}');
    s
}

fn corner(c: Option<Corners<f64>>, i: usize) -> Option<f64> {
    c.map(Corners::to_array).and_then(|a| a.get(i).copied())
}

fn f64_of(s: &Sample, col: &str) -> Option<f64> {
    match col {
        "t_s" => Some(s.t_s),
        "lap_dist_m" => s.lap_dist_m,
        "speed_kmh" => s.speed_kmh,
        "accx_g" => s.accx_g,
        "accy_g" => s.accy_g,
        "brake_front_bar" => s.brake_front_bar,
        "brake_rear_bar" => s.brake_rear_bar,
        "throttle_pct" => s.throttle_pct,
        "brake_pct" => s.brake_pct,
        "steering_deg" => s.steering_deg,
        "rpm" => s.rpm,
        "lat_deg" => s.lat_deg,
        "lon_deg" => s.lon_deg,
        "fuel_kg" => s.fuel_kg,
        "tyre_wear_fl_pct" => corner(s.tyre_wear_pct, 0),
        "tyre_wear_fr_pct" => corner(s.tyre_wear_pct, 1),
        "tyre_wear_rl_pct" => corner(s.tyre_wear_pct, 2),
        "tyre_wear_rr_pct" => corner(s.tyre_wear_pct, 3),
        "tyre_temp_fl_c" => corner(s.tyre_temp_c, 0),
        "tyre_temp_fr_c" => corner(s.tyre_temp_c, 1),
        "tyre_temp_rl_c" => corner(s.tyre_temp_c, 2),
        "tyre_temp_rr_c" => corner(s.tyre_temp_c, 3),
        "track_temp_c" => s.track_temp_c,
        "air_temp_c" => s.air_temp_c,
        _ => None,
    }
}

fn i32_of(s: &Sample, col: &str) -> Option<i32> {
    match col {
        "lap" => s.lap.and_then(|v| i32::try_from(v).ok()),
        "gear" => s.gear.map(i32::from),
        "position" => s.position.map(i32::from),
        "tyre_age_laps" => s.tyre_age_laps.map(i32::from),
        "pit_status" => s.pit_status.map(|p| i32::from(p.code())),
        _ => None,
    }
}

fn str_of<'a>(s: &'a Sample, col: &str) -> Option<&'a str> {
    match col {
        "session_id" => Some(&s.session_id),
        "car_id" => Some(&s.car_id),
        "track" => s.track.as_deref(),
        "tyre_compound" => s.tyre_compound.as_deref(),
        _ => None,
    }
}

/// Writes samples to a Parquet file, one row group per [`ROW_GROUP_SAMPLES`].
pub struct ParquetSamples {
    writer: SerializedFileWriter<File>,
    buf: Vec<Sample>,
    rows: u64,
}

impl ParquetSamples {
    pub fn create(file: File) -> parquet::errors::Result<Self> {
        let schema = Arc::new(parquet::schema::parser::parse_message_type(&schema())?);
        let props = Arc::new(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_created_by("pitwall export".into())
                .build(),
        );
        Ok(ParquetSamples {
            writer: SerializedFileWriter::new(file, schema, props)?,
            buf: Vec::with_capacity(ROW_GROUP_SAMPLES),
            rows: 0,
        })
    }

    pub fn push(&mut self, s: Sample) -> parquet::errors::Result<()> {
        self.buf.push(s);
        if self.buf.len() >= ROW_GROUP_SAMPLES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> parquet::errors::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let rows = &self.buf;
        let mut rg = self.writer.next_row_group()?;
        let mut cols = SAMPLE_COLUMNS.iter();
        while let Some(mut w) = rg.next_column()? {
            let name = cols.next().copied().unwrap_or("");
            let k = kind(name);
            let def = |present: &dyn Fn(&Sample) -> bool| -> Vec<i16> {
                rows.iter().map(|s| i16::from(present(s))).collect()
            };
            match k {
                Kind::ReqStr | Kind::OptStr => {
                    let vals: Vec<ByteArray> = rows
                        .iter()
                        .filter_map(|s| str_of(s, name))
                        .map(|v| ByteArray::from(v.as_bytes().to_vec()))
                        .collect();
                    let levels = def(&|s| str_of(s, name).is_some());
                    let d = matches!(k, Kind::OptStr).then_some(levels.as_slice());
                    w.typed::<ByteArrayType>().write_batch(&vals, d, None)?;
                }
                Kind::ReqF64 | Kind::OptF64 => {
                    let vals: Vec<f64> = rows.iter().filter_map(|s| f64_of(s, name)).collect();
                    let levels = def(&|s| f64_of(s, name).is_some());
                    let d = matches!(k, Kind::OptF64).then_some(levels.as_slice());
                    w.typed::<DoubleType>().write_batch(&vals, d, None)?;
                }
                Kind::OptI32 => {
                    let vals: Vec<i32> = rows.iter().filter_map(|s| i32_of(s, name)).collect();
                    let levels = def(&|s| i32_of(s, name).is_some());
                    w.typed::<Int32Type>()
                        .write_batch(&vals, Some(&levels), None)?;
                }
            }
            w.close()?;
        }
        rg.close()?;
        self.rows += rows.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Writes the last row group and the footer; returns the rows written.
    pub fn finish(mut self) -> parquet::errors::Result<u64> {
        self.flush()?;
        self.writer.close()?;
        Ok(self.rows)
    }
}
