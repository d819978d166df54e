//! NumPy `.npy` files (format 1.0-3.0, little-endian, C order): FAIR's feature, target and
//! low-shot sample files, and the exchange format with the scikit-learn reference scripts.

use anyhow::{bail, Context, Result};
use ndarray::{ArrayD, IxDyn};
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// Reads a numeric `.npy` array as f64 (any float, signed, unsigned or bool dtype).
pub fn read(path: &Path) -> Result<ArrayD<f64>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&bytes).with_context(|| format!("{} is not a readable .npy array", path.display()))
}

fn parse(bytes: &[u8]) -> Result<ArrayD<f64>> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        bail!("no NumPy magic string");
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => bail!("unsupported .npy version {v}"),
    };
    let header = std::str::from_utf8(bytes.get(start..start + len).context("truncated header")?)
        .context("header is not text")?;
    let descr = field(header, "descr")?.trim_matches(|c| c == '\'' || c == '"');
    if field(header, "fortran_order")?.trim() != "False" {
        bail!("Fortran-ordered arrays are not supported: save with np.ascontiguousarray");
    }
    let shape_text = field(header, "shape")?;
    let shape: Vec<usize> = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().context("bad shape"))
        .collect::<Result<_>>()?;
    let count: usize = shape.iter().product();
    let body = &bytes[start + len..];
    let (endian, kind) = descr.split_at(1);
    if endian == ">" {
        bail!("big-endian arrays are not supported: save with arr.astype('<{kind}')");
    }
    let size: usize = kind[1..].parse().context("bad dtype size")?;
    if body.len() < count * size {
        bail!(
            "data is truncated: {} bytes for {count} values of {descr}",
            body.len()
        );
    }
    let values: Vec<f64> = body[..count * size]
        .chunks_exact(size)
        .map(|c| decode(&kind[..1], c))
        .collect::<Result<_>>()
        .with_context(|| format!("unsupported dtype {descr}"))?;
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), values)?)
}

fn decode(kind: &str, c: &[u8]) -> Result<f64> {
    let mut b = [0u8; 8];
    b[..c.len()].copy_from_slice(c);
    Ok(match (kind, c.len()) {
        ("f", 4) => f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
        ("f", 8) => f64::from_le_bytes(b),
        ("i", 1) => c[0] as i8 as f64,
        ("i", 2) => i16::from_le_bytes([c[0], c[1]]) as f64,
        ("i", 4) => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
        ("i", 8) => i64::from_le_bytes(b) as f64,
        ("u" | "b", _) => u64::from_le_bytes(b) as f64,
        _ => bail!("not a numeric dtype"),
    })
}

/// The value text of `'key': value` in a header dict.
fn field<'a>(header: &'a str, key: &str) -> Result<&'a str> {
    let at = header
        .find(&format!("'{key}'"))
        .with_context(|| format!("header has no '{key}'"))?;
    let rest = header[at + key.len() + 2..]
        .trim_start()
        .trim_start_matches(':');
    let end = if rest.trim_start().starts_with('(') {
        rest.find(')').map(|e| e + 1)
    } else {
        rest.find(',')
    }
    .unwrap_or(rest.len());
    Ok(rest[..end].trim())
}

/// Writes a little-endian f32 array (format 1.0).
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    write(
        path,
        "<f4",
        shape,
        &data
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>(),
    )
}

/// Writes a little-endian i32 array (format 1.0).
pub fn write_i32(path: &Path, shape: &[usize], data: &[i32]) -> Result<()> {
    write(
        path,
        "<i4",
        shape,
        &data
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>(),
    )
}

fn write(path: &Path, descr: &str, shape: &[usize], body: &[u8]) -> Result<()> {
    let dims = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
    // Pad so that the data starts on a 64-byte boundary, ending with a newline.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&[1, 0]);
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(body);
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bool() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write_f32(&p, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, -6.5]).unwrap();
        let a = read(&p).unwrap();
        assert_eq!(a.shape(), &[2, 3]);
        assert_eq!(a[[1, 2]], -6.5);
        write_i32(&p, &[3], &[1, -1, 0]).unwrap();
        assert_eq!(
            read(&p).unwrap().into_raw_vec_and_offset().0,
            vec![1.0, -1.0, 0.0]
        );
        std::fs::write(&p, b"not numpy").unwrap();
        assert!(read(&p).is_err());
    }
}
