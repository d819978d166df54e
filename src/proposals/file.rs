//! Proposal files: Detectron's selective-search pickles and py-faster-rcnn's `.mat` files.
//!
//! - Detectron (`.pkl`, Python 2 protocol 2, also re-saved from Python 3): a dict with `boxes`
//!   (a list, per image, of (N, 4) arrays of 0-based x1 y1 x2 y2), `scores` (a list of (N,)
//!   arrays; zeros for selective search) and `indexes` (selective search, from
//!   `tools/convert_selective_search.py`) or `ids` (RPN output) with the image ids of
//!   Detectron's COCO-style JSON.
//! - py-faster-rcnn (`.mat`, `data/selective_search_data/<set>.mat`): a cell array `boxes` of
//!   (N, 4) arrays of **1-based y1 x1 y2 x2**, in image-set order, and where present a cell
//!   array `images` of the image ids. Columns are reordered (1, 0, 3, 2) and 1 is subtracted,
//!   as py-faster-rcnn's `_load_selective_search_roidb` and Detectron's converter do.
//!
//! # Image ids
//!
//! Detectron's VOC JSON files (`PASCAL_VOC.zip`) name an image by an integer, the digits of
//! its file name: `000012.jpg` is 12. VOC2012 ids such as `2008_000002` have an underscore;
//! the rule used here is the one Python 3's `int('2008_000002')` applies, which is what
//! wetectron's VOC loader (`data/datasets/voc.py`) does to look an image up in its
//! distributed `SS-voc_2012_*` files: the digits with the underscores removed, 2008000002.
//! [`detectron_id`] implements it. Reading accepts integer ids and string ids alike; a split's
//! VOC id and a file's id match when both map to the same integer, or, for ids that are not
//! numbers, when the strings are equal.

use crate::data::mat5::{self, MatValue};
use crate::data::pickle::{self, NdArray, PyValue};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;

/// Proposals of a set of images, 0-based (x1, y1, x2, y2) in image pixels, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct ProposalSet {
    /// The image ids as the file gives them (integers in decimal); empty for a `.mat` file
    /// without an `images` cell, whose boxes are in image-set order.
    pub ids: Vec<String>,
    /// The boxes of each image.
    pub boxes: Vec<Vec<[f32; 4]>>,
    /// One score per box; all zeros for selective search.
    pub scores: Vec<Vec<f32>>,
}

/// Detectron's integer id of a VOC image id: the digits with underscores removed
/// (`000012` -> 12, `2008_000002` -> 2008000002), or `None` when the id is not made of digits
/// and underscores (or does not fit in an i64).
pub fn detectron_id(id: &str) -> Option<i64> {
    let digits: String = id.chars().filter(|&c| c != '_').collect();
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || id.starts_with('_')
        || id.ends_with('_')
    {
        return None;
    }
    digits.parse().ok()
}

/// Reads a proposal file: `.pkl` (Detectron) or `.mat` (py-faster-rcnn).
pub fn read(path: &Path) -> Result<ProposalSet> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "pkl" | "pickle" => {
            let v = pickle::read(path)?;
            from_detectron(&v)
                .with_context(|| format!("{} is not a Detectron proposal file", path.display()))
        }
        "mat" => {
            let vars = mat5::read(path)?;
            from_mat(&vars).with_context(|| {
                format!("{} is not a py-faster-rcnn proposal file", path.display())
            })
        }
        _ => bail!(
            "{}: proposal files are Detectron pickles (.pkl) or py-faster-rcnn MAT-files (.mat)",
            path.display()
        ),
    }
}

fn from_detectron(v: &PyValue) -> Result<ProposalSet> {
    if !matches!(v, PyValue::Dict(_)) {
        bail!(
            "the pickle holds a {}, not a dict with boxes, scores and indexes",
            v.type_name()
        );
    }
    let list = |key: &str| list_of(v, key);
    let boxes = list("boxes")?.context("the dict has no `boxes`")?;
    let (id_key, ids) = match (list("indexes")?, list("ids")?) {
        (Some(ids), _) => ("indexes", ids),
        (None, Some(ids)) => ("ids", ids),
        (None, None) => bail!("the dict has neither `indexes` nor `ids`"),
    };
    if ids.len() != boxes.len() {
        bail!(
            "`boxes` has {} images but `{id_key}` has {}",
            boxes.len(),
            ids.len()
        );
    }
    let ids: Vec<String> =
        ids.iter()
            .enumerate()
            .map(|(i, x)| match x {
                PyValue::Int(n) => Ok(n.to_string()),
                other => other.text().map(|t| t.into_owned()).with_context(|| {
                    format!("`{id_key}`[{i}] is a {}, not an id", other.type_name())
                }),
            })
            .collect::<Result<_>>()?;
    let boxes: Vec<Vec<[f32; 4]>> = boxes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let a = b.as_array().with_context(|| {
                format!(
                    "`boxes`[{i}] (image {}) is a {}, not an array",
                    ids[i],
                    b.type_name()
                )
            })?;
            box_rows(a).with_context(|| format!("`boxes`[{i}] (image {})", ids[i]))
        })
        .collect::<Result<_>>()?;
    let scores = match list("scores")? {
        None => boxes.iter().map(|b| vec![0.0; b.len()]).collect(),
        Some(s) => {
            if s.len() != boxes.len() {
                bail!(
                    "`boxes` has {} images but `scores` has {}",
                    boxes.len(),
                    s.len()
                );
            }
            s.iter()
                .zip(&boxes)
                .enumerate()
                .map(|(i, (x, b))| {
                    let a = x.as_array().with_context(|| {
                        format!("`scores`[{i}] is a {}, not an array", x.type_name())
                    })?;
                    let v = a.to_f32_vec()?;
                    if v.len() != b.len() {
                        bail!(
                            "image {} has {} boxes but {} scores",
                            ids[i],
                            b.len(),
                            v.len()
                        );
                    }
                    Ok(v)
                })
                .collect::<Result<_>>()?
        }
    };
    Ok(ProposalSet { ids, boxes, scores })
}

