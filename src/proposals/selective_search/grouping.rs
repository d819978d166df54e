//! Hierarchical grouping (Uijlings et al. 2013, Algorithm 1): starting from the initial
//! regions, the two most similar neighbours are merged until one region covers the image;
//! the merged region's histograms are the size-weighted average of its parts, its size the
//! sum and its box the union. Similarity is the sum of the chosen measures (section 3.3):
//! colour and texture histogram intersection, size `1 - (|a| + |b|) / |image|` and fill
//! `1 - (|box(a ∪ b)| - |a| - |b|) / |image|`.

use super::features::{area, union, PixelBox, RegionFeatures};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One similarity measure of the grouping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Similarity {
    /// Intersection of the colour histograms.
    Colour,
    /// Intersection of the texture histograms.
    Texture,
    /// Small regions merge early.
    Size,
    /// Regions that fill each other's gaps merge early.
    Fill,
}

/// A candidate merge, ordered by similarity, ties by the lower region numbers.
#[derive(Clone, Copy, PartialEq)]
struct Candidate {
    similarity: f32,
    a: u32,
    b: u32,
}

impl Eq for Candidate {}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.similarity
            .total_cmp(&other.similarity)
            .then_with(|| (other.a, other.b).cmp(&(self.a, self.b)))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The growing set of regions: the initial ones, then one per merge.
struct Regions<'a> {
    colour: Vec<f32>,
    texture: Vec<f32>,
    colour_len: usize,
    texture_len: usize,
    sizes: Vec<u64>,
    boxes: Vec<PixelBox>,
    image_area: f32,
    measures: &'a [Similarity],
}

/// The intersection of two histograms (the sum of bin-wise minima).
fn intersection(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x.min(*y)).sum()
}

impl Regions<'_> {
    fn colour(&self, r: usize) -> &[f32] {
        &self.colour[r * self.colour_len..(r + 1) * self.colour_len]
    }

    fn texture(&self, r: usize) -> &[f32] {
        &self.texture[r * self.texture_len..(r + 1) * self.texture_len]
    }

    fn similarity(&self, a: usize, b: usize) -> f32 {
        let both = (self.sizes[a] + self.sizes[b]) as f32;
        self.measures
            .iter()
            .map(|m| match m {
                Similarity::Colour => intersection(self.colour(a), self.colour(b)),
                Similarity::Texture => intersection(self.texture(a), self.texture(b)),
                Similarity::Size => 1.0 - both / self.image_area,
                Similarity::Fill => {
                    let hull = area(&union(&self.boxes[a], &self.boxes[b])) as f32;
                    1.0 - (hull - both) / self.image_area
                }
            })
            .sum()
    }

    /// Appends the merge of `a` and `b`; returns its number.
    fn merge(&mut self, a: usize, b: usize) -> usize {
        let (sa, sb) = (self.sizes[a] as f32, self.sizes[b] as f32);
        let mix = |hist: &mut Vec<f32>, len: usize| {
            for i in 0..len {
                let v = (hist[a * len + i] * sa + hist[b * len + i] * sb) / (sa + sb);
                hist.push(v);
            }
        };
        if self.measures.contains(&Similarity::Colour) {
            mix(&mut self.colour, self.colour_len);
        }
        if self.measures.contains(&Similarity::Texture) {
            mix(&mut self.texture, self.texture_len);
        }
        self.sizes.push(self.sizes[a] + self.sizes[b]);
        self.boxes.push(union(&self.boxes[a], &self.boxes[b]));
        self.boxes.len() - 1
    }
}

/// Groups the initial regions of `features` (neighbours given by `pairs`) under the sum of
/// `measures`. Returns every region's box in creation order: the initial regions, then each
/// merge (the last covers the image when the regions are connected).
pub fn group(
    features: &RegionFeatures,
    pairs: &[(u32, u32)],
    measures: &[Similarity],
    image_area: usize,
) -> Vec<PixelBox> {
    let n = features.sizes.len();
    let uses = |m| measures.contains(&m);
    let mut regions = Regions {
        colour: if uses(Similarity::Colour) {
            features.colour.clone()
        } else {
            Vec::new()
        },
        texture: if uses(Similarity::Texture) {
            features.texture.clone()
        } else {
            Vec::new()
        },
        colour_len: features.colour_len,
        texture_len: features.texture_len,
        sizes: features.sizes.iter().map(|&s| s as u64).collect(),
        boxes: features.boxes.clone(),
        image_area: image_area as f32,
        measures,
    };
    let mut neighbours: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut heap = BinaryHeap::with_capacity(pairs.len());
    for &(a, b) in pairs {
        neighbours[a as usize].push(b);
        neighbours[b as usize].push(a);
        let similarity = regions.similarity(a as usize, b as usize);
        heap.push(Candidate { similarity, a, b });
    }
    let mut alive = vec![true; n];
    while let Some(Candidate { a, b, .. }) = heap.pop() {
        let (a, b) = (a as usize, b as usize);
        if !alive[a] || !alive[b] {
            continue;
        }
        let c = regions.merge(a, b);
        alive[a] = false;
        alive[b] = false;
        alive.push(true);
        let mut around: Vec<u32> = neighbours[a]
            .iter()
            .chain(&neighbours[b])
            .copied()
            .filter(|&m| m as usize != a && m as usize != b)
            .collect();
        around.sort_unstable();
        around.dedup();
        neighbours[a].clear();
        neighbours[b].clear();
        for &m in &around {
            let list = &mut neighbours[m as usize];
            list.retain(|&x| x as usize != a && x as usize != b);
            list.push(c as u32);
            let similarity = regions.similarity(m as usize, c);
            heap.push(Candidate {
                similarity,
                a: m,
                b: c as u32,
            });
        }
        neighbours.push(around);
    }
    regions.boxes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four regions in a row, 0 and 1 alike in colour, 2 and 3 alike.
    fn row() -> (RegionFeatures, Vec<(u32, u32)>) {
        let hist = |bin: usize| -> Vec<f32> { (0..4).map(|i| (i == bin) as u8 as f32).collect() };
        let colour = [hist(0), hist(0), hist(3), hist(3)].concat();
        let f = RegionFeatures {
            colour_len: 4,
            colour,
            texture_len: 1,
            texture: vec![1.0; 4],
            sizes: vec![10; 4],
            boxes: (0..4).map(|i| [10 * i, 0, 10 * i + 9, 0]).collect(),
        };
        (f, vec![(0, 1), (1, 2), (2, 3)])
    }

    #[test]
    fn colour_merges_alike_neighbours_first_and_ends_with_the_image() {
        let (f, pairs) = row();
        let boxes = group(&f, &pairs, &[Similarity::Colour, Similarity::Size], 40);
        assert_eq!(boxes.len(), 7);
        let mut firsts = vec![boxes[4], boxes[5]];
        firsts.sort();
        assert_eq!(firsts, vec![[0, 0, 19, 0], [20, 0, 39, 0]]);
        assert_eq!(boxes[6], [0, 0, 39, 0]);
    }

    #[test]
    fn size_alone_keeps_merged_regions_from_growing_first() {
        let (f, pairs) = row();
        // Under size alone 0+1 merges first (ties go to the lower numbers); then 2+3
        // (20 pixels) beats merging the 20-pixel region with a 10-pixel one.
        let boxes = group(&f, &pairs, &[Similarity::Size], 40);
        assert_eq!(boxes[4], [0, 0, 19, 0]);
        assert_eq!(boxes[5], [20, 0, 39, 0]);
    }
}
