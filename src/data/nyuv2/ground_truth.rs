//! Ground-truth normals in the forms users have (see `shared/docs/research/normals.md` §2):
//!
//! - `all_normals.pklz` (FAIR's `nyuv2_surfacenormal_metadata.zip`): a gzip-compressed pickle
//!   of a dict with `all_normals` (N x H x W x 3 float32), `all_valid_depth_masks` (N x H x W
//!   float32 `depthValid`) and `all_filenames` (N names such as `000001`). Python reads it whole,
//!   and so does [`AllNormals::read`] (about 7 GB for the 1449 frames); frames are converted
//!   to `f32` one at a time.
//! - per-image MATLAB v5 files (Ladicky's, as FAIR's converter and Fouhey's code read them:
//!   `000001.mat`, `nm_000001.mat`) with H x W `nx`, `ny`, `nz` and `depthValid`;
//! - PNGs (Ladicky's `nyu_normals_gt.zip`, `00001.png`): RGB codes decoded as
//!   `code / max * 2 - 1` (max 255, or 65535 for 16-bit PNGs), with an optional separate mask
//!   PNG (Eigen's `masks/0000.png`, non-zero = valid); without one, a pixel is valid unless all
//!   three codes are 0.
//!
//! Normals must be unit vectors where the mask is valid, within [`UNIT_TOLERANCE`] (PNGs: plus
//! their quantisation, sqrt(3) / max); anything else is an error naming the file.

use super::{nyu_index, NormalsMap};
use crate::data::mat5::{self, MatValue};
use crate::data::pickle::{self, NdArray, PyValue};
use anyhow::{bail, Context, Result};
use ndarray::{Array2, Array3};
use std::io::Read;
use std::path::{Path, PathBuf};

/// How far from 1 the length of a valid float normal may be.
pub const UNIT_TOLERANCE: f64 = 1e-3;

/// The contents of an `all_normals.pklz`.
pub struct AllNormals {
    path: PathBuf,
    normals: NdArray,
    masks: NdArray,
    names: Vec<String>,
}