/// The list under `key` of a dict, if there is one.
fn list_of<'a>(v: &'a PyValue, key: &str) -> Result<Option<&'a [PyValue]>> {
    match v.get(key) {
        None => Ok(None),
        Some(x) => x
            .items()
            .map(Some)
            .with_context(|| format!("`{key}` is a {}, not a list", x.type_name())),
    }
}

/// The rows of an (N, 4) array (an empty array of any shape is no boxes).
fn box_rows(a: &NdArray) -> Result<Vec<[f32; 4]>> {
    if a.is_empty() {
        return Ok(Vec::new());
    }
    if a.shape.len() != 2 || a.shape[1] != 4 {
        bail!("an array of shape {:?}, not (N, 4)", a.shape);
    }
    let v = a.to_f32_vec()?;
    Ok(v.chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect())
}

fn from_mat(vars: &std::collections::BTreeMap<String, MatValue>) -> Result<ProposalSet> {
    let Some(MatValue::Cell { cells, .. }) = vars.get("boxes") else {
        match vars.get("boxes") {
            Some(other) => bail!(
                "`boxes` is a {} array, not a cell array",
                other.class_name()
            ),
            None => {
                let names: Vec<&str> = vars.keys().map(String::as_str).collect();
                bail!(
                    "the file has no variable `boxes` (it has: {})",
                    names.join(", ")
                )
            }
        }
    };
    let boxes: Vec<Vec<[f32; 4]>> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let a = c.numeric().with_context(|| {
                format!(
                    "boxes{{{}}} is a {} array, not numeric",
                    i + 1,
                    c.class_name()
                )
            })?;
            let n = a.dims[0];
            if a.is_empty() {
                return Ok(Vec::new());
            }
            if a.dims.len() != 2 || a.dims[1] != 4 {
                bail!("boxes{{{}}} is {:?}, not N x 4", i + 1, a.dims);
            }
            let v = a.to_f64_vec();
            // Column-major: element (r, c) is v[c * n + r]; columns are y1 x1 y2 x2, 1-based.
            Ok((0..n)
                .map(|r| {
                    let at = |c: usize| (v[c * n + r] - 1.0) as f32;
                    [at(1), at(0), at(3), at(2)]
                })
                .collect())
        })
        .collect::<Result<_>>()?;
    let ids = match vars.get("images") {
        None => Vec::new(),
        Some(MatValue::Cell { cells, .. }) => cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                c.text().with_context(|| {
                    format!(
                        "images{{{}}} is a {} array, not a string",
                        i + 1,
                        c.class_name()
                    )
                })
            })
            .collect::<Result<_>>()?,
        Some(c @ MatValue::Char { .. }) => c
            .char_rows()
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.trim_end().to_string())
            .collect(),
        Some(other) => bail!(
            "`images` is a {} array, not a cell array of ids",
            other.class_name()
        ),
    };
    if !ids.is_empty() && ids.len() != boxes.len() {
        bail!(
            "`boxes` has {} images but `images` has {}",
            boxes.len(),
            ids.len()
        );
    }
    let scores = boxes.iter().map(|b| vec![0.0; b.len()]).collect();
    Ok(ProposalSet { ids, boxes, scores })
}

