//! Helpers shared by the benchmark examples: flags and the device.

use anyhow::Result;
use candle_core::Device;

/// The value after `name` on the command line, or `default`.
pub fn flag(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

/// The device of `--device` (`cpu`, the default, or `cuda:N`).
pub fn device(args: &[String]) -> Result<Device> {
    Ok(match flag(args, "--device", "cpu").strip_prefix("cuda:") {
        Some(n) => Device::new_cuda(n.parse()?)?,
        None => Device::Cpu,
    })
}