impl AllNormals {
    /// Reads the file and checks its keys and shapes; a missing file or key, or arrays of the
    /// wrong rank or of disagreeing sizes, are errors naming the file.
    pub fn read(path: &Path) -> Result<AllNormals> {
        let file = std::fs::File::open(path).with_context(|| {
            format!(
                "cannot open {}: all_normals.pklz ships in FAIR's \
                 nyuv2_surfacenormal_metadata.zip; fix the path",
                path.display()
            )
        })?;
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(std::io::BufReader::new(file))
            .read_to_end(&mut bytes)
            .with_context(|| {
                format!(
                    "{} is not gzip-compressed: all_normals.pklz is a gzip pickle",
                    path.display()
                )
            })?;
        let value = pickle::from_bytes(&bytes)
            .with_context(|| format!("{} does not hold a readable pickle", path.display()))?;
        drop(bytes);
        let PyValue::Dict(mut items) = value else {
            bail!(
                "{} holds a pickled {}, not the dict of all_normals.pklz",
                path.display(),
                value.type_name()
            );
        };
        let mut take = |key: &str| -> Result<PyValue> {
            let at = items
                .iter()
                .position(|(k, _)| k.text().as_deref() == Some(key))
                .with_context(|| {
                    format!(
                        "{} has no key `{key}`: all_normals.pklz holds all_normals, \
                         all_valid_depth_masks and all_filenames",
                        path.display()
                    )
                })?;
            Ok(items.swap_remove(at).1)
        };
        let array = |v: PyValue, key: &str, rank: usize| -> Result<NdArray> {
            match v {
                PyValue::Array(a) if a.shape.len() == rank && !a.fortran_order => Ok(a),
                PyValue::Array(a) => bail!(
                    "`{key}` in {} has shape {:?}{}; want a C-ordered array of rank {rank}",
                    path.display(),
                    a.shape,
                    if a.fortran_order {
                        " (Fortran order)"
                    } else {
                        ""
                    }
                ),
                other => bail!(
                    "`{key}` in {} is a {}, not a numpy array",
                    path.display(),
                    other.type_name()
                ),
            }
        };
        let normals = array(take("all_normals")?, "all_normals", 4)?;
        let masks = array(take("all_valid_depth_masks")?, "all_valid_depth_masks", 3)?;
        let names = names(take("all_filenames")?)
            .with_context(|| format!("`all_filenames` in {}", path.display()))?;
        let n = normals.shape[0];
        if normals.shape[3] != 3 || masks.shape[..] != normals.shape[..3] || names.len() != n {
            bail!(
                "{}: all_normals {:?}, all_valid_depth_masks {:?} and {} file names disagree; \
                 want N x H x W x 3, N x H x W and N names",
                path.display(),
                normals.shape,
                masks.shape,
                names.len()
            );
        }
        Ok(AllNormals {
            path: path.to_owned(),
            normals,
            masks,
            names,
        })
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when the file holds no image.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The images' names (`all_filenames`), in file order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The position of the image called `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Image `i` (0-based position in the file), its unit length checked.
    pub fn get(&self, i: usize) -> Result<NormalsMap> {
        if i >= self.len() {
            bail!(
                "image {i} is past the {} images of {}",
                self.len(),
                self.path.display()
            );
        }
        let (h, w) = (self.masks.shape[1], self.masks.shape[2]);
        let normals = frame(&self.normals, i)?;
        let valid: Vec<bool> = frame(&self.masks, i)?.iter().map(|&v| v != 0.0).collect();
        let name = self.names[i].clone();
        let map = NormalsMap {
            index: nyu_index(&name, &self.path)?,
            name,
            normals: Array3::from_shape_vec((h, w, 3), normals)?,
            valid: Array2::from_shape_vec((h, w), valid)?,
        };
        check_unit(&map, UNIT_TOLERANCE, &self.path)?;
        Ok(map)
    }
}

/// Element block `i` of the outermost axis of a C-ordered array, as f32.
fn frame(a: &NdArray, i: usize) -> Result<Vec<f32>> {
    let per: usize = a.shape[1..].iter().product::<usize>() * a.dtype.size;
    let data = a
        .data
        .get(i * per..(i + 1) * per)
        .context("the array holds fewer bytes than its shape")?;
    NdArray {
        dtype: a.dtype,
        shape: a.shape[1..].to_vec(),
        fortran_order: false,
        data: data.to_vec(),
    }
    .to_f32_vec()
}

/// The names of `all_filenames`: a list of strings, or a numpy array of `S`/`U` strings.
fn names(v: PyValue) -> Result<Vec<String>> {
    if let Some(items) = v.items() {
        return items
            .iter()
            .map(|x| {
                x.text()
                    .map(|t| t.into_owned())
                    .context("a name is not text")
            })
            .collect();
    }
    let Some(a) = v.as_array() else {
        bail!("a {}, not a list of names", v.type_name());
    };
    let size = a.dtype.size;
    match a.dtype.kind {
        'S' => Ok(a
            .data
            .chunks(size.max(1))
            .map(|c| {
                c.iter()
                    .take_while(|&&b| b != 0)
                    .map(|&b| b as char)
                    .collect()
            })
            .collect()),
        'U' => Ok(a
            .data
            .chunks(size.max(4))
            .map(|c| {
                c.chunks_exact(4)
                    .map(|b| {
                        let b = [b[0], b[1], b[2], b[3]];
                        if a.dtype.big_endian {
                            u32::from_be_bytes(b)
                        } else {
                            u32::from_le_bytes(b)
                        }
                    })
                    .take_while(|&u| u != 0)
                    .map(|u| char::from_u32(u).unwrap_or('\u{fffd}'))
                    .collect()
            })
            .collect()),
        _ => bail!("an array of dtype {}, not of strings", a.dtype.descr()),
    }
}

/// Reads a per-image MATLAB v5 normals file (`nx`, `ny`, `nz`, `depthValid`, each H x W).
pub fn read_normals_mat(path: &Path) -> Result<NormalsMap> {
    let vars = mat5::read(path)?;
    let plane = |name: &str| -> Result<(Vec<f64>, usize, usize)> {
        let a = vars
            .get(name)
            .and_then(MatValue::numeric)
            .with_context(|| {
                format!(
                    "{} has no numeric variable `{name}`: a per-image normals file holds \
                     nx, ny, nz and depthValid",
                    path.display()
                )
            })?;
        if a.dims.len() != 2 {
            bail!(
                "`{name}` in {} has dimensions {:?}, not H x W",
                path.display(),
                a.dims
            );
        }
        Ok((a.to_f64_vec(), a.dims[0], a.dims[1]))
    };
    let (nx, h, w) = plane("nx")?;
    let planes = [plane("ny")?, plane("nz")?, plane("depthValid")?];
    if let Some((_, ph, pw)) = planes.iter().find(|(_, ph, pw)| (*ph, *pw) != (h, w)) {
        bail!(
            "{}: `nx` is {h}x{w} but another variable is {ph}x{pw}; all four must be H x W",
            path.display()
        );
    }
    let [(ny, ..), (nz, ..), (valid, ..)] = planes;
    // MATLAB is column-major: element (y, x) is at x * h + y.
    let normals =
        Array3::from_shape_fn((h, w, 3), |(y, x, c)| [&nx, &ny, &nz][c][x * h + y] as f32);
    let valid = Array2::from_shape_fn((h, w), |(y, x)| valid[x * h + y] != 0.0);
    let name = stem(path);
    let map = NormalsMap {
        index: nyu_index(&name, path)?,
        name,
        normals,
        valid,
    };
    check_unit(&map, UNIT_TOLERANCE, path)?;
    Ok(map)
}

/// Reads a normals PNG (8- or 16-bit RGB) and, when given, its mask PNG.
pub fn read_normals_png(path: &Path, mask: Option<&Path>) -> Result<NormalsMap> {
    let open =
        |p: &Path| image::open(p).with_context(|| format!("cannot read the PNG {}", p.display()));
    let img = open(path)?;
    let sixteen = matches!(
        img.color(),
        image::ColorType::Rgb16 | image::ColorType::Rgba16
    );
    let max = if sixteen { 65535.0 } else { 255.0 };
    let rgb = img.into_rgb16();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    // into_rgb16 widens 8-bit codes c to c * 257.
    let scale = if sixteen { 1.0 } else { 1.0 / 257.0 };
    let code = |x: usize, y: usize, c: usize| rgb.get_pixel(x as u32, y as u32)[c] as f64 * scale;
    let normals = Array3::from_shape_fn((h, w, 3), |(y, x, c)| {
        (code(x, y, c) / max * 2.0 - 1.0) as f32
    });
    let valid = match mask {
        Some(m) => {
            let grey = open(m)?.into_luma16();
            if (grey.width() as usize, grey.height() as usize) != (w, h) {
                bail!(
                    "the mask {} is {}x{} but the normals {} are {w}x{h}",
                    m.display(),
                    grey.width(),
                    grey.height(),
                    path.display()
                );
            }
            Array2::from_shape_fn((h, w), |(y, x)| grey.get_pixel(x as u32, y as u32)[0] != 0)
        }
        None => Array2::from_shape_fn((h, w), |(y, x)| (0..3).any(|c| code(x, y, c) != 0.0)),
    };
    let name = stem(path);
    let map = NormalsMap {
        index: nyu_index(&name, path)?,
        name,
        normals,
        valid,
    };
    check_unit(&map, UNIT_TOLERANCE + 3f64.sqrt() / max, path)?;
    Ok(map)
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// An error naming `file` at the first valid pixel whose normal is not of unit length.
fn check_unit(map: &NormalsMap, tolerance: f64, file: &Path) -> Result<()> {
    for ((y, x), &valid) in map.valid.indexed_iter() {
        if !valid {
            continue;
        }
        let n = [0, 1, 2].map(|c| map.normals[[y, x, c]] as f64);
        let length = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
        // NaN lengths fail too.
        if (length - 1.0).abs().is_nan() || (length - 1.0).abs() > tolerance {
            bail!(
                "{}: the normal of image '{}' at row {y}, column {x} is {n:?}, of length \
                 {length}, not 1 (tolerance {tolerance}), where the mask is valid: the file \
                 must hold unit normals; check that it holds normals and that its mask \
                 marks the pixels without ground truth",
                file.display(),
                map.name
            );
        }
    }
    Ok(())
}
