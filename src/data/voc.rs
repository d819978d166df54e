//! PASCAL VOC (VOCdevkit) reader: `ImageSets/Main` splits and per-class labels,
//! `JPEGImages/<id>.jpg`, `Annotations/<id>.xml`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use roxmltree::{Document, Node};

use super::{read_text, Dataset, Sample};

/// The 20 VOC classes in the devkit's standard (alphabetical) order.
pub const VOC_CLASSES: [&str; 20] = [
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

/// One annotated object of a VOC image.
#[derive(Clone, Debug, PartialEq)]
pub struct VocObject {
    /// Class name as written in the file.
    pub name: String,
    /// `xmin, ymin, xmax, ymax` as written in the file (VOC pixels are 1-based, inclusive).
    pub bbox: [f32; 4],
    /// Marked difficult: left out of evaluation.
    pub difficult: bool,
    /// Marked truncated by the image border.
    pub truncated: bool,
}

/// The parsed `Annotations/<id>.xml` of one image.
#[derive(Clone, Debug, PartialEq)]
pub struct VocAnnotation {
    /// Image width in pixels (`<size><width>`).
    pub width: u32,
    /// Image height in pixels (`<size><height>`).
    pub height: u32,
    /// The objects, in file order.
    pub objects: Vec<VocObject>,
}

/// Reads `ROOT/ImageSets/Main/<split>.txt`, its per-class label files and every image's
/// annotation. Targets hold, per class, 1 present, -1 absent, 0 difficult-only. Without a
/// class list, a VOC-layout set of its own classes names them in `ROOT/classes.txt` (one a
/// line); the VOCdevkit has none and gets the 20 VOC classes.
pub(crate) fn load(root: &Path, split: &str, classes: Option<Vec<String>>) -> Result<Dataset> {
    let listed = root.join("classes.txt");
    let classes = match classes {
        Some(c) => c,
        None if listed.exists() => read_text(&listed, "class list")?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        None => VOC_CLASSES.iter().map(|c| c.to_string()).collect(),
    };
    let split_file = main_dir(root).join(format!("{split}.txt"));
    let ids: Vec<String> = read_text(&split_file, "VOC split file")?
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        bail!(
            "VOC split file {} lists no image: restore it from the VOCdevkit",
            split_file.display()
        );
    }
    let labels = classes
        .iter()
        .map(|class| read_class_labels(&class_file(root, class, split)))
        .collect::<Result<Vec<_>>>()?;
    let objects = ids
        .par_iter()
        .map(|id| read_annotation(&annotation_path(root, id)).map(|a| a.objects))
        .collect::<Result<Vec<_>>>()?;
    let mut samples = Vec::with_capacity(ids.len());
    for id in ids {
        let mut target = Vec::with_capacity(classes.len());
        for (labels, class) in labels.iter().zip(&classes) {
            let label = labels.get(&id).with_context(|| {
                format!(
                    "image {id} of {} is missing from {}: the ImageSets files disagree, restore \
                     them from the VOCdevkit",
                    split_file.display(),
                    class_file(root, class, split).display()
                )
            })?;
            target.push(*label);
        }
        let path = root.join("JPEGImages").join(format!("{id}.jpg"));
        samples.push(Sample { id, path, target });
    }
    Ok(Dataset {
        objects: Some(objects),
        ..Dataset::new(classes, samples)
    })
}

/// Parses one VOC annotation file.
pub fn read_annotation(path: &Path) -> Result<VocAnnotation> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read VOC annotation {}: every image of the split needs Annotations/<id>.xml, \
             restore it from the VOCdevkit",
            path.display()
        )
    })?;
    parse_annotation(&text).with_context(|| {
        format!(
            "malformed VOC annotation {}: fix it or restore it from the VOCdevkit",
            path.display()
        )
    })
}

