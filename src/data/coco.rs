//! COCO instances JSON -> multi-label presence per image, as FAIR's
//! `extra_scripts/create_coco_data_files.py` builds it for the COCO2014 SVMs.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::{read_text, Dataset, Sample};

/// The parts of an instances file that presence labels need.
#[derive(Deserialize)]
struct Instances {
    images: Vec<Image>,
    #[serde(default)]
    annotations: Vec<Annotation>,
    categories: Vec<Category>,
}

#[derive(Deserialize)]
struct Image {
    id: u64,
    file_name: String,
    width: f64,
    height: f64,
}

#[derive(Deserialize)]
struct Annotation {
    image_id: u64,
    category_id: u64,
    bbox: [f64; 4],
    area: f64,
    #[serde(default)]
    ignore: u8,
}

#[derive(Deserialize)]
struct Category {
    id: u64,
    name: String,
}

impl Annotation {
    /// FAIR's `get_valid_objs`: not ignored, non-zero area, and a box larger than 1x1 once
    /// converted to inclusive corners and clipped to the image. Crowd regions count.
    fn is_valid(&self, image: &Image) -> bool {
        let [x, y, w, h] = self.bbox;
        let clip = |v: f64, size: f64| v.max(0.0).min(size - 1.0);
        let (x1, x2) = (
            clip(x, image.width),
            clip(x + (w - 1.0).max(0.0), image.width),
        );
        let (y1, y2) = (
            clip(y, image.height),
            clip(y + (h - 1.0).max(0.0), image.height),
        );
        self.ignore != 1 && self.area > 0.0 && x2 > x1 && y2 > y1
    }
}

/// Reads an instances JSON; images (sorted by `file_name`, as FAIR does) lie under
/// `images_dir`. Targets: per class 1 present, -1 absent; images without annotations are kept.
/// Default classes: the category names sorted by category id.
pub(crate) fn load(
    annotations: &Path,
    images_dir: &Path,
    classes: Option<Vec<String>>,
) -> Result<Dataset> {
    let fix = "re-download the COCO annotations (instances_<split>.json)";
    let mut file: Instances = serde_json::from_str(&read_text(annotations, "COCO annotations")?)
        .with_context(|| {
            format!(
                "{} is not a COCO instances file: {fix}",
                annotations.display()
            )
        })?;
    file.categories.sort_by_key(|c| c.id);
    let classes = match classes {
        None => file.categories.iter().map(|c| c.name.clone()).collect(),
        Some(classes) => classes,
    };
    if let Some(bad) = classes
        .iter()
        .find(|c| !file.categories.iter().any(|k| k.name == **c))
    {
        bail!(
            "class '{bad}' is not a category of {}: fix the class list",
            annotations.display()
        );
    }
    // Every category id -> its column, or None when the class list leaves it out.
    let column: HashMap<u64, Option<usize>> = file
        .categories
        .iter()
        .map(|k| (k.id, classes.iter().position(|c| *c == k.name)))
        .collect();
    let row: HashMap<u64, usize> = file
        .images
        .iter()
        .enumerate()
        .map(|(i, im)| (im.id, i))
        .collect();
    let mut targets = vec![vec![-1; classes.len()]; file.images.len()];
    for a in &file.annotations {
        let &i = row.get(&a.image_id).with_context(|| {
            format!(
                "{}: an annotation refers to unknown image id {}: {fix}",
                annotations.display(),
                a.image_id
            )
        })?;
        match column.get(&a.category_id) {
            None => bail!(
                "{}: an annotation refers to unknown category id {}: {fix}",
                annotations.display(),
                a.category_id
            ),
            Some(&Some(j)) if a.is_valid(&file.images[i]) => targets[i][j] = 1,
            Some(_) => {}
        }
    }
    let mut samples: Vec<Sample> = file
        .images
        .into_iter()
        .zip(targets)
        .map(|(im, target)| Sample {
            path: images_dir.join(&im.file_name),
            id: im.file_name,
            target,
        })
        .collect();
    samples.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Dataset::new(classes, samples))
}
