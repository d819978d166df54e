//! Cross-validation folds with scikit-learn's `StratifiedKFold(n_splits, shuffle=False)`
//! semantics, which `cross_val_score(..., cv=k)` uses for a classifier.

/// The test fold of every row. Classes are numbered by first appearance; the sorted labels
/// are dealt round-robin to the folds to decide how many rows of each class every fold gets;
/// then each class's rows, in input order, fill fold 0, then fold 1, and so on.
pub fn stratified_test_folds(labels: &[bool], folds: usize) -> Vec<usize> {
    let folds = folds.max(1);
    // Class 0 is the label of the first row (order of first appearance).
    let first = labels.first().copied().unwrap_or(false);
    let class = |l: bool| usize::from(l != first);
    let counts = [
        labels.iter().filter(|&&l| class(l) == 0).count(),
        labels.iter().filter(|&&l| class(l) == 1).count(),
    ];
    // sorted encoded labels: counts[0] zeros then counts[1] ones; fold f takes positions
    // f, f + folds, ...
    let mut allocation = vec![[0usize; 2]; folds];
    for pos in 0..labels.len() {
        let c = usize::from(pos >= counts[0]);
        allocation[pos % folds][c] += 1;
    }
    let mut next = [0usize; 2];
    let mut filled = [0usize; 2];
    labels
        .iter()
        .map(|&l| {
            let c = class(l);
            while filled[c] >= allocation[next[c]][c] {
                filled[c] = 0;
                next[c] += 1;
            }
            filled[c] += 1;
            next[c]
        })
        .collect()
}

/// The (train, test) row indices of fold `fold`, both in input order.
pub fn split(test_folds: &[usize], fold: usize) -> (Vec<usize>, Vec<usize>) {
    (0..test_folds.len()).partition(|&i| test_folds[i] != fold)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked by hand from scikit-learn's StratifiedKFold(3) algorithm (and checked there:
    /// `StratifiedKFold(3).split(X, y)` gives these test folds for this y).
    #[test]
    fn matches_stratified_kfold() {
        // y = [1, 1, 0, 1, 0, 0, 0, 1, 0, 0]: class "1" first (4 rows), "0" (6 rows).
        let y = [
            true, true, false, true, false, false, false, true, false, false,
        ];
        // Sorted encoded labels 0,0,0,0,1,1,1,1,1,1 dealt to folds 0,1,2,0,1,2,...:
        // fold 0 gets 2 of class 0 and 2 of class 1, fold 1: 1 and 2, fold 2: 1 and 2.
        assert_eq!(
            stratified_test_folds(&y, 3),
            vec![0, 0, 0, 1, 0, 1, 1, 2, 2, 2]
        );
        let (train, test) = split(&stratified_test_folds(&y, 3), 1);
        assert_eq!(test, vec![3, 5, 6]);
        assert_eq!(train.len(), 7);
    }
}