/// The body of [`read_annotation`], without the file context.
fn parse_annotation(text: &str) -> Result<VocAnnotation> {
    let doc = Document::parse(text)?;
    let root = doc.root_element();
    let size = child(root, "size")?;
    let objects = root
        .children()
        .filter(|n| n.has_tag_name("object"))
        .map(|obj| {
            let bndbox = child(obj, "bndbox")?;
            let mut bbox = [0f32; 4];
            for (v, tag) in bbox.iter_mut().zip(["xmin", "ymin", "xmax", "ymax"]) {
                *v = number(bndbox, tag)?;
            }
            Ok(VocObject {
                name: text_of(child(obj, "name")?).to_owned(),
                bbox,
                difficult: flag(obj, "difficult")?,
                truncated: flag(obj, "truncated")?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(VocAnnotation {
        width: number(size, "width")?,
        height: number(size, "height")?,
        objects,
    })
}

/// The first child element named `tag`.
fn child<'a, 'i>(node: Node<'a, 'i>, tag: &str) -> Result<Node<'a, 'i>> {
    node.children()
        .find(|n| n.has_tag_name(tag))
        .with_context(|| format!("<{}> has no <{tag}>", node.tag_name().name()))
}

/// Trimmed text content of an element ("" when empty).
fn text_of<'a>(node: Node<'a, '_>) -> &'a str {
    node.text().unwrap_or("").trim()
}

/// A numeric child element.
fn number<T: std::str::FromStr>(node: Node, tag: &str) -> Result<T> {
    let text = text_of(child(node, tag)?);
    text.parse()
        .ok()
        .with_context(|| format!("<{tag}> is '{text}', not a number"))
}

/// A 0/1 child element; absent or empty means 0 (as labelme writes it).
fn flag(node: Node, tag: &str) -> Result<bool> {
    match node.children().find(|n| n.has_tag_name(tag)).map(text_of) {
        None | Some("") | Some("0") => Ok(false),
        Some("1") => Ok(true),
        Some(other) => bail!("<{tag}> is '{other}', expected 0 or 1"),
    }
}

/// Derives `ImageSets/Main/<split>.txt` and `<class>_<split>.txt` for `ids` from their
/// annotations, by the devkit's rule: 1 if the image has a non-difficult object of the class,
/// 0 if it has only difficult ones, -1 otherwise. Lines are written as the devkit does
/// (`"%s %2d"`).
pub fn write_image_sets(
    root: &Path,
    split: &str,
    ids: &[String],
    classes: &[String],
) -> Result<()> {
    let dir = main_dir(root);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create {}: check permissions", dir.display()))?;
    let annotations = ids
        .iter()
        .map(|id| read_annotation(&annotation_path(root, id)))
        .collect::<Result<Vec<_>>>()?;
    let write = |path: PathBuf, body: String| {
        std::fs::write(&path, body)
            .with_context(|| format!("cannot write {}: check permissions", path.display()))
    };
    write(
        dir.join(format!("{split}.txt")),
        ids.iter().map(|id| format!("{id}\n")).collect(),
    )?;
    for class in classes {
        let body = ids
            .iter()
            .zip(&annotations)
            .map(|(id, a)| format!("{id} {:>2}\n", presence(&a.objects, class)))
            .collect();
        write(class_file(root, class, split), body)?;
    }
    Ok(())
}

/// The devkit's per-class image label: 1 present, 0 difficult-only, -1 absent.
fn presence(objects: &[VocObject], class: &str) -> i32 {
    objects
        .iter()
        .filter(|o| o.name == class)
        .map(|o| if o.difficult { 0 } else { 1 })
        .max()
        .unwrap_or(-1)
}

/// `ROOT/ImageSets/Main`.
fn main_dir(root: &Path) -> PathBuf {
    root.join("ImageSets").join("Main")
}

/// `ROOT/ImageSets/Main/<class>_<split>.txt`.
fn class_file(root: &Path, class: &str, split: &str) -> PathBuf {
    main_dir(root).join(format!("{class}_{split}.txt"))
}

/// `ROOT/Annotations/<id>.xml`.
fn annotation_path(root: &Path, id: &str) -> PathBuf {
    root.join("Annotations").join(format!("{id}.xml"))
}

/// Reads a `<class>_<split>.txt` file: lines `id label` with label 1, -1 or 0.
fn read_class_labels(path: &Path) -> Result<HashMap<String, i32>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read VOC class label file {}: restore it from the VOCdevkit, or pass a class \
             list whose <class>_<split>.txt files exist",
            path.display()
        )
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let mut fields = line.split_whitespace();
            let parsed = match (
                fields.next(),
                fields.next().map(str::parse::<i32>),
                fields.next(),
            ) {
                (Some(id), Some(Ok(label @ -1..=1)), None) => Some((id.to_owned(), label)),
                _ => None,
            };
            parsed.with_context(|| {
                format!(
                    "{}:{}: expected `image_id label` with label 1, -1 or 0, found '{line}': \
                     restore the file from the VOCdevkit",
                    path.display(),
                    i + 1
                )
            })
        })
        .collect()
}
