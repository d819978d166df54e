//! MATLAB level-5 (v5/v7) MAT-file reader for the numeric and cell arrays that py-faster-rcnn's
//! proposals, NYUv2's `splits.mat` and `vocab40.mat` hold.
