//! The supervision of a run ([`Supervision`]: codebook, 1/8 labels per (frame, short side),
//! the baselines' statistics) computed once per (dataset, ground truth, codebook, input
//! protocol, training split) and kept in the shared cache as an HDF5 file that h5py reads:
//! `items` (M x 4 u64: NYU index, short side, h, w, sorted), `labels` (the M label maps
//! concatenated, u8, 255 = ignored), `mean_normal` (H.W x 3 f64), and the attributes
//! `codebook` (its JSON, exact float64 decimals), `most_common` and `format`.

use super::codebook::Codebook;
use super::config::NormalsConfig;
use super::dataset::NyuFrames;
use super::labels::{ItemLabels, Supervision};
use crate::features::derived::{Derived, DerivedFile};
use crate::features::store::{read_attr, write_attr};
use crate::features::FeatureStore;
use anyhow::{ensure, Context, Result};
use ndarray::{Array1, Array2};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

/// The cache folder of these files.
pub const KIND: &str = "normals-labels";

/// The layout version, in the file and in the digest.
const FORMAT: &str = "sslbench-normals-labels-1";

/// The digest of everything the supervision depends on.
pub fn digest(cfg: &NormalsConfig, frames: &NyuFrames) -> Result<String> {
    let mut h = Sha256::new();
    let mut put = |s: &str| {
        h.update(s.as_bytes());
        h.update(b"\n");
    };
    put(FORMAT);
    put(&frames.identity()?);
    match cfg.data.codebook.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => {
            let path = cfg.data.resolve(p)?;
            let sha = crate::atomic::file_sha256(&path, || {
                format!(
                    "cannot read the codebook {} (data.codebook)",
                    path.display()
                )
            })?;
            put(&format!("codebook file {sha} k {}", cfg.codebook.k));
        }
        None => put(&format!("k-means {:?}", cfg.codebook)),
    }
    put(&format!("{:?}", cfg.input));
    put(&format!("train {:?}", frames.splits.train));
    Ok(hex::encode(h.finalize())[..32].to_string())
}

/// Writes `sup` as the file at `path`.
fn write(sup: &Supervision, path: &Path) -> Result<()> {
    let file =
        crate::h5::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut keys: Vec<&(usize, usize)> = sup.items.keys().collect();
    keys.sort();
    let mut items = Array2::<u64>::zeros((keys.len(), 4));
    let mut labels = Vec::new();
    for (r, k) in keys.iter().enumerate() {
        let it = &sup.items[k];
        for (c, v) in [k.0, k.1, it.size.0, it.size.1].into_iter().enumerate() {
            items[[r, c]] = v as u64;
        }
        labels.extend_from_slice(&it.labels);
    }
    let mean = Array2::from_shape_vec(
        (sup.mean_normal.len(), 3),
        sup.mean_normal.iter().flatten().copied().collect(),
    )?;
    file.new_dataset_builder()
        .with_data(&items)
        .create("items")?;
    file.new_dataset_builder()
        .with_data(&Array1::from(labels))
        .create("labels")?;
    file.new_dataset_builder()
        .with_data(&mean)
        .create("mean_normal")?;
    write_attr(&file, "format", FORMAT)?;
    write_attr(&file, "codebook", &serde_json::to_string(&sup.codebook)?)?;
    file.new_attr::<u64>()
        .create("most_common")?
        .write_scalar(&(sup.most_common as u64))?;
    Ok(())
}

/// Reads a file written by [`write`].
fn read(path: &Path) -> Result<Supervision> {
    let file = crate::h5::open(path)?;
    let format = read_attr(&file, "format")?;
    ensure!(format == FORMAT, "format {format:?}, expected {FORMAT:?}");
    let c: Codebook = serde_json::from_str(&read_attr(&file, "codebook")?)?;
    let codebook = Codebook::new(c.centres, c.source)?;
    let most_common = file.attr("most_common")?.read_scalar::<u64>()? as usize;
    let items: Array2<u64> = file.dataset("items")?.read_2d()?;
    let labels: Vec<u8> = file.dataset("labels")?.read_raw()?;
    let mean: Array2<f64> = file.dataset("mean_normal")?.read_2d()?;
    ensure!(items.ncols() == 4 && mean.ncols() == 3, "unexpected shapes");
    let mut map = HashMap::new();
    let mut at = 0usize;
    for row in items.rows() {
        let (h, w) = (row[2] as usize, row[3] as usize);
        let end = at + h * w;
        ensure!(end <= labels.len(), "the labels end before item {row}");
        map.insert(
            (row[0] as usize, row[1] as usize),
            ItemLabels {
                labels: labels[at..end].to_vec(),
                size: (h, w),
            },
        );
        at = end;
    }
    ensure!(at == labels.len(), "{} labels left over", labels.len() - at);
    Ok(Supervision {
        codebook,
        items: map,
        most_common,
        mean_normal: mean
            .rows()
            .into_iter()
            .map(|r| [r[0], r[1], r[2]])
            .collect(),
    })
}

/// The run's supervision from the cache, or built ([`Supervision::build`], which saves a
/// fitted codebook to `codebook_file`) and stored. A fitted codebook read from the cache is
/// also written to `codebook_file` when that file is missing, so every run folder holds its
/// centres.
pub fn get(
    cfg: &NormalsConfig,
    frames: &NyuFrames,
    store: &FeatureStore,
    codebook_file: &Path,
) -> Result<(Supervision, Derived)> {
    let file = DerivedFile {
        kind: KIND,
        digest: digest(cfg, frames)?,
        ext: "h5",
        read: &read,
        write: &write,
    };
    let (sup, derived) =
        file.get_or_make(store, || Supervision::build(cfg, frames, codebook_file))?;
    let fitted = cfg.data.codebook.as_deref().is_none_or(str::is_empty);
    if fitted && !codebook_file.exists() {
        sup.codebook.save(codebook_file)?;
    }
    Ok((sup, derived))
}
