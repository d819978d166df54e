//! Where and when a run ran: the weights digest, the machine, the versions and the start
//! time, recorded in the results JSON so that a report can show them beside the numbers.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// The circumstances of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// When the run started, UTC, as RFC 3339 (`2026-12-02T14:18:27Z`).
    pub started_utc: String,
    /// The backbone's weights digest (`sha256:...` of the checkpoint, or `random:seed=N`).
    pub weights_digest: String,
    /// The host name.
    pub host: String,
    /// Operating system and CPU architecture (`linux x86_64`).
    pub os: String,
    /// The CPU model, from `/proc/cpuinfo` where there is one.
    pub cpu: String,
    /// Worker threads (rayon's pool).
    pub threads: usize,
    /// The device the trunk ran on (`cpu`, `cuda:0`).
    pub device: String,
    /// `sslbench <version>` and the results schema it wrote.
    pub versions: String,
}

impl Provenance {
    /// This machine, now, for a run on `device` with weights `weights_digest`.
    pub fn here(device: &candle_core::Device, weights_digest: String) -> Provenance {
        let device = match device.location() {
            candle_core::DeviceLocation::Cpu => "cpu".to_string(),
            candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
            candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
        };
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Provenance {
            started_utc: utc_rfc3339(secs),
            weights_digest,
            host: crate::lock::host_name(),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            cpu: cpu_model().unwrap_or_else(|| "unknown".into()),
            threads: rayon::current_num_threads(),
            device,
            versions: format!(
                "sslbench {}, {}",
                env!("CARGO_PKG_VERSION"),
                super::result::RESULT_SCHEMA
            ),
        }
    }
}

/// The first `model name` of `/proc/cpuinfo`.
fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// Seconds since 1970 as `YYYY-MM-DDTHH:MM:SSZ` (the proleptic Gregorian calendar).
pub fn utc_rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    // Civil date from days since 1970-01-01: eras of 400 years, each 146097 days long.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc_rfc3339;

    #[test]
    fn unix_seconds_become_utc_dates() {
        assert_eq!(utc_rfc3339(0), "1970-01-01T00:00:00Z");
        // 2000-02-29 (a leap day of a year divisible by 400) and the end of 2026-12-02.
        assert_eq!(utc_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_rfc3339(1_796_255_999), "2026-12-02T23:59:59Z");
    }
}
