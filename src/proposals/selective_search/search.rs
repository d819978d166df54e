//! Selective search over one image: every strategy's hierarchy, pooled and ranked as the
//! paper does (section 4.1): in each hierarchy the region at position `i` from the top (the
//! whole image is 1) scores `RND * i`, RND uniform in [0, 1) drawn per region from a seeded
//! stream of the strategy; all regions are taken in increasing score, boxes under
//! `min_box_size` pixels wide or high and boxes already taken are dropped.

use super::colour::convert;
use super::config::SelectiveSearchConfig;
use super::features::{adjacency, region_features, texture_bins, PixelBox, TextureBins};
use super::felzenszwalb::{graph, segment_graph, Graph};
use super::filter::Plane;
use super::grouping::group;
use image::RgbImage;
use rand::Rng;
use rayon::prelude::*;
use std::collections::HashSet;

/// Stream number of the ranking draws (the other words are the strategy's indices).
const RANKING_STREAM: u64 = 0x5353;

/// A region of some hierarchy with its ranking score.
struct Ranked {
    score: f64,
    strategy: usize,
    position: usize,
    bbox: PixelBox,
}

/// The hierarchies of one colour space and one segmentation, one per similarity set, as
/// ranked regions.
fn strategies(
    planes: &[Plane],
    graph: &Graph,
    texture: &TextureBins,
    cfg: &SelectiveSearchConfig,
    space: usize,
    seg: usize,
) -> Vec<Ranked> {
    let params = cfg.segmentations[seg];
    let segmentation = segment_graph(graph, params.k, params.min_size);
    let features = region_features(
        planes,
        &segmentation,
        texture,
        cfg.colour_bins.clamp(1, 256),
    );
    let pairs = adjacency(&segmentation);
    let area = segmentation.width * segmentation.height;
    let mut out = Vec::new();
    for (sim, measures) in cfg.similarities.iter().enumerate() {
        let boxes = group(&features, &pairs, measures, area);
        let strategy = (space * cfg.segmentations.len() + seg) * cfg.similarities.len() + sim;
        let mut rng = crate::seed::stream(cfg.seed, &[RANKING_STREAM, strategy as u64]);
        let m = boxes.len();
        out.extend(boxes.into_iter().enumerate().map(|(i, bbox)| {
            let from_top = m - i;
            Ranked {
                score: rng.random::<f64>() * from_top as f64,
                strategy,
                position: from_top,
                bbox,
            }
        }));
    }
    out
}

/// Every strategy of one colour space: the image converted, its pixel graph and its texture
/// maps computed once, the segmentations in parallel.
fn colour_space(img: &RgbImage, cfg: &SelectiveSearchConfig, space: usize) -> Vec<Ranked> {
    let planes = convert(img, cfg.colour_spaces[space]);
    let texture = texture_bins(
        &planes,
        cfg.texture_sigma,
        cfg.gaussian_truncate,
        cfg.texture_bins.clamp(1, 256),
    );
    let graph = graph(&planes, cfg.sigma, cfg.gaussian_truncate);
    (0..cfg.segmentations.len())
        .into_par_iter()
        .map(|seg| strategies(&planes, &graph, &texture, cfg, space, seg))
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .collect()
}

/// Selective search proposals of `img`: distinct boxes `[x1, y1, x2, y2]`, 0-based and
/// inclusive in image pixels, best ranked first. The same image and configuration always
/// give the same boxes (strategies run in parallel, their results are pooled in a fixed
/// order). An empty image, or a configuration with an empty list, gives no boxes; see
/// [`SelectiveSearchConfig::validate`].
pub fn selective_search(img: &RgbImage, cfg: &SelectiveSearchConfig) -> Vec<[f32; 4]> {
    if img.width() == 0 || img.height() == 0 {
        return Vec::new();
    }
    let mut ranked: Vec<Ranked> = (0..cfg.colour_spaces.len())
        .into_par_iter()
        .map(|space| colour_space(img, cfg, space))
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .collect();
    ranked.sort_by(|a, b| {
        a.score
            .total_cmp(&b.score)
            .then(a.strategy.cmp(&b.strategy))
            .then(a.position.cmp(&b.position))
    });
    let mut seen = HashSet::with_capacity(ranked.len());
    ranked
        .into_iter()
        .filter(|r| {
            let [x1, y1, x2, y2] = r.bbox;
            (x2 - x1 + 1).min(y2 - y1 + 1) >= cfg.min_box_size && seen.insert(r.bbox)
        })
        .map(|r| r.bbox.map(|v| v as f32))
        .collect()
}
