//! Felzenszwalb & Huttenlocher's graph-based segmentation (IJCV 2004): every channel smoothed
//! by a Gaussian, an 8-connected pixel graph weighted by the Euclidean colour distance, edges
//! taken in increasing weight and two components joined when the edge is no heavier than
//! each one's internal difference plus `k / |C|`, then components under `min_size` pixels
//! joined to a neighbour in the same edge order.

use super::filter::{smooth, Plane};

/// The parameters of one segmentation.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Standard deviation of the pre-smoothing Gaussian (pixels).
    pub sigma: f32,
    /// The Gaussian's cut, in standard deviations.
    pub truncate: f32,
    /// Scale of the threshold function `k / |C|` (larger: larger components).
    pub k: f32,
    /// Components smaller than this many pixels are merged away.
    pub min_size: usize,
}

/// A partition of the image into connected regions.
#[derive(Clone, Debug)]
pub struct Segmentation {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Region of each pixel, row-major, numbered 0..count in raster order of first pixel.
    pub labels: Vec<u32>,
    /// Number of regions.
    pub count: usize,
}

/// One graph edge between pixels `a` and `b`.
#[derive(Clone, Copy)]
struct Edge {
    w: f32,
    a: u32,
    b: u32,
}

/// Disjoint sets with union by rank and path compression, tracking sizes.
struct Forest {
    parent: Vec<u32>,
    rank: Vec<u8>,
    size: Vec<u32>,
}

impl Forest {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
            rank: vec![0; n],
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut x: u32) -> u32 {
        let mut root = x;
        while self.parent[root as usize] != root {
            root = self.parent[root as usize];
        }
        while self.parent[x as usize] != root {
            let next = self.parent[x as usize];
            self.parent[x as usize] = root;
            x = next;
        }
        root
    }

    /// Joins two roots; returns the new root.
    fn join(&mut self, a: u32, b: u32) -> u32 {
        let (a, b) = if self.rank[a as usize] < self.rank[b as usize] {
            (b, a)
        } else {
            (a, b)
        };
        self.parent[b as usize] = a;
        self.size[a as usize] += self.size[b as usize];
        if self.rank[a as usize] == self.rank[b as usize] {
            self.rank[a as usize] += 1;
        }
        a
    }
}

/// The 8-connected edges (right, down, down-right, up-right of each pixel) of the smoothed
/// planes, weighted by the Euclidean distance over channels, sorted by weight.
fn edges(planes: &[Plane]) -> Vec<Edge> {
    let (w, h) = (planes[0].width, planes[0].height);
    let dist = |p: usize, q: usize| {
        planes
            .iter()
            .map(|c| (c.data[p] - c.data[q]).powi(2))
            .sum::<f32>()
            .sqrt()
    };
    let mut out = Vec::with_capacity(4 * w * h);
    for y in 0..h {
        for x in 0..w {
            let p = y * w + x;
            let mut push = |q: usize| {
                out.push(Edge {
                    w: dist(p, q),
                    a: p as u32,
                    b: q as u32,
                })
            };
            if x + 1 < w {
                push(p + 1);
            }
            if y + 1 < h {
                push(p + w);
            }
            if x + 1 < w && y + 1 < h {
                push(p + w + 1);
            }
            if x + 1 < w && y > 0 {
                push(p - w + 1);
            }
        }
    }
    // Non-negative floats order as their bit patterns; the unstable sort is deterministic.
    out.sort_unstable_by_key(|e| e.w.to_bits());
    out
}

/// The pixel graph of some planes: their smoothed 8-connected edges, sorted by weight. It
/// depends on the smoothing only, so segmentations at several `k` share it.
pub struct Graph {
    width: usize,
    height: usize,
    edges: Vec<Edge>,
}

/// The graph of the planes (one per channel, all the same size) smoothed by a Gaussian of
/// standard deviation `sigma` cut at `truncate` standard deviations.
pub fn graph(planes: &[Plane], sigma: f32, truncate: f32) -> Graph {
    let smoothed: Vec<Plane> = planes.iter().map(|p| smooth(p, sigma, truncate)).collect();
    Graph {
        width: planes[0].width,
        height: planes[0].height,
        edges: edges(&smoothed),
    }
}

/// Segments the planes (one per channel, all the same size) into regions.
pub fn segment(planes: &[Plane], params: &Params) -> Segmentation {
    segment_graph(
        &graph(planes, params.sigma, params.truncate),
        params.k,
        params.min_size,
    )
}

/// Segments a graph at scale `k`, then merges regions under `min_size` pixels.
pub fn segment_graph(graph: &Graph, k: f32, min_size: usize) -> Segmentation {
    let (w, h) = (graph.width, graph.height);
    let n = w * h;
    let edges = &graph.edges;
    let mut forest = Forest::new(n);
    let mut threshold = vec![k; n];
    for e in edges {
        let a = forest.find(e.a);
        let b = forest.find(e.b);
        if a != b && e.w <= threshold[a as usize] && e.w <= threshold[b as usize] {
            let root = forest.join(a, b);
            threshold[root as usize] = e.w + k / forest.size[root as usize] as f32;
        }
    }
    for e in edges {
        let a = forest.find(e.a);
        let b = forest.find(e.b);
        if a != b
            && (forest.size[a as usize] < min_size as u32
                || forest.size[b as usize] < min_size as u32)
        {
            forest.join(a, b);
        }
    }
    let mut number = vec![u32::MAX; n];
    let mut count = 0u32;
    let labels = (0..n as u32)
        .map(|p| {
            let root = forest.find(p) as usize;
            if number[root] == u32::MAX {
                number[root] = count;
                count += 1;
            }
            number[root]
        })
        .collect();
    Segmentation {
        width: w,
        height: h,
        labels,
        count: count as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(w: usize, h: usize, f: impl Fn(usize, usize) -> f32) -> Plane {
        Plane {
            width: w,
            height: h,
            data: (0..w * h).map(|i| f(i % w, i / w)).collect(),
        }
    }

    #[test]
    fn flat_halves_split_and_min_size_absorbs_blurred_strips() {
        let halves = plane(20, 10, |x, _| if x < 10 { 20.0 } else { 220.0 });
        let sharp = Params {
            sigma: 0.0,
            truncate: 4.0,
            k: 50.0,
            min_size: 1,
        };
        let s = segment(std::slice::from_ref(&halves), &sharp);
        assert_eq!(s.count, 2);
        assert_eq!((s.labels[0], s.labels[19]), (0, 1));
        // Smoothing blurs the boundary into strips of their own, which min_size absorbs.
        let blurred = Params {
            sigma: 0.8,
            ..sharp
        };
        assert!(segment(std::slice::from_ref(&halves), &blurred).count > 2);
        let s = segment(
            &[halves],
            &Params {
                min_size: 20,
                ..blurred
            },
        );
        assert_eq!(s.count, 2);
        assert_eq!(s.labels.iter().filter(|&&l| l == 0).count(), 100);
        // A 2x2 speck survives without min_size and goes with it.
        let speck = plane(20, 10, |x, y| {
            if (8..10).contains(&x) && (4..6).contains(&y) {
                250.0
            } else {
                0.0
            }
        });
        assert_eq!(segment(std::slice::from_ref(&speck), &sharp).count, 2);
        assert_eq!(
            segment(
                &[speck],
                &Params {
                    min_size: 5,
                    ..sharp
                }
            )
            .count,
            1
        );
    }
}
