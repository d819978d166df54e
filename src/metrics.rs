//! Ranking and classification metrics: PASCAL VOC's all-points average precision (the test
//! metric of the SVM tasks), scikit-learn's `average_precision_score` (the cross-validation
//! metric), and top-k accuracy.

/// VOC "all-points" average precision (VOC2010+ devkit `VOCevalcls`): images sorted by
/// decreasing score (ties keep their input order, as MATLAB's stable `sort` does); precision
/// and recall after each image; recall padded with 0 and 1, precision with 0 and 0 and made
/// monotone from the right; AP = sum of (recall step x precision) where recall changes.
///
/// `labels` are VOC's: 1 present, -1 absent, 0 difficult-only. Difficult images are left out.
/// A class without a positive image has AP 0.
pub fn voc_ap(scores: &[f64], labels: &[i32]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len().min(labels.len()))
        .filter(|&i| labels[i] != 0)
        .collect();
    let positives = order.iter().filter(|&&i| labels[i] > 0).count();
    if positives == 0 {
        return 0.0;
    }
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut recall, mut precision) = (vec![0.0], vec![0.0]);
    let mut tp = 0usize;
    for (n, &i) in order.iter().enumerate() {
        if labels[i] > 0 {
            tp += 1;
        }
        recall.push(tp as f64 / positives as f64);
        precision.push(tp as f64 / (n + 1) as f64);
    }
    recall.push(1.0);
    precision.push(0.0);
    for i in (0..precision.len() - 1).rev() {
        precision[i] = precision[i].max(precision[i + 1]);
    }
    (1..recall.len())
        .filter(|&i| recall[i] != recall[i - 1])
        .map(|i| (recall[i] - recall[i - 1]) * precision[i])
        .sum()
}

/// scikit-learn's `average_precision_score` for binary labels: the sum over distinct score
/// thresholds, from the highest, of `(R_n - R_(n-1)) P_n`, where tied scores form one
/// threshold. No interpolation. Without a positive label the score is 0 (scikit-learn warns
/// and returns a meaningless value there).
pub fn average_precision(scores: &[f64], positive: &[bool]) -> f64 {
    let n = scores.len().min(positive.len());
    let total = positive[..n].iter().filter(|&&p| p).count();
    if total == 0 {
        return 0.0;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut seen, mut ap, mut last_recall) = (0usize, 0usize, 0.0, 0.0);
    let mut k = 0;
    while k < n {
        let threshold = scores[order[k]];
        while k < n && scores[order[k]] == threshold {
            tp += positive[order[k]] as usize;
            seen += 1;
            k += 1;
        }
        let recall = tp as f64 / total as f64;
        ap += (recall - last_recall) * tp as f64 / seen as f64;
        last_recall = recall;
    }
    ap
}

/// Top-k accuracy in percent: the share of rows of `logits` (`rows x classes`, row-major)
/// whose `label` is among the k largest values (a tie with an earlier class counts against
/// the label).
pub fn top_k_accuracy(logits: &[f32], classes: usize, labels: &[usize], k: usize) -> f64 {
    if labels.is_empty() || classes == 0 {
        return 0.0;
    }
    let hits = labels
        .iter()
        .enumerate()
        .filter(|&(r, &label)| {
            let row = &logits[r * classes..(r + 1) * classes];
            let own = row[label];
            let above = row
                .iter()
                .enumerate()
                .filter(|&(c, &v)| c != label && (v > own || (v == own && c < label)))
                .count();
            above < k
        })
        .count();
    100.0 * hits as f64 / labels.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voc_ap_by_hand() {
        // Ranked: +, -, +, - ; 2 positives. Precision at the hits: 1, 2/3 -> AP = 0.5*1 + 0.5*2/3.
        let ap = voc_ap(&[0.9, 0.8, 0.7, 0.1], &[1, -1, 1, -1]);
        assert!((ap - (0.5 + 1.0 / 3.0)).abs() < 1e-12);
        // Precision is made monotone from the right: -, +, +: P = 1/2, 2/3 -> both 2/3.
        let ap = voc_ap(&[0.9, 0.8, 0.7], &[-1, 1, 1]);
        assert!((ap - 2.0 / 3.0).abs() < 1e-12);
        // A difficult image (0) is left out wherever it ranks.
        let with = voc_ap(&[0.95, 0.9, 0.8, 0.7, 0.1], &[0, 1, -1, 1, -1]);
        assert!((with - (0.5 + 1.0 / 3.0)).abs() < 1e-12);
        // No positive: 0.
        assert_eq!(voc_ap(&[0.3, 0.2], &[-1, 0]), 0.0);
        // Ties keep input order (MATLAB's stable sort): a tied negative listed first costs.
        let first_neg = voc_ap(&[0.5, 0.5], &[-1, 1]);
        let first_pos = voc_ap(&[0.5, 0.5], &[1, -1]);
        assert!((first_neg - 0.5).abs() < 1e-12 && (first_pos - 1.0).abs() < 1e-12);
    }

    #[test]
    fn sklearn_ap_by_hand() {
        // Same ranking as above without ties: AP = 0.5*1 + 0.5*2/3 (no interpolation).
        let ap = average_precision(&[0.9, 0.8, 0.7, 0.1], &[true, false, true, false]);
        assert!((ap - (0.5 + 1.0 / 3.0)).abs() < 1e-12);
        // -, +, +: no monotone envelope: 0.5*1/2 + 0.5*2/3.
        let ap = average_precision(&[0.9, 0.8, 0.7], &[false, true, true]);
        assert!((ap - (0.25 + 1.0 / 3.0)).abs() < 1e-12);
        // Tied scores form one threshold whatever their order: {+,-} tied at the top then +:
        // R 0.5 at P 1/2, then R 1 at P 2/3.
        for order in [[true, false, true], [false, true, true]] {
            let ap = average_precision(&[0.5, 0.5, 0.1], &order);
            assert!((ap - (0.25 + 1.0 / 3.0)).abs() < 1e-12, "{order:?}");
        }
        assert_eq!(average_precision(&[0.1, 0.2], &[false, false]), 0.0);
    }

    #[test]
    fn top_k_by_hand() {
        let logits = [0.1, 0.7, 0.2, 0.5, 0.4, 0.1];
        assert_eq!(top_k_accuracy(&logits, 3, &[1, 1], 1), 50.0);
        assert_eq!(top_k_accuracy(&logits, 3, &[1, 1], 2), 100.0);
        assert_eq!(top_k_accuracy(&logits, 3, &[0, 2], 2), 0.0);
    }
}