/// Writes `set` as Detectron's selective-search pickle: a dict with `boxes` (float32 (N, 4)
/// arrays), `indexes` (Detectron's integer ids, see [`detectron_id`]; when some id is not a
/// number the ids are written as strings, which sslbench reads but Detectron cannot match)
/// and `scores` (float32 (N,), zeros when the set has none), in the order Python 2 wrote
/// these keys, at protocol 2 as Python 2 wrote it (see [`pickle::to_bytes`]). The write is
/// atomic.
pub fn write_detectron(path: &Path, set: &ProposalSet) -> Result<()> {
    if set.ids.len() != set.boxes.len() {
        bail!(
            "cannot write {}: {} ids for {} images of boxes",
            path.display(),
            set.ids.len(),
            set.boxes.len()
        );
    }
    if !set.scores.is_empty() && set.scores.len() != set.boxes.len() {
        bail!(
            "cannot write {}: scores for {} of {} images",
            path.display(),
            set.scores.len(),
            set.boxes.len()
        );
    }
    let numeric: Option<Vec<i64>> = set.ids.iter().map(|id| detectron_id(id)).collect();
    let indexes = match numeric {
        Some(ns) => ns.into_iter().map(PyValue::Int).collect(),
        None => set.ids.iter().map(|s| PyValue::Str(s.clone())).collect(),
    };
    let mut boxes = Vec::with_capacity(set.boxes.len());
    let mut scores = Vec::with_capacity(set.boxes.len());
    for (i, b) in set.boxes.iter().enumerate() {
        let flat: Vec<f32> = b.iter().flatten().copied().collect();
        boxes.push(PyValue::Array(NdArray::from_f32(vec![b.len(), 4], &flat)));
        let s = match set.scores.get(i) {
            Some(s) if s.len() != b.len() => bail!(
                "cannot write {}: image {} has {} boxes and {} scores",
                path.display(),
                set.ids[i],
                b.len(),
                s.len()
            ),
            Some(s) => s.clone(),
            None => vec![0.0; b.len()],
        };
        scores.push(PyValue::Array(NdArray::from_f32(vec![b.len()], &s)));
    }
    let dict = PyValue::Dict(vec![
        (PyValue::Str("boxes".into()), PyValue::List(boxes)),
        (PyValue::Str("indexes".into()), PyValue::List(indexes)),
        (PyValue::Str("scores".into()), PyValue::List(scores)),
    ]);
    pickle::write(path, &dict).with_context(|| format!("cannot write {}", path.display()))
}

/// How an id is matched: its Detectron integer, or the string itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Int(i64),
    Text(String),
}

fn key(id: &str) -> Key {
    detectron_id(id).map_or_else(|| Key::Text(id.to_string()), Key::Int)
}

impl ProposalSet {
    /// The boxes of the images `ids` (VOC ids, e.g. `000012` or `2008_000002`), in that order.
    /// Images of the file that are not asked for are ignored, as Detectron does. A file
    /// without ids (a `.mat` file without `images`) must hold exactly `ids.len()` images, in
    /// image-set order. An id the file lacks is an error naming `path`, how many are missing,
    /// the first few of them, and the fix.
    pub fn for_ids(&self, ids: &[String], path: &Path) -> Result<Vec<Vec<[f32; 4]>>> {
        if self.ids.is_empty() {
            if self.boxes.len() != ids.len() {
                bail!(
                    "{} has proposals for {} images in image-set order (no `images` list), but \
                     the split has {}: use the file made for this split, or make one with \
                     `sslbench proposals --dataset voc:ROOT:SPLIT --out FILE.pkl`",
                    path.display(),
                    self.boxes.len(),
                    ids.len()
                );
            }
            return Ok(self.boxes.clone());
        }
        let mut index = HashMap::with_capacity(self.ids.len());
        for (i, id) in self.ids.iter().enumerate() {
            if index.insert(key(id), i).is_some() {
                bail!(
                    "{} lists image {id} twice: the file is not a proposal file of one split",
                    path.display()
                );
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match index.get(&key(id)) {
                Some(&i) => out.push(self.boxes[i].clone()),
                None => missing.push(id.as_str()),
            }
        }
        if !missing.is_empty() {
            let first: Vec<&str> = missing.iter().take(5).copied().collect();
            let file_first: Vec<&str> = self.ids.iter().take(3).map(String::as_str).collect();
            bail!(
                "{} has no proposals for {} of the split's {} images (first: {}); its {} ids \
                 begin {}. The file must be made for this split: pass the proposals of the \
                 right dataset and split, or make them with \
                 `sslbench proposals --dataset voc:ROOT:SPLIT --out FILE.pkl`",
                path.display(),
                missing.len(),
                ids.len(),
                first.join(", "),
                self.ids.len(),
                file_first.join(", ")
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detectron_ids_of_voc_names() {
        assert_eq!(detectron_id("000012"), Some(12));
        assert_eq!(detectron_id("2008_000002"), Some(2008000002));
        assert_eq!(detectron_id("12"), Some(12));
        assert_eq!(detectron_id("astronaut"), None);
        assert_eq!(detectron_id("_12"), None);
        assert_eq!(detectron_id(""), None);
    }
}
